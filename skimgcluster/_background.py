"""Robust estimates of the sky background and its noise, and fast image filters.

The statistics are computed on a mesh of boxes, as SExtractor and photutils do,
with sigma clipping done by sorting; for large images from a regular sub-grid of
at most ``_MAX_PER_BOX`` pixels of each box, so the cost stays low.
Meshes are interpolated back to pixels bilinearly, by two small matrix
products. Numba kernels (compiled once and cached on disk) do the Gaussian
smoothing and the local band means at sampled pixels in parallel.

The kernels are compiled serial and release the GIL (``nogil=True``); the work
is split among threads of Python by :func:`._threads.threaded`. numba's ``parallel=True``
gives the same speed on these loops but compiles each kernel two to three times
as slowly, and every new environment pays that compile time once.
"""

import warnings
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
from scipy import ndimage
from scipy.special import erf

from ._kernels.background import (
    clip_rows_part,
    grid_band_mean_part,
    grid_band_sky_part,
    kept_median_part,
    local_means_part,
    luminosity_part,
)
from ._kernels.smoothing import (
    SMOOTH_BLOCK,
    footprint_part,
    footprint_pixels,
    grid_smooth_part,
    smooth_part,
)
from ._threads import threaded
from ._validation import Interval, check_params

__all__ = ["estimate_background"]

_MAD_TO_STD = 1.4826
# Images of more pixels than this use a sub-grid of at most _MAX_PER_BOX
# pixels of each box for its statistics (the median of 256 values is within
# 8% of a standard deviation of the box's median, before the median filter
# over 3x3 boxes); smaller images use all their pixels.
_SUBSAMPLE_ABOVE = 2**22
_MAX_PER_BOX = 256


def _nanmedian_rows(values):
    """Median of every row ignoring NaN (NaN for an all-NaN row), by sorting."""
    s = np.sort(values, axis=1)  # NaN sort last
    n = np.count_nonzero(~np.isnan(s), axis=1)
    rows = np.arange(s.shape[0])
    lo = s[rows, np.maximum(n - 1, 0) // 2]
    hi = s[rows, np.maximum(n, 1) // 2 - (n == 0)]
    med = 0.5 * (lo.astype(np.float64) + hi)
    med[n == 0] = np.nan
    return med


def clipped_rows(values, n_sigma, max_iters):
    """Clipped median, standard deviation and kept range ``[lo, hi]`` of every row.

    The clipping keeps a range of values, so a value of row ``r`` is kept
    when ``lo[r] <= value <= hi[r]`` (never for NaN, nor for a row with no
    valid value, where ``lo > hi``). Rows are clipped in parallel by a numba
    kernel (:func:`_clip_rows`) that sorts each row once; the rare rows where
    the MAD is 0 go through :func:`_clipped_stats_reference`, which falls
    back on the standard deviation (a MAD of 0 would clip nothing).
    """
    values = np.asarray(values)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    values = np.ascontiguousarray(values)
    n_rows = values.shape[0]
    if n_rows == 0 or values.shape[1] == 0:
        nan = np.full(n_rows, np.nan)
        return nan, nan.copy(), np.full(n_rows, np.inf), np.full(n_rows, -np.inf)
    med, std, lo, hi, flag = _clip_rows(values, float(n_sigma), int(max_iters))
    if flag.any():
        rows = np.flatnonzero(flag)
        m, sd, keep = _clipped_stats_reference(values[rows], n_sigma, max_iters)
        med[rows], std[rows] = m, sd
        for k, r in enumerate(rows):
            kept = values[r][keep[k]]
            lo[r], hi[r] = (kept.min(), kept.max()) if kept.size else (np.inf, -np.inf)
    return med, std, lo, hi


def _clipped_stats_reference(values, n_sigma, max_iters):
    """:func:`clipped_rows` in NumPy: the rule the numba kernel implements."""
    values = np.array(values)  # a copy, in the caller's precision
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(max_iters):
            med = _nanmedian_rows(values)[:, None]
            dev = np.abs(values - med)
            std = _MAD_TO_STD * _nanmedian_rows(dev)[:, None]
            # Where over half the pixels share one value the MAD is 0: clip on
            # the standard deviation instead, so that sources are still removed.
            std = _std_where_zero(std, values)
            out = (dev > n_sigma * std) & (std > 0)
            if not out.any():
                break
            values[out] = np.nan
        med = _nanmedian_rows(values)
        std = _MAD_TO_STD * _nanmedian_rows(np.abs(values - med[:, None]))
        # Fall back on the clipped standard deviation where the MAD is 0
        # (quantised data with most pixels on one value).
        std = _std_where_zero(std[:, None], values)[:, 0]
    return med, std, ~np.isnan(values)


def _clip_rows(values, n_sigma, max_iters):
    """Sigma clipping of every row of ``values`` by sorting it once.

    The same arithmetic as :func:`_clipped_stats_reference` (medians of the
    two middle values in float64, deviations in float64): the values kept
    after each pass are a contiguous range of the sorted row. Rows with no
    valid value give NaN; rows whose MAD is 0 are flagged for the reference
    implementation, which falls back on the standard deviation.
    """
    n_rows = values.shape[0]
    med = np.empty(n_rows)
    std = np.empty(n_rows)
    lo = np.empty(n_rows, values.dtype)
    hi = np.empty(n_rows, values.dtype)
    flag = np.zeros(n_rows, np.bool_)
    threaded(clip_rows_part, n_rows, values, n_sigma, max_iters, med, std, lo, hi, flag)
    return med, std, lo, hi, flag


def _kept_median(values, ref, lo, hi, with_mad):
    """Median (and MAD-based standard deviation) of every row over the kept values.

    A value ``values[r, j]`` counts when ``lo[r] <= ref[r, j] <= hi[r]`` (the
    pixels kept by the clipping of ``ref``) and it is not NaN; the result is
    ``_nanmedian_rows`` of ``values`` with the others set to NaN, and
    ``_MAD_TO_STD`` times ``_nanmedian_rows`` of the absolute deviations.
    """
    n_rows = values.shape[0]
    med = np.empty(n_rows)
    std = np.empty(n_rows)
    threaded(kept_median_part, n_rows, values, ref, lo, hi, bool(with_mad), med, std)
    return med, std


def grid_band_sky(data, ref, lo, hi, ny, nx, box_y, box_x, start, step):
    """Median of every band over the kept sub-grid pixels of every box.

    For band ``q``, the values ``float32(data[i, j, q])`` at the sub-grid
    pixels whose ``ref`` value (in the layout of :meth:`Mesh.samples`) lies
    in ``[lo, hi]`` of its box, as :func:`_kept_median` of
    ``mesh.samples(data[:, :, q])`` gives, without gathering them first.
    Returns (C, ny * nx) float64, NaN for a box with no kept pixel.
    """
    out = np.empty((data.shape[2], ny * nx))
    geometry = (ny, nx, box_y, box_x, start, step)
    threaded(grid_band_sky_part, ny * nx, data, ref, lo, hi, *geometry, out)
    return out


def _std_where_zero(std, values):
    """Replace zero (or NaN) entries of ``std`` (n, 1) by the rows' nanstd."""
    zero = ~(std[:, 0] > 0)
    if zero.any():
        std = std.copy()
        std[zero, 0] = np.nanstd(values[zero], axis=1)
    return std


class Mesh:
    """Geometry of the mesh of boxes over an (M, N) image."""

    def __init__(self, shape, box_size):
        h, w = shape
        self.shape = (h, w)
        self.by = box_size if h >= 2 * box_size else h
        self.bx = box_size if w >= 2 * box_size else w
        self.ny, self.nx = h // self.by, w // self.bx
        # A regular sub-grid of each box, at most _MAX_PER_BOX pixels.
        step = 1
        if h * w > _SUBSAMPLE_ABOVE:
            step = max(1, int(np.ceil(np.sqrt(self.by * self.bx / _MAX_PER_BOX))))
        self.sub = slice(step // 2, None, step)

    def grid(self):
        """(start, step) of the sub-grid of every box, for the numba kernels."""
        return self.sub.start, self.sub.step

    def geometry(self):
        """``(ny, nx, box_y, box_x, start, step)`` of the boxes and sub-grid, for the kernels."""
        return (self.ny, self.nx, self.by, self.bx, *self.grid())

    def interpolation(self, mesh):
        """Factors of :meth:`expand` for kernels that interpolate on the fly.

        Returns ``rows`` (M, nx) float32, the mesh interpolated to every image
        row (the first of :meth:`expand`'s two products), ``segments``, the
        starts of the runs of columns with the same ``j0`` (and N), and for
        every image column the two mesh columns ``j0``, ``j1`` and their
        float32 weights ``w0``, ``w1``: pixel ``(i, j)`` gets
        ``rows[i, j0[j]] * w0[j] + rows[i, j1[j]] * w1[j]`` in float32
        (see :func:`_interpolate`).
        """
        h, w = self.shape
        wy = self._weights(np.arange(h, dtype=np.float64), self.ny, self.by).astype(np.float32)
        rows = wy @ np.asarray(mesh, dtype=np.float32)
        j0, f = self._index(np.arange(w, dtype=np.float64), self.nx, self.bx)
        j1 = np.minimum(j0 + 1, self.nx - 1)
        # Columns that share j0 form segments, interpolated with two scalars.
        segments = np.flatnonzero(np.diff(j0, prepend=-1)).astype(np.intp)
        segments = np.append(segments, w)
        return rows, segments, j0, j1, (1.0 - f).astype(np.float32), f.astype(np.float32)

    def samples(self, image, dtype=np.float64):
        """(n_boxes, n_per_box) values of the sub-grid of every box."""
        core = image[: self.ny * self.by, : self.nx * self.bx]
        sub = core.reshape(self.ny, self.by, self.nx, self.bx)[:, self.sub, :, self.sub]
        return sub.transpose(0, 2, 1, 3).reshape(self.ny * self.nx, -1).astype(dtype)

    def finish(self, values, filter_size):
        """Fill empty boxes and median-filter a (n_boxes,) array into a mesh."""
        mesh = np.asarray(values, dtype=np.float64).reshape(self.ny, self.nx).copy()
        bad = ~np.isfinite(mesh)
        if bad.all():
            mesh[...] = 0.0
        elif bad.any():
            mesh[bad] = np.median(mesh[~bad])
        if filter_size > 1 and (self.ny > 1 or self.nx > 1):
            size = (min(filter_size, self.ny), min(filter_size, self.nx))
            mesh = ndimage.median_filter(mesh, size=size, mode="nearest")
        return mesh

    def _index(self, positions, n, box):
        """Lower mesh index and fraction for linear interpolation at positions."""
        if n == 1:
            return np.zeros(positions.size, dtype=np.intp), np.zeros(positions.size)
        centres = (np.arange(n) + 0.5) * box - 0.5
        t = np.interp(positions, centres, np.arange(n, dtype=np.float64))
        i0 = np.minimum(np.floor(t).astype(np.intp), n - 2)
        return i0, t - i0

    def _weights(self, positions, n, box):
        """Linear interpolation weights (len(positions), n) from box centres."""
        out = np.zeros((positions.size, n))
        i0, f = self._index(positions, n, box)
        idx = np.arange(positions.size)
        out[idx, i0] = 1.0 - f
        if n > 1:
            out[idx, i0 + 1] = f
        return out

    def expand(self, mesh, dtype=np.float32):
        """Bilinear interpolation of box-centre values onto every pixel."""
        h, w = self.shape
        wy = self._weights(np.arange(h, dtype=np.float64), self.ny, self.by).astype(dtype)
        wx = self._weights(np.arange(w, dtype=np.float64), self.nx, self.bx).astype(dtype)
        return (wy @ np.asarray(mesh, dtype=dtype)) @ wx.T

    def at(self, meshes, rows, cols):
        """Bilinear interpolation of each mesh of ``meshes`` at given pixels only.

        Returns an array of shape (len(meshes), len(rows)).
        """
        i0, fy = self._index(np.asarray(rows, dtype=np.float64), self.ny, self.by)
        j0, fx = self._index(np.asarray(cols, dtype=np.float64), self.nx, self.bx)
        flat = np.stack([np.asarray(m, dtype=np.float64).ravel() for m in meshes])
        i1 = np.minimum(i0 + 1, self.ny - 1)
        j1 = np.minimum(j0 + 1, self.nx - 1)
        # The four corners and weights of every pixel, shared by the meshes.
        corners = [i * self.nx + j for i in (i0, i1) for j in (j0, j1)]
        gx, gy = 1 - fx, 1 - fy
        out = np.empty((len(meshes), i0.size))
        for k, m in enumerate(flat):
            top = m[corners[0]] * gx + m[corners[1]] * fx
            bottom = m[corners[2]] * gx + m[corners[3]] * fx
            out[k] = top * gy + bottom * fy
        return out


def estimate_background(image, *, box_size=64, filter_size=3, n_sigma=3.0, max_iters=5):
    """Estimate the sky level and noise of a single-band image.

    The image is divided into boxes of ``box_size`` pixels; in every box the
    sky level is the sigma-clipped median and the noise the sigma-clipped
    median absolute deviation scaled to a standard deviation, both computed
    on all its pixels (on a regular sub-grid of at most 256 of them for
    images of more than 2**22 pixels). The mesh of box
    values is median-filtered over ``filter_size`` boxes and interpolated
    bilinearly back to the image, as SExtractor and photutils do.

    It is the estimate :class:`~skimgcluster.LuminositySampler` makes with
    ``background='auto'`` (with the defaults and ``box_size`` as its
    ``background_box_size``, its ``maps.background`` and ``maps.noise`` are
    these maps in float32). Pixel values are taken in float32. Integer
    images are dithered within their step before the statistics (from a
    fixed random stream, so the result is reproducible), because a median or
    MAD of values on a grid of integers is off by up to a step; the dither's
    variance is taken out of the noise.

    Parameters
    ----------
    image : (M, N) ndarray
        Single-band image; NaN pixels are masked.
    box_size : int, default=64
        Side of a box in pixels. An image smaller than two boxes on a side
        gets one global estimate on that axis.
    filter_size : int, default=3
        Size of the median filter over the mesh of boxes.
    n_sigma : float, default=3.0
        Clipping threshold in standard deviations.
    max_iters : int, default=5
        Largest number of clipping iterations.

    Returns
    -------
    background : (M, N) ndarray of float64
        Sky level of every pixel.
    noise : (M, N) ndarray of float64
        Standard deviation of the sky noise at every pixel.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"image must be a single-band (M, N) array; got shape {image.shape}.")
    if image.dtype.kind not in "biuf":
        raise TypeError(f"image must have a real numeric dtype; got dtype={image.dtype}.")
    if image.size == 0:
        raise ValueError(f"image must not be empty; got shape {image.shape}.")
    positive_int = [Interval(Integral, 1, None, closed="left")]
    check_params(
        {
            "box_size": positive_int,
            "filter_size": positive_int,
            "n_sigma": [Interval(Real, 0, None, closed="neither")],
            "max_iters": positive_int,
        },
        {
            "box_size": box_size,
            "filter_size": filter_size,
            "n_sigma": n_sigma,
            "max_iters": max_iters,
        },
        "estimate_background",
    )
    mesh = Mesh(image.shape, box_size)
    quantum = 1.0 if image.dtype.kind in "biu" else 0.0
    data = for_kernels(image[:, :, None])
    stats = sky_statistics(data, NO_MASK, mesh, quantum, n_sigma=n_sigma, max_iters=max_iters)
    return (
        mesh.expand(mesh.finish(stats.median, filter_size), np.float64),
        mesh.expand(mesh.finish(stats.std, filter_size), np.float64),
    )


class SkyStatistics(NamedTuple):
    """Clipped statistics of the luminosity (band mean) in every box of a mesh.

    ``samples`` (n_boxes, n_per_box) float32 are the luminosity on the boxes'
    sub-grids (NaN where masked), dithered for integer images;
    ``median`` and ``std`` the clipped sky level and noise of every box (NaN
    for a box with nothing valid); a sample ``samples[b, j]`` is sky (kept by
    the clipping) when ``lo[b] <= samples[b, j] <= hi[b]``.
    """

    samples: np.ndarray
    median: np.ndarray
    std: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


def sky_statistics(data, mask, mesh, quantum, *, n_sigma=3.0, max_iters=5):
    """Sky level and noise of the luminosity of an (M, N, C) image, box by box.

    The one estimate of the sky behind both :func:`estimate_background` and
    :class:`~skimgcluster.LuminositySampler`. ``data`` is in a dtype the
    kernels take (:func:`for_kernels`); ``mask`` an (M, N) uint8 array or
    :data:`NO_MASK`; ``quantum`` the step of integer data (0 for floats).

    Integer images: the band mean takes values on a grid of
    ``quantum / n_bands``, and so do a median and a MAD of them, which are
    then off by up to a step (with noise near one step, the noise comes out
    a quarter low). The statistics are taken on values dithered within their
    step, from a fixed stream so that they do not depend on any random
    state, and the dither's variance is taken out of the noise.

    Returns
    -------
    SkyStatistics
    """
    n_bands = data.shape[2]
    samples = grid_band_mean(data, mask, *mesh.geometry())
    step = quantum / n_bands
    if quantum:
        samples += dither(samples.shape, step)
    med, std, lo, hi = clipped_rows(samples, n_sigma, max_iters)
    if quantum:
        std = np.sqrt(np.maximum(std * std - step * step / 12, 0.0))
    return SkyStatistics(samples, med, std, lo, hi)


def dither(shape, step):
    """Uniform offsets in [-step/2, step/2) from a fixed stream, float32."""
    u = np.random.default_rng(0x5EED).random(shape, dtype=np.float32)
    return (u - np.float32(0.5)) * np.float32(step)


def kernel_dtype(dtype):
    """The dtype the numba kernels read an image of ``dtype`` in: float32 or float64.

    Every kernel that reads the image is compiled for these two only, rather
    than once more for every integer width, float16 and byte order an image
    may come in. Booleans, integers of up to 16 bits and floats of up to 32
    bits are exact in float32; 32-bit integers and wider floats are exact in
    float64, so those images give the same maps and points to the bit as in
    their own dtype. 64-bit integers beyond ``2**53`` in magnitude are
    rounded to float64 (the kernels' float64 sums rounded them too); the
    float32 values taken from them (the bands' sky medians and colours) are
    then rounded twice, which can move them by one unit in the last place.
    """
    if dtype.kind == "b" or (dtype.kind in "iu" and dtype.itemsize <= 2) or (
        dtype.kind == "f" and dtype.itemsize <= 4
    ):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def for_kernels(data):
    """The image C-contiguous in the dtype of :func:`kernel_dtype`, copied only if needed.

    A view (a tile of a larger array, a strided or Fortran-ordered image)
    would have numba compile every kernel that reads the image once more, for
    its layout (about a second each on a first run).
    """
    return np.ascontiguousarray(data, dtype=kernel_dtype(data.dtype))


# The "no mask" argument of the numba kernels.
NO_MASK = np.zeros((0, 0), dtype=np.uint8)


def smooth_noise_mesh(lum, kernel, mesh, stats, noise_mesh, floor, smoothing):
    """Noise of the smoothed luminosity on the mesh, measured on its sky pixels.

    Measured, not derived from the pixel noise: real noise is often
    correlated. The smoothed values at the boxes' sub-grids are computed
    there only; their MAD over the pixels the clipping kept as sky, divided
    by the pixel noise of the box, gives one ratio per box, and the median
    ratio scales ``noise_mesh``. ``floor`` is the pixel noise's floor.
    """
    values = grid_smooth(lum, kernel, *mesh.geometry())
    std_s = _kept_median(values, stats.samples, stats.lo, stats.hi, True)[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = std_s / mesh.finish(stats.std, 1).ravel()
    ratio = ratio[np.isfinite(ratio) & (ratio > 0)]
    gain = 2 * np.sqrt(np.pi) * smoothing  # white noise
    ratio = float(np.median(ratio)) if ratio.size else 1.0 / max(1.0, gain)
    return np.maximum(ratio * noise_mesh, floor / max(1.0, gain))


# Longest tail of a Gaussian kernel summed term by term when it is folded;
# a longer one is summed in closed form (the midpoint rule of its integral,
# relative error about 1 / (24 sigma**2) < 1e-10 at that size).
_MAX_TAIL_TERMS = 2**16


def gaussian_kernel(sigma, max_radius=None):
    """Normalised 1-D Gaussian of radius ``int(4 * sigma + 0.5)``, as scipy.

    Parameters
    ----------
    sigma : float
        Standard deviation in pixels, finite and > 0.
    max_radius : int or None, default=None
        Fold the taps beyond this radius into the two end taps. Every
        smoothing of this module replicates the edges of the image, so along
        an axis of at most ``max_radius + 1`` pixels all taps at ``|t| >=
        max_radius`` read the same edge pixel wherever the kernel is applied:
        the folded kernel gives the same sums, up to rounding, with a length
        bounded by the image instead of growing with ``sigma``.

    Returns
    -------
    kernel : ndarray of shape (2 * radius + 1,)
        The weights, summing to 1.
    """
    full = 4.0 * sigma + 0.5  # inf for sigma near float64's largest values
    if max_radius is None or full < max_radius + 1:
        radius = int(full)
        x = np.arange(-radius, radius + 1, dtype=np.float64)
        k = np.exp(-0.5 * (x / sigma) ** 2)
        return k / k.sum()
    m = int(max_radius)
    if m == 0:
        return np.ones(1)
    # Weights divided by sigma throughout, so that no sum overflows.
    inner = np.exp(-0.5 * (np.arange(-m + 1, m, dtype=np.float64) / sigma) ** 2) / sigma
    if full - m <= _MAX_TAIL_TERMS:
        t = np.arange(m, int(full) + 1, dtype=np.float64)
        tail = np.exp(-0.5 * (t / sigma) ** 2).sum() / sigma
    else:
        end = (np.floor(full) + 0.5) / sigma if np.isfinite(full) else 4.0
        tail = np.sqrt(np.pi / 2) * (erf(end / np.sqrt(2)) - erf((m - 0.5) / sigma / np.sqrt(2)))
    k = np.concatenate(([tail], inner, [tail]))
    return k / k.sum()


def local_means(data, rows, cols, kernel, sky, box_y, box_x):
    """Kernel-weighted mean of every band around given pixels, minus the sky.

    ``data`` is (M, N, C); the separable ``kernel`` is applied with edge
    replication and NaN counting as 0, as :func:`smooth_nan_as_zero`; ``sky``
    is the (C, ny, nx) mesh of band sky levels with boxes of
    ``box_y`` x ``box_x`` pixels, interpolated bilinearly at each pixel.
    Returns (len(rows), C) float64.
    """
    out = np.zeros((rows.size, data.shape[2]))
    args = (data, rows, cols, kernel, sky, box_y, box_x, out)
    threaded(local_means_part, rows.size, *args, min_per_thread=4096)
    return out


def grid_band_mean(data, mask, ny, nx, box_y, box_x, start, step):
    """Band mean of an (M, N, C) image on the sub-grid of every box, as float32.

    The values the luminosity's band mean gives at those pixels (NaN if a band is NaN,
    or where ``mask``, an (M, N) uint8 array or an empty one for no mask, is
    non-zero), in the layout of :meth:`Mesh.samples`.
    """
    sy = (box_y - start + step - 1) // step
    sx = (box_x - start + step - 1) // step
    out = np.empty((ny * nx, sy * sx), np.float32)
    threaded(grid_band_mean_part, ny, data, mask, ny, nx, box_y, box_x, start, step, out)
    return out


def luminosity(data, mask, rows, segments, j0, j1, w0, w1, out):
    """Band mean minus the interpolated sky, float32, in one pass over the image.

    ``data`` is (M, N, C); the band mean is the luminosity's band mean's (NaN if a
    band is NaN), NaN where ``mask`` (an (M, N) uint8 array, or an empty
    one) is non-zero; the sky is the mesh interpolated as
    :meth:`Mesh.interpolation` describes. Also returns the largest absolute
    finite value of the result (0 if none).
    ``out`` is the (M, N) float32 result, allocated by the caller (NumPy
    backs large arrays with huge pages, which are much faster to fill the
    first time).
    """
    args = (data, mask, rows, segments, j0, j1, w0, w1, out)
    best = threaded(luminosity_part, data.shape[0], *args, min_per_thread=16)
    return out, max(best)


def smooth_nan_as_zero(image, kernel):
    """Separable convolution with edge replication; NaN pixels count as 0.

    Equivalent to ``scipy.ndimage.gaussian_filter(np.nan_to_num(image),
    sigma, mode='nearest')`` for ``kernel = gaussian_kernel(sigma)``. Both
    passes run block by block of rows in one parallel loop, so the
    intermediate image never exists whole; the sums are those of the plain
    two-pass filter (float64 along x, rounded to float32 after every term
    along y), to the bit.
    """
    h, w = image.shape
    out = np.empty((h, w), np.float32)
    n_blocks = (h + SMOOTH_BLOCK - 1) // SMOOTH_BLOCK
    threaded(smooth_part, n_blocks, image, kernel, out)
    return out


def grid_smooth(image, kernel, ny, nx, box_y, box_x, start, step):
    """:func:`smooth_nan_as_zero` of an (M, N) image at the boxes' sub-grids only.

    The same values to the bit, in the layout of :meth:`Mesh.samples`: for
    every row of boxes, the rows it needs are smoothed along x at the
    sub-grid's columns only, then along y at its rows.
    """
    sy = (box_y - start + step - 1) // step
    sx = (box_x - start + step - 1) // step
    out = np.empty((ny * nx, sy * sx), np.float32)
    threaded(grid_smooth_part, ny, image, kernel, ny, nx, box_y, box_x, start, step, out)
    return out


def smooth_footprint(
    lum, kernel, rows, segments, j0, j1, w0, w1, footprint, analysis_rows, analysis
):
    """Footprint of ``lum``: pixels whose smoothed value is above the threshold.

    The smoothing is :func:`smooth_nan_as_zero`'s (the same sums, block by
    block, without keeping the smoothed image); the threshold is the mesh
    interpolated as :meth:`Mesh.interpolation` describes; pixels where
    ``lum`` is NaN are never in. Fills the (M, N) boolean ``footprint`` and
    returns its flat indices in increasing order (int64) and ``max(lum, 0)``
    at them (float64). ``analysis_rows`` is a second threshold interpolated
    the same way (the factors share ``segments`` to ``w1``): the (M, N)
    boolean ``analysis`` holds the footprint pixels whose smoothed value
    reaches it too.
    """
    h = lum.shape[0]
    counts = np.zeros(h + 1, np.int64)
    n_blocks = (h + SMOOTH_BLOCK - 1) // SMOOTH_BLOCK
    args = (lum, kernel, rows, segments, j0, j1, w0, w1, footprint, analysis_rows, analysis, counts)
    threaded(footprint_part, n_blocks, *args)
    offsets = np.cumsum(counts)
    flat = np.empty(offsets[h], np.int64)
    signal = np.empty(offsets[h])
    threaded(footprint_pixels, h, lum, footprint, counts, offsets, flat, signal, min_per_thread=16)
    return flat, signal
