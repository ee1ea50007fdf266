"""Reading images and writing results, atomically."""

import math
import os
import tempfile
from pathlib import Path

import numpy as np

from ._files import (
    FITS_WRITE_SUFFIXES,
    atomic_write,
    check_label_image,
    check_label_range,
    import_astropy,
    is_fits_path,
)
from ._fits import label_header, read_fits, write_label_fits
from ._validation import check_memory
from .exceptions import ImageLayoutError, InsufficientMemoryError

__all__ = ["read_image", "write_label_image"]

_TIFF = {".tif", ".tiff"}


def read_image(path, *, planes=None, chunks=None):
    """Read a PNG, JPEG, TIFF, FITS or Zarr image, keeping its dtype.

    Parameters
    ----------
    path : str or path-like
        The file. TIFF files are read with tifffile (16-bit and float data
        included), FITS files (``.fits``, ``.fit``, ``.fts``, also gzipped
        or tile-compressed) with :func:`~skimgcluster.read_fits` (astropy
        needed), a Zarr array (a folder ending in ``.zarr``) lazily with
        :func:`dask.array.from_zarr`, others with Pillow.
    planes : {None, 'bands'} or int, default=None
        How to read a TIFF that holds a stack of image planes: several pages
        of the same size, or an axis that is neither rows, columns nor the
        samples of a pixel (a Z stack, a time series). Whether such planes
        are the bands of one image or separate images, the file does not
        say, so ``None`` refuses them; ``'bands'`` reads every plane as a
        band, an int ``k`` reads plane ``k`` only (planes counted in the
        file's order). The channel axis of an ImageJ or OME-TIFF hyperstack
        is read as bands without it. Must be None for other formats.
    chunks : int, tuple of int or None, default=None
        For FITS and Zarr: read nothing now, and return a
        :class:`dask.array.Array` of chunks of ``chunks`` rows and columns
        that reads its sections when computed (see
        :func:`~skimgcluster.read_fits`). A Zarr array is always read so,
        by default in the chunks it is stored in. Needs dask. Must be None
        for other formats.

    Returns
    -------
    image : (M, N[, C]) ndarray or dask.array.Array
        The pixels; an alpha channel is removed. FITS images are float, with
        BSCALE and BZERO applied and their planes as bands. A dask array for
        Zarr, and for FITS with ``chunks``: images larger than memory are
        segmented from it tile by tile (:func:`~skimgcluster.segment` with
        ``tile_size``), never read whole.
    mask : (M, N) ndarray of bool or None
        True where the alpha channel was 0 (fully transparent), or for FITS
        where a pixel is NaN, infinite or BLANK; ``None`` if there is no such
        pixel. Always None for a dask array, whose NaN pixels (BLANK and
        infinite ones included, for FITS) the segmentation excludes anyway.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    ValueError
        If the file cannot be read as an image, its layout is ambiguous (see
        ``planes``), or it is a folder.
    InsufficientMemoryError
        If the image the file declares would not fit in the available
        memory; checked from the file's header, before decoding.
    ImportError
        For a FITS file when astropy is not installed.

    See Also
    --------
    read_fits : FITS with its header and WCS, several files as bands.

    Notes
    -----
    TIFF files are read as their tags describe them. ``PhotometricInterpretation``
    says how many samples of a pixel are colour: one for grayscale
    (MinIsBlack; MinIsWhite is inverted so that bright is high), three for
    RGB; palette images become RGB. Of the further samples, those that
    ``ExtraSamples`` marks as alpha (associated or not) become the mask, the
    others (unspecified, or untagged, as libtiff reads them) are further
    bands. A file holding several images of different sizes is refused.
    """
    return read_image_file(path, planes, chunks=chunks)


def is_zarr_path(path):
    """True if ``path`` names a Zarr store: a name ending in ``.zarr``."""
    return Path(path).name.lower().endswith(".zarr")


def read_zarr(path, chunks):
    """The array of a Zarr store, as a dask array that reads chunks when computed."""
    try:
        import dask.array as da
    except ImportError:
        raise ImportError(
            f'reading {path} (Zarr) needs dask: pip install "skimgcluster[dask]"'
        ) from None
    if not path.is_dir():
        raise FileNotFoundError(f"no such Zarr store (a folder): {path}")
    try:
        image = da.from_zarr(str(path))
    except ImportError:
        raise ImportError(
            f'reading {path} (Zarr) needs zarr: pip install "skimgcluster[dask]"'
        ) from None
    except Exception as exc:  # a group, a corrupt or foreign store
        raise ValueError(
            f"cannot read {path} as a Zarr image array: {type(exc).__name__}: {exc}"
        ) from None
    if image.ndim not in (2, 3) or 0 in image.shape or np.dtype(image.dtype).kind not in "biuf":
        raise ValueError(
            f"cannot read {path} as an image: its Zarr array has shape {image.shape} and "
            f"dtype {image.dtype}; expected (M, N) or (M, N, C) of a real numeric dtype"
        )
    if chunks is not None:
        if isinstance(chunks, (int, np.integer)) and not isinstance(chunks, (bool, np.bool_)):
            chunks = (chunks, chunks)
        image = image.rechunk(tuple(chunks)[:2] + (-1,) * (image.ndim - 2))
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    return image, None


def read_image_file(path, planes=None, before_decoding=None, *, chunks=None):
    """:func:`read_image`, calling ``before_decoding(shape, dtype)`` with the (M, N, C)
    shape and dtype of the image it will return, once known from the file's header."""
    path = Path(path)
    if is_zarr_path(path):
        if planes is not None:
            raise ValueError(f"planes applies to TIFF files only; {path.name} is not one")
        return read_zarr(path, chunks)
    if path.is_dir():
        raise ValueError(f"cannot read {path} as an image: it is a folder")
    if not path.is_file():
        raise FileNotFoundError(f"no such image file: {path}")
    _check_planes(planes)
    suffix = path.suffix.lower()
    if planes is not None and suffix not in _TIFF:
        raise ValueError(f"planes applies to TIFF files only; {path.name} is not one")
    if is_fits_path(path):
        fits_image = read_fits(path, chunks=chunks, _before_decoding=before_decoding)
        return fits_image.data, fits_image.mask
    if chunks is not None:
        raise ValueError(f"chunks applies to FITS and Zarr only; {path.name} is neither")
    try:
        if suffix in _TIFF:
            image, hidden = _read_tiff(path, planes, before_decoding)
        else:
            image, hidden = _read_pillow(path, before_decoding)
    except (InsufficientMemoryError, ImageLayoutError):
        raise
    except (OSError, ValueError, SyntaxError, IndexError) as exc:
        raise ValueError(f"cannot read {path} as an image: {exc}") from None
    except MemoryError:
        raise
    except Exception as exc:  # decoders raise many kinds of errors on corrupt files
        raise ValueError(f"cannot read {path} as an image: {type(exc).__name__}: {exc}") from None
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    mask = hidden if hidden is not None and hidden.any() else None
    if image.ndim not in (2, 3) or image.size == 0:
        raise ValueError(f"cannot read {path} as an image: unexpected shape {image.shape}")
    return np.ascontiguousarray(image), mask


def _check_planes(planes):
    if planes is None or (isinstance(planes, str) and planes == "bands"):
        return
    if isinstance(planes, (bool, np.bool_)) or not isinstance(planes, (int, np.integer)):
        raise TypeError(f"planes must be None, 'bands' or an int; got {planes!r}.")
    if planes < 0:
        raise ValueError(f"planes must be None, 'bands' or an int >= 0; got {planes}.")


def check_decoded_size(path, shape, dtype, *, copies=2):
    """Refuse an image whose declared size would not fit in memory, before decoding it.

    ``copies`` counts the decoded array and the copies reading makes of it
    (reordering axes, removing alpha, converting).
    """
    n_values = math.prod(int(n) for n in shape)
    n_bytes = copies * n_values * np.dtype(dtype).itemsize
    check_memory(
        n_bytes,
        what=(
            f"reading {path}, which declares an image of shape {tuple(int(n) for n in shape)} "
            f"and dtype {np.dtype(dtype)},"
        ),
        advice="Crop or bin the image into smaller files.",
    )


# Samples of a pixel that are colour, by TIFF PhotometricInterpretation.
_COLOUR_SAMPLES = {"MINISWHITE": 1, "MINISBLACK": 1, "RGB": 3, "YCBCR": 3, "PALETTE": 1}
_ALPHA = {"ASSOCALPHA", "UNASSALPHA"}


def _enum_name(value, enum):
    try:
        return enum(value).name
    except ValueError:
        return str(value)


def _read_tiff(path, planes, before_decoding=None):
    """Pixels (M, N, C) of a TIFF as its tags describe them, and where alpha is 0 (or None)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        series = tif.series
        if not series:
            raise ImageLayoutError(f"cannot read {path} as an image: it holds no image")
        if len(series) > 1:
            shapes = ", ".join(str(s.shape) for s in series)
            raise ImageLayoutError(
                f"cannot read {path}: it holds {len(series)} images of different shapes "
                f"(TIFF series {shapes}), and which one to segment is ambiguous; save that one "
                "in a file of its own"
            )
        s = series[0]
        page = s.keyframe
        # The page's own tags give the rows, columns and samples; the series
        # (tifffile's reading of the file's metadata) gives the planes.
        page_axes, page_shape = page.axes, tuple(int(n) for n in page.shape)
        axes, shape = s.axes, tuple(int(n) for n in s.shape)
        photometric = _enum_name(page.photometric, tifffile.PHOTOMETRIC)
        n_colour = _COLOUR_SAMPLES.get(photometric)
        if n_colour is None:
            raise ImageLayoutError(
                f"cannot read {path}: TIFF photometric interpretation {photometric} is not "
                "supported; convert it to grayscale (MinIsBlack) or RGB"
            )
        if sorted(page_axes) not in (["X", "Y"], ["S", "X", "Y"]):
            raise ImageLayoutError(
                f"cannot read {path} as an image: its pages have axes {page_axes!r} "
                f"(shape {page_shape}), not rows, columns and samples"
            )
        n_page = math.prod(page_shape)
        n_planes = math.prod(shape) // n_page
        if n_planes * n_page != math.prod(shape):
            raise ImageLayoutError(
                f"cannot read {path}: its image of shape {shape} (TIFF axes {axes!r}) is not "
                f"a stack of its pages of shape {page_shape}"
            )
        n_samples = page_shape[page_axes.index("S")] if "S" in page_axes else 1
        if n_samples < n_colour or (photometric == "PALETTE" and n_samples != 1):
            raise ImageLayoutError(
                f"cannot read {path}: photometric {photometric} needs {n_colour} colour "
                f"sample(s) per pixel; the file has {n_samples}"
            )
        # Alpha or further bands: as ExtraSamples says; untagged extras are
        # unspecified, as libtiff reads them.
        kinds = [_enum_name(e, tifffile.EXTRASAMPLE) for e in page.extrasamples]
        kinds = (kinds + ["UNSPECIFIED"] * n_samples)[: n_samples - n_colour]
        stack = [(a, n) for a, n in zip(axes, shape, strict=True) if a not in page_axes]
        stack = [(a, n) for a, n in stack if n > 1]
        if math.prod(n for _, n in stack) != n_planes:  # axes tifffile could not name
            stack = [("pages", n_planes)]
        channels = bool(stack) and all(a == "C" for a, _ in stack)
        if n_planes > 1 and not channels and planes is None:
            described = ", ".join(f"{a}={n}" for a, n in stack)
            raise ImageLayoutError(
                f"cannot read {path}: it holds a stack of {n_planes} image planes (TIFF axes "
                f"{axes!r}: {described}), which may be the bands of one image or separate "
                "images; pass planes='bands' to read them as bands or planes=k to read plane k "
                "(--planes on the command line)"
            )
        if isinstance(planes, (int, np.integer)) and not planes < n_planes:
            raise ImageLayoutError(
                f"planes={planes} is out of range for {path}, which holds {n_planes} image "
                f"plane(s) (TIFF axes {axes!r}, shape {shape})"
            )
        if before_decoding is not None:
            n_kept = 3 if photometric == "PALETTE" else n_samples - sum(k in _ALPHA for k in kinds)
            n_read = 1 if isinstance(planes, (int, np.integer)) else n_planes
            rows, cols = page_shape[page_axes.index("Y")], page_shape[page_axes.index("X")]
            dtype = np.dtype(np.uint16) if photometric == "PALETTE" else s.dtype
            before_decoding((rows, cols, n_read * n_kept), dtype)
        check_decoded_size(path, shape, s.dtype, copies=2 if photometric != "PALETTE" else 8)
        data = s.asarray()
        bits = int(page.bitspersample)
        colormap = page.colormap if photometric == "PALETTE" else None
    # (planes, page shape) -> (Y, X, planes, S)
    data = data.reshape((n_planes, *page_shape))
    order = [1 + page_axes.index("Y"), 1 + page_axes.index("X"), 0]
    order += [1 + page_axes.index("S")] if "S" in page_axes else []
    data = np.transpose(data, order)
    if "S" not in page_axes:
        data = data[..., None]
    if isinstance(planes, (int, np.integer)):
        data = data[:, :, int(planes) : int(planes) + 1]
    alpha_index = [n_colour + i for i, k in enumerate(kinds) if k in _ALPHA]
    hidden = None
    if alpha_index:
        hidden = (data[:, :, :, alpha_index[0]] == 0).any(axis=2)
        keep = [i for i in range(n_samples) if i not in alpha_index]
        data = data[:, :, :, keep]
    if photometric == "MINISWHITE":
        data = _invert(data, bits, path)
    elif photometric == "PALETTE":
        # (M, N, planes, 1) indices -> (M, N, planes, 3) 16-bit RGB
        data = np.moveaxis(colormap[:, data[..., 0]], 0, -1)
    return data.reshape(data.shape[0], data.shape[1], -1), hidden


def _invert(data, bits, path):
    """MinIsWhite pixels as MinIsBlack: 0 is white, so bright becomes high."""
    if data.dtype == np.bool_:
        return ~data
    if data.dtype.kind == "u":
        top = min((1 << bits) - 1, int(np.iinfo(data.dtype).max))
        return (top - data).astype(data.dtype)
    raise ImageLayoutError(
        f"cannot read {path}: photometric MinIsWhite with {data.dtype} data has no white "
        "level to invert from; convert it to MinIsBlack"
    )


def _read_pillow(path, before_decoding=None):
    """Pixels of an image Pillow reads, and where its alpha is 0 (or None)."""
    from PIL import Image

    with Image.open(path) as img:
        # The size is in the header: check it before decoding.
        n_bands = max(len(img.getbands()), 4 if img.mode in ("P", "CMYK") else 1)
        itemsize = 4 if img.mode in ("I", "F", "I;32") else 2 if img.mode.startswith("I;16") else 1
        shape, dtype = (img.size[1], img.size[0], n_bands), np.dtype(f"u{itemsize}")
        if before_decoding is not None:
            before_decoding(shape, dtype)
        check_decoded_size(path, shape, dtype)
        img.load()
        if img.mode == "P":
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        elif img.mode == "CMYK":
            img = img.convert("RGB")
        has_alpha = img.mode in ("RGBA", "LA", "PA")
        image = np.asarray(img)
    if image.ndim == 2:
        image = image[:, :, None]
    hidden = None
    if has_alpha:
        hidden = image[:, :, -1] == 0
        image = image[:, :, :-1]
    return image, hidden


def write_label_image(path, label_image, *, header=None):
    """Write a label image losslessly, atomically.

    An existing file is replaced.

    Parameters
    ----------
    path : str or path-like
        ``.png`` (16-bit grayscale; at most 65,535 labels), ``.tif``/``.tiff``
        (int32, as FITS), ``.fits``/``.fit``/``.fts`` (int32, astropy needed),
        ``.npy``, or ``.zarr``: a Zarr array (a folder) of int32 in chunks of
        1024 x 1024, written one band of chunks at a time (zarr needed).
    label_image : (M, N) ndarray of int, or dask.array.Array for Zarr
        0 for background. A dask array is written to Zarr chunk by chunk,
        as its chunks are computed, never whole in memory.
    header : astropy.io.fits.Header, astropy.wcs.WCS or None, default=None
        For FITS and Zarr: the header (or WCS) of the segmented image, whose
        celestial WCS the label image carries (see
        :func:`~skimgcluster.write_label_fits`; Zarr keeps its cards in the
        array's attribute ``'wcs'``). Ignored for other formats.

    Raises
    ------
    ValueError
        If ``label_image`` is not a 2-D integer array, the suffix is not one
        of the above, or a label does not fit the file's type (0..65535 for
        PNG, the int32 range for TIFF and FITS); labels are never wrapped.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".zarr":
        _write_label_zarr(path, label_image, header)
        return
    label_image = check_label_image(label_image)
    if suffix in FITS_WRITE_SUFFIXES:
        write_label_fits(path, label_image, header=header, overwrite=True)
        return
    if suffix == ".png":
        if label_image.size and (int(label_image.min()) < 0 or int(label_image.max()) > 65535):
            raise ValueError(
                f"a PNG label image holds labels 0..65535; got values from "
                f"{label_image.min()} to {label_image.max()}. Write a .tif instead."
            )
        from PIL import Image

        data = label_image.astype(np.uint16)

        def write(tmp):
            Image.fromarray(data).save(tmp, format="PNG")

    elif suffix in _TIFF:
        import tifffile

        check_label_range(label_image, np.int32, "TIFF")

        def write(tmp):
            tifffile.imwrite(tmp, label_image.astype(np.int32))

    elif suffix == ".npy":

        def write(tmp):
            with open(tmp, "wb") as f:
                np.save(f, label_image)

    else:
        raise ValueError(
            f"label images are written as .png, .tif, .fits, .npy or .zarr; got {path.name!r}."
        )
    atomic_write(path, write)


#: Chunks of the Zarr label images written.
_ZARR_CHUNK = 1024


def _write_label_zarr(path, label_image, header):
    """A label image as a Zarr array of int32, written beside and moved into place."""

    try:
        import zarr
    except ImportError:
        raise ImportError(
            f'writing {path.name} needs zarr, which is not installed: pip install "zarr"'
        ) from None
    lazy = type(label_image).__module__.startswith("dask.")
    if not lazy:
        label_image = check_label_image(label_image)
        check_label_range(label_image, np.int32, "Zarr")
    elif label_image.ndim != 2 or np.dtype(label_image.dtype).kind not in "iu":
        raise ValueError(
            f"label_image must be a 2-D integer array; got shape {label_image.shape} "
            f"and dtype {label_image.dtype}."
        )
    attrs = _zarr_label_attrs(header)
    m, n = label_image.shape
    chunks = (min(_ZARR_CHUNK, m) or 1, min(_ZARR_CHUNK, n) or 1)

    def fill(tmp):
        z = zarr.open_array(
            str(tmp), mode="w", shape=(m, n), chunks=chunks, dtype=np.int32, fill_value=0
        )
        if lazy:
            import dask.array as da

            info = np.iinfo(np.int32)
            checked = label_image.map_blocks(_int32_block, info.min, info.max, dtype=np.int32)
            da.store(checked.rechunk(chunks), z, lock=False)
        else:
            for r in range(0, m, chunks[0]):  # a band of chunks at a time: no whole int32 copy
                z[r : r + chunks[0]] = label_image[r : r + chunks[0]].astype(np.int32)
        z.attrs.update(attrs)

    _atomic_write_folder(path, fill)


def _zarr_label_attrs(header):
    """Attributes of a Zarr label image: what it holds, and the cards of its WCS."""
    attrs = {"skimgcluster": "label image: 0 = background, a positive value per source"}
    if header is not None:
        attrs["wcs"] = dict(label_header(header, *import_astropy("a Zarr label image's WCS")))
    return attrs


def _atomic_write_folder(path, fill):
    """Call ``fill(temporary_folder)``, then move the folder (a Zarr store) into place.

    An existing ``path`` is replaced only once the new folder is complete, and
    put back if the move fails.
    """
    import shutil

    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    old = None
    try:
        fill(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        if os.path.lexists(path):
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and os.path.lexists(old / path.name) and not os.path.lexists(path):
            os.replace(old / path.name, path)  # the previous label image, back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


class _LabelTarget:
    """A label image being written, which a task opens to write its part.

    Sent to the tasks instead of an open file: each opens the Zarr array,
    the FITS file's data (a memory map of big-endian int32 at ``offset``),
    the TIFF file's (little-endian int32 at ``offset``) or the ``.npy`` file
    by itself.
    """

    def __init__(self, kind, path, shape, offset=0):
        self.kind = kind
        self.path = str(path)
        self.shape = tuple(shape)
        self.offset = offset

    def write(self, row, col, values):
        """Write ``values`` with their first pixel at (``row``, ``col``)."""
        r1, c1 = row + values.shape[0], col + values.shape[1]
        if self.kind == "zarr":
            import zarr

            zarr.open_array(self.path, mode="r+")[row:r1, col:c1] = values
            return
        if self.kind in ("fits", "tiff"):
            dtype = ">i4" if self.kind == "fits" else "<i4"
            array = np.memmap(self.path, dtype=dtype, mode="r+", offset=self.offset,
                              shape=self.shape)  # fmt: skip
        else:
            array = np.load(self.path, mmap_mode="r+")
        array[row:r1, col:c1] = values
        array.flush()
        del array


def write_labels_by_parts(path, shape, chunks, write, *, header=None):
    """Write a label image of int32 ``shape`` part by part, atomically.

    ``write(target)`` writes every part through ``target`` (a
    :class:`_LabelTarget`, possibly from other processes); the file is made
    beside ``path`` at its full size first, and moved into place when
    ``write`` returns. ``chunks`` are the Zarr chunks: the parts should be
    unions of them so that parallel writes never share one.
    """

    path = Path(path)
    suffix = path.suffix.lower()
    m, n = (int(s) for s in shape)
    if suffix == ".zarr":
        try:
            import zarr
        except ImportError:
            raise ImportError(
                f'writing {path.name} needs zarr, which is not installed: pip install "zarr"'
            ) from None
        attrs = _zarr_label_attrs(header)

        def fill(tmp):
            z = zarr.open_array(
                str(tmp), mode="w", shape=(m, n), dtype=np.int32, fill_value=0,
                chunks=(min(chunks[0], m) or 1, min(chunks[1], n) or 1),
            )  # fmt: skip
            z.attrs.update(attrs)
            write(_LabelTarget("zarr", tmp, (m, n)))

        _atomic_write_folder(path, fill)
        return
    if suffix in (".fits", ".fit", ".fts"):
        fits, wcs_module = import_astropy("writing a FITS label image")
        hdr = label_header(header, fits, wcs_module)
        # The header of an int32 image of this shape; its data is then
        # written in place through a memory map of the pre-sized file.
        head = fits.PrimaryHDU(data=np.zeros((1, 1), dtype=np.int32), header=hdr).header
        head["NAXIS1"], head["NAXIS2"] = n, m
        text = head.tostring().encode("ascii")
        size = len(text) + -(-(4 * m * n) // 2880) * 2880

        def write_file(tmp):
            with open(tmp, "wb") as f:
                f.write(text)
                f.truncate(size)  # zeros, as a sparse file
            write(_LabelTarget("fits", tmp, (m, n), offset=len(text)))

        atomic_write(path, write_file)
        return
    if suffix in _TIFF:
        import tifffile

        def write_file(tmp):
            # An uncompressed TIFF of one contiguous image (BigTIFF above 4 GB),
            # its pixels zeros of a sparse file until written in place.
            where = tifffile.imwrite(
                tmp, shape=(m, n), dtype="<i4", byteorder="<", returnoffset=True
            )
            write(_LabelTarget("tiff", tmp, (m, n), offset=where[0]))

        atomic_write(path, write_file)
        return
    if suffix == ".npy":

        def write_file(tmp):
            np.lib.format.open_memmap(tmp, mode="w+", dtype=np.int32, shape=(m, n)).flush()
            write(_LabelTarget("npy", tmp, (m, n)))

        atomic_write(path, write_file)
        return
    raise ValueError(
        f"path must name a .zarr, .fits, .tif or .npy file, the formats written a tile "
        f"at a time; got path={str(path)!r}."
    )


def _int32_block(block, lo, hi):
    if block.size and (int(block.min()) < lo or int(block.max()) > hi):
        raise ValueError(
            f"label_image must hold values in the int32 range to be written as Zarr; got "
            f"values from {block.min()} to {block.max()}."
        )
    return block.astype(np.int32)


def save_figure(path, figure, **kwargs):
    """Save a matplotlib figure atomically (format from the path's suffix)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    atomic_write(path, lambda tmp: figure.savefig(tmp, format=fmt, **kwargs))
