"""Find structures in images with the AstroLink clustering algorithm.

The chain is image -> :class:`LuminositySampler` -> :class:`AstroLinkClusterer`
-> :func:`labels_to_image`; :func:`segment` runs it in one call.
"""

from ._astrolink import DegenerateDataWarning
from ._background import estimate_background
from ._catalog import SourceCatalog
from ._clusterer import AstroLinkClusterer
from ._fits import FitsImage, read_fits, write_label_fits
from ._io import read_image, write_label_image
from ._labels import cluster_masks, labels_to_image
from ._sampler import LuminositySampler, SampledImage, SparseSamplingWarning
from ._segment import ImageSegmenter, Segmentation, segment
from ._validation import InsufficientMemoryError

__version__ = "0.1.0"

# The figures need matplotlib, whose import is about a quarter of the
# package's: it is loaded on first use of a plot_* function (PEP 562), so a
# script that only segments starts faster.
_PLOTTING = ("plot_hierarchy", "plot_ordered_density", "plot_overview", "plot_segmentation")


def __getattr__(name):
    if name in _PLOTTING:
        from . import _plotting

        value = getattr(_plotting, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "AstroLinkClusterer",
    "DegenerateDataWarning",
    "FitsImage",
    "ImageSegmenter",
    "InsufficientMemoryError",
    "LuminositySampler",
    "SampledImage",
    "Segmentation",
    "SourceCatalog",
    "SparseSamplingWarning",
    "__version__",
    "cluster_masks",
    "estimate_background",
    "labels_to_image",
    "plot_hierarchy",
    "plot_ordered_density",
    "plot_overview",
    "plot_segmentation",
    "read_fits",
    "read_image",
    "segment",
    "write_label_fits",
    "write_label_image",
]
