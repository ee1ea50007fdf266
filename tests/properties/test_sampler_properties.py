"""Properties of LuminositySampler."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skimgcluster import LuminositySampler

JITTERS = st.sampled_from(["triangular", "uniform", "none"])
SAMPLINGS = st.sampled_from(["systematic", "random"])
SEEDS = st.integers(0, 2**32 - 1)


@st.composite
def images(draw, max_side=24, max_bands=1):
    """Non-negative images with one bright pixel, so some pixel is detected."""
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    c = draw(st.integers(1, max_bands))
    image = draw(
        hnp.arrays(np.float64, (h, w, c), elements=st.floats(0.0, 10.0, allow_subnormal=False))
    )
    row = draw(st.integers(0, h - 1))
    col = draw(st.integers(0, w - 1))
    image[row, col] += 1000.0
    return image if c > 1 else image[:, :, 0]


def _sampler(**params):
    # With no sky subtracted and a threshold of 0, every pixel of positive
    # smoothed luminosity is in the footprint, so the bright pixel always is,
    # whatever the image (on a tiny or mostly masked image the automatic
    # sky and noise would be those of the bright pixel itself).
    return LuminositySampler(background=None, detection_threshold=0.0, **params)


# -- points stay inside the image ------------------------------------------------------


def test_points_inside_image_example():
    image = np.zeros((3, 5))
    image[0, 4] = image[2, 0] = 10.0
    points = _sampler(n_samples=500, random_state=0).fit_transform(image)
    assert points[:, 0].min() >= -0.5 and points[:, 0].max() < 4.5
    assert points[:, 1].min() >= -0.5 and points[:, 1].max() < 2.5


@given(image=images(), n=st.integers(1, 300), jitter=JITTERS, sampling=SAMPLINGS, seed=SEEDS)
def test_points_inside_image(image, n, jitter, sampling, seed):
    h, w = image.shape[:2]
    points = _sampler(
        n_samples=n, jitter=jitter, sampling=sampling, random_state=seed
    ).fit_transform(image)
    assert points.shape == (n, 2)
    assert np.all(np.isfinite(points))
    x, y = points[:, 0], points[:, 1]
    assert np.all((x >= -0.5) & (x < w - 0.5))
    assert np.all((y >= -0.5) & (y < h - 0.5))


# -- the same seed gives the same points -----------------------------------------------


def test_same_seed_same_points_example():
    image = np.random.default_rng(0).random((10, 10)) + 5.0
    a = _sampler(n_samples=50, random_state=3).fit_transform(image)
    b = _sampler(n_samples=50, random_state=3).fit_transform(image)
    np.testing.assert_array_equal(a, b)


@given(
    image=images(max_bands=3),
    n=st.integers(1, 200),
    jitter=JITTERS,
    sampling=SAMPLINGS,
    seed=SEEDS,
)
def test_same_seed_same_points(image, n, jitter, sampling, seed):
    params = {"n_samples": n, "jitter": jitter, "sampling": sampling, "random_state": seed}
    first = _sampler(**params)
    a = first.fit_transform(image)
    b = _sampler(**params).fit_transform(image)
    np.testing.assert_array_equal(a, b)
    # And again at a later transform call of the same estimator.
    np.testing.assert_array_equal(a, first.transform(image))


# -- number of points and columns ------------------------------------------------------


def test_count_and_columns_example():
    image = np.random.default_rng(1).random((8, 9, 3)) + 1.0
    assert _sampler(n_samples=7, random_state=0).fit_transform(image).shape == (7, 5)
    assert _sampler(n_samples=7, color_scale=0, random_state=0).fit_transform(image).shape == (
        7,
        2,
    )


@given(
    image=images(max_bands=4),
    n=st.integers(1, 200),
    color_scale=st.sampled_from([0.0, 0.5, 20.0]),
    seed=SEEDS,
)
def test_count_and_columns(image, n, color_scale, seed):
    n_bands = 1 if image.ndim == 2 else image.shape[2]
    sampler = _sampler(n_samples=n, color_scale=color_scale, random_state=seed)
    points = sampler.fit_transform(image)
    expected = 2 if (n_bands == 1 or color_scale == 0) else 2 + n_bands
    assert points.shape == (n, expected)
    assert sampler.n_features_out_ == expected
    if expected > 2:
        # Colour columns are fractions of the luminosity times color_scale.
        assert np.all(points[:, 2:] >= 0)
        np.testing.assert_allclose(points[:, 2:].sum(axis=1), color_scale)


# -- masked pixels get no samples ------------------------------------------------------


def _pixels(points):
    return np.floor(points[:, 1] + 0.5).astype(int), np.floor(points[:, 0] + 0.5).astype(int)


def test_nan_pixels_get_no_samples_example():
    image = np.ones((4, 4))
    image[1:3, 1:3] = 100.0
    image[1, 1] = np.nan
    points = _sampler(n_samples=300, jitter="uniform", random_state=0).fit_transform(image)
    rows, cols = _pixels(points)
    assert not np.any((rows == 1) & (cols == 1))


@given(
    data=st.data(),
    h=st.integers(2, 16),
    w=st.integers(2, 16),
    jitter=st.sampled_from(["uniform", "none"]),
    seed=SEEDS,
)
def test_nan_and_masked_pixels_get_no_samples(data, h, w, jitter, seed):
    image = data.draw(hnp.arrays(np.float64, (h, w), elements=st.floats(0.0, 100.0)))
    nan = data.draw(hnp.arrays(bool, (h, w)))
    mask = data.draw(hnp.arrays(bool, (h, w)))
    # Keep one bright, valid pixel so that something is detected.
    r, c = data.draw(st.integers(0, h - 1)), data.draw(st.integers(0, w - 1))
    nan[r, c] = mask[r, c] = False
    image[r, c] = 1000.0
    image[nan] = np.nan
    points = _sampler(n_samples=200, jitter=jitter, random_state=seed).fit_transform(
        image, mask=mask
    )
    assert points.shape == (200, 2)
    rows, cols = _pixels(points)
    assert not np.any(nan[rows, cols] | mask[rows, cols])
