"""Images larger than memory: FITS and Zarr read by sections, label images written to Zarr."""

import numpy as np
import pytest
from conftest import gaussian_image

from skimgcluster import read_fits, segment
from skimgcluster._fits import _FitsSections
from skimgcluster._io import read_image, write_label_image

dask = pytest.importorskip("dask")
zarr = pytest.importorskip("zarr")
fits = pytest.importorskip("astropy.io.fits")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

BOX = 16
TILE = 64
PARAMS = dict(background_box_size=BOX, random_state=0)
SOURCES = [(64, 64, 40.0, 2.5), (30, 128, 30.0, 2.5), (128, 150, 50.0, 3.0), (100, 40, 40.0, 2.0)]


@pytest.fixture(scope="module")
def image():
    return gaussian_image((192, 192), SOURCES, seed=4).astype(np.float32)


@pytest.fixture(scope="module")
def expected(image):
    return segment(image, tile_size=TILE, **PARAMS).label_image


def _count_reads(monkeypatch):
    reads = []
    get = _FitsSections.__getitem__

    def counted(self, key):
        out = get(self, key)
        reads.append(out.shape)
        return out

    monkeypatch.setattr(_FitsSections, "__getitem__", counted)
    return reads


def test_read_fits_chunks_reads_sections_only(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    stored = rng.normal(0, 100, (50, 60)).astype(np.int16)
    hdu = fits.PrimaryHDU(stored)
    hdu.header.update(BSCALE=0.5, BZERO=3.0, BLANK=int(stored[3, 4]))
    hdu.writeto(tmp_path / "scaled.fits")
    cube = rng.normal(size=(3, 50, 60)).astype(">f4")
    cube[1, 5, 6] = np.inf
    fits.PrimaryHDU(cube).writeto(tmp_path / "cube.fits")
    fits.CompImageHDU(rng.normal(size=(50, 60)).astype(np.float32)).writeto(tmp_path / "z.fits")
    reads = _count_reads(monkeypatch)
    for paths in ["scaled.fits", "cube.fits", ["scaled.fits", "cube.fits"], "z.fits"]:
        files = [tmp_path / p for p in ([paths] if isinstance(paths, str) else paths)]
        eager = read_fits(files if len(files) > 1 else files[0])
        lazy = read_fits(files if len(files) > 1 else files[0], chunks=16)
        assert reads == []  # nothing is read until computed
        assert isinstance(lazy.data, dask.array.Array)
        assert lazy.data.shape == eager.data.shape and lazy.data.dtype == eager.data.dtype
        assert lazy.mask is None and lazy.header["NAXIS1"] == 60
        # BLANK and infinite pixels are NaN in every band, as read_fits masks them.
        np.testing.assert_array_equal(lazy.data.compute(), eager.data)
        reads.clear()
        np.testing.assert_array_equal(lazy.data[20:30, 33:40].compute(), eager.data[20:30, 33:40])
        assert [r[:2] for r in reads] == [(10, 7)]  # one section of one chunk
        reads.clear()
    with pytest.raises(ValueError, match="chunks must be None, an int >= 1 or a pair"):
        read_fits(tmp_path / "cube.fits", chunks=0)


def test_tiled_segmentation_of_a_lazy_fits_on_processes(tmp_path, image, expected, process_pool):
    fits.PrimaryHDU(image).writeto(tmp_path / "image.fits")
    lazy = read_fits(tmp_path / "image.fits", chunks=48).data
    # Worker processes receive the file name and read their windows' sections.
    with dask.config.set(scheduler="processes", pool=process_pool):
        got = segment(lazy, tile_size=TILE, **PARAMS).label_image
    np.testing.assert_array_equal(got, expected)


def test_read_image_zarr_is_lazy_and_tiles_alike(tmp_path, image, expected):
    path = tmp_path / "image.zarr"
    z = zarr.open_array(str(path), mode="w", shape=image.shape, chunks=(50, 50), dtype="f4")
    z[:] = image
    lazy, mask = read_image(path)
    assert isinstance(lazy, dask.array.Array) and mask is None
    assert lazy.chunksize == (50, 50)
    assert read_image(path, chunks=64)[0].chunksize == (64, 64)
    np.testing.assert_array_equal(segment(lazy, tile_size=TILE, **PARAMS).label_image, expected)


def test_read_image_zarr_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such Zarr store"):
        read_image(tmp_path / "missing.zarr")
    zarr.open_group(str(tmp_path / "group.zarr"), mode="w")
    with pytest.raises(ValueError, match="cannot read .*group.zarr as a Zarr image array"):
        read_image(tmp_path / "group.zarr")
    zarr.open_array(str(tmp_path / "flat.zarr"), mode="w", shape=(5,), dtype="f4")
    with pytest.raises(ValueError, match=r"its Zarr array has shape \(5,\)"):
        read_image(tmp_path / "flat.zarr")
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(ValueError, match="chunks applies to FITS and Zarr only"):
        read_image(tmp_path / "a.png", chunks=8)


def test_write_label_zarr_round_trip_and_replace(tmp_path):
    from astropy.wcs import WCS

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 100, (1100, 70))
    path = tmp_path / "labels.zarr"
    write_label_image(path, labels)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    write_label_image(path, labels + 1, header=wcs)  # replaces the previous store
    z = zarr.open_array(str(path), mode="r")
    assert z.dtype == np.int32 and z.chunks == (1024, 70)
    np.testing.assert_array_equal(z[:], labels + 1)
    assert z.attrs["wcs"]["CTYPE1"] == "RA---TAN"
    # A dask label image is written chunk by chunk.
    write_label_image(tmp_path / "lazy.zarr", dask.array.from_array(labels, chunks=300))
    np.testing.assert_array_equal(read_image(tmp_path / "lazy.zarr")[0].compute(), labels)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.zarr", "lazy.zarr"]


def test_write_label_zarr_refuses_labels_beyond_int32(tmp_path):
    path = tmp_path / "labels.zarr"
    write_label_image(path, np.ones((4, 4), dtype=np.int64))
    for labels in (np.full((4, 4), 2**31, dtype=np.int64),
                   dask.array.full((4, 4), 2**31, dtype=np.int64, chunks=2)):  # fmt: skip
        with pytest.raises(ValueError, match="int32 range to be written as Zarr"):
            write_label_image(path, labels)
    # The previous store is kept whole, and nothing is left beside it.
    np.testing.assert_array_equal(zarr.open_array(str(path), mode="r")[:], 1)
    assert [p.name for p in tmp_path.iterdir()] == ["labels.zarr"]


def test_cli_fits_tiled_lazily_to_zarr(tmp_path, image, expected, monkeypatch, capsys):
    from skimgcluster import _cli

    fits.PrimaryHDU(image).writeto(tmp_path / "image.fits")
    reads = _count_reads(monkeypatch)
    out = tmp_path / "out"
    args = ["segment", str(tmp_path / "image.fits"), "-o", str(out), "-q", "--seed", "0",
            "--tile-size", str(TILE), "--labels-format", "zarr"]  # fmt: skip
    monkeypatch.setattr(_cli, "_READ_CHUNK", 48)
    assert _cli.main(args) == 0
    assert reads and max(r[0] * r[1] for r in reads) <= 48 * 48  # by sections only
    labels = zarr.open_array(str(out / "labels.zarr"), mode="r")[:]
    assert labels.max() == len(SOURCES)
    assert (out / "sources.csv").exists()
    # Again, over the previous outputs, from a Zarr copy of the image.
    z = zarr.open_array(str(tmp_path / "image.zarr"), mode="w", shape=image.shape,
                        chunks=(64, 64), dtype="f4")  # fmt: skip
    z[:] = image
    args[1] = str(tmp_path / "image.zarr")
    assert _cli.main([*args, "--overwrite"]) == 0
    again = zarr.open_array(str(out / "labels.zarr"), mode="r")[:]
    assert again.max() == len(SOURCES)
    # The overview of a tiled image is drawn from a downsampled view.
    assert sorted(p.name for p in out.iterdir()) == ["labels.zarr", "overview.png", "sources.csv"]
