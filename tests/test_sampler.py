"""Tests of LuminositySampler: image -> luminosity-weighted point cloud."""

import numpy as np
import pytest
from conftest import TWO_SOURCES, gaussian_image
from sklearn.exceptions import NotFittedError

from skimgcluster import (
    DegenerateDataWarning,
    LuminositySampler,
    SampledImage,
    SparseSamplingWarning,
)


def _near(points, row, col, radius):
    """Boolean mask of the points within ``radius`` pixels of (row, col)."""
    return np.hypot(points[:, 0] - col, points[:, 1] - row) < radius


def _pixel_of(points):
    """(row, col) of the pixel whose centre is nearest to every point."""
    return np.floor(points[:, 1] + 0.5).astype(int), np.floor(points[:, 0] + 0.5).astype(int)


def _single_pixel_image(shape=(20, 40), row=5, col=30, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.normal(0.0, 1.0, shape)
    image[row, col] = 1000.0
    return image


# -- output shape and columns ----------------------------------------------------------


def test_output_shape_grayscale(two_source_image):
    sampler = LuminositySampler(n_samples=700, random_state=0)
    points = sampler.fit_transform(two_source_image)
    assert points.shape == (700, 2)
    assert points.dtype == np.float64
    assert sampler.n_features_out_ == 2
    assert sampler.image_shape_ == (64, 64)
    assert sampler.n_bands_in_ == 1


def test_x_is_column_and_y_is_row_exact():
    # A single non-zero pixel on a zero sky, no jitter: every point sits on
    # that pixel's centre, x = column index, y = row index.
    image = np.zeros((20, 40))
    image[5, 30] = 100.0
    sampler = LuminositySampler(n_samples=50, background=None, jitter="none", random_state=0)
    points = sampler.fit_transform(image)
    np.testing.assert_array_equal(points, np.tile([30.0, 5.0], (50, 1)))


def test_points_of_single_bright_pixel_land_in_it():
    image = _single_pixel_image(row=5, col=30)
    points = LuminositySampler(n_samples=1000, jitter="uniform", random_state=0).fit_transform(
        image
    )
    inside = (np.abs(points[:, 0] - 30) <= 0.5) & (np.abs(points[:, 1] - 5) <= 0.5)
    assert inside.mean() > 0.9
    # Nearly all the rest fall in the footprint pixels next to it.
    assert _near(points, 5, 30, 4).mean() > 0.97
    assert np.median(points[:, 0]) == pytest.approx(30, abs=0.5)
    assert np.median(points[:, 1]) == pytest.approx(5, abs=0.5)


def test_triangular_jitter_spreads_at_most_one_pixel():
    image = np.zeros((20, 40))
    image[5, 30] = 100.0
    points = LuminositySampler(n_samples=2000, background=None, random_state=0).fit_transform(image)
    assert np.all(np.abs(points[:, 0] - 30) < 1)
    assert np.all(np.abs(points[:, 1] - 5) < 1)
    # Triangular offsets on (-1, 1): mean on the pixel, and a quarter of the
    # points beyond the pixel's edges (density continuous across them).
    assert points[:, 0].mean() == pytest.approx(30, abs=0.05)
    assert np.mean(np.abs(points[:, 0] - 30) > 0.5) == pytest.approx(0.25, abs=0.04)


@pytest.mark.parametrize("jitter", ["triangular", "uniform", "none"])
def test_points_inside_image_with_source_on_the_corner(jitter):
    image = np.zeros((12, 9))
    image[0, 0] = image[-1, -1] = 50.0
    points = LuminositySampler(
        n_samples=3000, background=None, jitter=jitter, random_state=1
    ).fit_transform(image)
    assert np.all(points[:, 0] >= -0.5) and np.all(points[:, 0] < 9 - 0.5)
    assert np.all(points[:, 1] >= -0.5) and np.all(points[:, 1] < 12 - 0.5)


def test_points_follow_the_sources(two_source_image):
    points = LuminositySampler(n_samples=2000, random_state=0).fit_transform(two_source_image)
    for row, col, _, _ in TWO_SOURCES:
        # Equal sources: about half the points each.
        assert _near(points, row, col, 8).mean() == pytest.approx(0.5, abs=0.08)


# -- colour features -------------------------------------------------------------------


def test_colour_columns(rgb_image):
    sampler = LuminositySampler(n_samples=1500, color_scale=20.0, random_state=0)
    points = sampler.fit_transform(rgb_image)
    assert points.shape == (1500, 5)
    assert sampler.n_features_out_ == 5
    colours = points[:, 2:]
    assert np.all(colours >= 0) and np.all(colours <= 20.0 + 1e-9)
    # Fractions of the luminosity: they sum to color_scale.
    np.testing.assert_allclose(colours.sum(axis=1), 20.0)
    red = _near(points, 24, 12, 4)
    blue = _near(points, 24, 36, 4)
    assert red.sum() > 300 and blue.sum() > 300
    assert np.median(colours[red, 0]) > 15 and np.median(colours[red, 2]) < 3
    assert np.median(colours[blue, 2]) > 15 and np.median(colours[blue, 0]) < 3


def test_color_scale_multiplies_fractions(rgb_image):
    p10 = LuminositySampler(n_samples=300, color_scale=10.0, random_state=0).fit_transform(
        rgb_image
    )
    p20 = LuminositySampler(n_samples=300, color_scale=20.0, random_state=0).fit_transform(
        rgb_image
    )
    np.testing.assert_array_equal(p10[:, :2], p20[:, :2])
    np.testing.assert_allclose(2 * p10[:, 2:], p20[:, 2:])


def test_color_scale_zero_gives_positions_only(rgb_image):
    sampler = LuminositySampler(n_samples=400, color_scale=0, random_state=0)
    points = sampler.fit_transform(rgb_image)
    assert points.shape == (400, 2)
    assert sampler.n_features_out_ == 2
    with_colour = LuminositySampler(n_samples=400, random_state=0).fit_transform(rgb_image)
    # The positions are drawn first, from the same random stream.
    np.testing.assert_array_equal(points, with_colour[:, :2])


def test_single_band_in_3d_array_gives_positions_only(two_source_image):
    points = LuminositySampler(n_samples=100, color_scale=20.0, random_state=0).fit_transform(
        two_source_image[:, :, None]
    )
    assert points.shape == (100, 2)


def test_transform_rejects_other_number_of_bands(rgb_image):
    sampler = LuminositySampler(n_samples=10, random_state=0).fit(rgb_image)
    with pytest.raises(ValueError, match="band"):
        sampler.transform(rgb_image[:, :, :2])


def test_transform_before_fit_raises(two_source_image):
    with pytest.raises(NotFittedError):
        LuminositySampler().transform(two_source_image)


# -- dtypes ----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_dtypes(dtype, two_source_image):
    image = two_source_image
    if np.dtype(dtype).kind == "u":
        # Fill a good part of the integer range.
        image = np.clip(image * np.iinfo(dtype).max / image.max(), 0, np.iinfo(dtype).max)
    image = image.astype(dtype)
    points = LuminositySampler(n_samples=1000, random_state=0).fit_transform(image)
    assert points.shape == (1000, 2)
    assert points.dtype == np.float64
    assert np.all(np.isfinite(points))
    on_sources = sum(_near(points, r, c, 8) for r, c, _, _ in TWO_SOURCES)
    assert on_sources.mean() > 0.85


def _sampled_bits(image):
    """Points and maps of ``image``, as bytes to compare to the bit."""
    maps, points = LuminositySampler(n_samples=800, random_state=0).sample(image)
    return [a.tobytes() for a in (points, maps.luminosity, maps.candidate_weights, maps.bands)]


@pytest.mark.parametrize(
    "values, dtypes",
    [
        ("small integers", ["u1", "i1", "u2", "i2", ">i2", "i4", "u8"]),
        ("zeros and ones", ["bool", "u1", "i8"]),
        ("large integers", ["i4", ">i4", "u4", "i8", "u8"]),  # not all exact in float32
        ("float16", ["f2", "f4", ">f4", "f8", "g"]),
        ("float64", ["f8", ">f8", "g"]),
    ],
)
def test_the_same_values_in_any_dtype_give_the_same_result(values, dtypes, rgb_image):
    # The kernels read images as float32 or float64, whichever holds the
    # dtype's values exactly: the result is that of the values, not of the dtype.
    image = {
        "small integers": np.clip(np.round(rgb_image), 0, 120),
        "zeros and ones": rgb_image > 40,
        "large integers": np.round(rgb_image) * (2**24 + 1),
        "float16": (rgb_image * 3.1).astype(np.float16),
        "float64": rgb_image * 3.1,
    }[values]
    expected = _sampled_bits(image.astype(dtypes[0]))
    for dtype in dtypes[1:]:
        assert _sampled_bits(image.astype(dtype)) == expected, dtype


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_integer_rgb_colours_are_dequantised(dtype, rgb_image):
    image = np.clip(np.round(rgb_image), 0, 255).astype(dtype)
    sampler = LuminositySampler(n_samples=500, jitter="none", random_state=0)
    points = sampler.fit_transform(image)
    assert points.shape == (500, 5)
    np.testing.assert_allclose(points[:, 2:].sum(axis=1), 20.0)
    # De-quantising jitter of the band values: points on the same pixel get
    # different colours (apart from fractions clipped at 0 or color_scale).
    inner = np.all((points[:, 2:] > 0) & (points[:, 2:] < 20), axis=1)
    assert inner.sum() > 100
    assert np.unique(points[inner], axis=0).shape[0] == inner.sum()
    # Float data are not jittered: points on the same pixel share a colour.
    floats = sampler.fit_transform(image.astype(np.float64))
    assert np.unique(floats, axis=0).shape[0] < floats.shape[0] // 2


@pytest.mark.parametrize("n_bands, sigma", [(1, 1.1), (1, 2.0), (3, 0.7), (3, 1.1), (3, 2.0)])
def test_noise_of_integer_images_is_not_quantised(n_bands, sigma):
    # Sky noise of one or two steps per band: the band mean takes values on a
    # grid of 1 / n_bands, and a MAD taken on them is off by up to a step
    # (0.494 for 0.654 with sigma=1.1 in three bands, before the dither).
    # Below a step of noise in the band mean the quantised values are far
    # from Gaussian and no MAD describes them (the noise floor is then the
    # quantisation's).
    rng = np.random.default_rng(0)
    image = np.round(rng.normal(100.0, sigma, (256, 256, n_bands))).astype(np.uint8)
    expected = image.astype(np.float64).mean(axis=2).std()
    noise = LuminositySampler(smoothing=0).analyse(image).noise
    assert np.median(noise) == pytest.approx(expected, rel=0.05)
    # The sky is a continuous estimate too, not a value of the grid.
    sky = LuminositySampler(smoothing=0).analyse(image).background
    assert np.median(sky) == pytest.approx(image.mean(), abs=0.05 * expected)


def test_boolean_image():
    image = np.zeros((30, 30), dtype=bool)
    image[10:14, 5:9] = True
    points = LuminositySampler(n_samples=200, jitter="uniform", random_state=0).fit_transform(image)
    row, col = _pixel_of(points)
    assert np.all((row >= 10) & (row < 14) & (col >= 5) & (col < 9))


# -- NaN, mask and masked arrays -------------------------------------------------------


def _hole(shape=(64, 64)):
    """A 5 x 5 block over the first source's centre."""
    row, col = TWO_SOURCES[0][:2]
    hole = np.zeros(shape, dtype=bool)
    hole[row - 2 : row + 3, col - 2 : col + 3] = True
    return hole


def _assert_no_point_in(points, hole):
    row, col = _pixel_of(points)
    assert not hole[row, col].any()


def test_nan_pixels_get_no_samples(two_source_image):
    hole = _hole()
    image = two_source_image.copy()
    image[hole] = np.nan
    points = LuminositySampler(n_samples=2000, jitter="uniform", random_state=0).fit_transform(
        image
    )
    assert points.shape == (2000, 2)
    _assert_no_point_in(points, hole)
    # Without the hole the block holds many points: the test can fail.
    full = LuminositySampler(n_samples=2000, jitter="uniform", random_state=0).fit_transform(
        two_source_image
    )
    row, col = _pixel_of(full)
    assert hole[row, col].sum() > 200


def test_nan_in_one_band_masks_the_pixel(rgb_image):
    hole = np.zeros(rgb_image.shape[:2], dtype=bool)
    hole[22:27, 10:15] = True
    image = rgb_image.copy()
    image[hole, 1] = np.nan
    points = LuminositySampler(n_samples=1000, jitter="uniform", random_state=0).fit_transform(
        image
    )
    _assert_no_point_in(points, hole)
    assert np.all(np.isfinite(points))


def test_mask_argument_gets_no_samples(two_source_image):
    hole = _hole()
    sampler = LuminositySampler(n_samples=2000, jitter="uniform", random_state=0)
    points = sampler.fit_transform(two_source_image, mask=hole)
    _assert_no_point_in(points, hole)
    np.testing.assert_array_equal(points, sampler.transform(two_source_image, mask=hole))


def test_mask_does_not_modify_the_image(two_source_image):
    image = two_source_image.copy()
    LuminositySampler(n_samples=100, random_state=0).fit_transform(image, mask=_hole())
    np.testing.assert_array_equal(image, two_source_image)


def test_masked_array_gets_no_samples(two_source_image):
    hole = _hole()
    image = np.ma.masked_array(two_source_image, mask=hole)
    points = LuminositySampler(n_samples=2000, jitter="uniform", random_state=0).fit_transform(
        image
    )
    _assert_no_point_in(points, hole)
    # Same points as NaN at the masked pixels.
    nan_image = two_source_image.copy()
    nan_image[hole] = np.nan
    expected = LuminositySampler(n_samples=2000, jitter="uniform", random_state=0).fit_transform(
        nan_image
    )
    np.testing.assert_array_equal(points, expected)


def test_masked_rgb_array_with_2d_mask(rgb_image):
    hole = np.zeros(rgb_image.shape[:2], dtype=bool)
    hole[20:29, 8:17] = True
    mask = np.broadcast_to(hole[:, :, None], rgb_image.shape)
    image = np.ma.masked_array(rgb_image, mask=mask)
    points = LuminositySampler(n_samples=800, jitter="uniform", random_state=0).fit_transform(image)
    _assert_no_point_in(points, hole)


def test_mask_of_wrong_shape_raises(two_source_image):
    with pytest.raises(ValueError, match=r"\(64, 64\)"):
        LuminositySampler().fit(two_source_image, mask=np.zeros((10, 10), dtype=bool))


def test_mask_of_wrong_dtype_raises(two_source_image):
    with pytest.raises(TypeError, match="boolean"):
        LuminositySampler().fit(two_source_image, mask=np.zeros((64, 64), dtype=int))


# -- randomness ------------------------------------------------------------------------


@pytest.mark.parametrize("sampling", ["systematic", "random"])
def test_same_random_state_same_points(sampling, rgb_image):
    a = LuminositySampler(n_samples=500, sampling=sampling, random_state=7)
    b = LuminositySampler(n_samples=500, sampling=sampling, random_state=7)
    pa = a.fit_transform(rgb_image)
    np.testing.assert_array_equal(pa, b.fit_transform(rgb_image))
    # An int seed gives the same points at every transform call.
    np.testing.assert_array_equal(pa, a.transform(rgb_image))


@pytest.mark.parametrize("sampling", ["systematic", "random"])
def test_different_seeds_different_points(sampling, two_source_image):
    pa = LuminositySampler(n_samples=500, sampling=sampling, random_state=1).fit_transform(
        two_source_image
    )
    pb = LuminositySampler(n_samples=500, sampling=sampling, random_state=2).fit_transform(
        two_source_image
    )
    assert pa.shape == pb.shape
    assert not np.array_equal(pa, pb)


def test_random_state_instance_advances(two_source_image):
    sampler = LuminositySampler(n_samples=200, random_state=np.random.RandomState(0))
    pa = sampler.fit_transform(two_source_image)
    pb = sampler.transform(two_source_image)
    assert not np.array_equal(pa, pb)


def test_systematic_sampling_gives_floor_or_ceiling_counts():
    image = np.zeros((10, 10))
    values = np.array([1.0, 2.0, 3.5, 7.25])
    pixels = [(1, 1), (3, 7), (6, 2), (8, 8)]
    for (r, c), v in zip(pixels, values, strict=True):
        image[r, c] = v
    n = 1000
    points = LuminositySampler(
        n_samples=n,
        background=None,
        smoothing=0,
        detection_threshold=0.0,  # every non-zero pixel is in the footprint
        jitter="none",
        random_state=3,
    ).fit_transform(image)
    expected = n * values / values.sum()
    for (r, c), e in zip(pixels, expected, strict=True):
        count = np.sum((points[:, 0] == c) & (points[:, 1] == r))
        assert np.floor(e) <= count <= np.ceil(e)
    assert points.shape == (n, 2)


# -- n_samples, stretch and analyse ----------------------------------------------------


def test_auto_n_samples_follows_footprint(three_source_image):
    sampler = LuminositySampler(samples_per_pixel=6.0, random_state=0).fit(three_source_image)
    maps = sampler.analyse(three_source_image)
    n_fg = int(np.count_nonzero(maps.weights > 0))
    expected = max(1000, round(6.0 * n_fg))
    assert sampler.n_samples_for(maps) == expected
    assert sampler.transform(three_source_image).shape[0] == expected


def test_auto_n_samples_capped_by_max_samples(three_source_image):
    sampler = LuminositySampler(max_samples=300, random_state=0)
    with pytest.warns(SparseSamplingWarning, match="max_samples=300"):
        assert sampler.fit_transform(three_source_image).shape == (300, 2)


def test_n_samples_zero_gives_empty_output(two_source_image):
    points = LuminositySampler(n_samples=0, random_state=0).fit_transform(two_source_image)
    assert points.shape == (0, 2)


def test_nothing_above_threshold_warns_and_returns_empty():
    image = np.random.default_rng(0).normal(0, 1, (32, 32))
    sampler = LuminositySampler(n_samples=100, detection_threshold=100.0, random_state=0)
    with pytest.warns(DegenerateDataWarning, match="detection threshold"):
        points = sampler.fit_transform(image)
    assert points.shape == (0, 2)


def test_stretch_gives_faint_source_more_points():
    image = gaussian_image((64, 64), ((20, 18, 100.0, 2.5), (44, 46, 10.0, 2.5)), seed=1)
    share = {}
    for stretch in ("linear", "sqrt", "asinh"):
        points = LuminositySampler(n_samples=3000, stretch=stretch, random_state=0).fit_transform(
            image
        )
        share[stretch] = _near(points, 44, 46, 6).mean()
    assert share["linear"] < share["sqrt"] < share["asinh"]
    assert share["linear"] < 0.15


def test_analyse_maps(two_source_image):
    maps = LuminositySampler().analyse(two_source_image)
    assert isinstance(maps, SampledImage)
    for name in ("luminosity", "background", "noise", "weights", "footprint"):
        assert getattr(maps, name).shape == (64, 64), name
    assert maps.bands.shape == (64, 64, 1)
    assert maps.footprint.dtype == bool
    np.testing.assert_allclose(maps.background, 10.0, atol=0.3)
    np.testing.assert_allclose(maps.noise, 1.0, atol=0.2)
    assert np.all(maps.weights[~maps.footprint] == 0)
    assert np.all(maps.weights >= 0)
    for row, col, _, _ in TWO_SOURCES:
        assert maps.footprint[row, col]
    # Far from the sources most pixels are sky.
    assert maps.footprint[:, 28:36].mean() < 0.05


def test_constant_background_is_subtracted(two_source_image):
    maps = LuminositySampler(background=10.0).analyse(two_source_image)
    # The luminosity map is float32 (it is the largest array the sampler holds).
    np.testing.assert_allclose(maps.luminosity, two_source_image - 10.0, rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(maps.background, 10.0)
    maps = LuminositySampler(background=None).analyse(two_source_image)
    np.testing.assert_allclose(maps.luminosity, two_source_image, rtol=1e-6)


def test_analysis_footprint_is_the_isophote_in_pixel_noise(two_source_image):
    maps = LuminositySampler().analyse(two_source_image)
    # Within the footprint, exactly the pixels whose smoothed luminosity
    # reaches 1.5 standard deviations of the pixel noise (not the smoothed).
    smoothed = maps.smoothed_luminosity
    want = maps.footprint & (smoothed >= 1.5 * maps.noise)
    assert np.mean(maps.analysis_footprint != want) < 1e-3
    assert 0 < maps.analysis_footprint.sum() < maps.footprint.sum()
    assert np.all(maps.smooth_noise < maps.noise)  # smoothing lowers the noise
    whole = LuminositySampler(analysis_threshold=None).analyse(two_source_image)
    np.testing.assert_array_equal(whole.analysis_footprint, whole.footprint)
    # The cut changes where segments end, not what is sampled.
    np.testing.assert_array_equal(whole.footprint, maps.footprint)
    higher = LuminositySampler(analysis_threshold=4.0).analyse(two_source_image)
    assert np.all(maps.analysis_footprint[higher.analysis_footprint])
    assert higher.analysis_footprint.sum() < maps.analysis_footprint.sum()


def test_higher_threshold_smaller_footprint(two_source_image):
    low = LuminositySampler(detection_threshold=2.0).analyse(two_source_image).footprint
    high = LuminositySampler(detection_threshold=8.0).analyse(two_source_image).footprint
    assert high.sum() < low.sum()
    assert np.all(low[high])


# -- input validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "error", "match"),
    [
        (np.zeros(10), ValueError, "shape"),
        (np.zeros((2, 2, 2, 2)), ValueError, "shape"),
        (np.zeros((0, 5)), ValueError, "zero-sized"),
        (np.array([["a", "b"]]), TypeError, "dtype"),
        (np.zeros((3, 3), dtype=complex), TypeError, "dtype"),
        (np.array([[1.0, np.inf]]), ValueError, "infinite"),
    ],
)
def test_bad_images_raise(image, error, match):
    with pytest.raises(error, match=match):
        LuminositySampler().fit(image)


@pytest.mark.parametrize(
    "params",
    [
        {"n_samples": -1},
        {"n_samples": "many"},
        {"stretch": "log"},
        {"jitter": "gaussian"},
        {"sampling": "stratified"},
        {"color_scale": -1.0},
        {"smoothing": -0.5},
        {"background": "median"},
    ],
)
def test_invalid_parameters_raise_on_fit(params, two_source_image):
    with pytest.raises(ValueError, match=next(iter(params))):
        LuminositySampler(**params).fit(two_source_image)


def test_list_input_is_accepted():
    image = np.zeros((8, 8))
    image[4, 4] = 10.0
    points = LuminositySampler(
        n_samples=5, background=None, jitter="none", random_state=0
    ).fit_transform(image.tolist())
    np.testing.assert_array_equal(points, np.tile([4.0, 4.0], (5, 1)))


# -- the compiled drawing against the NumPy recipe ------------------------------------------


def _draw_reference(sampler, image):
    """The drawing step as NumPy computes it: the random stream the sampler uses."""
    from sklearn.utils import check_random_state

    maps = sampler.analyse(image)
    rng = check_random_state(sampler.random_state)
    h, w = image.shape[:2]
    positive = maps.candidate_weights > 0
    candidates = maps.candidates[positive]
    cdf = np.cumsum(maps.candidate_weights[positive])
    n = sampler.n_samples
    if sampler.sampling == "systematic":
        u = (np.arange(n) + rng.uniform()) * (cdf[-1] / n)
    else:
        u = rng.uniform(0.0, cdf[-1], size=n)
    pick = candidates[np.minimum(np.searchsorted(cdf, u, side="right"), candidates.size - 1)]
    row, col = np.divmod(pick, w)
    x, y = col.astype(np.float64), row.astype(np.float64)
    if sampler.jitter == "uniform":
        x += rng.uniform(-0.5, 0.5, n)
        y += rng.uniform(-0.5, 0.5, n)
    elif sampler.jitter == "triangular":
        x += rng.uniform(-0.5, 0.5, n) + rng.uniform(-0.5, 0.5, n)
        y += rng.uniform(-0.5, 0.5, n) + rng.uniform(-0.5, 0.5, n)
        x = np.clip(np.where(x < -0.5, -1 - x, x), -0.5, None)
        x = np.clip(np.where(x >= w - 0.5, 2 * w - 1 - x, x), -0.5, np.nextafter(w - 0.5, 0))
        y = np.clip(np.where(y < -0.5, -1 - y, y), -0.5, None)
        y = np.clip(np.where(y >= h - 0.5, 2 * h - 1 - y, y), -0.5, np.nextafter(h - 0.5, 0))
    values = maps.band_values(row, col)
    if image.dtype.kind in "iu":
        values = values + rng.uniform(-0.5, 0.5, values.shape)
    values = np.maximum(values, 0.0)
    total = values.sum(axis=1, keepdims=True)
    frac = np.divide(values, total, out=np.full_like(values, 1 / values.shape[1]), where=total > 0)
    return np.column_stack([x, y, sampler.color_scale * frac])


@pytest.mark.parametrize("jitter", ["triangular", "uniform", "none"])
@pytest.mark.parametrize("sampling", ["systematic", "random"])
@pytest.mark.parametrize("dtype", [np.float64, np.uint8])
def test_drawing_matches_the_numpy_recipe(rgb_image, jitter, sampling, dtype):
    image = rgb_image if dtype == np.float64 else np.clip(rgb_image * 3, 0, 255).astype(np.uint8)
    # Sources on the edge, so that triangular offsets are reflected.
    image = image[5:, 3:]
    # More points than the chunk of uniform draws, so chunking is exercised.
    sampler = LuminositySampler(
        n_samples=200_000, jitter=jitter, sampling=sampling, random_state=3
    ).fit(image)
    points = sampler.transform(image)
    np.testing.assert_array_equal(points, _draw_reference(sampler, image))


@pytest.mark.parametrize("smoothing", [1e5, 1e9, 1e300])
def test_huge_smoothing_is_bounded_by_the_image(smoothing, monkeypatch):
    # A kernel of 4 standard deviations a side would take seconds (1e5),
    # tens of GiB past the memory guard (1e9) or more than NumPy can allocate
    # (1e300); clipped to the image, its cost does not grow with smoothing.
    from skimgcluster import _validation

    monkeypatch.setattr(_validation, "available_memory", lambda: 64 * 2**20)
    image = gaussian_image((64, 64), TWO_SOURCES, noise=1.0, sky=10.0, seed=1)
    sampler = LuminositySampler(smoothing=smoothing, random_state=0)
    maps = sampler.analyse(image)
    assert maps._kernel.size <= 2 * 64 - 1
    assert np.isfinite(maps.luminosity).all()
    X = sampler.fit_transform(image)
    assert X.ndim == 2 and X.shape[1] == 2


def test_colour_scale_is_the_former_name_of_color_scale():
    rng = np.random.default_rng(0)
    image = rng.normal(10, 1, (48, 48, 3))
    image[10:20, 10:20, 0] += 40
    new = LuminositySampler(n_samples=300, color_scale=7.0, random_state=0).fit_transform(image)
    old_sampler = LuminositySampler(n_samples=300, colour_scale=7.0, random_state=0)
    with pytest.warns(FutureWarning, match="colour_scale .* was renamed color_scale"):
        old = old_sampler.fit_transform(image)
    np.testing.assert_array_equal(old, new)
    assert "colour_scale" not in LuminositySampler.__doc__.split("color_scale : float")[0]


def test_tags_declare_images_of_two_or_three_dimensions_with_nan():
    from sklearn.utils import get_tags

    tags = get_tags(LuminositySampler()).input_tags
    assert tags.two_d_array and tags.three_d_array and tags.allow_nan
    # and they are true: a 3-D image with NaN pixels is sampled.
    rng = np.random.default_rng(1)
    image = rng.normal(10, 1, (40, 40, 2))
    image[5:15, 5:15] += 30
    image[0, :3] = np.nan
    points = LuminositySampler(n_samples=200, random_state=0).fit_transform(image)
    assert points.shape == (200, 4) and np.isfinite(points).all()
