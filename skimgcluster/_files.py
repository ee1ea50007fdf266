"""What the readers and writers of files share: atomic writes and their checks.

A leaf module: :mod:`._io` (images in every format), :mod:`._fits` (FITS
images and labels) and :mod:`._catalog` (catalog files) all import it, and it
imports none of them.
"""

import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = []

#: FITS file name endings that are written (uncompressed).
FITS_WRITE_SUFFIXES = (".fits", ".fit", ".fts")
#: File name endings read as FITS (case-insensitive): also gzipped and tile-compressed.
FITS_SUFFIXES = (
    *FITS_WRITE_SUFFIXES,
    *(suffix + ".gz" for suffix in FITS_WRITE_SUFFIXES),
    ".fits.fz",
    ".fz",
)


def is_fits_path(path):
    """True if the file name of ``path`` ends like a FITS file."""
    return Path(path).name.lower().endswith(FITS_SUFFIXES)


def import_astropy(what):
    """``astropy.io.fits`` and ``astropy.wcs``, or an ImportError that says how to get them."""
    try:
        from astropy import wcs
        from astropy.io import fits
    except ImportError:
        raise ImportError(
            f"{what} needs astropy, which is not installed; install it with "
            'pip install "skimgcluster[astro]"'
        ) from None
    return fits, wcs


def celestial_axes_are_xy(wcs):
    """True if the celestial axes of an astropy WCS are its first two pixel axes."""
    return sorted((wcs.wcs.lng, wcs.wcs.lat)) == [0, 1]


def check_overwrite(path, overwrite):
    """Refuse a non-bool ``overwrite``, and an existing ``path`` unless it is True."""
    if not isinstance(overwrite, (bool, np.bool_)):
        raise TypeError(f"overwrite must be True or False; got {overwrite!r}.")
    if Path(path).exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")


def atomic_write(path, write):
    """Call ``write(temporary_path)``, then move the file into place.

    The temporary file lives in the destination folder, so the final
    :func:`os.replace` is atomic: an interrupted run leaves either the old
    file or the new one, never half of one.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        # mkstemp creates the file readable by its owner only; give it the
        # permissions a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_label_image(label_image):
    """``label_image`` as an array, refused unless it is 2-D of an integer dtype."""
    label_image = np.asarray(label_image)
    if label_image.ndim != 2 or label_image.dtype.kind not in "iu":
        raise ValueError(
            f"label_image must be a 2-D integer array; got shape {label_image.shape} "
            f"and dtype {label_image.dtype}."
        )
    return label_image


def check_label_range(label_image, dtype, what):
    """Refuse labels that ``dtype`` (the file's type) cannot hold, rather than wrap them."""
    if not label_image.size:
        return
    lo, hi = int(label_image.min()), int(label_image.max())  # Python ints: no overflow
    info = np.iinfo(dtype)
    if lo < info.min or hi > info.max:
        raise ValueError(
            f"label_image must hold values in the {info.dtype} range to be written as {what}; "
            f"got values from {lo} to {hi}. Write a .npy instead."
        )
