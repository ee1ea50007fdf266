"""Deblending: merge_segments, split_segments, colour_split_segments, symmetry_split_segments,
segment's deblend_*."""

import numpy as np
import pytest
from conftest import gaussian_image
from scipy import ndimage

from skimgcluster import ImageSegmenter, LuminositySampler, segment
from skimgcluster._deblend import (
    colour_split_segments,
    merge_segments,
    split_segments,
    symmetry_split_segments,
)
from skimgcluster._validation import check_image


def _blobs(shape, sources):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = np.zeros(shape)
    for row, col, amp, sigma in sources:
        image += amp * np.exp(-((yy - row) ** 2 + (xx - col) ** 2) / (2 * sigma**2))
    return image


def _points_of(label_image, colours):
    """One point per labelled pixel, with the colour features of its label."""
    rows, cols = np.nonzero(label_image)
    labels = label_image[rows, cols] - 1
    points = np.column_stack([cols, rows, colours[labels]]).astype(float)
    return labels, points


def _merge(label_image, smoothed, **kwargs):
    labels, points = _points_of(label_image, np.zeros((int(label_image.max()), 0)))
    options = {"dip": 3.0, "colour_z": 3.0, "samples_per_pixel": 1.0, "correlation_area": 1.0}
    options.update(kwargs)
    return merge_segments(
        label_image, smoothed, np.ones_like(smoothed), labels=labels, points=points, **options
    )


def test_a_smooth_source_cut_in_two_is_merged():
    smoothed = _blobs((40, 40), [(20, 20, 100.0, 6.0)])
    label_image = np.where(smoothed > 1, 1, 0)
    label_image[:, 20:] *= 2  # the same source, cut down its middle
    new_value = _merge(label_image, smoothed)
    assert new_value[1] == new_value[2] == 1


def test_two_peaks_with_a_deep_dip_stay_apart():
    smoothed = _blobs((40, 60), [(20, 18, 100.0, 4.0), (20, 42, 80.0, 4.0)])
    label_image = np.where(smoothed > 1, 1, 0)
    label_image[:, 30:] *= 2
    np.testing.assert_array_equal(_merge(label_image, smoothed), [0, 1, 2])


def test_the_dip_is_measured_in_noise_deviations():
    # Peaks of 100 and 80 over a saddle near 10.6: a rise of about 69.
    smoothed = _blobs((40, 60), [(20, 18, 100.0, 4.0), (20, 42, 80.0, 4.0)])
    label_image = np.where(smoothed > 1, 1, 0)
    label_image[:, 30:] *= 2
    assert _merge(label_image, smoothed, dip=60.0)[2] == 2
    assert _merge(label_image, smoothed, dip=80.0)[2] == 1


def test_a_companion_rising_less_than_2_deviations_is_its_own_source_by_default():
    # A faint companion on the flank of a brighter source whose peak rises 1.8 noise
    # deviations above their saddle: the faint member of most close pairs that SEP
    # separated and the deblending at a dip of 2 merged (docs/tuning.md).
    smoothed = _blobs((30, 50), [(15, 15, 20.0, 3.0), (15, 26, 3.5, 2.0)])
    assert 1.5 < smoothed[15, 26] - smoothed[15, 15:27].min() < 2.0
    dip = ImageSegmenter().deblend_dip
    label_image = np.where(smoothed > 1, 1, 0)
    out, parents = split_segments(
        label_image, smoothed, np.ones_like(smoothed), dip=dip, min_area=5
    )
    assert out[15, 15] != out[15, 26]
    np.testing.assert_array_equal(parents, [1])
    np.testing.assert_array_equal(_merge(out, smoothed, dip=dip), [0, 1, 2])


def test_colours_keep_blended_sources_apart():
    smoothed = _blobs((40, 40), [(20, 20, 100.0, 6.0)])
    label_image = np.where(smoothed > 1, 1, 0)
    label_image[:, 20:] *= 2
    colours = np.array([[5.0, 15.0], [15.0, 5.0]])  # features of labels 0 and 1
    labels, points = _points_of(label_image, colours)
    rng = np.random.default_rng(0)
    points[:, 2:] += rng.normal(0, 1, (points.shape[0], 2))
    common = {"dip": 3.0, "samples_per_pixel": 1.0, "correlation_area": 1.0}
    sm = np.ones_like(smoothed)
    kept = merge_segments(label_image, smoothed, sm, labels=labels, points=points,
                          colour_z=3.0, **common)  # fmt: skip
    np.testing.assert_array_equal(kept, [0, 1, 2])
    merged = merge_segments(label_image, smoothed, sm, labels=labels, points=points,
                            colour_z=None, **common)  # fmt: skip
    np.testing.assert_array_equal(merged, [0, 1, 1])


def test_merging_follows_the_highest_saddle_first():
    # Three segments of one smooth source merge into one, whatever the order.
    smoothed = _blobs((40, 60), [(20, 30, 100.0, 10.0)])
    label_image = np.ones((40, 60), dtype=int)
    label_image[:, 20:40] = 2
    label_image[:, 40:] = 3
    np.testing.assert_array_equal(_merge(label_image, smoothed), [0, 1, 1, 1])


def test_labels_beyond_the_label_image_are_mapped():
    smoothed = _blobs((20, 20), [(10, 10, 50.0, 3.0)])
    label_image = np.where(smoothed > 1, 1, 0)
    labels = np.array([0, 0, 3])  # label 3 owns no pixel
    points = np.array([[10.0, 10.0], [11.0, 10.0], [0.0, 0.0]])
    new_value = merge_segments(label_image, smoothed, np.ones_like(smoothed), labels=labels,
                               points=points, dip=3.0, colour_z=None, samples_per_pixel=1.0,
                               correlation_area=1.0)  # fmt: skip
    np.testing.assert_array_equal(new_value, [0, 1, 2, 3, 4])


def test_parts_cut_by_colour_face_their_own_colour_threshold():
    # One smooth source cut in two halves whose mean colours differ by 2.5
    # standard errors: merged at colour_z=3, kept apart when the halves are
    # a pair of ``apart`` with a threshold of 2.
    smoothed = _blobs((40, 40), [(20, 20, 100.0, 6.0)])
    label_image = np.where(smoothed > 1, 1, 0)
    label_image[:, 20:] *= 2
    labels, points = _points_of(label_image, np.zeros((2, 1)))
    n = np.bincount(labels)
    spread = np.where(np.arange(labels.size) % 2 == 0, 1.0, -1.0)  # variance 1 exactly
    points[:, 2] = spread + np.where(labels == 1, 2.5 * np.sqrt(1 / n[0] + 1 / n[1]), 0.0)
    for label in (0, 1):  # each half's mean stays where it was put
        points[labels == label, 2] -= spread[labels == label].mean()

    def merge(**kwargs):
        return merge_segments(
            label_image, smoothed, np.ones_like(smoothed), labels=labels, points=points,
            dip=3.0, colour_z=3.0, samples_per_pixel=1.0, correlation_area=1.0, **kwargs,
        )  # fmt: skip

    np.testing.assert_array_equal(merge(), [0, 1, 1])
    np.testing.assert_array_equal(merge(apart=[[2, 1]], apart_colour_z=2.0), [0, 1, 2])
    np.testing.assert_array_equal(merge(apart=[[2, 1]]), [0, 1, 1])  # colour_z's threshold
    np.testing.assert_array_equal(merge(apart=[[1, 1]], apart_colour_z=2.0), [0, 1, 1])
    np.testing.assert_array_equal(merge(apart=[[2, 1]], apart_colour_z=3.0), [0, 1, 1])


def test_segment_keeps_parts_cut_by_colour_apart_in_the_merge(monkeypatch):
    # A red and a blue source on one peak beside three others, so that
    # AstroLink clusters them: the parts that the colour split cuts reach the
    # merge as a pair with its own colour threshold, and both are sources of
    # the result.
    import skimgcluster._segment as segment_module

    calls = []

    def spy(*args, **kwargs):
        calls.append((args[0].copy(), kwargs["apart"], kwargs["apart_colour_z"]))
        return merge_segments(*args, **kwargs)

    monkeypatch.setattr(segment_module, "merge_segments", spy)
    image = _colour_image(
        [(32, 30, 90.0, 2.5, RED), (32, 34, 30.0, 2.5, BLUE), (12, 12, 60.0, 2.5, RED),
         (50, 52, 60.0, 2.5, BLUE), (12, 52, 40.0, 2.0, RED)], 0, (64, 64),
    )  # fmt: skip
    result = segment(image, random_state=0)
    ((before, apart, apart_colour_z),) = calls
    assert apart_colour_z == 2.0
    # The pair kept apart is the part about each source.
    assert sorted(apart.ravel().tolist()) == sorted([before[32, 29], before[32, 35]])
    assert before[32, 29] != before[32, 35]
    assert result.label_image[32, 29] > 0 and result.label_image[32, 35] > 0
    assert result.label_image[32, 29] != result.label_image[32, 35]


def test_segment_keeps_a_broad_source_whole():
    # A broad, smooth source: the pixel noise must not cut it into pieces.
    image = gaussian_image((96, 96), [(48, 48, 12.0, 9.0)], seed=3)
    whole = segment(image, random_state=0)
    assert whole.n_sources == 1
    # Labels of points, image and clusters stay consistent after merging.
    assert whole.labels.max() + 1 == whole.source_significance.size
    assert set(np.unique(whole.label_image)) == {0, 1}
    assert np.all(whole.cluster_labels < whole.source_significance.size)


def test_segment_keeps_two_peaks_apart():
    image = gaussian_image((64, 96), [(32, 34, 40.0, 3.0), (32, 60, 40.0, 3.0)], seed=1)
    assert segment(image, random_state=0).n_sources == 2


@pytest.mark.parametrize(
    "name", ["deblend_dip", "deblend_color_z", "deblend_color_split", "deblend_symmetry"]
)
@pytest.mark.parametrize(("value", "error"), [("3", TypeError), (np.nan, ValueError)])
def test_deblend_parameters_are_checked(two_source_image, name, value, error):
    with pytest.raises(error, match=name):
        segment(two_source_image, random_state=0, **{name: value})
    with pytest.raises(error, match=name):
        ImageSegmenter(**{name: value}).fit([two_source_image])


def test_min_area_clears_small_segments():
    # A compact faint source covers a few pixels above the analysis isophote.
    image = gaussian_image((64, 64), [(20, 20, 60.0, 3.0), (44, 44, 6.0, 0.8)], seed=2)
    low = segment(image, random_state=0, min_area=1)
    high = segment(image, random_state=0, min_area=40)
    area = np.bincount(high.label_image.ravel())[1:]
    assert np.all(area[area > 0] >= 40)
    assert high.n_sources <= low.n_sources
    assert high.label_image[20, 20] > 0  # the bright source stays


@pytest.mark.parametrize(("value", "error"), [(0, ValueError), (2.5, TypeError), (True, TypeError)])
def test_min_area_is_checked(two_source_image, value, error):
    with pytest.raises(error, match="min_area"):
        segment(two_source_image, random_state=0, min_area=value)


def test_split_parts_number_after_every_label_and_hold_points():
    # Two peaks in one segment; a label that owns no pixel must not be reused.
    smoothed = _blobs((40, 60), [(20, 18, 100.0, 4.0), (20, 42, 80.0, 4.0)])
    label_image = np.where(smoothed > 1, 1, 0)
    out, parents = split_segments(label_image, smoothed, np.ones_like(smoothed), dip=3.0,
                                  min_area=5, first=5)  # fmt: skip
    np.testing.assert_array_equal(np.unique(out), [0, 1, 5])
    np.testing.assert_array_equal(parents, [1])


def test_segment_labels_every_segment_through_its_points():
    from skimgcluster.datasets import make_field

    image, _, _ = make_field((128, 128), 15, random_state=4)
    for seed in range(3):
        result = segment(image, random_state=seed, n_samples=300)
        values = np.unique(result.label_image[result.label_image > 0])
        assert values.max(initial=0) <= result.labels.max() + 1
        assert result.source_significance.size >= values.max(initial=0)
        assert np.isin(values - 1, result.labels).all()


RED, BLUE = (0.1, 0.3, 0.6), (0.6, 0.3, 0.1)


def _colour_image(components, seed, shape=(48, 64)):
    """Three bands of Gaussians ``(row, col, amplitude, sigma, sed[, axis_ratio])`` on unit noise.

    The axis ratio (1 unless given) shrinks a Gaussian along the rows.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = rng.normal(0.0, 1.0, (*shape, 3))
    for row, col, amp, sigma, sed, *ratio in components:
        q = ratio[0] if ratio else 1.0
        profile = amp * np.exp(-(((yy - row) / q) ** 2 + (xx - col) ** 2) / (2 * sigma**2))
        image += profile[:, :, None] * np.asarray(sed)
    return image


def _colour_split(image, z=4.0):
    """colour_split_segments on the footprint's connected regions, as segments."""
    sampler = LuminositySampler(analysis_threshold=1.5).fit(image)
    data, quantum = check_image(image)
    maps = sampler._analyse(data, quantum, None)
    label_image, _ = ndimage.label(maps.analysis_footprint)
    return label_image, colour_split_segments(label_image, maps, z=z, min_area=7)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_red_and_a_blue_source_on_one_peak_are_split_by_colour(seed):
    # Equal brightness, 5 px apart with sigma 3: the band sum has one peak, so
    # no dip separates them; their colours do.
    image = _colour_image([(24, 29.5, 60.0, 3.0, RED), (24, 34.5, 60.0, 3.0, BLUE)], seed)
    luminosity = image.mean(axis=2)
    assert np.argmax(luminosity[24, 26:39]) in range(4, 9)  # one peak between them
    label_image, (out, parents) = _colour_split(image)
    assert int(label_image.max()) == 1
    np.testing.assert_array_equal(parents, [1])
    # Each part is one source: the cut follows the colour boundary (col 32).
    left, right = out[20:29, 24:31], out[20:29, 35:41]
    for part in (left, right):
        values, counts = np.unique(part[part > 0], return_counts=True)
        assert counts.max() >= 0.9 * counts.sum()
    assert np.unique(left[left > 0]).size == 1
    assert set(np.unique(out[out > 0])) == {1, 2}
    assert np.bincount(left[left > 0]).argmax() != np.bincount(right[right > 0]).argmax()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_source_with_a_colour_gradient_is_not_split(seed):
    # A red core in a blue disk, centred on each other; and one colour throughout.
    gradient = _colour_image([(24, 32, 50.0, 2.0, RED), (24, 32, 30.0, 5.0, BLUE)], seed)
    label_image, (out, parents) = _colour_split(gradient)
    assert parents.size == 0
    np.testing.assert_array_equal(out, label_image)
    single = _colour_image([(24, 32, 60.0, 4.0, RED)], seed)
    label_image, (out, parents) = _colour_split(single)
    assert parents.size == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_an_inclined_disk_with_a_red_bulge_is_not_split(seed):
    # A red bulge in a blue disk seen at an axis ratio of 0.3: the bulge's
    # colour reaches the segment's edge across the minor axis, and each
    # colour has its own peak of the fitted fluxes; only the point symmetry
    # of the colour about the centre tells it from two objects side by side.
    image = _colour_image([(24, 32, 40.0, 1.5, RED), (24, 32, 20.0, 8.0, BLUE, 0.3)], seed)
    label_image, (out, parents) = _colour_split(image)
    assert int(label_image.max()) == 1
    assert parents.size == 0
    np.testing.assert_array_equal(out, label_image)


def test_colour_split_leaves_single_band_images_alone():
    rng = np.random.default_rng(0)
    image = _colour_image([(24, 29.5, 60.0, 3.0, RED), (24, 34.5, 60.0, 3.0, BLUE)], 0)
    grey = image.sum(axis=2) + rng.normal(0.0, 0.1, image.shape[:2])
    label_image, (out, parents) = _colour_split(grey)
    assert parents.size == 0


def test_deblend_color_split_none_turns_the_step_off(two_source_image):
    image = np.stack([two_source_image, 0.5 * two_source_image, 0.2 * two_source_image], axis=2)
    off = segment(image, random_state=0, deblend_color_split=None)
    on = segment(image, random_state=0)
    assert ImageSegmenter().get_params()["deblend_color_split"] == 4.0
    # Grey sources have nothing to cut by colour: the same result either way.
    np.testing.assert_array_equal(off.label_image, on.label_image)


def test_segment_cuts_an_isolated_pair_by_colour():
    # A red and a blue source 4 px apart, alone in the image: AstroLink finds
    # no cluster, the region becomes one isolated source, and colour cuts it.
    # (At 4 points per footprint pixel: with these 1,000-odd points the
    # premise, no cluster, holds at that density.)
    image = _colour_image([(32, 30, 90.0, 3.0, RED), (32, 34, 90.0, 3.0, BLUE)], 0, (64, 64))
    whole = segment(image, random_state=0, deblend_color_split=None, samples_per_pixel=4.0)
    cut = segment(image, random_state=0, samples_per_pixel=4.0)
    assert whole.n_sources == 1
    assert cut.n_sources == 2
    assert cut.label_image[32, 28] != cut.label_image[32, 36]
    assert cut.label_image[32, 28] > 0 and cut.label_image[32, 36] > 0
    # Labels of points, pixels and significances stay consistent.
    assert cut.labels.max() + 1 == cut.source_significance.size
    assert cut.isolated.all()
    assert np.all(cut.source_significance > 0)


def _noisy_segments(seed, shape=(96, 128), n_sources=25):
    """Noisy blobs, their footprint cut into touching segments at random lines."""
    rng = np.random.default_rng(seed)
    sources = [
        (rng.uniform(0, shape[0]), rng.uniform(0, shape[1]), rng.uniform(5, 200), rng.uniform(1, 6))
        for _ in range(n_sources)
    ]
    smoothed = ndimage.gaussian_filter(_blobs(shape, sources) + rng.normal(0.0, 1.0, shape), 1.0)
    footprint = smoothed > 1.2
    regions, _ = ndimage.label(footprint)
    # Cut some regions in two so that segments touch without a dip between them.
    cut = np.arange(shape[1])[None, :] >= rng.integers(0, shape[1], size=(1, 1))
    label_image = np.where(footprint, 2 * regions - cut, 0)
    _, label_image = np.unique(label_image, return_inverse=True)
    return label_image.reshape(shape), smoothed


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("quantum", [0.0, 0.5])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_h_maxima_kernel_is_skimages(seed, quantum, dtype):
    # quantum > 0 makes plateaus, and h = 0.5 then ties between the lowered
    # image and the image; h = 2.3 is not a float32.
    from skimage.morphology import h_maxima

    from skimgcluster._deblend import _h_maxima

    rng = np.random.default_rng(seed)
    for shape in [(1, 1), (1, 9), (7, 1), (23, 31), (64, 48)]:
        image = ndimage.gaussian_filter(rng.normal(0.0, 1.0, shape), 1.0) * 20
        if quantum:
            image = np.round(image / quantum) * quantum
        image = image.astype(dtype)
        # Near the image's range, the seed of its highest pixel falls below
        # its lowest value: the kernel's floor is then that seed.
        ptp = float(np.ptp(image))
        for h in (0.5, 2.3, ptp, ptp * (1 - 1e-7), ptp * 0.99, ptp * 0.6):
            if h > 0:
                np.testing.assert_array_equal(_h_maxima(image, h), h_maxima(image, h) > 0)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("shift", [0.0, -5.0])
def test_h_maxima_is_skimages(seed, shift):
    from skimage.morphology import h_maxima

    from skimgcluster._deblend import _h_maxima

    label_image, smoothed = _noisy_segments(seed)
    inside = label_image > 0
    level = np.where(inside, smoothed / 0.3 + shift, 0.0)
    level = np.where(inside, level, min(float(level[inside].min()), 0.0))
    for h in (0.5, 2.0, 7.0, 1e3):
        for image in (level, level.astype(np.float32), np.round(level)):
            np.testing.assert_array_equal(_h_maxima(image, h), h_maxima(image, h) > 0)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("shift", [0.0, -5.0])
def test_segment_peaks_are_those_of_the_whole_image(seed, shift):
    # The h-maxima of the segments' groups, flooded side by side in a mosaic,
    # and their regions numbered in the image's raster order: the same as the
    # h-maxima of the whole level image, labelled there.
    from skimage.morphology import h_maxima

    from skimgcluster._deblend import _segment_peaks

    label_image, smoothed = _noisy_segments(seed)
    # Segments that touch only at a corner, and segments on the image's edges.
    label_image[0, :5] = label_image.max() + 1
    label_image[1, 5] = label_image.max() + 1
    label_image[-1, -4:] = label_image.max() + 1
    cases = [label_image, np.ones_like(label_image), np.pad(np.ones((4, 4), int), 1)]
    for labels in cases:
        inside = np.flatnonzero(labels)
        inner = (smoothed.ravel()[inside] / 0.3 + shift).astype(np.float32)
        lowest = np.float32(min(float(inner.min()), 0.0))
        level = np.full(labels.shape, lowest, dtype=np.float32)
        level.ravel()[inside] = inner
        for h in (0.5, 2.0, 7.0, 1e3):
            maxima = h_maxima(level, h) > 0
            regions, _ = ndimage.label(maxima, structure=np.ones((3, 3)))
            on_peak, peak_id = _segment_peaks(labels, inside, inner, lowest, h)
            np.testing.assert_array_equal(on_peak, np.flatnonzero(maxima))
            np.testing.assert_array_equal(peak_id, regions.ravel()[on_peak])


def test_h_maxima_of_degenerate_images_is_skimages():
    from skimage.morphology import h_maxima

    from skimgcluster._deblend import _h_maxima

    rng = np.random.default_rng(0)
    noisy = 10.0 + rng.uniform(0.0, 1.0, (20, 30))
    images = [noisy, np.full((5, 6), 3.0), np.zeros((1, 1)), noisy[:1], noisy[:, :1]]
    for image in images:
        for h in (0.5, 2.0):
            np.testing.assert_array_equal(_h_maxima(image, h), h_maxima(image, h) > 0)
    assert _h_maxima(noisy, 0.5).any() and not _h_maxima(noisy, 2.0).any()


@pytest.mark.parametrize("seed", range(4))
def test_split_segments_is_unchanged_by_the_reconstruction_kernel(seed, monkeypatch):
    # The split found with the kernel's h-maxima, against the split with
    # scikit-image's.
    from skimage.morphology import h_maxima

    from skimgcluster import _deblend

    label_image, smoothed = _noisy_segments(seed)
    noise = np.full_like(smoothed, 0.3)
    fast = split_segments(label_image, smoothed, noise, dip=2.0, min_area=3, first=3)
    monkeypatch.setattr(_deblend, "_h_maxima", lambda level, h: h_maxima(level, h) > 0)
    reference = split_segments(label_image, smoothed, noise, dip=2.0, min_area=3, first=3)
    assert fast[1].size > 0  # some segment was split
    np.testing.assert_array_equal(fast[0], reference[0])
    np.testing.assert_array_equal(fast[1], reference[1])


@pytest.mark.parametrize("seed", range(3))
def test_splits_in_place_cut_the_given_image_as_a_copy_would(seed):
    # copy=False cuts the caller's int32 image itself, with the same result;
    # copy=True leaves it as it was.
    label_image, smoothed = _noisy_segments(seed)
    label_image = label_image.astype(np.int32)
    noise = np.full_like(smoothed, 0.3)
    given = label_image.copy()
    expected = split_segments(given, smoothed, noise, dip=2.0, min_area=3, first=3)
    np.testing.assert_array_equal(given, label_image)
    assert expected[1].size > 0
    got = split_segments(given, smoothed, noise, dip=2.0, min_area=3, first=3, copy=False)
    assert got[0] is given
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])


def test_colour_split_in_place_cuts_the_given_image_as_a_copy_would():
    image = _colour_image([(24, 29.5, 60.0, 3.0, RED), (24, 34.5, 60.0, 3.0, BLUE)], 0)
    sampler = LuminositySampler(analysis_threshold=1.5).fit(image)
    data, quantum = check_image(image)
    maps = sampler._analyse(data, quantum, None)
    label_image = ndimage.label(maps.analysis_footprint)[0].astype(np.int32)
    given = label_image.copy()
    expected = colour_split_segments(given, maps, z=4.0, min_area=7)
    np.testing.assert_array_equal(given, label_image)
    assert expected[1].size > 0
    got = colour_split_segments(given, maps, z=4.0, min_area=7, copy=False)
    assert got[0] is given
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])


def test_split_segments_takes_a_level_of_0_where_the_noise_is_0_or_nan():
    # As where the luminosity is NaN: no infinite level reaches the h-maxima.
    label_image, smoothed = _noisy_segments(0)
    noise = np.full_like(smoothed, 0.3)
    rows, cols = np.nonzero(label_image)
    bad = (rows[::50], cols[::50])
    no_noise, no_light = noise.copy(), smoothed.copy()
    no_noise[bad] = np.where(np.arange(rows[::50].size) % 2, 0.0, np.nan)
    no_light[bad] = np.nan
    got = split_segments(label_image, smoothed, no_noise, dip=2.0, min_area=3)
    expected = split_segments(label_image, no_light, noise, dip=2.0, min_area=3)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])


@pytest.mark.parametrize("seed", range(3))
def test_touching_pairs_from_the_segments_pixels_are_those_of_every_pixel(seed):
    # Against the comparison of every pixel with its right and lower
    # neighbours, NaN levels counting as -inf.
    from skimgcluster._deblend import _touching_pairs

    label_image, smoothed = _noisy_segments(seed, shape=(90, 70), n_sources=12)
    # Segments cut further by a grid, so that many touch.
    rows, cols = np.mgrid[:90, :70]
    label_image = np.where(label_image > 0, label_image * 4 + rows // 9 % 2 * 2 + cols // 11 % 2, 0)
    label_image = np.unique(label_image, return_inverse=True)[1].reshape(label_image.shape)
    rng = np.random.default_rng(seed)
    smoothed[rng.random(smoothed.shape) < 0.02] = np.nan
    level = np.where(np.isfinite(smoothed), smoothed, -np.inf)
    found = {}
    for first, second, v1, v2 in (
        (label_image[:, :-1], label_image[:, 1:], level[:, :-1], level[:, 1:]),
        (label_image[:-1], label_image[1:], level[:-1], level[1:]),
    ):
        for x, y, v in zip(first.ravel(), second.ravel(), np.minimum(v1, v2).ravel(), strict=True):
            if x != y and x > 0 and y > 0:
                key = (min(x, y), max(x, y))
                found[key] = max(found.get(key, -np.inf), v)
    a, b, saddle = _touching_pairs(label_image, smoothed, np.flatnonzero(label_image))
    assert len(found) > 5
    assert list(zip(a.tolist(), b.tolist(), strict=True)) == sorted(found)
    np.testing.assert_array_equal(saddle, [found[key] for key in sorted(found)])


def test_boxes_are_find_objects():
    from skimgcluster._deblend import _boxes

    label_image, _ = _noisy_segments(2)
    label_image[label_image == 3] = 0  # a value without pixels: None
    for image in (label_image, label_image[:1], np.zeros((4, 5), dtype=int)):
        assert _boxes(image, np.flatnonzero(image)) == ndimage.find_objects(image)


def test_merge_segments_ignores_the_background_values():
    # Only the segments' pixels are sorted: what the background holds cannot
    # change the merges.
    label_image, smoothed = _noisy_segments(1)
    background = np.where(label_image > 0, smoothed, 1e6)
    np.testing.assert_array_equal(_merge(label_image, smoothed), _merge(label_image, background))


def test_shelf_pack_places_boxes_apart_inside_the_mosaic():
    from skimgcluster._deblend import _shelf_pack

    rng = np.random.default_rng(0)
    heights, widths = rng.integers(3, 30, 200), rng.integers(3, 60, 200)
    row0, col0, shape = _shelf_pack(heights, widths)
    cover = np.zeros(shape, dtype=int)
    for r, c, h, w in zip(row0, col0, heights, widths, strict=True):
        cover[r : r + h, c : c + w] += 1
    assert cover.max() == 1  # no overlap, and every box inside the mosaic
    assert cover.sum() == np.sum(heights * widths)
    assert cover.size < 2 * cover.sum()  # not much wasted


def test_colour_split_helpers_give_numpys_bits():
    from skimgcluster._deblend import _average, _ill_conditioned

    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 300):
        values, weights = rng.normal(size=(n, 3)), rng.uniform(0.1, 50.0, n)
        expected = np.average(values, axis=0, weights=weights)
        assert np.array_equal(_average(values, weights), expected)
    with pytest.raises(ZeroDivisionError):
        _average(np.ones((3, 2)), np.zeros(3))
    near = np.array([[1.0, 1.0], [1.0, 1.0 + 1e-13]])
    cases = [
        rng.normal(size=(2, 2)),
        np.zeros((2, 2)),
        near,
        np.diag([1.0, 1e-13]),
        np.ones((2, 2)),
    ]
    with np.errstate(all="ignore"):
        expected = [bool(np.linalg.cond(matrix) > 1e12) for matrix in cases]
        for matrix, want in zip(cases, expected, strict=True):
            assert _ill_conditioned(matrix) == want
        # A stack of them at once, as the colour test of all segments asks.
        assert _ill_conditioned(np.stack(cases)).tolist() == expected
    for check in (_ill_conditioned, np.linalg.cond):  # NaN fails alike
        with pytest.raises(np.linalg.LinAlgError):
            check(np.array([[np.nan, 1.0], [1.0, 1.0]]))


def test_colour_split_of_many_segments_is_that_of_each_segment_alone():
    # The pixels of all segments are gathered at once; each segment's cut must
    # be the one it gets when it is the only segment of the image.
    pairs = [(r, c) for r in (20, 60) for c in (20, 60, 100)]
    components = []
    for i, (row, col) in enumerate(pairs):
        components.append((row, col - 2.5, 60.0, 3.0, RED))
        if i % 2 == 0:  # every other source a red-blue pair on one peak
            components.append((row, col + 2.5, 60.0, 3.0, BLUE))
    image = _colour_image(components, 0, shape=(80, 120))
    sampler = LuminositySampler(analysis_threshold=1.5).fit(image)
    data, quantum = check_image(image)
    maps = sampler._analyse(data, quantum, None)
    label_image, n = ndimage.label(maps.analysis_footprint)
    assert n >= len(pairs)
    out, parents = colour_split_segments(label_image, maps, z=4.0, min_area=7)
    assert parents.size >= 2
    expected = label_image.copy()
    next_value, expected_parents = n + 1, []
    for value in range(1, n + 1):
        alone = np.where(label_image == value, value, 0)
        cut, own = colour_split_segments(alone, maps, z=4.0, min_area=7, first=next_value)
        expected[cut != alone] = cut[cut != alone]
        expected_parents.extend(own.tolist())
        next_value += own.size
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(parents, expected_parents)


def _one_segment_colour_test(rows, cols, bands, noise_map, raw, snr, bright, weight, band_unit):
    """The colour test of one segment written out as NumPy calls on its own pixels."""
    total = bands.sum(axis=1)
    frac = bands[bright] / total[bright, None]
    w = snr[bright] ** 2
    centre = np.average(frac, axis=0, weights=w)
    dev = frac - centre
    axis = np.linalg.eigh((dev * w[:, None]).T @ dev / w.sum())[1][:, -1]
    t = dev @ axis
    order = np.argsort(t, kind="stable")
    cum = np.cumsum(w[order])
    ends = []
    for q, side in ((0.05, -1), (0.95, 1)):
        limit = t[order][min(np.searchsorted(cum, q * cum[-1]), t.size - 1)]
        beyond = side * (t - limit) >= 0
        s = np.average(frac[beyond], axis=0, weights=w[beyond])
        ends.append(s / s.sum())
    spectra = np.stack(ends, axis=1)
    normal = spectra.T @ (spectra * weight[:, None])
    unmix = np.linalg.solve(normal, spectra.T * weight[None, :])
    flux = bands @ unmix.T
    peaks = [int(np.argmax(flux[:, k])) for k in (0, 1)]
    raw, noise = raw[bright], noise_map[bright]
    pos = np.stack([rows[bright], cols[bright]], axis=1).astype(float)
    pos -= np.average(pos, axis=0, weights=np.clip(raw.sum(axis=1), 0, None))
    contrast = axis - axis @ (raw.sum(axis=0) / raw.sum())
    moment = pos.T @ (raw @ contrast)
    cov = (pos * (noise**2 * np.sum(contrast**2 * band_unit**2))[:, None]).T @ pos
    return spectra, peaks, np.sqrt(moment @ np.linalg.solve(cov, moment))


@pytest.mark.parametrize("n_sky", [20_000, 500, 37])
def test_band_noise_ratios_by_blocks_of_rows_are_those_of_all_rows(n_sky, monkeypatch):
    # The stride of sky pixels crosses the blocks' edges: the same pixels as
    # one search of the whole image.
    from skimgcluster import _deblend

    components = [(30, 40, 60.0, 3.0, RED), (50, 80, 40.0, 4.0, BLUE)]
    image = _colour_image(components, 1, shape=(80, 120))
    sampler = LuminositySampler(analysis_threshold=1.5).fit(image)
    data, quantum = check_image(image)
    maps = sampler._analyse(data, quantum, None)
    got = _deblend.band_noise_ratios(maps, n_sky)
    monkeypatch.setattr(_deblend, "_SKY_ROWS", 7)
    by_blocks = _deblend.band_noise_ratios(maps, n_sky)
    monkeypatch.setattr(_deblend, "_SKY_ROWS", 10**6)
    whole = _deblend.band_noise_ratios(maps, n_sky)
    sky = np.flatnonzero(~maps.footprint.ravel() & np.isfinite(maps.luminosity.ravel()))
    sky = sky[:: max(1, sky.size // n_sky)]
    rows, cols = np.divmod(sky, maps.luminosity.shape[1])
    values = maps.band_values(rows, cols)
    mad = np.median(np.abs(values - np.median(values, axis=0)), axis=0)
    np.testing.assert_array_equal(whole, mad / np.sqrt(np.mean(mad**2)))
    np.testing.assert_array_equal(by_blocks, whole)
    np.testing.assert_array_equal(got, whole)


def test_colour_test_of_all_segments_at_once_is_each_segments_own():
    # The first stage of the colour split runs on all segments' pixels with
    # grouped sums; it must give each segment what its own pixels give.
    from skimgcluster._deblend import _colour_candidates, _dipole_pixels, band_noise_ratios
    from skimgcluster._threads import in_background

    components = []
    for i, (row, col) in enumerate((r, c) for r in (20, 60) for c in (20, 60, 100)):
        components.append((row, col - 2.5, 60.0, 3.0, RED))
        if i % 2 == 0:
            components.append((row, col + 2.5, 40.0 + 10 * i, 3.0, BLUE))
    image = _colour_image(components, 1, shape=(80, 120))
    sampler = LuminositySampler(analysis_threshold=1.5).fit(image)
    data, quantum = check_image(image)
    maps = sampler._analyse(data, quantum, None)
    label_image, n = ndimage.label(maps.analysis_footprint)
    where = np.flatnonzero(label_image.ravel())
    where = where[np.argsort(label_image.ravel()[where], kind="stable")]
    label = label_image.ravel()[where]
    rows, cols = np.divmod(where, label_image.shape[1])
    bands = maps.band_values(rows, cols)
    lum = maps.smoothed_luminosity.ravel()[where].astype(float)
    noise = maps.smooth_noise.ravel()[where].astype(float)
    snr = lum / noise
    total = bands.sum(axis=1)
    bright = (snr >= 3.0) & (total > 0)
    values = np.flatnonzero(np.bincount(label[bright]) >= 14)
    assert values.size >= 6
    ratio = band_noise_ratios(maps)
    band_unit = ratio * 3 / np.sqrt(np.sum(ratio**2))
    weight = 1.0 / band_unit**2
    pixels = in_background(_dipole_pixels, maps, rows, cols)
    args = (label, values, rows, cols, bands, noise, total, snr, bright, pixels, weight, band_unit)
    # z = -inf: the spectra and peaks of every segment, not only of those
    # whose dipole reaches z.
    stage = _colour_candidates(*args, -np.inf)
    raw = image[rows, cols, :] - maps.band_sky(rows, cols).T
    pixel_noise = maps.noise[rows, cols].astype(float)
    n_tested = 0
    for i, value in enumerate(values):
        own = label == value
        spectra, peaks, dipole = _one_segment_colour_test(
            rows[own], cols[own], bands[own], pixel_noise[own], raw[own], snr[own], bright[own],
            weight, band_unit,
        )  # fmt: skip
        np.testing.assert_allclose(stage.spectra[i], spectra, rtol=1e-10)
        assert stage.peaks[i].tolist() == peaks
        if peaks[0] != peaks[1]:
            np.testing.assert_allclose(stage.dipole[i], dipole, rtol=1e-8)
            n_tested += 1
        else:
            assert stage.dipole[i] == -np.inf
    assert n_tested >= 3
    assert (stage.dipole >= 4.0).sum() >= 2  # the pairs: some stand out
    # With z = 4 the rest is found for the segments whose dipole reaches 4
    # alone, with the same values.
    strong = _colour_candidates(*args, 4.0)
    chosen = stage.dipole >= 4.0
    np.testing.assert_array_equal(strong.dipole, np.where(chosen, stage.dipole, -np.inf))
    np.testing.assert_array_equal(strong.spectra[chosen], stage.spectra[chosen])
    np.testing.assert_array_equal(strong.unmixing[chosen], stage.unmixing[chosen])
    np.testing.assert_array_equal(strong.peaks[chosen], stage.peaks[chosen])


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("quantum", [0.0, 0.25])
@pytest.mark.parametrize("per_thread", [1, 256])
def test_segments_flooded_in_one_mosaic_are_each_flooded_alone(
    seed, quantum, per_thread, monkeypatch
):
    # quantum > 0 rounds the levels so that segments hold equal levels and
    # flood alone; the others share a mosaic (one per thread, with at least
    # per_thread segments each).
    from skimgcluster import _deblend
    from skimgcluster._deblend import _flood_alone, _flood_segments

    monkeypatch.setattr(_deblend, "_FLOOD_PER_THREAD", per_thread)

    label_image, smoothed = _noisy_segments(seed, shape=(160, 200), n_sources=40)
    level = smoothed / 0.3
    if quantum:
        level = np.round(level / quantum) * quantum
    peaks, _ = ndimage.label(_h_maxima_mask(level, label_image > 0, 2.0), structure=np.ones((3, 3)))
    boxes = ndimage.find_objects(label_image)
    counts = [np.unique(peaks[label_image == v]).size - 1 for v in range(1, len(boxes) + 1)]
    values = np.flatnonzero(np.array(counts) >= 2) + 1
    assert values.size >= 3
    inside = np.flatnonzero(label_image)
    got = _flood_segments(
        level.ravel()[inside], label_image, inside, peaks.ravel()[inside], values, boxes,
        min_area=7,
    )  # fmt: skip
    n_cut = 0
    for value, (parts, ids) in zip(values, got, strict=True):
        box = boxes[value - 1]
        mask = label_image[box] == value
        markers = np.where(mask, peaks[box], 0)
        alone, alone_ids = _flood_alone(-level[box], markers, mask, min_area=7)
        np.testing.assert_array_equal(parts, alone)
        np.testing.assert_array_equal(ids, alone_ids)
        n_cut += ids.size >= 2
    assert n_cut >= 2


@pytest.mark.parametrize("seed", range(3))
def test_boxes_flooded_in_one_mosaic_are_each_flooded_alone(seed):
    # Some images rounded so that they hold equal values: those flood alone.
    from skimage.segmentation import watershed

    from skimgcluster._deblend import _flood_boxes

    label_image, smoothed = _noisy_segments(seed, shape=(160, 200), n_sources=40)
    boxes = ndimage.find_objects(label_image)
    rng = np.random.default_rng(seed)
    images, markers, masks = [], [], []
    for value, box in enumerate(boxes, start=1):
        mask = label_image[box] == value
        image = np.where(mask, -smoothed[box], 0.0)
        if value % 3 == 0:
            image = np.round(image)
        seeds = np.zeros(mask.shape, dtype=np.int32)
        rows, cols = np.nonzero(mask)
        picked = rng.choice(rows.size, size=min(3, rows.size), replace=False)
        seeds[rows[picked], cols[picked]] = np.arange(1, picked.size + 1)
        images.append(image), markers.append(seeds), masks.append(mask)
    floods = _flood_boxes(boxes, images, markers, masks)
    assert len(floods) == len(boxes) > 10
    for image, seeds, mask, parts in zip(images, markers, masks, floods, strict=True):
        np.testing.assert_array_equal(parts, watershed(image, seeds, mask=mask))


def _h_maxima_mask(level, inside, h):
    from skimage.morphology import h_maxima

    return h_maxima(np.where(inside, level, 0.0), h) > 0


# -- deblend_symmetry: light that breaks a segment's point symmetry ----------------


def _symmetry_split(smoothed, label_image=None, **kwargs):
    """symmetry_split_segments with unit noise; one segment above 1 unless given."""
    options = {"z": 5.0, "min_share": 0.65, "min_area": 7, "correlation_area": 4 * np.pi}
    options.update(kwargs)
    if label_image is None:
        label_image = np.where(smoothed > 1, 1, 0)
        assert ndimage.label(label_image)[1] == 1
    return symmetry_split_segments(label_image, smoothed, np.ones_like(smoothed), **options)


def test_a_companion_without_a_dip_is_cut_out_by_symmetry():
    # A companion on the flank of a brighter source, with no peak of its own in
    # the sum: no dip separates them, but the light is not point-symmetric.
    smoothed = _blobs((48, 64), [(24, 28, 400.0, 4.0), (24, 36, 120.0, 2.0)])
    assert np.all(np.diff(smoothed[24, 28:40]) < 0)  # no second peak
    out, parents = _symmetry_split(smoothed, first=3)
    np.testing.assert_array_equal(parents, [1])
    assert out[24, 28] == 1 and out[24, 37] == 3
    part = out == 3
    assert 7 <= part.sum() < (out > 0).sum() / 2
    # The part is where the companion is the brighter: right of the two's
    # crossing, not the bright source's mirrored side.
    assert not part[:, :32].any()


@pytest.mark.parametrize("shift", [(0.0, 0.0), (0.3, -0.4), (0.5, 0.5)])
def test_a_single_source_off_the_pixel_grid_is_not_cut_by_symmetry(shift):
    # An inclined elliptical source is point-symmetric about its centre, which
    # the peak pixel finds only to half a pixel: the refined centre must not
    # leave the core's slope as a residual, however bright the source.
    yy, xx = np.mgrid[:48, :64]
    dy, dx = yy - 24 - shift[0], xx - 30 - shift[1]
    u, v = dx * np.cos(0.5) + dy * np.sin(0.5), -dx * np.sin(0.5) + dy * np.cos(0.5)
    for amp in (50.0, 5000.0):
        smoothed = amp * np.exp(-(u**2 + (v / 0.4) ** 2) / (2 * 5.0**2))
        out, parents = _symmetry_split(smoothed)
        assert parents.size == 0
        np.testing.assert_array_equal(out, np.where(smoothed > 1, 1, 0))


def test_a_flat_top_whose_brightest_pixel_strays_is_not_cut_by_symmetry():
    # On a flat-topped source a noise spike can be the brightest pixel, 3 px off
    # the centre: mirrored about it, the source's flanks leave hundreds of
    # deviations of residual. The centroid of the core finds the centre.
    yy, xx = np.mgrid[:64, :80]
    smoothed = 100.0 * np.exp(-((np.hypot(yy - 32, xx - 40) / 10.0) ** 4))
    smoothed[32, 43] += 3.0
    assert np.unravel_index(np.argmax(smoothed), smoothed.shape) == (32, 43)
    out, parents = _symmetry_split(smoothed)
    assert parents.size == 0
    np.testing.assert_array_equal(out, np.where(smoothed > 1, 1, 0))


def test_a_residual_rising_towards_another_segment_is_not_cut():
    # The light of a neighbour reaching into a segment is not symmetric about
    # the segment's peak, but it peaks against the neighbour: left alone.
    smoothed = _blobs((48, 72), [(24, 24, 400.0, 4.0), (24, 40, 400.0, 4.0)])
    label_image = np.where(smoothed > 1, 1, 0)
    label_image[:, 32:] *= 2
    out, parents = _symmetry_split(smoothed, label_image)
    assert parents.size == 0
    np.testing.assert_array_equal(out, label_image)


def test_a_residual_rising_to_the_segments_edge_is_not_cut():
    # A neighbour that is no segment (cleared, or beyond the image's edge)
    # reaches into the segment, past the two's crossing at column 32: the
    # residual, the neighbour's light, rises to the edge it comes from.
    smoothed = _blobs((48, 72), [(24, 24, 400.0, 4.0), (24, 40, 400.0, 4.0)])
    label_image = np.where((smoothed > 1) & (np.arange(72) < 36), 1, 0)
    out, parents = _symmetry_split(smoothed, label_image)
    assert parents.size == 0
    np.testing.assert_array_equal(out, label_image)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_segment_cuts_a_faint_companion_on_a_wing_by_symmetry(seed):
    # 6 px from a brighter source of one band: no dip of 1.5 deviations (the
    # sources are one without the symmetry step), and no colour.
    image = gaussian_image((64, 80), [(32, 34, 40.0, 3.0), (32, 40, 18.0, 2.0)], seed=seed)
    whole = segment(image, random_state=0, deblend_symmetry=None)
    assert whole.n_sources == 1
    result = segment(image, random_state=0)
    assert result.n_sources == 2
    bright, faint = result.label_image[32, 34], result.label_image[32, 41]
    assert bright > 0 and faint > 0 and bright != faint
    # The part is a source of its own: its points carry its label, and it
    # counts among the sources without a cluster, with its S/N.
    assert np.isin(faint - 1, result.labels)
    assert result.isolated[faint - 1]
    assert result.source_significance[faint - 1] > 5
    assert result.source_significance.size == result.labels.max() + 1


@pytest.mark.parametrize("value", [0.0, -1.0])
def test_deblend_symmetry_must_be_positive(two_source_image, value):
    with pytest.raises(ValueError, match="deblend_symmetry"):
        segment(two_source_image, random_state=0, deblend_symmetry=value)


@pytest.mark.parametrize("seed", range(3))
def test_group_boxes_bound_each_groups_pixels(seed):
    # The compiled pass gives each group the box of its pixels, as the lowest
    # and highest row and column by np.minimum.at and np.maximum.at; a group
    # without a pixel has none.
    from skimgcluster._deblend import _group_boxes

    rng = np.random.default_rng(seed)
    n_groups = 40
    group = rng.integers(0, n_groups - 5, 3000).astype(np.int32)
    rows, cols = rng.integers(0, 90, group.size), rng.integers(0, 70, group.size)
    boxes = _group_boxes(group, rows, cols, n_groups, (90, 70))
    for g in range(n_groups):
        own = group == g
        if not own.any():
            assert boxes[g] is None
            continue
        expected = (
            slice(rows[own].min(), rows[own].max() + 1),
            slice(cols[own].min(), cols[own].max() + 1),
        )
        assert boxes[g] == expected


@pytest.mark.parametrize("seed", range(3))
def test_colour_scatter_kernel_gives_the_numpy_sums_to_the_bit(seed):
    # The colour split's first sums, compiled in two passes over the pixels,
    # against the NumPy expressions they replace (np.bincount adds in the
    # pixels' order, as the kernel does).
    from skimgcluster._kernels.deblend import colour_scatter

    rng = np.random.default_rng(seed)
    n_pixels, n_groups = 5000, 37
    bands = rng.gamma(2.0, 10.0, (n_pixels, 3))
    total = bands.sum(axis=1)
    snr = rng.uniform(3.0, 300.0, n_pixels)
    pixels = np.sort(rng.choice(n_pixels, 3000, replace=False))
    group = np.sort(rng.integers(0, n_groups, pixels.size))
    w_sum, centre, cov = colour_scatter(pixels, group, bands, total, snr, n_groups)
    frac = bands[pixels] / total[pixels, None]
    w = snr[pixels] ** 2
    expected_w_sum = np.bincount(group, weights=w, minlength=n_groups)
    expected_centre = np.stack(
        [np.bincount(group, weights=frac[:, c] * w, minlength=n_groups) for c in range(3)], axis=1
    ) / expected_w_sum[:, None]
    dev = frac - expected_centre[group]
    np.testing.assert_array_equal(w_sum, expected_w_sum)
    np.testing.assert_array_equal(centre, expected_centre)
    for a in range(3):
        for b in range(3):
            expected = np.bincount(group, weights=dev[:, a] * w * dev[:, b], minlength=n_groups)
            if a > b:
                expected = np.bincount(group, weights=dev[:, b] * w * dev[:, a], minlength=n_groups)
            np.testing.assert_array_equal(cov[:, a, b], expected)
