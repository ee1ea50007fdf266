"""Tiled label images stitched on disk and written a tile at a time; figures of tiled images."""

import contextlib

import numpy as np
import pytest
from conftest import gaussian_image

from skimgcluster import TiledSegmentation, _tiling, segment

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")
fits = pytest.importorskip("astropy.io.fits")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

BOX = 16
TILE = 64
PARAMS = dict(background_box_size=BOX, random_state=0)
# Sources on tile edges and corners (so that tiles overlap and stitching resolves them).
SOURCES = [
    (64, 64, 40.0, 2.5), (30, 128, 30.0, 2.5), (128, 150, 50.0, 3.0), (100, 40, 40.0, 2.0),
    (150, 64, 60.0, 6.0), (20, 20, 30.0, 2.0),
]  # fmt: skip


@contextlib.contextmanager
def _cluster(*, processes):
    """A LocalCluster of 2 single-thread workers and its client, closed after."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=processes, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster),
    ):
        yield


@pytest.fixture(scope="module")
def image():
    return gaussian_image((192, 200), SOURCES, seed=4).astype(np.float32)


@pytest.fixture(scope="module")
def in_memory(image):
    result = segment(image, tile_size=TILE, **PARAMS)
    assert not result.on_disk
    return result


@pytest.fixture
def on_disk(image, monkeypatch):
    monkeypatch.setattr(_tiling, "LABELS_ON_DISK_ABOVE", 0)
    result = segment(image, tile_size=TILE, **PARAMS)
    yield result
    result.close()


def test_stitching_on_disk_gives_the_labels_in_memory(in_memory, on_disk):
    assert isinstance(on_disk, TiledSegmentation) and on_disk.on_disk
    assert on_disk._label_image is None  # nothing read whole yet
    assert on_disk.n_sources == in_memory.n_sources > 0
    np.testing.assert_array_equal(on_disk.label_rows(10, 90), in_memory.label_image[10:90])
    np.testing.assert_array_equal(on_disk.label_image, in_memory.label_image)
    np.testing.assert_array_equal(on_disk.catalog().area, in_memory.catalog().area)


def test_tiles_spill_their_labels_and_the_folder_goes_with_close(image, monkeypatch):
    monkeypatch.setattr(_tiling, "LABELS_ON_DISK_ABOVE", 0)
    loaded = []
    load = np.load

    def counted(path, *args, **kwargs):
        loaded.append(str(path))
        return load(path, *args, **kwargs)

    monkeypatch.setattr(_tiling.np, "load", counted)
    result = segment(image, tile_size=TILE, **PARAMS)
    # The driver read each tile's labels from the tile's own file.
    assert any("tile-r" in p for p in loaded)
    folder = result._folder
    assert sorted(p.name for p in folder.iterdir()) == ["labels.npy"]  # tile files removed
    result.close()
    assert not folder.exists()
    with pytest.raises(ValueError, match="close"):
        result.label_image  # noqa: B018


@pytest.mark.parametrize("suffix", [".zarr", ".fits", ".tif", ".npy"])
@pytest.mark.parametrize("kept", ["memory", "disk"])
def test_write_labels_tile_by_tile(in_memory, on_disk, tmp_path, suffix, kept):
    from skimgcluster._io import read_image

    result = in_memory if kept == "memory" else on_disk
    path = tmp_path / f"labels{suffix}"
    result.write_labels(path)
    if suffix == ".zarr":
        z = zarr.open_array(str(path), mode="r")
        assert z.chunks == (TILE, TILE)  # one chunk per tile core: writes never share one
        written = z[:]
    elif suffix == ".fits":
        written = fits.getdata(path)
        assert fits.getheader(path)["BITPIX"] == 32
    elif suffix == ".tif":
        import tifffile

        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            assert page.compression == 1 and page.dtype == np.int32  # written in place
            written = tif.asarray()
    else:
        written = np.load(path)
    if suffix != ".npy":
        np.testing.assert_array_equal(np.asarray(read_image(path)[0]), in_memory.label_image)
    np.testing.assert_array_equal(written, in_memory.label_image)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no parts left


def test_write_labels_fits_keeps_the_wcs(in_memory, tmp_path):
    wcs = pytest.importorskip("astropy.wcs")
    w = wcs.WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [100.0, 96.0]
    w.wcs.cdelt = [-1e-4, 1e-4]
    in_memory.write_labels(tmp_path / "labels.fits", header=w)
    header = fits.getheader(tmp_path / "labels.fits")
    assert header["CTYPE1"] == "RA---TAN" and header["CRVAL2"] == 2.0
    in_memory.write_labels(tmp_path / "labels.zarr", header=w)
    assert zarr.open_array(str(tmp_path / "labels.zarr"), mode="r").attrs["wcs"]["CRVAL1"] == 150.0
    catalog = in_memory.catalog(wcs=w)
    assert "ra" in catalog.columns and np.isfinite(catalog.ra).all()


def test_write_labels_refuses_other_formats_and_keeps_the_old_file(in_memory, tmp_path):
    with pytest.raises(ValueError, match=r"\.zarr, \.fits, \.tif or \.npy"):
        in_memory.write_labels(tmp_path / "labels.bmp")
    path = tmp_path / "labels.npy"
    np.save(path, np.ones((2, 2), dtype=np.int32))

    def failing(*args, **kwargs):
        raise OSError("disk full")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_tiling, "_write_core", failing)
        with pytest.raises(OSError, match="disk full"):
            in_memory.write_labels(path)
    np.testing.assert_array_equal(np.load(path), np.ones((2, 2)))  # all or nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.npy"]


def test_spill_and_write_labels_on_a_distributed_cluster(image, in_memory, tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(_tiling, "LABELS_ON_DISK_ABOVE", 0)
    with _cluster(processes=True):
        # The worker processes write each tile's labels to the result's folder.
        on_disk = segment(image, tile_size=TILE, **PARAMS)
        assert on_disk.on_disk
        on_disk.write_labels(tmp_path / "labels.zarr")
        on_disk.write_labels(tmp_path / "labels.fits")
    on_disk.close()
    expected = in_memory.label_image
    np.testing.assert_array_equal(zarr.open_array(str(tmp_path / "labels.zarr"))[:], expected)
    np.testing.assert_array_equal(fits.getdata(tmp_path / "labels.fits"), expected)


def test_tasks_share_the_cores(monkeypatch):
    seen = []

    def fake(segmenter, image, mask, **kwargs):
        import numba

        seen.append(numba.get_num_threads())
        return {"index": (0, 0), "window": ((0, 1), (0, 1)), "labels": np.zeros((0, 0))}

    monkeypatch.setattr(_tiling, "_segment_tile", fake)
    monkeypatch.setattr(_tiling, "_usable_cpus", lambda: 4)
    _tiling._run_tile(None, None, None, slots=2)
    _tiling._run_tile(None, None, None, slots=1)
    _tiling._run_tile(None, None, None, slots=8)
    import numba

    assert seen == [
        min(2, numba.config.NUMBA_NUM_THREADS),
        min(4, numba.config.NUMBA_NUM_THREADS),
        1,
    ]
    with dask.config.set(scheduler="sync"):
        assert _tiling._task_slots(9) == 1
    with dask.config.set(scheduler="threads", num_workers=2):
        assert _tiling._task_slots(9) == 2
        assert _tiling._task_slots(1) == 1


def test_downsampled_view_reduces_blocks(image, on_disk, in_memory):
    from skimgcluster._plotting import downsampled_view

    shown, labels, factor = downsampled_view(image, on_disk, max_display_size=50)
    assert factor == 4  # 200 / 4 = 50
    assert labels.shape == shown.shape == (48, 50)
    blocks = in_memory.label_image.reshape(48, 4, 50, 4)
    np.testing.assert_array_equal(labels, blocks.max(axis=(1, 3)))
    np.testing.assert_allclose(shown, image.reshape(48, 4, 50, 4).mean(axis=(1, 3)), rtol=1e-5)
    # A dask array is read a band of its chunk rows at a time, with the same result.
    lazy = da.from_array(image, chunks=(40, 200))
    np.testing.assert_allclose(downsampled_view(lazy, on_disk, max_display_size=50)[0], shown)
    with pytest.raises(ValueError, match="shape"):
        downsampled_view(image[:100], on_disk)


@pytest.mark.parametrize("kind", ["overview", "segmentation"])
def test_plot_tiled(image, on_disk, kind):
    from skimgcluster._plotting import plot_tiled

    fig = plot_tiled(image, on_disk, kind=kind, max_display_size=100)
    titles = " ".join(ax.get_title() for ax in fig.axes)
    assert f"{on_disk.n_sources} sources" in titles
    assert "1/2 resolution" in titles
    with pytest.raises(ValueError, match="kind"):
        plot_tiled(image, on_disk, kind="hierarchy")


def test_cli_streams_labels_and_draws_tiled_figures(image, tmp_path, monkeypatch):
    from skimgcluster._cli import main

    monkeypatch.setattr(_tiling, "LABELS_ON_DISK_ABOVE", 0)
    expected = segment(image, tile_size=TILE, random_state=0).label_image
    path = tmp_path / "image.fits"
    fits.PrimaryHDU(image).writeto(path)
    out = tmp_path / "out"
    written = []
    write_labels = TiledSegmentation.write_labels

    def spy(self, target, **kwargs):
        written.append(self.on_disk)
        return write_labels(self, target, **kwargs)

    monkeypatch.setattr(TiledSegmentation, "write_labels", spy)
    args = ["segment", str(path), "-o", str(out), "--tile-size", str(TILE), "-q",
            "--seed", "0",
            "--plots", "overview,segmentation,hierarchy"]  # fmt: skip
    assert main(args) == 0
    assert written == [True]  # the labels went from disk to the file, a tile at a time
    np.testing.assert_array_equal(fits.getdata(out / "labels.fits"), expected)
    assert (out / "overview.png").exists() and (out / "segmentation.png").exists()
    assert not (out / "hierarchy.png").exists()
    assert main(args[:-2] + ["--labels-format", "zarr", "-o", str(tmp_path / "z")]) == 0
    np.testing.assert_array_equal(
        zarr.open_array(str(tmp_path / "z" / "labels.zarr"), mode="r")[:], expected
    )


def test_lazy_image_on_a_distributed_cluster_reads_windows_on_the_workers(image, in_memory):
    pytest.importorskip("distributed")
    lazy = da.from_array(image, chunks=(64, 64))
    with _cluster(processes=True):
        result = segment(lazy, tile_size=TILE, **PARAMS)
    np.testing.assert_array_equal(result.label_image, in_memory.label_image)


def test_halo_grows_on_a_distributed_cluster_as_tiles_come_back(monkeypatch):
    distributed = pytest.importorskip("distributed")
    from test_tiling import _streak_image

    image, _ = _streak_image()
    expected = segment(image, tile_size=TILE, **PARAMS)
    submitted = []
    compute = distributed.Client.compute

    def spy(self, task, *args, **kwargs):
        submitted.append(str(task.key))
        return compute(self, task, *args, **kwargs)

    monkeypatch.setattr(distributed.Client, "compute", spy)
    monkeypatch.setattr(_tiling, "LABELS_ON_DISK_ABOVE", 0)
    with _cluster(processes=False):
        result = segment(image, tile_size=TILE, **PARAMS)
    np.testing.assert_array_equal(result.halo, expected.halo)
    np.testing.assert_array_equal(result.label_image, expected.label_image)
    # The owner of the streak ran three times (halo 48, 96, 192), the others once.
    assert len(submitted) == expected.n_tiles + 2
    assert sum(key.endswith("-2") for key in submitted) == 1
    result.close()


def test_cli_zarr_input_gives_zarr_labels_by_default(image, tmp_path):
    from skimgcluster._cli import main

    z = zarr.open_array(str(tmp_path / "image.zarr"), mode="w", shape=image.shape,
                        chunks=(64, 64), dtype="f4")  # fmt: skip
    z[:] = image
    out = tmp_path / "out"
    args = ["segment", str(tmp_path / "image.zarr"), "-o", str(out), "-q", "--seed", "0",
            "--tile-size", str(TILE), "--plots", "none"]  # fmt: skip
    assert main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["labels.zarr", "sources.csv"]
    expected = segment(image, tile_size=TILE, random_state=0).label_image
    np.testing.assert_array_equal(zarr.open_array(str(out / "labels.zarr"), mode="r")[:], expected)
