"""Properties of the readers on odd TIFF and FITS layouts, written by tifffile and astropy.

Whatever the layout a strategy draws, the reader returns the pixels the
file's tags describe (bands, alpha, planes) or refuses with a ValueError
that names the ambiguity; it never misreads silently.
"""

import tempfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skimgcluster import read_image

# -- TIFF --------------------------------------------------------------------------------

TIFF_DTYPES = st.sampled_from([np.uint8, np.uint16, np.int16, np.float32, np.float64])


@st.composite
def tiff_layouts(draw):
    """Pixels (pages, M, N, samples) and how tifffile is to write them."""
    dtype = np.dtype(draw(TIFF_DTYPES))
    photometric = draw(st.sampled_from(["minisblack", "rgb"]))
    n_colour = 3 if photometric == "rgb" else 1
    extras = draw(st.lists(st.sampled_from(["unspecified", "unassalpha", "assocalpha"]),
                           max_size=2))  # fmt: skip
    n_pages = draw(st.integers(1, 3))
    # tifffile writes a stack of pages of one row or column as one page (it
    # squeezes the length-1 axes): the file says something else than the array.
    h, w = draw(st.integers(2, 20)), draw(st.integers(2, 20))
    n_samples = n_colour + len(extras)
    elements = st.integers(0, 200) if dtype.kind in "iu" else st.floats(-1e3, 1e3, width=32)
    pixels = draw(hnp.arrays(dtype, (n_pages, h, w, n_samples), elements=elements))
    options = {
        "photometric": photometric,
        "planarconfig": draw(st.sampled_from(["contig", "separate"])) if n_samples > 1 else None,
        "extrasamples": extras or None,
        "compression": draw(st.sampled_from([None, "zlib"])),
    }
    if draw(st.booleans()):
        options["tile"] = (16, 16)
    return pixels, extras, n_colour, options


def _write_tiff(path, pixels, options):
    data = pixels if pixels.shape[0] > 1 else pixels[0]
    if data.shape[-1] == 1:
        data = data[..., 0]
    elif options["planarconfig"] == "separate":
        data = np.moveaxis(data, -1, -3)
    tifffile.imwrite(path, data, **{k: v for k, v in options.items() if v is not None})


def _expected(pixels, extras, n_colour, planes):
    alpha = [n_colour + i for i, kind in enumerate(extras) if kind != "unspecified"]
    if planes != "bands":
        pixels = pixels[planes : planes + 1]
    keep = [i for i in range(pixels.shape[-1]) if i not in alpha]
    bands = np.concatenate([page[..., keep] for page in pixels], axis=-1)
    if bands.shape[-1] == 1:
        bands = bands[..., 0]
    mask = None
    if alpha:
        hidden = (pixels[..., alpha[0]] == 0).any(axis=0)
        mask = hidden if hidden.any() else None
    return bands, mask


@given(layout=tiff_layouts(), choice=st.sampled_from([None, "bands", 0, -1]))
def test_tiff_is_read_as_its_tags_describe(layout, choice):
    pixels, extras, n_colour, options = layout
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.tif"
        _write_tiff(path, pixels, options)
        planes = pixels.shape[0] - 1 if choice == -1 else choice
        if pixels.shape[0] > 1 and planes is None:
            with pytest.raises(ValueError, match=r"stack of \d image planes.*planes="):
                read_image(path, planes=planes)
            return
        data, mask = read_image(path, planes=planes)
    expected, expected_mask = _expected(pixels, extras, n_colour, 0 if planes is None else planes)
    assert data.dtype == pixels.dtype
    np.testing.assert_array_equal(data, expected)
    if expected_mask is None:
        assert mask is None
    else:
        np.testing.assert_array_equal(mask, expected_mask)


# -- FITS --------------------------------------------------------------------------------

fits = pytest.importorskip("astropy.io.fits")

FITS_DTYPES = st.sampled_from([np.uint8, np.int16, np.int32, np.float32, np.float64])


@st.composite
def fits_layouts(draw):
    """An image in FITS order, how to scale it, and where and how to store it."""
    dtype = np.dtype(draw(FITS_DTYPES))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    depth = draw(st.sampled_from([None, 1, 2, 3]))
    shape = (h, w) if depth is None else (depth, h, w)
    degenerate = draw(st.integers(0, 2)) if depth is not None else 0  # e.g. Stokes axes
    elements = st.integers(-100, 100) if dtype.kind == "i" else (
        st.integers(0, 200) if dtype.kind == "u" else st.floats(-1e3, 1e3, width=32))  # fmt: skip
    data = draw(hnp.arrays(dtype, shape, elements=elements))
    scale = None
    if dtype.kind in "iu" and draw(st.booleans()):
        scale = (draw(st.sampled_from([0.5, 1.0, 2.0])), draw(st.sampled_from([0.0, -3.0])))
    container = draw(st.sampled_from(["primary", "extension", "gzip"]
                                     + (["tile"] if dtype.kind in "iu" and dtype.itemsize > 1
                                        and depth is None else [])))  # fmt: skip
    return data, degenerate, scale, container


@given(layout=fits_layouts())
def test_fits_is_read_as_its_header_describes(layout):
    data, degenerate, scale, container = layout
    stored = data.reshape((1,) * degenerate + data.shape)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("a.fits.gz" if container == "gzip" else "a.fits")
        if container == "tile":
            hdu = fits.CompImageHDU(stored)
        elif container == "extension":
            hdu = fits.ImageHDU(stored)
        else:
            hdu = fits.PrimaryHDU(stored)
        if scale is not None:
            hdu.header["BSCALE"], hdu.header["BZERO"] = scale
        hdus = [hdu] if container in ("primary", "gzip") else [fits.PrimaryHDU(), hdu]
        fits.HDUList(hdus).writeto(path)
        image, mask = read_image(path)
    expected = data.astype(np.float64)
    if scale is not None:
        expected = expected * scale[0] + scale[1]
    if expected.ndim == 3:
        expected = np.moveaxis(expected, 0, -1)
        if expected.shape[2] == 1:
            expected = expected[:, :, 0]
    assert mask is None
    assert image.dtype in (np.float32, np.float64)
    np.testing.assert_allclose(image, expected, rtol=1e-6, atol=0)
