"""Tiled segmentation: seams, large sources, background, determinism across schedulers."""

import numpy as np
import pytest
from conftest import gaussian_image

from skimgcluster import ImageSegmenter, LuminositySampler, TiledSegmentation, _tiling, segment
from skimgcluster.datasets import make_field
from skimgcluster.metrics import detection_scores

dask = pytest.importorskip("dask")

# AstroLink's prominence fit may not converge on a tile with few structures;
# the tiled run passes its warning on (naming the tile), as a whole image would.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# Small boxes keep the halo (3 boxes) and the tiles small, so tests run fast.
BOX = 16
TILE = 64
PARAMS = dict(background_box_size=BOX, random_state=0)


def _truth(shape, sources, level=3.0):
    """True label image: each Gaussian above ``level``, labels 1..n in order."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    truth = np.zeros(shape, dtype=np.int32)
    for k, (row, col, amp, sigma) in enumerate(sources, start=1):
        inside = amp * np.exp(-((yy - row) ** 2 + (xx - col) ** 2) / (2 * sigma**2)) > level
        truth[inside & (truth == 0)] = k
    return truth


def _labels_in(found, truth, k):
    """Labels found over the core of true source k, with their pixel counts."""
    values, counts = np.unique(found[truth == k], return_counts=True)
    return dict(zip(values[values > 0].tolist(), counts[values > 0].tolist(), strict=True))


# Sources centred on tile edges and corners of a 64-pixel grid, and one inside.
SEAM_SOURCES = [
    (64, 64, 40.0, 2.5),  # corner of four tiles
    (64, 100, 40.0, 2.0),  # horizontal edge
    (30, 128, 30.0, 2.5),  # vertical edge
    (128, 192, 50.0, 3.0),  # corner
    (191.5, 40, 40.0, 2.0),  # between two pixel rows, on an edge
    (160, 128, 30.0, 2.0),  # vertical edge
    (100, 160, 40.0, 2.5),  # inside a tile
]


@pytest.fixture(scope="module")
def seam_image():
    shape = (256, 256)
    return gaussian_image(shape, SEAM_SOURCES, seed=3), _truth(shape, SEAM_SOURCES)


@pytest.fixture(scope="module")
def seam_tiled(seam_image):
    """The seam image segmented in tiles of ``TILE`` pixels, shared: tests only read it."""
    image, _ = seam_image
    return segment(image, tile_size=TILE, **PARAMS)


def test_sources_across_edges_and_corners_found_once_whole(seam_image, seam_tiled):
    _, truth = seam_image
    result = seam_tiled
    assert isinstance(result, TiledSegmentation)
    assert result.n_tiles == 16
    for k in range(1, len(SEAM_SOURCES) + 1):
        found = _labels_in(result.label_image, truth, k)
        # One label covers the source (no split), and it is one source (no duplicate).
        assert len(found) == 1, (SEAM_SOURCES[k - 1], found)
        [label] = found
        pixels = result.label_image == label
        assert np.count_nonzero(pixels & (truth == k)) == np.count_nonzero(truth == k)
    assert result.n_sources == len(SEAM_SOURCES)
    assert not result.truncated.any()
    # Labels are consecutive and the catalog has one row per label.
    assert np.array_equal(np.unique(result.label_image), np.arange(result.n_sources + 1))
    catalog = result.catalog()
    assert len(catalog) == result.n_sources
    assert np.array_equal(catalog.area, np.bincount(result.label_image.ravel())[1:])


def test_tiled_matches_untiled_on_seam_image(seam_image, seam_tiled):
    image, truth = seam_image
    tiled = seam_tiled
    whole = segment(image, tile_size=None, **PARAMS)
    assert tiled.n_sources == whole.n_sources
    a = detection_scores(tiled.label_image, truth, iou_threshold=0.5)
    b = detection_scores(whole.label_image, truth, iou_threshold=0.5)
    assert a["f1"] == b["f1"] == 1.0


def test_owner_keeps_significance_and_hierarchy(seam_tiled):
    result = seam_tiled
    catalog = result.catalog()
    assert np.all(np.isfinite(result.source_significance))
    np.testing.assert_array_equal(catalog.significance, result.source_significance)
    # Cluster ids name their tile, and each source's peak lies in its tile's core.
    for tile, peak, cid, iso in zip(result.tile, result.peak, result.cluster_id,
                                    result.isolated, strict=True):  # fmt: skip
        assert np.all(peak // TILE == tile)
        if not iso:
            assert cid.startswith(f"r{tile[0]}c{tile[1]}:")


def test_background_of_a_core_is_that_of_the_whole_image():
    # Windows start and end on the box grid and hold 3 boxes of halo, so the
    # sampler's sky and noise maps in the core are the whole image's.
    rng = np.random.default_rng(5)
    shape = (320, 288)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = 5 + 0.01 * yy + 0.02 * xx + rng.normal(0, 1 + xx / 300, shape)
    sampler = LuminositySampler(background_box_size=BOX)
    whole = sampler.analyse(image)
    for cr, cc in [((64, 128), (128, 192)), ((0, 64), (256, 288)), ((256, 320), (64, 128))]:
        rows = _tiling._span(*cr, 3 * BOX, shape[0], BOX)
        cols = _tiling._span(*cc, 3 * BOX, shape[1], BOX)
        part = sampler.analyse(image[slice(*rows), slice(*cols)])
        core = (slice(cr[0] - rows[0], cr[1] - rows[0]), slice(cc[0] - cols[0], cc[1] - cols[0]))
        for name in ("background", "noise"):
            np.testing.assert_allclose(
                getattr(part, name)[core], getattr(whole, name)[slice(*cr), slice(*cc)],
                rtol=1e-6, err_msg=name,
            )  # fmt: skip


def _streak_image():
    """A long thin source (300 pixels end to end) centred near a tile corner.

    A round source larger than the halo (3 background boxes) would largely
    go into the background; a streak crosses many boxes but fills none.
    """
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:320, :320]
    streak = 30 * np.exp(-((yy - 128) ** 2 / (2 * 2.5**2) + (xx - 160) ** 2 / (2 * 60**2)))
    return rng.normal(0, 1, (320, 320)) + streak, (streak > 5).astype(np.int32)


def test_source_larger_than_halo_grows_the_halo():
    # The streak reaches far beyond the 48-pixel halo: its owner runs again
    # with a larger halo (96, then 192) and keeps it whole.
    image, truth = _streak_image()
    result = segment(image, tile_size=TILE, **PARAMS)
    found = _labels_in(result.label_image, truth, 1)
    assert len(found) == 1
    [label] = found
    assert found[label] == np.count_nonzero(truth)
    assert not result.truncated[label - 1]
    owner = tuple(result.tile[label - 1])
    assert result.halo[owner] == 4 * 3 * BOX
    assert np.count_nonzero(result.halo > 3 * BOX) == 1  # the other tiles kept theirs
    whole = segment(image, tile_size=None, **PARAMS)
    assert result.n_sources == whole.n_sources


def test_source_larger_than_the_largest_halo_is_flagged(monkeypatch):
    # Without room to grow, the owner keeps the streak cut at its window's
    # edge and flags it as truncated.
    monkeypatch.setattr(_tiling, "_max_halo", lambda tile_size, halo: halo)
    image, truth = _streak_image()
    result = segment(image, tile_size=TILE, **PARAMS)
    assert np.all(result.halo == 3 * BOX)
    found = _labels_in(result.label_image, truth, 1)
    [label] = found
    assert result.truncated[label - 1]
    assert found[label] < np.count_nonzero(truth)
    assert result.truncated.sum() == 1


def test_inputs_memmap_and_dask_array_give_the_same_labels(
    tmp_path, seam_image, seam_tiled, process_pool
):
    import dask.array as da

    image, _ = seam_image
    expected = seam_tiled.label_image
    path = tmp_path / "image.npy"
    np.save(path, image.astype(np.float64))
    mapped = np.load(path, mmap_mode="r")
    assert isinstance(mapped, np.memmap)
    with dask.config.set(scheduler="processes", pool=process_pool):
        got = segment(mapped, tile_size=TILE, **PARAMS).label_image
    np.testing.assert_array_equal(got, expected)
    lazy = da.from_array(image, chunks=(100, 100))
    np.testing.assert_array_equal(segment(lazy, tile_size=TILE, **PARAMS).label_image, expected)


def test_mask_is_cut_into_the_tiles(seam_image):
    image, truth = seam_image
    mask = np.zeros(image.shape, dtype=bool)
    mask[40:90, 40:90] = True  # hides the source on the corner of four tiles
    result = segment(image, mask=mask, tile_size=TILE, **PARAMS)
    assert not result.label_image[mask].any()
    assert result.n_sources == len(SEAM_SOURCES) - 1
    with pytest.raises(ValueError, match=r"mask must have shape \(256, 256\)"):
        segment(image, mask=mask[:10], tile_size=TILE, **PARAMS)


@pytest.fixture(scope="module")
def field():
    image, truth, _ = make_field((256, 256), 40, n_bands=2, random_state=2)
    return image, truth


@pytest.fixture(scope="module")
def threaded_labels(field):
    image, _ = field
    with dask.config.set(scheduler="threads"):
        return segment(image, tile_size=96, **PARAMS).label_image


@pytest.mark.parametrize("scheduler", ["sync", "processes"])
def test_same_labels_on_local_schedulers(field, threaded_labels, scheduler, process_pool):
    image, _ = field
    pool = {"pool": process_pool} if scheduler == "processes" else {}
    with dask.config.set(scheduler=scheduler, num_workers=2, **pool):
        labels = segment(image, tile_size=96, **PARAMS).label_image
    np.testing.assert_array_equal(labels, threaded_labels)


def test_tiled_and_untiled_score_alike(field, threaded_labels):
    image, truth = field
    whole = segment(image, tile_size=None, **PARAMS)
    f1_tiled = detection_scores(threaded_labels, truth)["f1"]
    f1_whole = detection_scores(whole.label_image, truth)["f1"]
    assert f1_whole > 0.7
    assert abs(f1_tiled - f1_whole) <= 0.1


def test_same_seed_same_labels_other_seed_other_points(field):
    image, _ = field
    a = segment(image, tile_size=96, background_box_size=BOX, random_state=7)
    b = segment(image, tile_size=96, background_box_size=BOX, random_state=7)
    np.testing.assert_array_equal(a.label_image, b.label_image)
    # Each tile draws from its own stream, keyed by its position.
    seeds = {_tiling._tile_seed(7, i, j) for i in range(3) for j in range(3)}
    assert len(seeds) == 9


def test_progress_counts_tiles(seam_image):
    image, _ = seam_image
    seen = []
    segment(image, tile_size=128, callback=lambda stage, detail: seen.append((stage, detail)),
            **PARAMS)  # fmt: skip
    assert seen[-1] == ("tiles", "4 of 4 tiles")
    assert all(stage == "tiles" for stage, _ in seen)


def test_small_images_are_not_tiled_by_default(seam_image):
    image, _ = seam_image
    assert type(segment(image, **PARAMS)).__name__ == "Segmentation"
    assert _tiling.resolve_tile_size("auto", (6000, 6000)) == _tiling.AUTO_TILE_SIZE
    assert _tiling.resolve_tile_size("auto", (4096, 4096)) is None
    # An image no larger than one tile takes the single-image path.
    assert type(segment(image, tile_size=256, **PARAMS)).__name__ == "Segmentation"


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (
            {"tile_size": 16},
            ValueError,
            r"'tile_size' .* must be an int in the range \[32, inf\), a str among \{'auto'\} "
            r"or None; got tile_size=16",
        ),
        ({"tile_size": "big"}, ValueError, "'tile_size' parameter .* got tile_size='big'"),
        ({"tile_size": 64.0}, TypeError, "'tile_size' .* got tile_size=64.0"),
        ({"tile_size": 64, "halo": -1}, ValueError, "'halo' parameter .* got halo=-1"),
        ({"tile_size": 64, "halo": 2.5}, TypeError, "'halo' parameter .* got halo=2.5"),
    ],
)
def test_bad_tile_parameters(seam_image, kwargs, error, match):
    image, _ = seam_image
    with pytest.raises(error, match=match):
        segment(image, **kwargs, **PARAMS)


def test_image_segmenter_tiles_and_clones():
    from sklearn.base import clone

    segmenter = ImageSegmenter(LuminositySampler(background_box_size=BOX, random_state=0),
                               tile_size=TILE, halo=10)  # fmt: skip
    assert clone(segmenter).get_params()["tile_size"] == TILE
    image = gaussian_image((160, 160), SEAM_SOURCES[:2], seed=0)
    [labels] = segmenter.fit([image]).predict([image])
    assert labels.shape == (160, 160)
    assert labels.max() == 2


# -- command line ------------------------------------------------------------------


@pytest.fixture
def field_tif(tmp_path):
    import tifffile

    image = gaussian_image((192, 192), SEAM_SOURCES[:4], seed=4).astype(np.float32)
    path = tmp_path / "field.tif"
    tifffile.imwrite(path, image)
    return path


def _cli_counts(out):
    import csv

    from skimgcluster._io import read_image

    labels, _ = read_image(out / "labels.png")
    with open(out / "sources.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return labels, rows


def test_cli_tile_size_and_workers(field_tif, tmp_path, capsys):
    from skimgcluster._cli import main

    out = tmp_path / "out"
    args = ["segment", str(field_tif), "-o", str(out), "--tile-size", "64", "--workers", "2"]
    assert main(args) == 0
    captured = capsys.readouterr()
    labels, rows = _cli_counts(out)
    assert labels.max() == len(rows) == 4
    assert "segmenting tiles: 9 of 9 tiles" in captured.err
    # The overview is drawn again, from a downsampled view of the tiled result.
    assert "not drawn" not in captured.err
    assert (out / "overview.png").exists()
    # The same labels without the cluster: tiles are seeded by position.
    assert main(args[:6] + ["-o", str(tmp_path / "again"), "-q"]) == 0
    np.testing.assert_array_equal(_cli_counts(tmp_path / "again")[0], labels)


def test_cli_workers_all_lost_is_an_error_not_a_hang(field_tif, tmp_path, capsys, monkeypatch):
    # A local cluster left without a worker: the tiles wait for one no longer
    # than _NO_WORKERS_TIMEOUT, then the run ends in a one-line error and
    # writes nothing (it used to wait forever).
    distributed = pytest.importorskip("distributed")
    from skimgcluster import _cli

    real = distributed.LocalCluster
    monkeypatch.setattr(distributed, "LocalCluster", lambda **kw: real(**{**kw, "n_workers": 0}))
    monkeypatch.setattr(_cli, "_NO_WORKERS_TIMEOUT", "1s")
    out = tmp_path / "out"
    args = ["segment", str(field_tif), "-o", str(out), "-q", "--tile-size", "64", "--workers", "2"]
    assert _cli.main(args) == 1
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("skimgcluster: error: the local Dask cluster lost its workers: ")
    assert last.endswith("waiting without any running workers.")
    assert not out.exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--tile-size", "0"], "expected an integer >= 1; got '0'"),
        (["--workers", "x"], "expected an integer >= 1; got 'x'"),
        (["--workers", "2", "--scheduler", "tcp://a:1"], "not allowed with argument"),
    ],
)
def test_cli_bad_tile_options(field_tif, tmp_path, capsys, extra, message):
    from skimgcluster._cli import main

    with pytest.raises(SystemExit) as info:
        main(["segment", str(field_tif), "-o", str(tmp_path / "o"), *extra])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_unreachable_scheduler(field_tif, tmp_path, capsys, monkeypatch):
    from skimgcluster import _cli

    # Nothing listens on port 9 (discard): every attempt is refused until the timeout.
    monkeypatch.setattr(_cli, "_CONNECT_TIMEOUT", "1s")
    args = ["segment", str(field_tif), "-o", str(tmp_path / "o"), "-q", "--tile-size", "96"]
    assert _cli.main([*args, "--scheduler", "tcp://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "skimgcluster: error: cannot reach the Dask scheduler at tcp://127.0.0.1:9"
    )
    assert not (tmp_path / "o").exists()


# -- on the module's Dask cluster (process_cluster): last, so that it idles the least --


def test_same_labels_on_a_distributed_cluster(field, threaded_labels, process_cluster):
    distributed = pytest.importorskip("distributed")
    image, _ = field
    with distributed.Client(process_cluster):
        labels = segment(image, tile_size=96, **PARAMS).label_image
    np.testing.assert_array_equal(labels, threaded_labels)


def test_cli_scheduler_address(field_tif, tmp_path, process_cluster):
    from skimgcluster._cli import main

    out = tmp_path / "out"
    args = ["segment", str(field_tif), "-o", str(out), "-q", "--tile-size", "96"]
    assert main([*args, "--scheduler", process_cluster.scheduler_address]) == 0
    labels, rows = _cli_counts(out)
    assert labels.max() == len(rows) == 4
