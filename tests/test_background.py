"""Tests of estimate_background: sky level and noise of a single-band image."""

import numpy as np
import pytest
from conftest import gaussian_image
from helpers import band_mean, clipped_stats, grid_samples
from numba import njit

from skimgcluster import _background, estimate_background
from skimgcluster._kernels.background import median_select, sort


@pytest.mark.parametrize(
    ("shape", "box_size"), [((128, 128), 64), ((128, 96), 32), ((40, 50), 64), ((17, 128), 16)]
)
def test_flat_noisy_image_recovers_level_and_sigma(shape, box_size):
    rng = np.random.default_rng(0)
    image = rng.normal(100.0, 5.0, shape)
    background, noise = estimate_background(image, box_size=box_size)
    assert background.shape == shape and noise.shape == shape
    # Uncertainty of the median and MAD of one box of >= 256 pixels: < 0.5.
    np.testing.assert_allclose(background, 100.0, atol=1.0)
    np.testing.assert_allclose(noise, 5.0, atol=1.0)
    assert background.mean() == pytest.approx(100.0, abs=0.3)
    assert noise.mean() == pytest.approx(5.0, abs=0.3)


def test_sources_do_not_bias_the_sky():
    sources = [(20, 20, 500.0, 3.0), (90, 40, 500.0, 3.0), (60, 100, 300.0, 4.0)]
    image = gaussian_image((128, 128), sources, noise=2.0, sky=50.0, seed=1)
    background, noise = estimate_background(image, box_size=32)
    np.testing.assert_allclose(background, 50.0, atol=0.6)
    np.testing.assert_allclose(noise, 2.0, atol=0.4)


def test_gradient_is_followed():
    rng = np.random.default_rng(2)
    yy, xx = np.mgrid[:128, :128]
    sky = 20.0 + 0.2 * xx + 0.1 * yy
    image = sky + rng.normal(0.0, 1.0, sky.shape)
    background, _ = estimate_background(image, box_size=16, filter_size=1)
    # Away from the edges (beyond the outer box centres the mesh is held
    # constant), the bilinear mesh follows the plane.
    inner = (slice(8, 120), slice(8, 120))
    np.testing.assert_allclose(background[inner], sky[inner], atol=0.6)
    # A single global estimate could not do this.
    assert np.ptp(background) > 30


def test_nan_pixels_are_ignored():
    rng = np.random.default_rng(3)
    image = rng.normal(10.0, 1.0, (64, 64))
    image[::3, ::2] = np.nan
    image[5:30, 5:30] = np.nan
    background, noise = estimate_background(image, box_size=32)
    assert np.all(np.isfinite(background)) and np.all(np.isfinite(noise))
    np.testing.assert_allclose(background, 10.0, atol=0.3)
    np.testing.assert_allclose(noise, 1.0, atol=0.3)


def test_empty_box_takes_the_median_of_the_others():
    rng = np.random.default_rng(4)
    image = rng.normal(7.0, 1.0, (64, 64))
    image[:16, :16] = np.nan  # one whole box of 16 x 16
    background, noise = estimate_background(image, box_size=16, filter_size=1)
    assert np.all(np.isfinite(background))
    np.testing.assert_allclose(background[:16, :16], 7.0, atol=0.3)
    np.testing.assert_allclose(noise[:16, :16], 1.0, atol=0.3)


def test_all_nan_image_gives_zeros():
    background, noise = estimate_background(np.full((20, 20), np.nan))
    np.testing.assert_array_equal(background, 0.0)
    np.testing.assert_array_equal(noise, 0.0)


def test_single_pixel_image():
    background, noise = estimate_background(np.array([[3.0]]))
    np.testing.assert_array_equal(background, [[3.0]])
    assert noise.shape == (1, 1)


def test_quantised_data_with_zero_mad_gets_positive_noise():
    rng = np.random.default_rng(5)
    # Mostly one value: the MAD is 0, the fallback keeps the noise positive.
    image = rng.poisson(0.2, (64, 64)).astype(float)
    assert np.median(np.abs(image - np.median(image))) == 0
    _, noise = estimate_background(image)
    assert np.all(noise > 0)
    assert np.all(noise <= 1.01 * image.std())


def test_result_does_not_depend_on_the_integer_dtype():
    # Integer images are dithered within their step (see sky_statistics):
    # every integer dtype holding the same values gives the same estimate,
    # within a step of the float estimate of those values.
    rng = np.random.default_rng(6)
    image = rng.integers(90, 110, (48, 48))
    b_int, n_int = estimate_background(image.astype(np.uint8), box_size=16)
    for dtype in (np.int16, np.int64, np.uint16):
        b, n = estimate_background(image.astype(dtype), box_size=16)
        np.testing.assert_array_equal(b, b_int)
        np.testing.assert_array_equal(n, n_int)
    b_float, n_float = estimate_background(image.astype(np.float32), box_size=16)
    np.testing.assert_allclose(b_int, b_float, atol=0.5)
    np.testing.assert_allclose(n_int, n_float, atol=0.5)


def test_estimate_background_is_what_the_sampler_uses_on_uint8():
    # One path: the sky and noise of estimate_background are the sampler's
    # maps (which are float32, hence the tolerance). Before they shared it,
    # the sampler's dithering of integer data did not reach estimate_background
    # and the two differed by up to half a step.
    from skimgcluster import LuminositySampler

    rng = np.random.default_rng(12)
    yy, xx = np.mgrid[:192, :160]
    sky = 40 + 0.05 * xx + 0.03 * yy
    source = 120 * np.exp(-((yy - 90) ** 2 + (xx - 70) ** 2) / 30)
    image = np.clip(np.round(sky + source + rng.normal(0, 1.3, sky.shape)), 0, 255)
    image = image.astype(np.uint8)
    background, noise = estimate_background(image, box_size=32)
    maps = LuminositySampler(background_box_size=32).analyse(image)
    np.testing.assert_allclose(background, maps.background, rtol=1e-6)
    np.testing.assert_allclose(noise, maps.noise, rtol=1e-6)


def test_input_is_not_modified():
    rng = np.random.default_rng(7)
    image = rng.normal(0.0, 1.0, (32, 32))
    image[3, 3] = 100.0
    image[4, 4] = np.nan
    copy = image.copy()
    estimate_background(image, box_size=8)
    np.testing.assert_array_equal(image, copy)


def test_flat_sky_with_sources_has_small_noise():
    # A noiseless zero sky (a rendered or dark-subtracted image) with two
    # sources: more than half the pixels are exactly 0, so the MAD is 0 and
    # the noise of the sky is 0. The estimate must not be the spread of the
    # sources (13.7 today), or a faint source drops below the threshold.
    image = np.round(gaussian_image((64, 64), [(20, 18, 200.0, 2.5), (44, 46, 6.0, 2.5)], noise=0))
    _, noise = estimate_background(image)
    assert noise.max() < 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"box_size": 0}, "box_size"),
        ({"filter_size": 0}, "filter_size"),
        ({"max_iters": 1.5}, "max_iters"),
        ({"n_sigma": -1}, "n_sigma"),
    ],
)
def test_bad_parameters_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        estimate_background(np.zeros((16, 16)), **kwargs)


def test_bad_images():
    with pytest.raises(ValueError, match="single-band"):
        estimate_background(np.zeros((8, 8, 3)))
    with pytest.raises(ValueError, match="empty"):
        estimate_background(np.zeros((0, 8)))
    with pytest.raises(TypeError, match="dtype"):
        estimate_background(np.zeros((8, 8), dtype=complex))


# -- the compiled kernels against plain NumPy recipes -------------------------------------


def _smooth_reference(image, kernel):
    """The plain two-pass filter: float64 sums along x, float32 after every term along y."""
    h, w = image.shape
    r = (kernel.size - 1) // 2
    clean = np.nan_to_num(image.astype(np.float64), nan=0.0)
    pad = np.pad(clean, ((0, 0), (r, r)), mode="edge")
    tmp = np.zeros((h, w))
    for t in range(2 * r + 1):
        tmp = tmp + kernel[t] * pad[:, t : t + w]
    tmp = tmp.astype(np.float32)
    out = np.zeros((h, w), np.float32)
    for t in range(-r, r + 1):
        rows = np.clip(np.arange(h) + t, 0, h - 1)
        out = (out.astype(np.float64) + kernel[t + r] * tmp[rows].astype(np.float64)).astype(
            np.float32
        )
    return out


@pytest.mark.parametrize(("shape", "sigma"), [((150, 97), 1.0), ((7, 5), 1.0), ((66, 130), 2.0)])
def test_smoothing_kernels_match_the_two_pass_filter(shape, sigma):
    rng = np.random.default_rng(0)
    image = rng.normal(0.0, 1.0, shape).astype(np.float32)
    image[rng.random(shape) < 0.02] = np.nan
    kernel = _background.gaussian_kernel(sigma)
    expected = _smooth_reference(image, kernel)
    np.testing.assert_array_equal(_background.smooth_nan_as_zero(image, kernel), expected)
    # At the sub-grids of a mesh: the same values.
    mesh = _background.Mesh(shape, 4)
    mesh.sub = slice(1, None, 2)
    start, step = mesh.grid()
    geometry = (mesh.ny, mesh.nx, mesh.by, mesh.bx, start, step)
    at_grid = _background.grid_smooth(image, kernel, *geometry)
    np.testing.assert_array_equal(at_grid, mesh.samples(expected, np.float32))
    # The fused footprint: smoothed values above the interpolated threshold.
    threshold = np.abs(rng.normal(0.2, 0.1, (mesh.ny, mesh.nx)))
    edge = 2 * threshold
    footprint = np.empty(shape, dtype=bool)
    analysis = np.empty(shape, dtype=bool)
    flat, signal = _background.smooth_footprint(
        image, kernel, *mesh.interpolation(threshold), footprint,
        mesh.interpolation(edge)[0], analysis,
    )  # fmt: skip
    with np.errstate(invalid="ignore"):
        want = (expected > mesh.expand(threshold)) & ~np.isnan(image)
        want_analysis = want & (expected >= mesh.expand(edge))
    # The interpolated threshold may differ from the matrix product by one
    # unit in the last place on other BLAS builds.
    assert np.mean(footprint != want) < 1e-3
    assert np.mean(analysis != want_analysis) < 1e-3
    assert 0 < analysis.sum() < footprint.sum()
    np.testing.assert_array_equal(flat, np.flatnonzero(footprint))
    np.testing.assert_array_equal(signal, np.maximum(image.ravel()[flat], 0.0))


def test_clipping_kernel_matches_the_numpy_rule():
    rng = np.random.default_rng(1)
    for dtype in (np.float32, np.float64):
        values = rng.normal(10.0, 1.0, (300, 64)).astype(dtype)
        values[:, :6] += rng.exponential(20.0, (300, 6)).astype(dtype)
        values[rng.random(values.shape) < 0.1] = np.nan
        values[3] = np.nan  # no valid value
        values[4, :50] = 2.0  # MAD 0: the standard deviation instead
        values[5] = np.round(values[5])
        got = clipped_stats(values, 3.0, 5)
        want = _background._clipped_stats_reference(values, 3.0, 5)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)


def test_median_by_selection():
    rng = np.random.default_rng(2)
    for n in range(1, 40):
        x = rng.integers(0, 5, n).astype(np.float64) if n % 2 else rng.normal(size=n)
        s = np.sort(x)
        assert median_select(x.copy(), n) == 0.5 * (s[(n - 1) // 2] + s[n // 2])


@njit
def _numba_sort(x):
    return np.sort(x)


def _sort_cases():
    rng = np.random.default_rng(5)
    yield np.empty(0, np.float32)
    yield np.array([1.0])
    for n in (2, 3, 14, 15, 16, 17, 100, 1000, 4096):
        yield rng.normal(size=n).astype(np.float32)
        yield rng.integers(-2, 3, n).astype(np.float64)  # many ties
        yield np.sort(rng.normal(size=n))  # sorted
        yield np.sort(rng.normal(size=n))[::-1].copy()  # reversed
        yield np.full(n, 7.0, np.float32)
        zeros = np.where(rng.random(n) < 0.5, -0.0, 0.0)  # -0.0 and 0.0 mixed
        zeros[rng.random(n) < 0.2] = 1.0
        yield zeros.astype(np.float32)
        inf = rng.normal(size=n)
        inf[rng.random(n) < 0.3] = np.inf
        inf[rng.random(n) < 0.3] = -np.inf
        yield inf


def test_sort_is_numbas_np_sort():
    # The same values as np.sort, and -0.0 and 0.0 in the same places as
    # numba's np.sort, which the clipping used before: the bits agree.
    for x in _sort_cases():
        got = x.copy()
        sort(got)
        np.testing.assert_array_equal(got, np.sort(x))
        bits = np.uint64 if x.dtype == np.float64 else np.uint32
        np.testing.assert_array_equal(got.view(bits), _numba_sort(x).view(bits))


def test_luminosity_kernel_is_band_mean_minus_sky():
    rng = np.random.default_rng(3)
    data = rng.normal(5.0, 2.0, (130, 150, 3)).astype(np.float32)
    data[7, 9, 1] = np.nan
    mask = np.zeros((130, 150), dtype=bool)
    mask[20:30, 40:45] = True
    mesh = _background.Mesh((130, 150), 32)
    sky = rng.normal(1.0, 0.5, (mesh.ny, mesh.nx))
    out = np.empty((130, 150), np.float32)
    _, scale = _background.luminosity(data, mask.view(np.uint8), *mesh.interpolation(sky), out)
    want = band_mean(data)
    want[mask] = np.nan
    want -= mesh.expand(sky)
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-6)
    assert np.array_equal(np.isnan(out), np.isnan(want))
    assert scale == np.nanmax(np.abs(out).astype(np.float64))


def test_band_sky_kernel_matches_kept_median():
    rng = np.random.default_rng(4)
    data = rng.normal(3.0, 1.0, (96, 64, 2))
    mesh = _background.Mesh((96, 64), 16)
    mesh.sub = slice(1, None, 3)
    start, step = mesh.grid()
    geometry = (mesh.ny, mesh.nx, mesh.by, mesh.bx, start, step)
    ref = _background.grid_band_mean(data, np.zeros((0, 0), np.uint8), *geometry)
    _, _, lo, hi = _background.clipped_rows(ref, 3.0, 5)
    lo[0], hi[0] = np.inf, -np.inf  # a box with no kept pixel
    got = _background.grid_band_sky(data, ref, lo, hi, *geometry)
    for q in range(2):
        values = grid_samples(data[:, :, q], *geometry)
        np.testing.assert_array_equal(
            got[q], _background._kept_median(values, ref, lo, hi, False)[0]
        )
        np.testing.assert_array_equal(values, mesh.samples(data[:, :, q], np.float32))
    assert np.isnan(got[:, 0]).all()


@pytest.mark.parametrize("sigma", [7.5, 20.0, 1e3])
def test_folded_kernel_gives_the_same_smoothing(sigma):
    # Issue 13, row 1: a kernel wider than the image is clipped to it, its
    # tails added to the end taps; edges are replicated, so nothing changes.
    rng = np.random.default_rng(4)
    image = rng.normal(0.0, 1.0, (30, 25)).astype(np.float32)
    image[rng.random(image.shape) < 0.05] = np.nan
    folded = _background.gaussian_kernel(sigma, max_radius=29)
    assert folded.size == 59
    assert folded.sum() == pytest.approx(1.0, abs=1e-12)
    expected = _background.smooth_nan_as_zero(image, _background.gaussian_kernel(sigma))
    got = _background.smooth_nan_as_zero(image, folded)
    np.testing.assert_allclose(got, expected, rtol=0, atol=5e-6)


@pytest.mark.parametrize("sigma", [1e5, 1e9, 1e300, 1.7e308])
def test_folded_kernel_of_a_huge_sigma_is_bounded_and_finite(sigma):
    kernel = _background.gaussian_kernel(sigma, max_radius=63)
    assert kernel.shape == (127,)
    assert np.all(np.isfinite(kernel)) and np.all(kernel >= 0)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-12)
    # Nearly all the weight of so wide a Gaussian lies beyond the image.
    assert kernel[0] == kernel[-1] > 0.49
    assert _background.gaussian_kernel(sigma, max_radius=0).tolist() == [1.0]
