"""Robust estimates of the sky background and its noise, and fast image filters.

The statistics are computed on a mesh of boxes, as SExtractor and photutils do,
with sigma clipping done by sorting; for large images from a regular sub-grid of
at most ``_MAX_PER_BOX`` pixels of each box, so the cost stays low.
Meshes are interpolated back to pixels bilinearly, by two small matrix
products. Numba kernels (compiled once and cached on disk) do the Gaussian
smoothing and the local band means at sampled pixels in parallel.
"""

import warnings
from numbers import Integral, Real

import numpy as np
from numba import njit, prange
from scipy import ndimage

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


def _clipped_stats(values, n_sigma, max_iters):
    """Sigma-clipped median and MAD-based standard deviation along axis 1.

    ``values`` is (n_boxes, n_pixels) with NaN for masked pixels. Returns the
    median and standard deviation of every row, NaN where a row has no valid
    value, and the mask of the values kept by the clipping.
    """
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


def _std_where_zero(std, values):
    """Replace zero (or NaN) entries of ``std`` (n, 1) by the rows' nanstd."""
    zero = ~(std[:, 0] > 0)
    if zero.any():
        std = std.copy()
        std[zero, 0] = np.nanstd(values[zero], axis=1)
    return std


class _Mesh:
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
        out = np.empty((len(meshes), i0.size))
        for k, m in enumerate(flat):
            top = m[i0 * self.nx + j0] * (1 - fx) + m[i0 * self.nx + j1] * fx
            bottom = m[i1 * self.nx + j0] * (1 - fx) + m[i1 * self.nx + j1] * fx
            out[k] = top * (1 - fy) + bottom * fy
        return out


def _check_positive_int(name, value):
    if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")


def estimate_background(image, *, box_size=64, filter_size=3, n_sigma=3.0, max_iters=5):
    """Estimate the sky level and noise of a single-band image.

    The image is divided into boxes of ``box_size`` pixels; in every box the
    sky level is the sigma-clipped median and the noise the sigma-clipped
    median absolute deviation scaled to a standard deviation, both computed
    on all its pixels (on a regular sub-grid of at most 256 of them for
    images of more than 2**22 pixels). The mesh of box
    values is median-filtered over ``filter_size`` boxes and interpolated
    bilinearly back to the image, as SExtractor and photutils do.

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
    for name, value in (("box_size", box_size), ("filter_size", filter_size)):
        _check_positive_int(name, value)
    _check_positive_int("max_iters", max_iters)
    if not isinstance(n_sigma, Real) or not n_sigma > 0:
        raise ValueError(f"n_sigma must be a positive number; got {n_sigma!r}.")
    mesh = _Mesh(image.shape, box_size)
    med, std, _ = _clipped_stats(mesh.samples(image), n_sigma, max_iters)
    return (
        mesh.expand(mesh.finish(med, filter_size), np.float64),
        mesh.expand(mesh.finish(std, filter_size), np.float64),
    )


def gaussian_kernel(sigma):
    """Normalised 1-D Gaussian of radius ``int(4 * sigma + 0.5)``, as scipy."""
    radius = int(4.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


@njit(parallel=True, cache=True)
def smooth_nan_as_zero(image, kernel):  # pragma: no cover - compiled
    """Separable convolution with edge replication; NaN pixels count as 0.

    Equivalent to ``scipy.ndimage.gaussian_filter(np.nan_to_num(image),
    sigma, mode='nearest')`` for ``kernel = gaussian_kernel(sigma)``.
    """
    h, w = image.shape
    r = (kernel.size - 1) // 2
    tmp = np.empty((h, w), np.float32)
    out = np.zeros((h, w), np.float32)
    for i in prange(h):
        for j in range(w):
            s = 0.0
            for t in range(-r, r + 1):
                v = image[i, min(max(j + t, 0), w - 1)]
                if v == v:
                    s += kernel[t + r] * v
            tmp[i, j] = s
    for i in prange(h):
        for t in range(-r, r + 1):
            ii = min(max(i + t, 0), h - 1)
            kt = kernel[t + r]
            for j in range(w):
                out[i, j] += kt * tmp[ii, j]
    return out


@njit(cache=True)
def _mesh_coordinate(p, n, box):  # pragma: no cover - compiled
    """Lower mesh index and fraction at pixel ``p`` (as ``_Mesh._index``)."""
    if n == 1:
        return 0, 0.0
    t = (p + 0.5) / box - 0.5
    if t <= 0.0:
        return 0, 0.0
    if t >= n - 1:
        return n - 2, 1.0
    i0 = int(np.floor(t))
    return i0, t - i0


@njit(parallel=True, cache=True)
def local_means(data, rows, cols, kernel, sky, box_y, box_x):  # pragma: no cover
    """Kernel-weighted mean of every band around given pixels, minus the sky.

    ``data`` is (M, N, C); the separable ``kernel`` is applied with edge
    replication and NaN counting as 0, as :func:`smooth_nan_as_zero`; ``sky``
    is the (C, ny, nx) mesh of band sky levels with boxes of
    ``box_y`` x ``box_x`` pixels, interpolated bilinearly at each pixel.
    Returns (len(rows), C) float64.
    """
    h, w, c = data.shape
    ny, nx = sky.shape[1], sky.shape[2]
    r = (kernel.size - 1) // 2
    n = rows.size
    out = np.zeros((n, c))
    for p in prange(n):
        for a in range(-r, r + 1):
            ii = min(max(rows[p] + a, 0), h - 1)
            ka = kernel[a + r]
            for b in range(-r, r + 1):
                jj = min(max(cols[p] + b, 0), w - 1)
                kab = ka * kernel[b + r]
                for q in range(c):
                    v = float(data[ii, jj, q])
                    if v == v:
                        out[p, q] += kab * v
        i0, fy = _mesh_coordinate(rows[p], ny, box_y)
        j0, fx = _mesh_coordinate(cols[p], nx, box_x)
        i1 = min(i0 + 1, ny - 1)
        j1 = min(j0 + 1, nx - 1)
        for q in range(c):
            top = sky[q, i0, j0] * (1 - fx) + sky[q, i0, j1] * fx
            bottom = sky[q, i1, j0] * (1 - fx) + sky[q, i1, j1] * fx
            out[p, q] -= top * (1 - fy) + bottom * fy
    return out


@njit(parallel=True, cache=True)
def band_mean(data):  # pragma: no cover - compiled
    """Mean over the bands of an (M, N, C) array as float32 (NaN if any is NaN)."""
    h, w, c = data.shape
    out = np.empty((h, w), np.float32)
    for i in prange(h):
        for j in range(w):
            s = 0.0
            for q in range(c):
                s += data[i, j, q]
            out[i, j] = s / c
    return out


@njit(parallel=True, cache=True)
def abs_max_finite(image):  # pragma: no cover - compiled
    """Largest absolute value among the finite entries of a 2-D array (0 if none)."""
    h, w = image.shape
    best = np.zeros(h)
    for i in prange(h):
        m = 0.0
        for j in range(w):
            v = abs(float(image[i, j]))
            if v > m and v < np.inf:
                m = v
        best[i] = m
    return best.max() if h else 0.0
