"""FITS images in, FITS label images out (astropy, the ``astro`` extra)."""

import math
import os
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ._files import (
    atomic_write,
    celestial_axes_are_xy,
    check_label_image,
    check_label_range,
    check_overwrite,
    import_astropy,
)

__all__ = ["FitsImage", "read_fits", "write_label_fits"]


class FitsImage(NamedTuple):
    """An image read from FITS by :func:`read_fits`.

    Attributes
    ----------
    data : (M, N[, C]) ndarray of float32 or float64
        The pixel values, scaled by BSCALE and BZERO, in native byte order;
        NaN where ``mask`` is True. float64 for 32- and 64-bit integer and
        64-bit float data, float32 otherwise.
    mask : (M, N) ndarray of bool or None
        True for pixels that are NaN, infinite or BLANK in any band;
        ``None`` if there is no such pixel.
    header : astropy.io.fits.Header
        Header of the image HDU (of the first file when several were read).
    wcs : astropy.wcs.WCS or None
        The celestial WCS of ``header`` with two pixel axes, x (columns) and
        y (rows); ``None`` if the header has no celestial WCS.
    """

    data: np.ndarray
    mask: np.ndarray | None
    header: object
    wcs: object


def _is_path(value):
    return isinstance(value, (str, bytes, os.PathLike))


def _check_paths(paths):
    if _is_path(paths):
        return [Path(os.fsdecode(paths))]
    try:
        items = list(paths)
    except TypeError:
        raise TypeError(
            f"paths must be a path or a sequence of paths; got {type(paths).__name__}: {paths!r}."
        ) from None
    if not items:
        raise ValueError("paths must name at least one file; got an empty sequence.")
    for item in items:
        if not _is_path(item):
            raise TypeError(
                f"paths must be a path or a sequence of paths; got an item of type "
                f"{type(item).__name__}: {item!r}."
            )
    return [Path(os.fsdecode(item)) for item in items]


def _image_ndim(hdu):
    """Number of non-degenerate image axes of an HDU without reading its data."""
    if not getattr(hdu, "is_image", False):
        return 0
    header = hdu.header  # of the image, also for tile-compressed HDUs
    naxis = int(header.get("NAXIS", 0))
    shape = [int(header.get(f"NAXIS{i}", 0)) for i in range(1, naxis + 1)]
    if not shape or 0 in shape:
        return 0
    # Leading length-1 axes beyond the third (e.g. Stokes of radio images) are dropped.
    while len(shape) > 3 and shape[-1] == 1:
        shape.pop()
    return len(shape)


def _declared(hdu):
    """Shape (FITS order, leading degenerate axes dropped) and BITPIX an image HDU declares."""
    header = hdu.header  # of the image, also for tile-compressed HDUs
    naxis = int(header.get("NAXIS", 0))
    shape = [int(header.get(f"NAXIS{i}", 0)) for i in range(naxis, 0, -1)]
    while len(shape) > 3 and shape[0] == 1:
        shape.pop(0)
    return tuple(shape), int(header.get("BITPIX", 8))


def _hdu_listing(hdul):
    """Every HDU of a file, for messages (reads all headers: only on error)."""
    return "; ".join(
        f"{i}: {h.name or '(no name)'} ({type(h).__name__})" for i, h in enumerate(hdul)
    )


def _select_hdu(hdul, hdu, path):
    # Only the HDUs up to the chosen one are read: the listing of all of them,
    # which has to read past every data unit (all of a .fits.gz), is for errors.
    if hdu is None:
        for h in hdul:
            if _image_ndim(h) in (2, 3):
                return h
        raise ValueError(
            f"{path} holds no 2-D or 3-D image HDU (HDUs: {_hdu_listing(hdul)}); pass hdu= "
            "to choose one."
        )
    if isinstance(hdu, (bool, np.bool_)) or not isinstance(hdu, (int, np.integer, str)):
        raise TypeError(
            f"hdu must be an int (index), a str (EXTNAME) or None; got {type(hdu).__name__}: "
            f"{hdu!r}."
        )
    if isinstance(hdu, str):
        matches = [h for h in hdul if h.name.upper() == hdu.upper()]
        if not matches:
            raise ValueError(
                f"{path} has no HDU with EXTNAME {hdu!r} (HDUs: {_hdu_listing(hdul)})."
            )
        chosen = matches[0]
    else:
        try:
            chosen = hdul[int(hdu)]
        except IndexError:
            raise ValueError(
                f"hdu={hdu} is out of range for {path}, which has HDUs {_hdu_listing(hdul)}."
            ) from None
    if _image_ndim(chosen) not in (2, 3):
        raise ValueError(
            f"hdu={hdu!r} of {path} is not a 2-D or 3-D image "
            f"({type(chosen).__name__}, NAXIS={chosen.header.get('NAXIS')}); HDUs: "
            f"{_hdu_listing(hdul)}."
        )
    return chosen


def _scaled(hdu, path):
    """Native float data of an image HDU with BSCALE/BZERO applied and BLANK as NaN."""
    raw = hdu.data  # unscaled: the file was opened with do_not_scale_image_data=True
    if raw is None:
        raise ValueError(f"the image HDU {hdu.name!r} of {path} holds no data.")
    raw = np.asarray(raw)
    while raw.ndim > 3 and raw.shape[0] == 1:
        raw = raw[0]
    return _scale(raw, hdu.header, path)


def _scale(raw, header, path):
    """Float pixels of stored values ``raw``: BSCALE/BZERO applied, BLANK as NaN."""
    bscale = float(header.get("BSCALE", 1.0))
    bzero = float(header.get("BZERO", 0.0))
    if raw.dtype.kind in "iu":
        # float32 holds 8- and 16-bit integers exactly, scaled or not.
        dtype = np.float64 if raw.dtype.itemsize >= 4 else np.float32
        blank = header.get("BLANK")
        data = raw.astype(np.float64 if (bscale != 1.0 or bzero != 0.0) else dtype)
        if bscale != 1.0:
            data *= bscale
        if bzero != 0.0:
            data += bzero
        data = data.astype(dtype, copy=False)
        if blank is not None:
            data[raw == int(blank)] = np.nan
    elif raw.dtype.kind == "f":
        dtype = np.float64 if raw.dtype.itemsize > 4 else np.float32
        data = raw.astype(np.dtype(dtype), copy=True)  # native byte order
        if bscale != 1.0:
            data *= bscale
        if bzero != 0.0:
            data += bzero
    else:
        raise ValueError(f"cannot read {path}: unsupported FITS data type {raw.dtype}.")
    return data


def _celestial_wcs(header, path, wcs_module):
    """The 2-D celestial WCS of a header, or None."""
    with warnings.catch_warnings():
        # Informational notes about fixed-up non-standard keywords (DATE-OBS, ...).
        warnings.simplefilter("ignore", wcs_module.FITSFixedWarning)
        try:
            full = wcs_module.WCS(header)
        except Exception as exc:  # malformed WCS keywords: the pixels are still usable
            reason = " ".join(str(exc).split())
            warnings.warn(
                f"ignoring the WCS of {path}, which astropy cannot read: {reason}",
                UserWarning,
                stacklevel=4,
            )
            return None
    if not full.has_celestial:
        return None
    if not celestial_axes_are_xy(full):
        warnings.warn(
            f"ignoring the WCS of {path}: its celestial axes are FITS axes "
            f"{full.wcs.lng + 1} and {full.wcs.lat + 1}, not the image's x and y (1 and 2).",
            UserWarning,
            stacklevel=4,
        )
        return None
    return full.celestial


def _open(fits, path):
    if path.is_dir():
        raise ValueError(f"cannot read {path} as FITS: it is a folder")
    if not path.is_file():
        raise FileNotFoundError(f"no such FITS file: {path}")
    try:
        return fits.open(path, do_not_scale_image_data=True)
    except OSError as exc:
        raise ValueError(f"cannot read {path} as FITS: {exc}") from None


def _declared_image(fits, path, hdu):
    """Declared shape and item size of the image HDU of a file, from its header alone."""
    with _open(fits, path) as hdul:
        return _declared(_select_hdu(hdul, hdu, path))


def _check_fits_memory(files, declared):
    """Refuse FITS images whose declared size would not fit in memory, before decoding."""
    from ._validation import check_memory, format_bytes

    copied = len(files) > 1 or any(len(shape) == 3 for shape, _ in declared)
    n_bytes = math.prod(declared[0][0][-2:])  # the mask
    for shape, bitpix in declared:
        n_values = math.prod(shape)
        itemsize = abs(bitpix) // 8
        out_itemsize = 8 if (bitpix >= 32 or bitpix == -64) else 4
        # The stored data (decompressed, or mapped), the float result (twice
        # when bands are stacked or reordered), a float64 while scaling integers.
        n_bytes += n_values * (itemsize + out_itemsize * (2 if copied else 1))
        n_bytes += n_values * (8 if bitpix > 0 else 0)
    sizes = ", ".join(
        f"{p.name} (NAXISn {shape[::-1]}, BITPIX {bitpix}: "
        f"{format_bytes(math.prod(shape) * abs(bitpix) // 8)})"
        for p, (shape, bitpix) in zip(files, declared, strict=True)
    )
    check_memory(
        n_bytes,
        what=f"reading {sizes}, as the header(s) declare,",
        advice="Crop or bin the image into smaller files, or read fewer files as bands.",
    )


def read_fits(paths, *, hdu=None, chunks=None, _before_decoding=None):
    """Read a FITS image, a FITS cube, or several single-band FITS files as bands.

    Parameters
    ----------
    paths : str, path-like or sequence of them
        One file, or several files of the same image size whose images are
        stacked as bands in the given order (a file holding a cube adds all
        its planes). Gzip-compressed (``.fits.gz``) and tile-compressed files
        are read too.
    hdu : int, str or None, default=None
        The HDU to read from every file: its index, or its EXTNAME
        (case-insensitive). ``None`` takes the first HDU holding a 2-D or 3-D
        image (the primary HDU, or the first extension when the primary is
        empty).
    chunks : int, tuple of int or None, default=None
        ``None`` reads the pixels now, into a NumPy array. Otherwise nothing
        is read now: ``data`` is a :class:`dask.array.Array` with chunks of
        ``chunks`` rows and columns (all bands in each chunk), whose chunks
        read their section of each file when computed, wherever they are
        computed (astropy's memory map of an uncompressed file reads just
        those pixels). This is how an image larger than memory is read for
        :func:`~skimgcluster.segment` with ``tile_size``. Needs dask.

    Returns
    -------
    image : FitsImage
        ``data`` of shape (M, N) for one plane, (M, N, C) for C planes (a
        FITS cube of axes (C, M, N) in FITS order NAXIS3, NAXIS2, NAXIS1 is
        read with its planes as bands); ``mask``, ``header`` and ``wcs``.
        With ``chunks``, ``data`` is a dask array whose NaN, infinite and
        BLANK pixels are NaN in every band, and ``mask`` is None: the
        segmentation excludes NaN pixels just the same.

    Raises
    ------
    ImportError
        If astropy is not installed.
    FileNotFoundError
        If a file does not exist.
    ValueError
        If a file is not FITS, has no image HDU of two or three axes (or
        not the one ``hdu`` names), or the images of several files differ
        in size.
    TypeError
        If ``paths`` or ``hdu`` has the wrong type.

    Notes
    -----
    Pixel values are ``BSCALE * stored + BZERO``. Pixels equal to BLANK
    (integer data), NaN or infinite in any band become NaN and are True in
    ``mask``; :func:`~skimgcluster.segment` gives them no samples. Leading
    length-1 axes beyond the third (e.g. a Stokes axis) are dropped. Row 0 of
    ``data`` is the first row of the file (FITS pixel y = 1), so ``data`` is
    upside down when shown with matplotlib's default ``origin='upper'``.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> from skimgcluster import read_fits
    >>> path = getfixture("tmp_path") / "image.fits"
    >>> fits.PrimaryHDU(np.arange(12, dtype=np.int16).reshape(3, 4)).writeto(path)
    >>> image = read_fits(path)
    >>> image.data.shape, image.data.dtype, image.mask, image.wcs
    ((3, 4), dtype('float32'), None, None)
    """
    fits, wcs_module = import_astropy("read_fits")
    files = _check_paths(paths)
    # First the headers of all files: sizes are checked, against each other and
    # against the available memory, before any data is decoded.
    declared = [_declared_image(fits, path, hdu) for path in files]
    shapes = [s if len(s) == 2 else (s[1], s[2], s[0]) for s, _ in declared]  # (M, N[, C])
    if len({s[:2] for s in shapes}) > 1:
        listing = ", ".join(f"{p.name} {s}" for p, s in zip(files, shapes, strict=True))
        raise ValueError(
            "the files of paths must hold images of the same size (M, N) to be read as "
            f"bands; got {listing}."
        )
    if _before_decoding is not None:  # the command line's check of the whole run
        n_bands = sum(shape[0] if len(shape) == 3 else 1 for shape, _ in declared)
        wide = any(bitpix >= 32 or bitpix == -64 for _, bitpix in declared)
        m, n = declared[0][0][-2:]
        _before_decoding((m, n, n_bands), np.dtype(np.float64 if wide else np.float32))
    if chunks is not None:
        return _lazy_fits(fits, wcs_module, files, hdu, declared, chunks)
    _check_fits_memory(files, declared)
    planes, header = [], None
    for path in files:
        with _open(fits, path) as hdul:
            chosen = _select_hdu(hdul, hdu, path)
            try:
                data = _scaled(chosen, path)
            except (OSError, TypeError) as exc:
                raise ValueError(f"cannot read the image of {path}: {exc}") from None
            if header is None:
                header = chosen.header.copy()
        if data.ndim == 3:
            data = np.moveaxis(data, 0, -1)  # FITS (C, M, N) -> (M, N, C)
        planes.append(data)
    if len(planes) == 1:
        data = planes[0]
    else:
        data = np.concatenate([p if p.ndim == 3 else p[:, :, None] for p in planes], axis=2)
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[:, :, 0]
    data = np.ascontiguousarray(data)
    bad = ~np.isfinite(data)
    if bad.ndim == 3:
        bad = bad.any(axis=2)
    mask = None
    if bad.any():
        mask = bad
        data[bad] = np.nan  # every band of a masked pixel
    wcs = _celestial_wcs(header, files[0], wcs_module)
    return FitsImage(data, mask, header, wcs)


class _FitsSections:
    """The (M, N[, C]) image of FITS files as an array-like that reads only what is sliced.

    It holds file names and header facts only, so that it pickles small: a
    dask chunk (or a tile) sent to a worker process opens the files there and
    reads its section, through astropy's memory map for uncompressed data.
    """

    def __init__(self, parts, shape, dtype):
        self.parts = parts  # (path, HDU index, NAXIS, declared shape) per file
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.ndim = len(shape)

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        rows, cols = key[0], key[1]
        if not (isinstance(rows, slice) and isinstance(cols, slice)):
            raise TypeError("FITS sections are read by slices of rows and columns.")
        fits, _ = import_astropy("reading FITS")
        bands = []
        for path, index, naxis, shape in self.parts:
            lead = (0,) * (naxis - len(shape)) + ((slice(None),) if len(shape) == 3 else ())
            with fits.open(path, memmap=True, do_not_scale_image_data=True) as hdul:
                chosen = hdul[index]
                raw = np.asarray(chosen.section[lead + (rows, cols)])
                data = _scale(raw, chosen.header, path)
            bands.append(np.moveaxis(data, 0, -1) if data.ndim == 3 else data[:, :, None])
        data = np.concatenate(bands, axis=2).astype(self.dtype, copy=False)
        bad = ~np.isfinite(data)
        data[bad.any(axis=2)] = np.nan  # every band of a masked pixel, as read_fits
        return data[:, :, key[2]] if self.ndim == 3 else data[:, :, 0]


def _lazy_fits(fits, wcs_module, files, hdu, declared, chunks):
    """:func:`read_fits` with ``chunks``: a dask array that reads sections when computed."""
    try:
        import dask.array as da
        from dask.base import tokenize
    except ImportError:
        raise ImportError(
            'read_fits(chunks=...) needs dask: pip install "skimgcluster[dask]"'
        ) from None
    parts, header = [], None
    for path, (shape, _) in zip(files, declared, strict=True):
        with _open(fits, path) as hdul:
            chosen = _select_hdu(hdul, hdu, path)
            index = next(i for i, h in enumerate(hdul) if h is chosen)
            naxis = int(chosen.header.get("NAXIS", 0))
            if header is None:
                header = chosen.header.copy()
        parts.append((str(path), index, naxis, shape))
    n_bands = sum(shape[0] if len(shape) == 3 else 1 for shape, _ in declared)
    m, n = declared[0][0][-2:]
    wide = any(bitpix >= 32 or bitpix == -64 for _, bitpix in declared)
    dtype = np.float64 if wide else np.float32
    shape = (m, n) if n_bands == 1 else (m, n, n_bands)
    if isinstance(chunks, (int, np.integer)) and not isinstance(chunks, (bool, np.bool_)):
        chunks = (int(chunks), int(chunks))
    try:
        chunks = tuple(int(c) for c in chunks)[:2]
        if len(chunks) != 2 or min(chunks) < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(
            f"chunks must be None, an int >= 1 or a pair of them; got chunks={chunks!r}."
        ) from None
    sections = _FitsSections(parts, shape, dtype)
    stamps = [(p, os.stat(p).st_mtime_ns, os.stat(p).st_size) for p, *_ in parts]
    from ._validation import check_memory

    # astropy reads a section through a memory map of the whole file, which a
    # limit on the address space (ulimit -v) can forbid whatever the section.
    check_memory(
        max(size for *_, size in stamps),
        what=f"reading the FITS image of shape {shape} by sections (each file is mapped whole)",
        advice="Raise the limit on the address space (ulimit -v), or split the file.",
        mapped=True,
    )
    data = da.from_array(
        sections, chunks=chunks + shape[2:], name=f"read-fits-{tokenize(stamps, parts)}",
        meta=np.empty((0,) * len(shape), dtype=dtype),
    )  # fmt: skip
    wcs = _celestial_wcs(header, files[0], wcs_module)
    return FitsImage(data, None, header, wcs)


def label_header(header, fits, wcs_module):
    """A header holding only the celestial WCS of ``header`` (Header or WCS)."""
    out = fits.Header()
    if header is None:
        return out
    if isinstance(header, wcs_module.WCS):
        wcs = header
    elif isinstance(header, fits.Header):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", wcs_module.FITSFixedWarning)
            try:
                wcs = wcs_module.WCS(header)
            except Exception as exc:
                raise ValueError(
                    f"the WCS of header cannot be read: {' '.join(str(exc).split())}"
                ) from None
    else:
        raise TypeError(
            "header must be an astropy.io.fits.Header, an astropy.wcs.WCS or None; got "
            f"{type(header).__name__}."
        )
    if not wcs.has_celestial:
        return out
    if not celestial_axes_are_xy(wcs):
        raise ValueError(
            "the celestial axes of header must be its first two (x and y); got axes "
            f"{wcs.wcs.lng + 1} and {wcs.wcs.lat + 1}."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", wcs_module.FITSFixedWarning)
        out.update(wcs.celestial.to_header(relax=True))
    return out


def write_label_fits(path, label_image, *, header=None, overwrite=False):
    """Write a label image as FITS with the celestial WCS of the image, atomically.

    Parameters
    ----------
    path : str or path-like
        The file to write.
    label_image : (M, N) ndarray of int
        0 for background; written as 32-bit integers (BITPIX = 32).
    header : astropy.io.fits.Header, astropy.wcs.WCS or None, default=None
        Header (or WCS) of the segmented image, e.g. ``read_fits(...).header``.
        Only its celestial WCS is copied, reduced to the two image axes (a
        cube's band axis is dropped), so that the label image overlays the
        image in DS9 or any WCS-aware viewer.
    overwrite : bool, default=False
        Replace an existing file.

    Raises
    ------
    ImportError
        If astropy is not installed.
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    ValueError
        If ``label_image`` is not a 2-D integer array with values in the
        int32 range, or the celestial axes of ``header`` are not its first two.
    TypeError
        If ``header`` is neither a Header, a WCS nor None.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> from skimgcluster import write_label_fits
    >>> labels = np.array([[0, 1], [2, 2]])
    >>> path = getfixture("tmp_path") / "labels.fits"
    >>> write_label_fits(path, labels)
    >>> header, data = fits.getheader(path), fits.getdata(path)
    >>> header["BITPIX"], data.tolist()
    (32, [[0, 1], [2, 2]])
    """
    fits, wcs_module = import_astropy("write_label_fits")
    path = Path(path)
    label_image = check_label_image(label_image)
    check_label_range(label_image, np.int32, "FITS")
    check_overwrite(path, overwrite)
    hdr = label_header(header, fits, wcs_module)
    hdr["COMMENT"] = "Label image of skimgcluster: 0 = background, a value > 0 per source."
    hdu = fits.PrimaryHDU(data=label_image.astype(np.int32, copy=False), header=hdr)

    def write(tmp):
        hdu.writeto(tmp, overwrite=True, output_verify="exception")

    atomic_write(path, write)
