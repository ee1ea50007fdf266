"""Properties of estimate_background and of the image check."""

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skimgcluster import estimate_background
from skimgcluster._validation import check_image

SIDES = st.integers(1, 40)
BOX_SIZES = st.sampled_from([4, 8, 16, 64])
VALUES = st.floats(-1e3, 1e3, allow_subnormal=False)


# -- a constant image is its own sky, with no noise ------------------------------------


def test_constant_image_example():
    background, noise = estimate_background(np.full((10, 20), 7.5), box_size=4)
    np.testing.assert_array_equal(background, 7.5)
    np.testing.assert_array_equal(noise, 0.0)


@given(h=SIDES, w=SIDES, value=VALUES, box_size=BOX_SIZES)
def test_constant_image(h, w, value, box_size):
    background, noise = estimate_background(np.full((h, w), value), box_size=box_size)
    assert background.shape == noise.shape == (h, w)
    # The sky is estimated in float32, as the sampler's own (one path for both).
    np.testing.assert_allclose(background, np.float32(value), rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(noise, 0.0, atol=1e-9 + 1e-6 * abs(value))


# -- affine equivariance ---------------------------------------------------------------


def test_affine_equivariance_example():
    image = np.random.default_rng(0).normal(3.0, 2.0, (32, 32))
    b, n = estimate_background(image, box_size=8)
    b2, n2 = estimate_background(10.0 * image - 4.0, box_size=8)
    np.testing.assert_allclose(b2, 10.0 * b - 4.0)
    np.testing.assert_allclose(n2, 10.0 * n)


@given(
    data=st.data(),
    h=SIDES,
    w=SIDES,
    box_size=BOX_SIZES,
    scale=st.floats(0.01, 100.0),
    offset=st.floats(-100.0, 100.0),
)
def test_affine_equivariance(data, h, w, box_size, scale, offset):
    # Median, MAD, clipping, median filter and interpolation all commute
    # with x -> scale * x + offset for scale > 0.
    # Values on a 1e-2 grid: distinct values stay distinct in float32 (in which
    # the sky is estimated, as the sampler's) after the transform; values
    # closer than float32's resolution would merge, and no estimator is
    # equivariant to that.
    values = st.integers(-(10**4), 10**4).map(lambda v: v * 1e-2)
    image = data.draw(hnp.arrays(np.float64, (h, w), elements=values))
    b, n = estimate_background(image, box_size=box_size)
    b2, n2 = estimate_background(scale * image + offset, box_size=box_size)
    # float32 arithmetic: errors relative to the largest magnitude involved.
    tol = 1e-5 * (1 + abs(offset) + scale * 100)
    np.testing.assert_allclose(b2, scale * b + offset, rtol=1e-5, atol=tol)
    np.testing.assert_allclose(n2, scale * n, rtol=1e-5, atol=tol)
    assert np.all(n >= 0)
    # The sky lies within the range of the data.
    slack = 1e-5 * (1 + np.abs(image).max())
    assert image.min() - slack <= b.min() and b.max() <= image.max() + slack


# -- check_image keeps the values ------------------------------------------------------


def test_check_image_round_trip_example():
    image = np.arange(6, dtype=np.uint16).reshape(2, 3)
    data, quantum = check_image(image)
    assert quantum == 1.0
    np.testing.assert_array_equal(data[:, :, 0], image)


@given(
    image=hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.int16, np.uint16, np.float32, np.float64]),
        shape=hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=8),
        elements={"allow_nan": False, "allow_infinity": False, "min_value": 0, "max_value": 255},
    )
)
def test_check_image_round_trip(image):
    # Values all below float32's smallest normal number are refused, as documented.
    assume(not 0 < np.abs(image.astype(np.float64)).max() < np.finfo(np.float32).tiny)
    data, quantum = check_image(image)
    assert data.dtype == image.dtype
    assert data.shape == (image.shape if image.ndim == 3 else (*image.shape, 1))
    np.testing.assert_array_equal(data.reshape(image.shape), image)
    assert quantum == (1.0 if image.dtype.kind in "iu" else 0.0)
