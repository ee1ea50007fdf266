"""Tests of segment and of the same chain as a scikit-learn Pipeline."""

import os

import numpy as np
import pytest
from conftest import THREE_SOURCES, TWO_SOURCES, gaussian_image
from sklearn.base import clone
from sklearn.pipeline import make_pipeline

from skimgcluster import (
    AstroLinkClusterer,
    DegenerateDataWarning,
    LuminositySampler,
    Segmentation,
    labels_to_image,
    segment,
)
from skimgcluster._segment import DEFAULT_CLUSTERER, _edge_ratio


def _labels_at_centres(label_image, sources):
    return [int(label_image[row, col]) for row, col, _, _ in sources]


# -- segment ---------------------------------------------------------------------------


def test_finds_three_separated_sources(three_source_image):
    result = segment(three_source_image, random_state=0)
    assert isinstance(result, Segmentation)
    assert result.n_sources == 3
    image = result.label_image
    assert image.shape == (96, 96) and image.dtype == np.int32
    at_centres = _labels_at_centres(image, THREE_SOURCES)
    # Every true centre lies in a labelled region, each in its own.
    assert all(v > 0 for v in at_centres)
    assert len(set(at_centres)) == 3
    np.testing.assert_array_equal(np.unique(image), [0, 1, 2, 3])
    # Most of the image is background.
    assert np.mean(image == 0) > 0.8


def test_finds_two_sources(two_source_image):
    result = segment(two_source_image, random_state=0)
    assert result.n_sources == 2
    at_centres = _labels_at_centres(result.label_image, TWO_SOURCES)
    assert sorted(at_centres) == [1, 2]


def test_finds_sources_in_a_colour_image(three_source_image):
    rgb = np.stack([three_source_image, 0.5 * three_source_image, 0.2 * three_source_image], -1)
    result = segment(rgb.astype(np.float32), random_state=0)
    assert result.points.shape[1] == 5
    assert result.n_sources == 3
    assert len(set(_labels_at_centres(result.label_image, THREE_SOURCES))) == 3


def test_finds_sources_in_a_uint8_image(three_source_image):
    image = np.clip(np.round(three_source_image * 4), 0, 255).astype(np.uint8)
    result = segment(image, random_state=0)
    assert result.n_sources == 3
    assert len(set(_labels_at_centres(result.label_image, THREE_SOURCES))) == 3


def test_result_attributes_are_consistent(three_source_image):
    result = segment(three_source_image, random_state=0)
    n = result.points.shape[0]
    assert result.labels.shape == (n,)
    np.testing.assert_array_equal(result.labels, result.clusterer.labels_)
    n_clusters = result.cluster_ids.shape[0]
    for name in ("significances", "parents", "cluster_labels"):
        assert getattr(result, name).shape == (n_clusters,), name
    n_labels = result.labels.max() + 1
    assert result.source_significance.shape == (n_labels,)
    assert np.all(result.source_significance >= result.clusterer.min_significance_)
    # Pixel value k + 1 is label k; sources cover only the footprint.
    assert result.label_image.max() <= n_labels
    assert not np.any((result.label_image > 0) & ~result.maps.footprint)
    assert "n_sources=3" in repr(result)


def test_segment_is_the_chain_by_hand(three_source_image):
    result = segment(three_source_image, random_state=0, k_den=12, min_significance=3.0)
    sampler = LuminositySampler(random_state=0)
    points = sampler.fit_transform(three_source_image)
    maps = sampler.analyse(three_source_image)
    clusterer = AstroLinkClusterer(**{**DEFAULT_CLUSTERER, "k_den": 12, "min_significance": 3.0})
    clusterer.fit(points)
    expected = labels_to_image(clusterer.labels_, points, (96, 96), footprint=maps.footprint)
    expected[~maps.analysis_footprint] = 0  # segments end at the analysis isophote
    np.testing.assert_array_equal(result.points, points)
    np.testing.assert_array_equal(result.labels, clusterer.labels_)
    np.testing.assert_array_equal(result.label_image, expected)


def test_image_defaults_of_the_clusterer(two_source_image):
    result = segment(two_source_image, random_state=0)
    params = result.clusterer.get_params()
    for key, value in DEFAULT_CLUSTERER.items():
        assert params[key] == value


def test_keyword_routing(three_source_image):
    result = segment(
        three_source_image,
        random_state=0,
        n_samples=900,
        detection_threshold=5.0,
        jitter="uniform",
        k_den=12,
        min_significance=4.0,
        label_level="top",
    )
    sampler, clusterer = result.sampler, result.clusterer
    assert sampler.n_samples == 900
    assert sampler.detection_threshold == 5.0
    assert sampler.jitter == "uniform"
    assert sampler.random_state == 0
    assert clusterer.k_den == 12 and clusterer.k_den_ == 12
    assert clusterer.min_significance == 4.0
    assert clusterer.label_level == "top"
    assert result.points.shape == (900, 2)


def test_unknown_keyword_raises_type_error(two_source_image):
    with pytest.raises(TypeError, match="n_sample"):
        segment(two_source_image, n_sample=100)
    with pytest.raises(TypeError, match="'threshold'"):
        segment(two_source_image, threshold=3)


def test_invalid_parameter_value_raises(two_source_image):
    with pytest.raises(ValueError, match="k_den"):
        segment(two_source_image, k_den=1)


def test_same_random_state_same_label_image(three_source_image):
    a = segment(three_source_image, random_state=5)
    b = segment(three_source_image, random_state=5)
    np.testing.assert_array_equal(a.label_image, b.label_image)
    np.testing.assert_array_equal(a.points, b.points)
    c = segment(three_source_image, random_state=6)
    assert not np.array_equal(a.points, c.points)
    assert c.n_sources == a.n_sources


def test_mask_hides_a_source(three_source_image):
    row, col = THREE_SOURCES[0][:2]
    mask = np.zeros((96, 96), dtype=bool)
    mask[row - 12 : row + 13, col - 12 : col + 13] = True
    result = segment(three_source_image, mask=mask, random_state=0)
    assert result.n_sources == 2
    assert not np.any(result.label_image[mask])
    assert all(v > 0 for v in _labels_at_centres(result.label_image, THREE_SOURCES[1:]))


def test_nan_pixels_hide_a_source(three_source_image):
    row, col = THREE_SOURCES[1][:2]
    image = three_source_image.copy()
    image[row - 12 : row + 13, col - 12 : col + 13] = np.nan
    result = segment(image, random_state=0)
    assert result.n_sources == 2
    assert result.label_image[row, col] == 0


def test_nothing_above_threshold_gives_empty_result():
    image = np.random.default_rng(0).normal(0.0, 1.0, (40, 40))
    with pytest.warns(DegenerateDataWarning):
        result = segment(image, random_state=0, detection_threshold=50.0)
    assert result.n_sources == 0
    np.testing.assert_array_equal(result.label_image, 0)
    assert result.label_image.dtype == np.int32
    assert result.points.shape == (0, 2)
    assert result.labels.shape == (0,)
    assert result.cluster_ids.shape == (0,)
    assert result.source_significance.shape == (0,)


def test_segment_leaves_os_environ_unchanged(two_source_image):
    before = dict(os.environ)
    segment(two_source_image, random_state=0, n_jobs=-1)
    assert dict(os.environ) == before


def test_segment_does_not_modify_the_image(three_source_image):
    image = three_source_image.copy()
    mask = np.zeros(image.shape, dtype=bool)
    mask[:5] = True
    segment(image, mask=mask, random_state=0)
    np.testing.assert_array_equal(image, three_source_image)


# -- the same chain as a Pipeline ------------------------------------------------------

SAMPLER_PARAMS = {"n_samples": 2000, "random_state": 0}
CLUSTERER_PARAMS = {"k_den": 15, "min_significance": 3.0}


def _pipeline():
    return make_pipeline(
        LuminositySampler(**SAMPLER_PARAMS), AstroLinkClusterer(**CLUSTERER_PARAMS)
    )


def _by_hand(image, sampler_params=SAMPLER_PARAMS, clusterer_params=CLUSTERER_PARAMS):
    points = LuminositySampler(**sampler_params).fit_transform(image)
    clusterer = AstroLinkClusterer(**clusterer_params).fit(points)
    return points, clusterer


def test_pipeline_fit_matches_steps_by_hand(three_source_image):
    pipe = _pipeline().fit(three_source_image)
    points, clusterer = _by_hand(three_source_image)
    np.testing.assert_array_equal(pipe[-1].labels_, clusterer.labels_)
    np.testing.assert_array_equal(pipe[-1].cluster_ids_, clusterer.cluster_ids_)
    assert pipe[-1].n_clusters_ == 3
    assert pipe[0].image_shape_ == (96, 96)


def test_pipeline_fit_predict(three_source_image):
    labels = _pipeline().fit_predict(three_source_image)
    _, clusterer = _by_hand(three_source_image)
    np.testing.assert_array_equal(labels, clusterer.labels_)
    assert labels.shape == (2000,)


def test_pipeline_predict_on_the_fitted_image_returns_labels(three_source_image):
    pipe = _pipeline().fit(three_source_image)
    np.testing.assert_array_equal(pipe.predict(three_source_image), pipe[-1].labels_)


def test_fitted_pipeline_to_label_image(three_source_image):
    # The documented path: an int random_state gives the same points at
    # every transform, so the clusterer's labels_ belong to these points.
    pipe = _pipeline().fit(three_source_image)
    points = pipe[0].transform(three_source_image)
    label_image = labels_to_image(pipe[-1].labels_, points, three_source_image.shape[:2])
    hand_points, clusterer = _by_hand(three_source_image)
    np.testing.assert_array_equal(points, hand_points)
    expected = labels_to_image(clusterer.labels_, hand_points, (96, 96))
    np.testing.assert_array_equal(label_image, expected)
    at_centres = _labels_at_centres(label_image, THREE_SOURCES)
    assert sorted(at_centres) == [1, 2, 3]


def test_pipeline_get_and_set_params(three_source_image):
    pipe = _pipeline()
    params = pipe.get_params()
    assert params["luminositysampler__n_samples"] == 2000
    assert params["luminositysampler__random_state"] == 0
    assert params["astrolinkclusterer__k_den"] == 15
    assert params["astrolinkclusterer__min_significance"] == 3.0
    pipe.set_params(luminositysampler__n_samples=1200, astrolinkclusterer__k_den=12)
    assert pipe[0].n_samples == 1200 and pipe[-1].k_den == 12
    labels = pipe.fit_predict(three_source_image)
    assert labels.shape == (1200,)
    assert pipe[-1].k_den_ == 12
    _, clusterer = _by_hand(
        three_source_image,
        {**SAMPLER_PARAMS, "n_samples": 1200},
        {**CLUSTERER_PARAMS, "k_den": 12},
    )
    np.testing.assert_array_equal(labels, clusterer.labels_)


def test_pipeline_clone(three_source_image):
    pipe = _pipeline().fit(three_source_image)
    twin = clone(pipe)
    assert twin.get_params()["luminositysampler__n_samples"] == 2000
    assert not hasattr(twin[-1], "labels_")
    assert twin[0] is not pipe[0] and twin[-1] is not pipe[-1]
    np.testing.assert_array_equal(twin.fit_predict(three_source_image), pipe[-1].labels_)


# -- isolated sources ---------------------------------------------------------------------


@pytest.mark.parametrize(("amplitude", "sigma"), [(20.0, 2.0), (60.0, 4.0), (200.0, 2.0)])
def test_a_source_alone_in_its_image_is_found(amplitude, sigma):
    """A cut-out of one source: AstroLink has nothing to judge it against,
    so it comes back as an isolated source with its signal-to-noise ratio."""
    from conftest import gaussian_image

    image = gaussian_image((64, 64), ((30, 33, amplitude, sigma),), seed=5)
    result = segment(image, random_state=0)
    assert result.n_sources >= 1
    assert result.label_image[30, 33] > 0
    k = result.label_image[30, 33] - 1
    if result.isolated[k]:
        # S/N of the footprint: sum of the luminosity over sqrt(sum of noise**2).
        pixels = result.label_image == k + 1
        lum = result.maps.luminosity[pixels].astype(float)
        noise = result.maps.noise[pixels].astype(float)
        expected = lum.sum() / np.sqrt((noise**2).sum())
        np.testing.assert_allclose(result.source_significance[k], expected, rtol=1e-6)
        assert k not in result.cluster_labels
    without = segment(image, random_state=0, isolated_snr=None)
    assert not without.isolated.any()
    assert without.n_sources <= result.n_sources


def test_isolated_sources_keep_points_and_pixels_consistent():
    from skimgcluster.datasets import make_field

    image, _, _ = make_field((128, 128), 12, random_state=3)
    result = segment(image, random_state=0)
    assert result.isolated.any()
    n_labels = result.source_significance.size
    assert result.isolated.shape == (n_labels,)
    assert result.n_sources == n_labels == result.labels.max() + 1
    # The points' labels map back to the very same label image.
    again = labels_to_image(
        result.labels, result.points, image.shape[:2], footprint=result.maps.footprint
    )
    again[~result.maps.analysis_footprint] = 0
    np.testing.assert_array_equal(again, result.label_image)
    # Isolated sources are numbered after the clusters' labels, have at least
    # 5 pixels, S/N >= 5, and are not touching any cluster's pixels.
    first = int(result.clusterer.labels_.max()) + 1
    assert np.flatnonzero(result.isolated).min() == first
    for k in np.flatnonzero(result.isolated):
        pixels = result.label_image == k + 1
        assert pixels.sum() >= 5 and result.source_significance[k] >= 5.0
        assert not np.isin(result.clusterer.labels_[result.labels == k], np.arange(first)).any()
    higher = segment(image, random_state=0, isolated_snr=1e6)
    assert not higher.isolated.any()
    assert higher.n_sources == result.n_sources - result.isolated.sum()


@pytest.mark.parametrize(
    ("value", "error"), [("5", TypeError), (np.nan, ValueError), (np.inf, ValueError)]
)
def test_isolated_snr_is_checked(value, error):
    from conftest import gaussian_image

    image = gaussian_image((32, 32), ((16, 16, 50.0, 2.0),))
    with pytest.raises(error, match=r"'isolated_snr' .* must be a finite number or None; got"):
        segment(image, random_state=0, isolated_snr=value)


# -- misuse gives clear errors (issue 13, rows 1 and 12) ---------------------------------


def test_segmenter_refuses_steps_of_the_wrong_kind(two_source_image):
    from skimgcluster import ImageSegmenter

    # Refused up front: a sampler in the clusterer's place would otherwise fail
    # deep inside with an AttributeError on 'labels_'.
    segmenter = ImageSegmenter(LuminositySampler(), LuminositySampler())
    with pytest.raises(TypeError, match="'clusterer' .* must be an instance of AstroLinkClusterer"):
        segmenter.fit([two_source_image])
    with pytest.raises(TypeError, match="'clusterer' .* must be an instance of AstroLinkClusterer"):
        segmenter.segment_image(two_source_image)
    with pytest.raises(TypeError, match="'sampler' .* must be an instance of LuminositySampler"):
        ImageSegmenter(AstroLinkClusterer(), None).segment_image(two_source_image)


def test_callback_must_be_callable(two_source_image):
    # Checked with the parameters, before any work on the image.
    with pytest.raises(TypeError, match="'callback' .* must be a callable or None; got callback=5"):
        segment(two_source_image, callback=5)


def test_huge_smoothing_segments_without_a_huge_kernel(two_source_image, monkeypatch):
    # Issue 13, row 1: segment(im, smoothing=1e9) raised a raw _ArrayMemoryError
    # for a 60 GiB kernel.
    from skimgcluster import _validation

    monkeypatch.setattr(_validation, "available_memory", lambda: 64 * 2**20)
    result = segment(two_source_image, smoothing=1e9, random_state=0)
    assert result.label_image.shape == two_source_image.shape


def test_segment_signature_lists_every_parameter_with_its_default():
    # segment() spells out the parameters of ImageSegmenter and its two steps,
    # so that help(segment) shows them; they must not drift apart.
    import inspect

    from skimgcluster import ImageSegmenter

    signature = inspect.signature(segment)
    assert all(
        p.kind is inspect.Parameter.KEYWORD_ONLY for p in list(signature.parameters.values())[1:]
    )
    defaults = {name: p.default for name, p in signature.parameters.items()}
    expected = {
        **LuminositySampler().get_params(),
        **AstroLinkClusterer(**DEFAULT_CLUSTERER).get_params(),
        **ImageSegmenter().get_params(deep=False),
        "mask": None,
        "callback": None,
    }
    del expected["sampler"], expected["clusterer"]
    assert set(defaults) - {"image"} == set(expected)
    for name, value in expected.items():
        assert defaults[name] == value, name
    documented = inspect.getdoc(segment)
    for name in expected:
        assert f"\n{name} : " in documented, name


def test_segment_takes_colour_scale_with_a_future_warning(two_source_image):
    new = segment(two_source_image, random_state=0, color_scale=0.0)
    with pytest.warns(FutureWarning, match="renamed color_scale"):
        old = segment(two_source_image, random_state=0, colour_scale=0.0)
    np.testing.assert_array_equal(old.label_image, new.label_image)
    assert old.sampler._color_scale == 0.0


# -- max_edge_ratio: footprints whose edge the noise decides --------------------------


def _isophote_iou(label_image, truth):
    found = label_image > 0
    return np.count_nonzero(found & truth) / np.count_nonzero(found | truth)


@pytest.mark.parametrize("fwhm", [8.0, 12.0])
def test_a_bright_broad_source_is_one_segment_at_its_isophote(fwhm):
    sigma = fwhm / (2 * np.sqrt(2 * np.log(2)))
    image = gaussian_image((96, 96), [(48, 48, 20.0, sigma)], seed=3)
    truth = gaussian_image((96, 96), [(48, 48, 20.0, sigma)], noise=0.0) >= 1.5
    result = segment(image, random_state=0)
    assert result.n_sources == 1
    # The analysis isophote is 1.5 sigma of the pixel noise: the segment is
    # the true 1.5-sigma isophote, up to its noisy edge.
    assert _isophote_iou(result.label_image, truth) > 0.85


def test_faint_broad_sources_whose_edge_is_noise_are_cleared():
    # A Gaussian of FWHM 8 px and peak 2 sigma: its 1.5-sigma isophote covers
    # about 21 pixels, where the noise moves the smoothed map by about a
    # quarter of a sigma on a shallow slope. Over ten noise draws, the
    # segments the ratio clears are those that miss the true isophote.
    sigma = 8.0 / (2 * np.sqrt(2 * np.log(2)))
    truth = gaussian_image((96, 96), [(48, 48, 2.0, sigma)], noise=0.0) >= 1.5
    good, bad = {None: 0, 1.75: 0}, {None: 0, 1.75: 0}
    for seed in range(10):
        image = gaussian_image((96, 96), [(48, 48, 2.0, sigma)], seed=seed)
        for ratio in (None, 1.75):
            result = segment(image, random_state=0, max_edge_ratio=ratio)
            if result.n_sources:
                matched = _isophote_iou(result.label_image, truth) >= 0.5
                good[ratio] += matched
                bad[ratio] += not matched
    assert good[1.75] == good[None] > 0
    assert bad[1.75] < bad[None] - 1


def test_a_compact_faint_source_keeps_its_steep_edge():
    # A point-like source of the same peak has a steep edge: kept.
    image = gaussian_image((64, 64), [(32, 32, 6.0, 1.3)], seed=1)
    assert segment(image, random_state=0).n_sources == 1


def test_edge_ratio_counts_the_pixels_the_noise_puts_in_or_out():
    image = gaussian_image((64, 64), [(32, 32, 20.0, 3.4)], seed=0)
    result = segment(image, random_state=0, analysis_threshold=None, max_edge_ratio=None)
    maps = result.maps
    ratio = _edge_ratio(result.label_image, maps, 1.5)
    level = (maps.smoothed_luminosity - 1.5 * maps.noise) / maps.smooth_noise
    inside = result.label_image == 1
    expected = np.count_nonzero(inside & (np.abs(level) < 1)) / np.count_nonzero(
        inside & (level >= 0)
    )
    assert ratio[1] == pytest.approx(expected)
    assert ratio[0] == np.inf  # the background has no pixel above the isophote here
    assert 0 < ratio[1] < 0.5


@pytest.mark.parametrize(("value", "error"), [(0.0, ValueError), ("2", TypeError)])
def test_max_edge_ratio_is_checked(two_source_image, value, error):
    with pytest.raises(error, match="max_edge_ratio"):
        segment(two_source_image, random_state=0, max_edge_ratio=value)
