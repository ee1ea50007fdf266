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
        distributed.Client(cluster) as client,
    ):
        yield client


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


def test_write_labels_png_whole_only_under_the_memory_guard(in_memory, on_disk, tmp_path,
                                                            monkeypatch):  # fmt: skip
    from skimgcluster import _validation
    from skimgcluster._io import read_image
    from skimgcluster.exceptions import InsufficientMemoryError

    in_memory.write_labels(tmp_path / "a.png")
    on_disk.write_labels(tmp_path / "b.png")
    assert on_disk._label_image is None  # read for the PNG, not kept
    for name in ("a.png", "b.png"):
        np.testing.assert_array_equal(read_image(tmp_path / name)[0], in_memory.label_image)
    # Labels on disk that do not fit in memory: refused, naming the formats to use.
    monkeypatch.setattr(_validation, "available_memory", lambda: 2**10)
    with pytest.raises(InsufficientMemoryError, match=r"\.zarr, \.fits or \.tif"):
        on_disk.write_labels(tmp_path / "c.png")
    on_disk.write_labels(tmp_path / "c.tif")  # the same labels, a tile at a time
    monkeypatch.setattr(on_disk, "n_sources", 70000)
    with pytest.raises(ValueError, match=r"0\.\.65535; this one has 70000 sources"):
        on_disk.write_labels(tmp_path / "d.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png", "c.tif"]


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


def test_driver_spills_the_labels_it_gathers(image, in_memory, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(_tiling, "LABELS_ON_DISK_ABOVE", 0)
    spilled = []
    spill = _tiling._spill

    def spy(result, folder):
        import os

        spilled.append(os.getpid())
        spill(result, folder)

    monkeypatch.setattr(_tiling, "_spill", spy)
    with _cluster(processes=False):  # workers in this process: the spy sees every spill
        on_disk = segment(image, tile_size=TILE, **PARAMS)
    import os

    # One spill per tile, by the driver (no task was given the folder).
    assert len(spilled) == on_disk.n_tiles and set(spilled) == {os.getpid()}
    np.testing.assert_array_equal(on_disk.label_image, in_memory.label_image)
    on_disk.close()


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


def test_cli_tiff_labels_of_a_tiled_image_never_whole_in_memory(image, tmp_path, monkeypatch,
                                                                 capsys):  # fmt: skip
    import tifffile

    from skimgcluster import exceptions
    from skimgcluster._cli import main

    monkeypatch.setattr(_tiling, "LABELS_ON_DISK_ABOVE", 0)
    expected = segment(image, tile_size=TILE, random_state=0).label_image
    path = tmp_path / "image.tif"
    tifffile.imwrite(path, image)
    whole = []
    monkeypatch.setattr(TiledSegmentation, "label_image", property(lambda self: whole.append(1)))
    args = ["segment", str(path), "-q", "--seed", "0", "--tile-size", str(TILE)]
    # Labels stitched on disk: labels.tif (not .png) by default, a tile at a time.
    assert main([*args, "-o", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "labels.tif", "overview.png", "sources.csv"
    ]  # fmt: skip
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out" / "labels.tif"), expected)
    assert whole == []
    # A PNG asked for, that would not fit in memory: refused, naming the formats to use.
    check_memory = _tiling.check_memory

    def no_room_for_png(n_bytes, *, what, advice):
        if "PNG" in what:
            raise exceptions.InsufficientMemoryError(f"{what} needs too much. {advice}")
        check_memory(n_bytes, what=what, advice=advice)

    monkeypatch.setattr(_tiling, "check_memory", no_room_for_png)
    out = tmp_path / "png"
    assert main([*args, "-o", str(out), "--labels-format", "png", "--plots", "none"]) == 1
    assert ".zarr, .fits or .tif" in capsys.readouterr().err
    assert not out.exists()


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


# -- on the module's Dask cluster (process_cluster): last, so that it idles the least --


def test_stitching_on_a_cluster_whose_workers_cannot_see_the_folder(
    image, in_memory, tmp_path, monkeypatch, process_cluster
):
    import os
    import tempfile

    import distributed

    if not os.path.isdir("/proc/self/cwd"):
        pytest.skip("needs /proc/self/cwd (Linux) to give the workers another view")
    monkeypatch.setattr(_tiling, "LABELS_ON_DISK_ABOVE", 0)
    driver, workers = tmp_path / "driver", tmp_path / "workers"
    driver.mkdir()
    workers.mkdir()
    with (
        distributed.Client(process_cluster) as client,
        pytest.MonkeyPatch.context() as mp,
    ):
        # The workers go back to their folder after, for the module's other tests.
        worker_cwds = client.run(os.getcwd)
        # /proc/self/cwd/... names a folder of the driver's working directory in
        # the driver and of another one in the workers: as on a remote cluster
        # without a shared file system, the workers cannot see the driver's
        # temporary folder, nor the files it writes.
        client.run(os.chdir, str(workers))
        try:
            mp.chdir(driver)
            mp.setattr(tempfile, "tempdir", "/proc/self/cwd")
            on_disk = segment(image, tile_size=TILE, **PARAMS)
            folder = on_disk._folder
            assert on_disk.on_disk and str(folder).startswith("/proc/self/cwd/")
            assert folder.is_dir() and not any(client.run(os.path.isdir, str(folder)).values())
            on_disk.write_labels("/proc/self/cwd/labels.zarr")
            on_disk.write_labels("/proc/self/cwd/labels.fits")
            on_disk.write_labels("/proc/self/cwd/labels.tif")
            labels = on_disk.label_image
            on_disk.close()  # while /proc/self/cwd is the driver's folder
        finally:
            for worker, cwd in worker_cwds.items():
                client.run(os.chdir, cwd, workers=[worker])
    expected = in_memory.label_image
    np.testing.assert_array_equal(labels, expected)
    np.testing.assert_array_equal(zarr.open_array(str(driver / "labels.zarr"))[:], expected)
    np.testing.assert_array_equal(fits.getdata(driver / "labels.fits"), expected)
    import tifffile

    np.testing.assert_array_equal(tifffile.imread(driver / "labels.tif"), expected)
    assert sorted(p.name for p in driver.iterdir()) == ["labels.fits", "labels.tif", "labels.zarr"]
    assert list(workers.iterdir()) == []


def test_lazy_image_on_a_distributed_cluster_reads_windows_on_the_workers(
    image, in_memory, process_cluster
):
    import distributed

    lazy = da.from_array(image, chunks=(64, 64))
    with distributed.Client(process_cluster):
        result = segment(lazy, tile_size=TILE, **PARAMS)
    np.testing.assert_array_equal(result.label_image, in_memory.label_image)
