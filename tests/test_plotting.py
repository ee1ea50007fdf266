"""The figures: overview, segmentation, ordered density and hierarchy."""

import matplotlib
import numpy as np
import pytest
from conftest import nested_points
from matplotlib.figure import Figure
from skimage.segmentation import find_boundaries
from sklearn.exceptions import NotFittedError

from skimgcluster import AstroLinkClusterer, DegenerateDataWarning, segment
from skimgcluster._plotting import (
    _block_reduce,
    _decimate,
    display_image,
    label_colormap,
    plot_hierarchy,
    plot_ordered_density,
    plot_overview,
    plot_segmentation,
)
from skimgcluster.datasets import make_field

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def rgb_case():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :80]
    image = rng.normal(20, 2, (64, 80, 3))
    for y0, x0, colour in [(20, 20, (1, 0.5, 0.2)), (45, 60, (0.2, 0.5, 1))]:
        blob = 150 * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / 12)
        image += blob[..., None] * np.array(colour)
    image = np.clip(image, 0, 255).astype(np.uint8)
    return image, segment(image, random_state=0)


def test_overview_rgb(rgb_case, tmp_path):
    image, result = rgb_case
    fig = plot_overview(image, result)
    assert isinstance(fig, Figure)
    axes = fig.axes
    assert len(axes) == 4
    assert axes[3].get_title() == f"{result.n_sources:,} sources"
    assert "samples" in axes[2].get_title()
    # Image orientation: row 0 at the top.
    assert axes[0].get_ylim() == (63.5, -0.5)
    fig.savefig(tmp_path / "overview.png")
    assert (tmp_path / "overview.png").stat().st_size > 1000


def test_overview_grayscale_float(tmp_path):
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:48, :48]
    image = rng.normal(0, 1, (48, 48)) + 30 * np.exp(-((yy - 24) ** 2 + (xx - 24) ** 2) / 10)
    result = segment(image, random_state=0)
    fig = plot_overview(image, result, max_points=100)
    assert len(fig.axes) == 4
    fig.savefig(tmp_path / "gray.png")


def test_display_image_scales_to_unit_range():
    data = np.array([[0.0, 1.0], [np.nan, 1000.0]])
    shown = display_image(data)
    assert shown.min() >= 0 and shown.max() <= 1 and not np.isnan(shown).any()
    np.testing.assert_allclose(display_image(np.array([[0, 255]], dtype=np.uint8)), [[0, 1]])


def test_label_colormap_background_is_black():
    cmap = label_colormap(5)
    assert cmap.N == 6
    np.testing.assert_array_equal(cmap(0)[:3], (0, 0, 0))


# ---------------------------------------------------------------------------
# plot_segmentation, plot_ordered_density, plot_hierarchy


@pytest.fixture(scope="module")
def field_case():
    """A small generated three-band field and its segmentation (4 sources)."""
    image, _, _ = make_field((96, 96), 6, random_state=0)
    return image, segment(image, random_state=0)


@pytest.fixture(scope="module")
def nested_clusterer():
    """A fitted clusterer with a two-level hierarchy: '1-1', '1-2', '1-2-1', '1-2-2'."""
    return AstroLinkClusterer(k_den=20, min_significance=3).fit(nested_points(0))


@pytest.fixture(scope="module")
def empty_result():
    with pytest.warns(DegenerateDataWarning):
        return segment(np.zeros((32, 32)), random_state=0)


def _layer(ax, label):
    [image] = [im for im in ax.images if im.get_label() == label]
    return np.asarray(image.get_array())


def _collection(ax, label):
    [collection] = [c for c in ax.collections if c.get_label() == label]
    return collection


def test_segmentation_boundaries_are_exactly_those_of_the_label_image(field_case, tmp_path):
    image, result = field_case
    fig = plot_segmentation(image, result, alpha=0.4)
    [ax] = fig.axes
    labels = result.label_image
    edge = _layer(ax, "boundaries")
    expected = find_boundaries(labels, mode="inner") & (labels > 0)
    assert expected.any()
    np.testing.assert_array_equal(edge[..., 3] > 0, expected)
    # Each boundary pixel in its source's colour, the colour of plot_overview.
    colours = np.asarray(label_colormap(labels.max()).colors)
    np.testing.assert_allclose(edge[expected, :3], colours[labels[expected]], atol=1e-6)
    fill = _layer(ax, "fill")
    np.testing.assert_allclose(fill[..., 3], np.where(labels > 0, 0.4, 0.0), atol=1e-6)
    assert ax.get_title().startswith(f"{result.n_sources:,} sources")
    assert ax.get_ylim() == (95.5, -0.5)
    fig.savefig(tmp_path / "segmentation.png")
    assert (tmp_path / "segmentation.png").stat().st_size > 1000


def test_segmentation_numbers_the_most_significant_sources(field_case):
    image, result = field_case
    [ax] = plot_segmentation(image, result, n_annotated=2).axes
    expected = np.argsort(-result.source_significance)[:2] + 1
    assert sorted(int(t.get_text()) for t in ax.texts) == sorted(expected.tolist())
    assert "most significant" in ax.get_title()
    [ax] = plot_segmentation(image, result, n_annotated=0).axes
    assert len(ax.texts) == 0


def test_segmentation_numbers_clusters_before_isolated_sources():
    # On this field an isolated source's S/N (8.4) exceeds every cluster's
    # significance in sigma (at most 7.0): the clusters are numbered first.
    from skimgcluster.datasets import make_field

    image, _, _ = make_field((128, 128), 25, random_state=5)
    result = segment(image, random_state=0)
    iso = result.isolated
    assert iso.any() and result.source_significance[iso].max() > np.nanmax(
        result.source_significance[~iso]
    )
    n_clusters = int(np.count_nonzero(~iso))
    [ax] = plot_segmentation(image, result, n_annotated=n_clusters).axes
    numbered = sorted(int(t.get_text()) for t in ax.texts)
    assert numbered == sorted((np.flatnonzero(~iso) + 1).tolist())
    # Given as plain significances, they rank as numbers.
    sig = result.source_significance
    [ax] = plot_segmentation(image, result.label_image, significance=sig, n_annotated=1).axes
    assert [int(t.get_text()) for t in ax.texts] == [int(np.nanargmax(sig)) + 1]


def test_segmentation_numbers_the_brightest_without_significances():
    image = np.zeros((40, 40))
    labels = np.zeros((40, 40), dtype=np.int32)
    labels[0:4, 2:6], labels[10:20, 10:20], labels[30:34, 30:34] = 1, 2, 3
    image[0:4, 2:6], image[10:20, 10:20], image[30:34, 30:34] = 5.0, 1.0, 9.0
    [ax] = plot_segmentation(image, labels, n_annotated=2).axes
    # Summed intensity: source 2 (100 px of 1) and source 3 (16 px of 9), not 1 (16 px of 5).
    assert sorted(t.get_text() for t in ax.texts) == ["2", "3"]
    [text] = [t for t in ax.texts if t.get_text() == "2"]
    assert text.xy == (14.5, 9.5)  # centred above the source's top row
    assert "brightest" in ax.get_title()
    [ax] = plot_segmentation(image, labels, n_annotated=3).axes
    [text] = [t for t in ax.texts if t.get_text() == "1"]
    assert text.xy == (3.5, 3.5)  # at the top edge: centred below the source


def test_segmentation_single_boundary_colour_and_no_fill(field_case):
    image, result = field_case
    [ax] = plot_segmentation(image, result.label_image, fill=False, boundary_color="red").axes
    assert [im.get_label() for im in ax.images][1:] == ["boundaries"]
    edge = _layer(ax, "boundaries")
    np.testing.assert_allclose(np.unique(edge[edge[..., 3] > 0, :3], axis=0), [[1, 0, 0]])


def test_segmentation_downsamples_large_images():
    labels = np.zeros((300, 200), dtype=np.int32)
    labels[100:160, 50:110] = 1
    labels[250, 150] = 2  # one pixel: smaller than a display block
    image = np.random.default_rng(0).normal(size=(300, 200))
    [ax] = plot_segmentation(image, labels, max_display_size=100).axes
    assert "1/3 resolution" in ax.get_title()
    fill = _layer(ax, "fill")
    assert fill.shape == (100, 67, 4)
    assert fill[250 // 3, 150 // 3, 3] > 0  # the one-pixel source stays visible
    assert ax.images[0].get_array().shape == (100, 67)
    assert ax.get_xlim() == (-0.5, 199.5) and ax.get_ylim() == (299.5, -0.5)


def test_block_reduce_pads_the_edges_by_repetition():
    a = np.arange(35).reshape(7, 5)
    np.testing.assert_array_equal(
        _block_reduce(a, 3, np.max, dtype=a.dtype), [[12, 14], [27, 29], [32, 34]]
    )
    rgb = np.repeat(a.astype(np.uint8)[..., None], 3, axis=2)
    means = _block_reduce(rgb, 3, np.mean, dtype=np.float32)
    assert means.shape == (3, 2, 3)
    np.testing.assert_allclose(means[:, :, 0], [[6, 26 / 3], [21, 71 / 3], [31, 101 / 3]])


def test_segmentation_of_an_empty_result(empty_result, tmp_path):
    fig = plot_segmentation(np.zeros((32, 32)), empty_result)
    [ax] = fig.axes
    assert ax.get_title() == "0 sources"
    assert len(ax.texts) == 0
    assert not _layer(ax, "boundaries")[..., 3].any()
    fig.savefig(tmp_path / "empty.png")


def test_plots_honour_ax(field_case):
    image, result = field_case
    for plot, args in [
        (plot_segmentation, (image, result)),
        (plot_ordered_density, (result,)),
        (plot_hierarchy, (result,)),
    ]:
        fig = Figure()
        left, right = fig.subplots(1, 2)
        assert plot(*args, ax=right) is fig
        drawn = right.images or right.collections
        assert drawn and not (left.images or left.collections or left.lines)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"label_image": np.zeros((5, 5), dtype=int)}, ValueError, r"shape of the image"),
        ({"label_image": np.zeros((8, 8))}, TypeError, "integers"),
        ({"label_image": -np.ones((8, 8), dtype=int)}, ValueError, "non-negative"),
        ({"alpha": 2}, ValueError, "alpha=2"),
        ({"n_annotated": -1}, ValueError, "n_annotated=-1"),
        ({"max_display_size": 0}, ValueError, "max_display_size=0"),
        ({"significance": [1.0]}, ValueError, "significance"),
        ({"ax": "left"}, TypeError, "ax must be"),
    ],
)
def test_segmentation_bad_input(kwargs, error, match):
    labels = np.zeros((8, 8), dtype=int)
    labels[2:4, 2:4], labels[5:7, 5:7] = 1, 2
    arguments = {"label_image": labels, **kwargs}
    with pytest.raises(error, match=match):
        plot_segmentation(np.zeros((8, 8)), **arguments)


def test_ordered_density_fills_one_span_per_cluster(nested_clusterer, tmp_path):
    clusterer = nested_clusterer
    assert list(clusterer.cluster_ids_) == ["1-1", "1-2", "1-2-1", "1-2-2"]
    fig = plot_ordered_density(clusterer)
    [ax] = fig.axes
    curve = clusterer.log_density_[clusterer.ordering_]
    fills = _collection(ax, "clusters")
    paths = fills.get_paths()
    assert len(paths) == clusterer.n_clusters_
    # Parents first: the knots are drawn over the galaxy.
    depth = np.array([cid.count("-") for cid in clusterer.cluster_ids_])
    order = np.argsort(depth, kind="stable")
    for path, j in zip(paths, order, strict=True):
        start, stop = clusterer.cluster_bounds_[j]
        x, y = path.vertices[:, 0], path.vertices[:, 1]
        assert (x.min(), x.max()) == (start, stop - 1)
        assert y.min() == 0.0
        assert y.max() == curve[start:stop].max()
    # Colours: a cluster that names label k has pixel value k + 1's colour.
    colours = np.asarray(label_colormap(clusterer.labels_.max() + 1).colors)
    faces = fills.get_facecolors()[:, :3]
    for face, j in zip(faces, order, strict=True):
        if clusterer.cluster_labels_[j] >= 0:
            np.testing.assert_allclose(face, colours[clusterer.cluster_labels_[j] + 1])
    # The depth bars show the nesting: one per cluster, deeper ones lower.
    bars = _collection(ax, "depth bars").get_segments()
    assert len(bars) == clusterer.n_clusters_
    rows = np.array([segment_[0, 1] for segment_ in bars])
    assert np.all(np.diff(rows) <= 0) and len(set(rows)) == 2
    # Few clusters: a legend of their ids.
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sorted(legend) == sorted(clusterer.cluster_ids_)
    [line] = ax.lines[:1]
    np.testing.assert_array_equal(line.get_ydata(), curve)
    fig.savefig(tmp_path / "ordered_density.png")
    assert (tmp_path / "ordered_density.png").stat().st_size > 1000


def test_ordered_density_decimates_long_curves(nested_clusterer):
    clusterer = nested_clusterer
    n = clusterer.ordering_.size
    [ax] = plot_ordered_density(clusterer, max_points=200).axes
    line = ax.lines[0]
    assert len(line.get_xdata()) <= 200
    assert f"{n:,} points" in ax.get_title() and "drawn through" in ax.get_title()
    curve = clusterer.log_density_[clusterer.ordering_]
    assert line.get_ydata().max() == curve.max() and line.get_ydata().min() == curve.min()
    # Every cluster keeps its peak even when the curve is decimated.
    depth = np.array([cid.count("-") for cid in clusterer.cluster_ids_])
    bounds = clusterer.cluster_bounds_[np.argsort(depth, kind="stable")]
    for path, (start, stop) in zip(_collection(ax, "clusters").get_paths(), bounds, strict=True):
        assert path.vertices[:, 1].max() == curve[start:stop].max()


def test_decimate_keeps_every_run_extreme():
    rng = np.random.default_rng(0)
    y = rng.normal(size=100_003)
    keep = _decimate(y, 1000)
    assert keep.size <= 1000 and keep[0] == 0 and keep[-1] == y.size - 1
    assert np.all(np.diff(keep) > 0)
    assert y.argmax() in keep and y.argmin() in keep
    np.testing.assert_array_equal(_decimate(y[:500], 1000), np.arange(500))


def test_hierarchy_draws_a_box_per_cluster(nested_clusterer, tmp_path):
    clusterer = nested_clusterer
    fig = plot_hierarchy(clusterer)
    ax, colourbar_ax = fig.axes
    boxes = _collection(ax, "clusters")
    paths = boxes.get_paths()
    assert len(paths) == clusterer.n_clusters_
    for path, (start, stop), cid in zip(
        paths, clusterer.cluster_bounds_, clusterer.cluster_ids_, strict=True
    ):
        x, y = path.vertices[:, 0], path.vertices[:, 1]
        assert (x.min(), x.max() - x.min()) == (start, stop - start)  # width = size
        assert round(y.mean()) == cid.count("-")  # row = depth
    np.testing.assert_array_equal(boxes.get_array(), clusterer.significances_)
    texts = {t.get_text() for t in ax.texts}
    assert set(clusterer.cluster_ids_) <= texts
    assert colourbar_ax.get_ylabel() == "Significance (sigma)"
    assert ax.get_ylim() == (2.5, -0.5)
    fig.savefig(tmp_path / "hierarchy.png")
    assert (tmp_path / "hierarchy.png").stat().st_size > 1000
    [ax, _] = plot_hierarchy(clusterer, max_annotated=3).axes
    assert not set(clusterer.cluster_ids_) & {t.get_text() for t in ax.texts}


def test_plots_take_a_segmentation(field_case):
    _, result = field_case
    [ax] = plot_ordered_density(result).axes
    assert len(_collection(ax, "clusters").get_paths()) == result.cluster_ids.size
    ax, _ = plot_hierarchy(result).axes
    assert len(_collection(ax, "clusters").get_paths()) == result.cluster_ids.size


@pytest.mark.parametrize("plot", [plot_ordered_density, plot_hierarchy])
def test_empty_result_gives_a_figure_that_says_so(plot, empty_result, tmp_path):
    fig = plot(empty_result)
    [ax] = fig.axes
    assert any("Empty segmentation" in t.get_text() for t in ax.texts)
    fig.savefig(tmp_path / "empty.png")


def test_clusterer_without_clusters():
    with pytest.warns(DegenerateDataWarning):
        clusterer = AstroLinkClusterer().fit(np.random.default_rng(0).uniform(size=(5, 2)))
    [ax] = plot_ordered_density(clusterer).axes
    assert "0 clusters" in ax.get_title()
    assert len(_collection(ax, "clusters").get_paths()) == 0
    [ax] = plot_hierarchy(clusterer).axes
    assert any("No cluster" in t.get_text() for t in ax.texts)


@pytest.mark.parametrize("plot", [plot_ordered_density, plot_hierarchy])
def test_unfitted_or_wrong_argument(plot):
    with pytest.raises(NotFittedError, match="clusterer_or_result must be a fitted"):
        plot(AstroLinkClusterer())
    with pytest.raises(TypeError, match="clusterer_or_result .* got ndarray"):
        plot(np.zeros((3, 2)))


def test_import_defers_matplotlib():
    # The figures load matplotlib on first use; segmenting does not need it.
    import subprocess
    import sys

    code = (
        "import sys, skimgcluster\n"
        "assert 'matplotlib' not in sys.modules, 'imported at import'\n"
        "assert 'plot_overview' in dir(skimgcluster)\n"
        "from skimgcluster import plot_overview\n"
        "assert plot_overview.__module__ == 'skimgcluster._plotting'\n"
        "assert 'matplotlib' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    import skimgcluster

    with pytest.raises(AttributeError, match="no attribute 'plot_nothing'"):
        skimgcluster.plot_nothing  # noqa: B018


# -- misuse gives clear errors (issue 13, row 12) ----------------------------------------


def test_plot_overview_checks_its_result():
    image, _, _ = make_field((64, 64), 4, random_state=0)
    result = segment(image, random_state=0)
    # Refused with a TypeError naming result, not an AttributeError on 'maps'.
    with pytest.raises(TypeError, match="result must be the Segmentation"):
        plot_overview(image, "x")
    # A segmentation of another image would be drawn over the wrong pixels.
    match = r"label image has shape \(64, 64\), the image \(10, 10\)"
    with pytest.raises(ValueError, match=match):
        plot_overview(np.zeros((10, 10)), result)
