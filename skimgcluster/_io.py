"""Reading images and writing results, atomically."""

import os
import tempfile
from pathlib import Path

import numpy as np

from ._fits import is_fits_path, read_fits, write_label_fits

__all__ = ["read_image", "write_label_image"]

_TIFF = {".tif", ".tiff"}


def read_image(path):
    """Read a PNG, JPEG, TIFF or FITS image, keeping its dtype.

    Parameters
    ----------
    path : str or path-like
        The file. TIFF files are read with tifffile (16-bit and float data
        included), FITS files (``.fits``, ``.fit``, ``.fts``, also gzipped
        or tile-compressed) with :func:`~skimgcluster.read_fits` (astropy
        needed), others with Pillow.

    Returns
    -------
    image : (M, N[, C]) ndarray
        The pixels; an alpha channel is removed. FITS images are float, with
        BSCALE and BZERO applied and their planes as bands.
    mask : (M, N) ndarray of bool or None
        True where the alpha channel was 0 (fully transparent), or for FITS
        where a pixel is NaN, infinite or BLANK; ``None`` if there is no such
        pixel.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If the file cannot be read as an image.
    ImportError
        For a FITS file when astropy is not installed.

    See Also
    --------
    read_fits : FITS with its header and WCS, several files as bands.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"cannot read {path} as an image: it is a folder")
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    if is_fits_path(path):
        fits_image = read_fits(path)
        return fits_image.data, fits_image.mask
    try:
        if path.suffix.lower() in _TIFF:
            import tifffile

            image = np.asarray(tifffile.imread(path))
            has_alpha = image.ndim == 3 and image.shape[2] in (2, 4)
        else:
            from PIL import Image

            with Image.open(path) as img:
                img.load()
                if img.mode == "P":
                    img = img.convert("RGBA" if "transparency" in img.info else "RGB")
                elif img.mode == "CMYK":
                    img = img.convert("RGB")
                has_alpha = img.mode in ("RGBA", "LA", "PA")
                image = np.asarray(img)
    except (OSError, ValueError, SyntaxError) as exc:
        raise ValueError(f"cannot read {path} as an image: {exc}") from None
    except Exception as exc:  # decoders raise many kinds of errors on corrupt files
        raise ValueError(f"cannot read {path} as an image: {type(exc).__name__}: {exc}") from None
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    mask = None
    if has_alpha:
        alpha = image[:, :, -1]
        image = image[:, :, :-1]
        if image.shape[2] == 1:
            image = image[:, :, 0]
        if (alpha == 0).any():
            mask = alpha == 0
    if image.ndim not in (2, 3) or image.size == 0:
        raise ValueError(f"cannot read {path} as an image: unexpected shape {image.shape}")
    return np.ascontiguousarray(image), mask


def _atomic_write(path, write):
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


def _check_label_image(label_image):
    label_image = np.asarray(label_image)
    if label_image.ndim != 2 or label_image.dtype.kind not in "iu":
        raise ValueError(
            f"label_image must be a 2-D integer array; got shape {label_image.shape} "
            f"and dtype {label_image.dtype}."
        )
    return label_image


def write_label_image(path, label_image, *, header=None):
    """Write a label image losslessly, atomically.

    An existing file is replaced.

    Parameters
    ----------
    path : str or path-like
        ``.png`` (16-bit grayscale; at most 65,535 labels), ``.tif``/``.tiff``
        (int32), ``.fits``/``.fit``/``.fts`` (int32, astropy needed) or
        ``.npy``.
    label_image : (M, N) ndarray of int
        0 for background.
    header : astropy.io.fits.Header, astropy.wcs.WCS or None, default=None
        For FITS only: the header (or WCS) of the segmented image, whose
        celestial WCS the label image carries (see
        :func:`~skimgcluster.write_label_fits`). Ignored for other formats.
    """
    path = Path(path)
    label_image = _check_label_image(label_image)
    suffix = path.suffix.lower()
    if suffix in (".fits", ".fit", ".fts"):
        write_label_fits(path, label_image, header=header, overwrite=True)
        return
    if suffix == ".png":
        if label_image.size and (label_image.min() < 0 or label_image.max() > 65535):
            raise ValueError(
                f"a PNG label image holds labels 0..65535; got up to {label_image.max()}. "
                "Write a .tif instead."
            )
        from PIL import Image

        data = label_image.astype(np.uint16)

        def write(tmp):
            Image.fromarray(data).save(tmp, format="PNG")

    elif suffix in _TIFF:
        import tifffile

        def write(tmp):
            tifffile.imwrite(tmp, label_image.astype(np.int32))

    elif suffix == ".npy":

        def write(tmp):
            with open(tmp, "wb") as f:
                np.save(f, label_image)

    else:
        raise ValueError(
            f"label images are written as .png, .tif, .fits or .npy; got {path.name!r}."
        )
    _atomic_write(path, write)


def write_text(path, text):
    """Write a text file atomically."""

    def write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)

    _atomic_write(path, write)


def save_figure(path, figure, **kwargs):
    """Save a matplotlib figure atomically (format from the path's suffix)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    _atomic_write(path, lambda tmp: figure.savefig(tmp, format=fmt, **kwargs))
