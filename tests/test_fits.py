"""FITS images in (read_fits, read_image) and label images out (write_label_fits)."""

import sys
import warnings

import numpy as np
import pytest
from conftest import TWO_SOURCES, gaussian_image

fits = pytest.importorskip("astropy.io.fits")
from astropy.wcs import WCS  # noqa: E402

from skimgcluster import segment  # noqa: E402
from skimgcluster._fits import read_fits, write_label_fits  # noqa: E402
from skimgcluster._io import read_image, write_label_image  # noqa: E402


def celestial_header(shape, *, cube_depth=None):
    """A TAN header for an image of shape (M, N), optionally with a third (band) axis."""
    naxis = 2 if cube_depth is None else 3
    w = WCS(naxis=naxis)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"] + ([] if naxis == 2 else ["FREQ"])
    w.wcs.crval = [150.1, 2.2] + ([] if naxis == 2 else [1.4e9])
    w.wcs.cdelt = [-2.0e-4, 2.0e-4] + ([] if naxis == 2 else [1.0e6])
    w.wcs.crpix = [shape[1] / 2 + 0.5, shape[0] / 2 + 0.5] + ([] if naxis == 2 else [1.0])
    w.wcs.cunit = ["deg", "deg"] + ([] if naxis == 2 else ["Hz"])
    return w.to_header()


def assert_same_sky(wcs_a, wcs_b, shape):
    """Both WCS map a grid of pixels (and the corners) to the same sky positions."""
    yy, xx = np.mgrid[0 : shape[0] : 3, 0 : shape[1] : 3]
    a = wcs_a.pixel_to_world(xx.ravel(), yy.ravel())
    b = wcs_b.pixel_to_world(xx.ravel(), yy.ravel())
    np.testing.assert_allclose(a.ra.deg, b.ra.deg, rtol=0, atol=1e-10)
    np.testing.assert_allclose(a.dec.deg, b.dec.deg, rtol=0, atol=1e-10)


def test_2d_float_round_trip_with_wcs(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.normal(10, 2, (20, 30)).astype(np.float32)
    header = celestial_header(image.shape)
    fits.PrimaryHDU(image, header=header).writeto(tmp_path / "a.fits")
    out = read_fits(tmp_path / "a.fits")
    assert out.data.shape == (20, 30) and out.data.dtype == np.float32
    assert out.data.dtype.isnative
    np.testing.assert_array_equal(out.data, image)
    assert out.mask is None
    assert out.header["CTYPE1"] == "RA---TAN"
    assert out.wcs is not None and out.wcs.naxis == 2
    assert_same_sky(out.wcs, WCS(header), image.shape)


def test_float64_and_no_wcs(tmp_path):
    image = np.arange(12.0).reshape(3, 4)
    fits.PrimaryHDU(image).writeto(tmp_path / "a.fits")
    out = read_fits(str(tmp_path / "a.fits"))
    assert out.data.dtype == np.float64 and out.data.dtype.isnative
    np.testing.assert_array_equal(out.data, image)
    assert out.wcs is None


def test_bscale_bzero_and_blank(tmp_path):
    raw = np.arange(20, dtype=np.int16).reshape(4, 5) - 5
    hdu = fits.PrimaryHDU(raw)
    hdu.header["BSCALE"] = 0.5
    hdu.header["BZERO"] = 100.0
    hdu.header["BLANK"] = 7
    hdu.writeto(tmp_path / "a.fits")
    out = read_fits(tmp_path / "a.fits")
    expected = raw * 0.5 + 100.0
    blank = raw == 7
    assert out.mask is not None and out.mask.shape == (4, 5)
    np.testing.assert_array_equal(out.mask, blank)
    assert np.isnan(out.data[blank]).all()
    np.testing.assert_array_equal(out.data[~blank], expected[~blank])


def test_unsigned_16_bit_via_bzero(tmp_path):
    image = np.array([[0, 1, 40000], [65535, 32768, 5]], dtype=np.uint16)
    fits.PrimaryHDU(image).writeto(tmp_path / "a.fits")  # stored as int16 + BZERO=32768
    assert fits.getheader(tmp_path / "a.fits")["BZERO"] == 32768
    out = read_fits(tmp_path / "a.fits")
    assert out.data.dtype == np.float32 and out.mask is None
    np.testing.assert_array_equal(out.data, image)


def test_blank_ignored_when_absent_and_int32_is_float64(tmp_path):
    image = np.array([[2**30, -7], [0, 5]], dtype=np.int32)
    fits.PrimaryHDU(image).writeto(tmp_path / "a.fits")
    out = read_fits(tmp_path / "a.fits")
    assert out.data.dtype == np.float64 and out.mask is None
    np.testing.assert_array_equal(out.data, image)


def test_nan_and_inf_are_masked(tmp_path):
    image = np.ones((5, 6), dtype=np.float32)
    image[1, 2] = np.nan
    image[3, 4] = np.inf
    fits.PrimaryHDU(image).writeto(tmp_path / "a.fits")
    out = read_fits(tmp_path / "a.fits")
    expected = np.zeros((5, 6), dtype=bool)
    expected[1, 2] = expected[3, 4] = True
    np.testing.assert_array_equal(out.mask, expected)
    assert np.isnan(out.data[expected]).all()
    assert (out.data[~expected] == 1).all()


def test_cube_planes_become_bands_and_wcs_drops_band_axis(tmp_path):
    rng = np.random.default_rng(1)
    cube = rng.normal(0, 1, (3, 16, 24)).astype(np.float32)  # FITS order (C, M, N)
    cube[2, 5, 6] = np.nan
    header = celestial_header((16, 24), cube_depth=3)
    fits.PrimaryHDU(cube, header=header).writeto(tmp_path / "cube.fits")
    out = read_fits(tmp_path / "cube.fits")
    assert out.data.shape == (16, 24, 3)
    for c in range(3):
        np.testing.assert_array_equal(out.data[:, :, c][~out.mask], cube[c][~out.mask])
    assert out.mask.sum() == 1 and out.mask[5, 6]
    assert np.isnan(out.data[5, 6]).all()  # every band of a masked pixel
    assert out.wcs.naxis == 2
    assert_same_sky(out.wcs, WCS(header).celestial, (16, 24))


def test_degenerate_leading_axes_are_dropped(tmp_path):
    image = np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4)  # e.g. Stokes, frequency
    fits.PrimaryHDU(image).writeto(tmp_path / "a.fits")
    out = read_fits(tmp_path / "a.fits")
    assert out.data.shape == (3, 4)
    np.testing.assert_array_equal(out.data, image[0, 0])


def test_single_band_files_become_channels(tmp_path):
    rng = np.random.default_rng(2)
    bands = [rng.normal(c, 1, (10, 12)).astype(np.float32) for c in range(3)]
    bands[1][4, 4] = np.nan
    header = celestial_header((10, 12))
    paths = []
    for c, band in enumerate(bands):
        paths.append(tmp_path / f"band{c}.fits")
        fits.PrimaryHDU(band, header=header if c == 0 else None).writeto(paths[-1])
    out = read_fits(paths)
    assert out.data.shape == (10, 12, 3)
    for c in range(3):
        np.testing.assert_array_equal(out.data[:, :, c][~out.mask], bands[c][~out.mask])
    assert out.mask.sum() == 1 and out.mask[4, 4]
    assert out.wcs is not None  # the header and WCS of the first file
    # The order of paths is the order of the bands.
    swapped = read_fits([paths[2], paths[0]])
    np.testing.assert_array_equal(swapped.data[:, :, 0], bands[2])
    assert swapped.wcs is None


def test_cube_and_single_band_file_combine(tmp_path):
    fits.PrimaryHDU(np.zeros((2, 4, 5), dtype=np.float32)).writeto(tmp_path / "cube.fits")
    fits.PrimaryHDU(np.ones((4, 5), dtype=np.float32)).writeto(tmp_path / "one.fits")
    out = read_fits([tmp_path / "cube.fits", tmp_path / "one.fits"])
    assert out.data.shape == (4, 5, 3)
    assert (out.data[:, :, 2] == 1).all() and (out.data[:, :, :2] == 0).all()


def test_shape_mismatch_names_files_and_shapes(tmp_path):
    fits.PrimaryHDU(np.zeros((10, 12), dtype=np.float32)).writeto(tmp_path / "g.fits")
    fits.PrimaryHDU(np.zeros((10, 13), dtype=np.float32)).writeto(tmp_path / "r.fits")
    with pytest.raises(ValueError, match=r"g\.fits \(10, 12\).*r\.fits \(10, 13\)"):
        read_fits([tmp_path / "g.fits", tmp_path / "r.fits"])


def multi_extension_file(path):
    sci = np.full((6, 7), 1.0, dtype=np.float32)
    err = np.full((6, 7), 2.0, dtype=np.float32)
    hdul = fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(sci, name="SCI", header=celestial_header((6, 7))),
            fits.ImageHDU(err, name="ERR"),
            fits.BinTableHDU.from_columns([fits.Column(name="a", format="E", array=[1.0])]),
        ]
    )
    hdul.writeto(path)
    return sci, err


def test_hdu_default_index_and_name(tmp_path):
    sci, err = multi_extension_file(tmp_path / "m.fits")
    default = read_fits(tmp_path / "m.fits")  # the empty primary is skipped
    np.testing.assert_array_equal(default.data, sci)
    assert default.header["EXTNAME"] == "SCI" and default.wcs is not None
    np.testing.assert_array_equal(read_fits(tmp_path / "m.fits", hdu=2).data, err)
    np.testing.assert_array_equal(read_fits(tmp_path / "m.fits", hdu="err").data, err)
    np.testing.assert_array_equal(read_fits(tmp_path / "m.fits", hdu=-2).data, err)
    assert read_fits(tmp_path / "m.fits", hdu="ERR").wcs is None


def test_hdu_errors(tmp_path):
    multi_extension_file(tmp_path / "m.fits")
    with pytest.raises(ValueError, match=r"no HDU with EXTNAME 'NOPE'.*SCI"):
        read_fits(tmp_path / "m.fits", hdu="NOPE")
    with pytest.raises(ValueError, match=r"hdu=9 is out of range"):
        read_fits(tmp_path / "m.fits", hdu=9)
    with pytest.raises(ValueError, match=r"hdu=3 .* not a 2-D or 3-D image.*BinTableHDU"):
        read_fits(tmp_path / "m.fits", hdu=3)
    with pytest.raises(ValueError, match=r"hdu=0 .* not a 2-D or 3-D image"):
        read_fits(tmp_path / "m.fits", hdu=0)
    with pytest.raises(TypeError, match=r"hdu must be an int.*1\.5"):
        read_fits(tmp_path / "m.fits", hdu=1.5)
    with pytest.raises(TypeError, match=r"hdu must be an int"):
        read_fits(tmp_path / "m.fits", hdu=True)


def test_file_without_image(tmp_path):
    table = fits.BinTableHDU.from_columns([fits.Column(name="a", format="E", array=[1.0])])
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(tmp_path / "t.fits")
    with pytest.raises(ValueError, match=r"no 2-D or 3-D image HDU"):
        read_fits(tmp_path / "t.fits")
    fits.PrimaryHDU(np.zeros(5)).writeto(tmp_path / "v.fits")
    with pytest.raises(ValueError, match=r"no 2-D or 3-D image HDU"):
        read_fits(tmp_path / "v.fits")


def test_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such FITS file"):
        read_fits(tmp_path / "missing.fits")
    with pytest.raises(ValueError, match="it is a folder"):
        read_fits(tmp_path)
    (tmp_path / "junk.fits").write_bytes(b"not a FITS file at all" * 200)
    with pytest.raises(ValueError, match="cannot read .*junk.fits"):
        read_fits(tmp_path / "junk.fits")
    with pytest.raises(ValueError, match="at least one file"):
        read_fits([])
    with pytest.raises(TypeError, match="paths must be a path"):
        read_fits(3)
    with pytest.raises(TypeError, match="an item of type int"):
        read_fits([tmp_path / "a.fits", 3])


def test_malformed_wcs_warns_and_is_dropped(tmp_path):
    hdu = fits.PrimaryHDU(np.zeros((4, 4), dtype=np.float32))
    hdu.header["CTYPE1"] = "RA---TAN"
    hdu.header["CTYPE2"] = "RA---TAN"  # two longitudes
    hdu.writeto(tmp_path / "a.fits")
    with pytest.warns(UserWarning, match="ignoring the WCS of .*a.fits.*Inconsistent"):
        out = read_fits(tmp_path / "a.fits")
    assert out.wcs is None and out.data.shape == (4, 4)
    with pytest.raises(ValueError, match="WCS of header cannot be read"):
        write_label_fits(tmp_path / "l.fits", np.zeros((4, 4), dtype=int), header=out.header)


@pytest.mark.parametrize("name", ["a.fits", "a.FIT", "a.fts", "a.fits.gz"])
def test_read_image_dispatches_fits(tmp_path, name):
    image = np.arange(30, dtype=np.float32).reshape(5, 6)
    image[0, 0] = np.nan
    fits.PrimaryHDU(image).writeto(tmp_path / name)
    data, mask = read_image(tmp_path / name)
    assert data.shape == (5, 6) and mask[0, 0] and mask.sum() == 1
    np.testing.assert_array_equal(data[1:], image[1:])


def test_label_fits_carries_the_wcs(tmp_path):
    header = celestial_header((20, 30))
    labels = np.zeros((20, 30), dtype=np.int64)
    labels[3:6, 4:9] = 1
    labels[10:15, 20:25] = 70000  # beyond PNG's 16 bits
    write_label_fits(tmp_path / "labels.fits", labels, header=header)
    with fits.open(tmp_path / "labels.fits") as hdul:
        assert len(hdul) == 1 and hdul[0].header["BITPIX"] == 32
        np.testing.assert_array_equal(hdul[0].data, labels)
        written = WCS(hdul[0].header)
    assert written.wcs.compare(WCS(header).wcs, tolerance=1e-12)
    assert_same_sky(written, WCS(header), labels.shape)
    assert [p.name for p in tmp_path.iterdir()] == ["labels.fits"]  # no temporary left


def test_label_fits_from_cube_header_and_wcs_object(tmp_path):
    header = celestial_header((8, 9), cube_depth=4)
    labels = np.ones((8, 9), dtype=np.int32)
    write_label_fits(tmp_path / "a.fits", labels, header=header)
    written = WCS(fits.getheader(tmp_path / "a.fits"))
    assert written.naxis == 2 and "FREQ" not in fits.getheader(tmp_path / "a.fits").tostring()
    assert_same_sky(written, WCS(header).celestial, labels.shape)
    write_label_fits(tmp_path / "b.fits", labels, header=WCS(header))
    assert_same_sky(WCS(fits.getheader(tmp_path / "b.fits")), WCS(header).celestial, (8, 9))


def test_label_fits_without_header_has_no_wcs(tmp_path):
    write_label_fits(tmp_path / "a.fits", np.zeros((3, 4), dtype=np.uint8))
    header = fits.getheader(tmp_path / "a.fits")
    assert not WCS(header).has_celestial
    assert fits.getdata(tmp_path / "a.fits").dtype.kind == "i"


def test_label_fits_overwrite(tmp_path):
    path = tmp_path / "a.fits"
    write_label_fits(path, np.zeros((3, 4), dtype=np.int32))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_label_fits(path, np.ones((3, 4), dtype=np.int32))
    assert (fits.getdata(path) == 0).all()  # untouched
    write_label_fits(path, np.ones((3, 4), dtype=np.int32), overwrite=True)
    assert (fits.getdata(path) == 1).all()
    with pytest.raises(TypeError, match="overwrite must be True or False"):
        write_label_fits(path, np.ones((3, 4), dtype=np.int32), overwrite="yes")


def test_label_fits_bad_input(tmp_path):
    with pytest.raises(ValueError, match="2-D integer"):
        write_label_fits(tmp_path / "a.fits", np.zeros((3, 4)))
    with pytest.raises(ValueError, match="int32 range"):
        write_label_fits(tmp_path / "a.fits", np.array([[0, 2**40]], dtype=np.int64))
    with pytest.raises(TypeError, match="header must be"):
        write_label_fits(tmp_path / "a.fits", np.zeros((3, 4), dtype=int), header="RA---TAN")
    assert not list(tmp_path.iterdir())


def test_write_label_image_fits(tmp_path):
    header = celestial_header((6, 7))
    labels = np.arange(42, dtype=np.int32).reshape(6, 7)
    write_label_image(tmp_path / "l.fits", labels, header=header)
    np.testing.assert_array_equal(fits.getdata(tmp_path / "l.fits"), labels)
    assert_same_sky(WCS(fits.getheader(tmp_path / "l.fits")), WCS(header), (6, 7))
    write_label_image(tmp_path / "l.fits", labels + 1)  # replaces, as other formats do
    np.testing.assert_array_equal(fits.getdata(tmp_path / "l.fits"), labels + 1)


def test_segment_a_fits_image_and_write_labels(tmp_path):
    image = gaussian_image((64, 64), TWO_SOURCES, noise=1.0, sky=10.0, seed=1)
    image[0:4, 0:4] = np.nan
    header = celestial_header(image.shape)
    fits.PrimaryHDU(image.astype(np.float32), header=header).writeto(tmp_path / "in.fits")
    fits_image = read_fits(tmp_path / "in.fits")
    result = segment(fits_image.data, mask=fits_image.mask, random_state=0)
    assert result.n_sources == 2
    assert (result.label_image[0:4, 0:4] == 0).all()
    write_label_fits(tmp_path / "labels.fits", result.label_image, header=fits_image.header)
    back = read_fits(tmp_path / "labels.fits")
    np.testing.assert_array_equal(back.data, result.label_image)
    assert_same_sky(back.wcs, fits_image.wcs, image.shape)


def hide_astropy(monkeypatch):
    for name in [m for m in sys.modules if m == "astropy" or m.startswith("astropy.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "astropy", None)


def test_missing_astropy_says_how_to_install(tmp_path, monkeypatch):
    fits.PrimaryHDU(np.zeros((3, 4), dtype=np.float32)).writeto(tmp_path / "a.fits")
    hide_astropy(monkeypatch)
    message = r'pip install "skimgcluster\[astro\]"'
    with pytest.raises(ImportError, match=message):
        read_fits(tmp_path / "a.fits")
    with pytest.raises(ImportError, match=message):
        read_image(tmp_path / "a.fits")
    with pytest.raises(ImportError, match=message):
        write_label_fits(tmp_path / "b.fits", np.zeros((3, 4), dtype=np.int32))
    assert not (tmp_path / "b.fits").exists()
    # Other formats do not need astropy.
    write_label_image(tmp_path / "b.npy", np.zeros((3, 4), dtype=np.int32))


def test_fits_fixed_warnings_are_not_raised(tmp_path):
    # A DATE-OBS in an old format makes astropy "fix" the WCS with a FITSFixedWarning.
    header = celestial_header((4, 5))
    header["DATE-OBS"] = "12/03/98"
    header["MJD-OBS"] = 50884.0
    fits.PrimaryHDU(np.zeros((4, 5), dtype=np.float32), header=header).writeto(tmp_path / "a.fits")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = read_fits(tmp_path / "a.fits")
        write_label_fits(tmp_path / "l.fits", np.zeros((4, 5), dtype=np.int32), header=out.header)
    assert out.wcs is not None


def test_tile_compressed_with_scaling_and_blank(tmp_path):
    raw = np.arange(20, dtype=np.int16).reshape(4, 5)
    hdu = fits.CompImageHDU(raw)
    hdu.header["BSCALE"] = 2.0
    hdu.header["BZERO"] = 10.0
    hdu.header["BLANK"] = 3
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / "a.fits.fz")
    data, mask = read_image(tmp_path / "a.fits.fz")
    blank = raw == 3
    np.testing.assert_array_equal(mask, blank)
    np.testing.assert_array_equal(data[~blank], (raw * 2.0 + 10.0)[~blank])


# -- declared sizes are checked before decoding (issue 13, row 5) ----------------------


@pytest.mark.parametrize("kind", ["plain", "gzip", "tile-compressed", "cube", "two files"])
def test_declared_size_is_checked_before_decoding(tmp_path, monkeypatch, kind):
    from skimgcluster import InsufficientMemoryError, _fits, _validation

    image = np.zeros((300, 400), dtype=np.float32)
    if kind == "gzip":
        paths = [tmp_path / "a.fits.gz"]
        fits.PrimaryHDU(image).writeto(paths[0])
    elif kind == "tile-compressed":
        paths = [tmp_path / "a.fits.fz"]
        fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(image)]).writeto(paths[0])
    elif kind == "cube":
        paths = [tmp_path / "a.fits"]
        fits.PrimaryHDU(np.zeros((3, 300, 400), dtype=np.float32)).writeto(paths[0])
    else:
        paths = [tmp_path / "a.fits", tmp_path / "b.fits"][: 2 if kind == "two files" else 1]
        for path in paths:
            fits.PrimaryHDU(image).writeto(path)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded before the size was checked")

    monkeypatch.setattr(_fits, "_scaled", no_decoding)
    monkeypatch.setattr(_validation, "available_memory", lambda: 2**20)
    with pytest.raises(InsufficientMemoryError, match=r"a\.fits.*NAXISn \(400, 300.*BITPIX -32"):
        read_fits(paths if len(paths) > 1 else paths[0])
    if len(paths) == 1:
        with pytest.raises(InsufficientMemoryError, match="needs about"):
            read_image(paths[0])


def test_declared_size_within_memory_reads(tmp_path, monkeypatch):
    from skimgcluster import _validation

    image = np.arange(12, dtype=np.int16).reshape(3, 4)
    fits.PrimaryHDU(image).writeto(tmp_path / "a.fits.gz")
    monkeypatch.setattr(_validation, "available_memory", lambda: 2**20)
    np.testing.assert_array_equal(read_fits(tmp_path / "a.fits.gz").data, image)


def test_first_image_hdu_is_read_without_reading_the_rest(tmp_path, monkeypatch):
    # The listing of all HDUs (which reads past every data unit, all of a
    # .fits.gz) is only for error messages.
    from skimgcluster import _fits

    multi_extension_file(tmp_path / "m.fits.gz")

    def no_listing(hdul):
        raise AssertionError("listed every HDU")

    monkeypatch.setattr(_fits, "_hdu_listing", no_listing)
    assert read_fits(tmp_path / "m.fits.gz").header["EXTNAME"] == "SCI"
