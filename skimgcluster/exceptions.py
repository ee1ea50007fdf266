"""The exceptions and warnings of skimgcluster.

Every class the package raises or warns with is defined here, so that code
catching them needs one import and modules need not import each other for a
warning class. They are also importable from the top-level package (as
``skimgcluster.DegenerateDataWarning`` and so on).
"""

__all__ = [
    "CommandError",
    "DegenerateDataWarning",
    "ImageLayoutError",
    "InsufficientMemoryError",
    "NoSkyCoordinatesError",
    "SparseSamplingWarning",
]


class DegenerateDataWarning(UserWarning):
    """Warning raised when the data hold no structure AstroLink can measure."""


class SparseSamplingWarning(UserWarning):
    """Warning that the point cloud is too sparse for reliable detection."""


class InsufficientMemoryError(MemoryError, ValueError):
    """Error raised before a run that would need more memory than is available.

    It is both a :class:`MemoryError` and a :class:`ValueError`, so code that
    catches either (the command line catches ``ValueError``) handles it.
    """


class ImageLayoutError(ValueError):
    """Error for an image file that is readable but whose layout is refused.

    For example a TIFF stack of planes read without ``planes=``, or a file
    holding several images of different sizes. Its message is complete: the
    readers pass it on as it is instead of wrapping it.
    """


class NoSkyCoordinatesError(AttributeError):
    """Error for ``ra``, ``dec`` or ``sky_centroid`` of a catalog built without a WCS.

    An :class:`AttributeError`, so ``hasattr(catalog, "ra")`` is False then.
    """


class CommandError(Exception):
    """Error of the ``skimgcluster`` command that it reports as one line, with exit status 1.

    For a wrong use of the command (an argument that does not fit the
    images, an output in the way), where a traceback would say nothing more.
    """
