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

import numpy as np
from numba import njit
from scipy import ndimage
from scipy.special import erf

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


def _clipped_stats(values, n_sigma, max_iters):
    """Sigma-clipped median and MAD-based standard deviation along axis 1.

    ``values`` is (n_boxes, n_pixels) with NaN for masked pixels. Returns the
    median and standard deviation of every row, NaN where a row has no valid
    value, and the mask of the values kept by the clipping.
    """
    med, std, lo, hi = _clip_rows_checked(values, n_sigma, max_iters)
    with np.errstate(invalid="ignore"):
        keep = (values >= lo[:, None]) & (values <= hi[:, None])
    return med, std, keep


def _clip_rows_checked(values, n_sigma, max_iters):
    """Clipped median, standard deviation and kept range ``[lo, hi]`` of every row.

    The clipping keeps a range of values, so a value of row ``r`` is kept
    when ``lo[r] <= value <= hi[r]`` (never for NaN, nor for a row with no
    valid value, where ``lo > hi``). Rows are clipped in parallel by a numba
    kernel (:func:`_clip_rows`) that sorts each row once; the rare rows where
    the MAD is 0 go through :func:`_clipped_stats_reference`, which falls
    back on the standard deviation as before.
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
    """:func:`_clipped_stats` in NumPy: the rule the numba kernel implements."""
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


# Start of counters passed to the helpers below: a literal 0 would make numba
# compile every helper twice, once for the constant and once for int64.
_ZERO = np.int64(0)


@njit(cache=True)
def _median_sorted(s, a, b):  # pragma: no cover - compiled
    """Median of the sorted ``s[a:b]`` as ``_nanmedian_rows`` computes it."""
    n = b - a
    return 0.5 * (np.float64(s[a + (n - 1) // 2]) + np.float64(s[a + n // 2]))


@njit(cache=True)
def _mad_sorted(s, a, b, md):  # pragma: no cover - compiled
    """Median of ``abs(s[t] - md)`` over ``t`` in ``[a, b)`` for a sorted ``s``.

    The deviations below and above ``md`` are two sorted sequences; walking
    them as a merge finds the two middle values without sorting (the values
    are those ``_nanmedian_rows`` of the deviations gives).
    """
    n = b - a
    k1 = (n - 1) // 2
    k2 = n // 2
    split = a
    while split < b and np.float64(s[split]) < md:
        split += 1
    i = split - 1
    j = split
    lo = 0.0
    value = 0.0
    for k in range(k2 + 1):
        if i < a:
            value = abs(np.float64(s[j]) - md)
            j += 1
        elif j >= b:
            value = abs(np.float64(s[i]) - md)
            i -= 1
        else:
            left = abs(np.float64(s[i]) - md)
            right = abs(np.float64(s[j]) - md)
            if left <= right:
                value = left
                i -= 1
            else:
                value = right
                j += 1
        if k == k1:
            lo = value
    return 0.5 * (lo + value)


@njit(cache=True)
def _select(x, n, k):  # pragma: no cover - compiled
    """k-th smallest of ``x[:n]`` (no NaN), partially reordering ``x``."""
    left = 0
    right = n - 1
    while right > left:
        # Median of three as pivot, then Hoare partition.
        mid = (left + right) // 2
        p0, p1, p2 = x[left], x[mid], x[right]
        if p0 > p1:
            p0, p1 = p1, p0
        if p1 > p2:
            p1, p2 = p2, p1
            if p0 > p1:
                p0, p1 = p1, p0
        pivot = p1
        i = left
        j = right
        while i <= j:
            while x[i] < pivot:
                i += 1
            while x[j] > pivot:
                j -= 1
            if i <= j:
                x[i], x[j] = x[j], x[i]
                i += 1
                j -= 1
        if k <= j:
            right = j
        elif k >= i:
            left = i
        else:
            return x[k]
    return x[k]


@njit(cache=True)
def _median_select(x, n):  # pragma: no cover - compiled
    """``_nanmedian_rows`` of ``x[:n]`` (no NaN, n > 0), reordering ``x``."""
    k1 = (n - 1) // 2
    k2 = n // 2
    lo = _select(x, n, k1)
    if k2 == k1:
        return 0.5 * (np.float64(lo) + np.float64(lo))
    # After the selection every value from k1 on is >= x[k1]: the next order
    # statistic is the smallest of them.
    hi = x[k1 + 1]
    for t in range(k1 + 2, n):
        if x[t] < hi:
            hi = x[t]
    return 0.5 * (np.float64(lo) + np.float64(hi))


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
    threaded(_clip_rows_part, n_rows, values, n_sigma, max_iters, med, std, lo, hi, flag)
    return med, std, lo, hi, flag


@njit(cache=True, nogil=True)
def _clip_rows_part(r0, r1, values, n_sigma, max_iters, med, std, lo, hi, flag):  # pragma: no cover
    """Rows ``r0`` to ``r1`` of :func:`_clip_rows`, into its outputs."""
    m = values.shape[1]
    for r in range(r0, r1):
        buf = np.empty(m, values.dtype)
        k = _ZERO  # not the literal 0: see _ZERO
        for j in range(m):
            v = values[r, j]
            if v == v:
                buf[k] = v
                k += 1
        if k == 0:
            med[r] = np.nan
            std[r] = np.nan
            lo[r] = np.inf
            hi[r] = -np.inf
            continue
        s = np.sort(buf[:k])
        a, b = _ZERO, k
        for _ in range(max_iters):
            md = _median_sorted(s, a, b)
            sd = 1.4826 * _mad_sorted(s, a, b, md)
            if not sd > 0:
                flag[r] = True
                break
            limit = n_sigma * sd
            na, nb = a, b
            while na < nb and abs(np.float64(s[na]) - md) > limit:
                na += 1
            while nb > na and abs(np.float64(s[nb - 1]) - md) > limit:
                nb -= 1
            if na == a and nb == b:
                break
            a, b = na, nb
        md = _median_sorted(s, a, b)
        sd = 1.4826 * _mad_sorted(s, a, b, md)
        if not sd > 0:
            flag[r] = True
        med[r] = md
        std[r] = sd
        lo[r] = s[a]
        hi[r] = s[b - 1]


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
    threaded(_kept_median_part, n_rows, values, ref, lo, hi, bool(with_mad), med, std)
    return med, std


@njit(cache=True, nogil=True)
def _kept_median_part(r0, r1, values, ref, lo, hi, with_mad, med, std):  # pragma: no cover
    """Rows ``r0`` to ``r1`` of :func:`_kept_median`, into its outputs."""
    m = values.shape[1]
    for r in range(r0, r1):
        buf = np.empty(m, values.dtype)
        k = _ZERO  # not the literal 0: see _ZERO
        for j in range(m):
            v = values[r, j]
            if ref[r, j] >= lo[r] and ref[r, j] <= hi[r] and v == v:
                buf[k] = v
                k += 1
        if k == 0:
            med[r] = np.nan
            std[r] = np.nan
            continue
        md = _median_select(buf, k)
        med[r] = md
        if with_mad:
            dev = np.empty(k)
            for t in range(k):
                dev[t] = abs(np.float64(buf[t]) - md)
            std[r] = 1.4826 * _median_select(dev, k)
        else:
            std[r] = np.nan


def grid_band_sky(data, ref, lo, hi, ny, nx, box_y, box_x, start, step):
    """Median of every band over the kept sub-grid pixels of every box.

    For band ``q``, the values ``float32(data[i, j, q])`` at the sub-grid
    pixels whose ``ref`` value (in the layout of :func:`grid_samples`) lies
    in ``[lo, hi]`` of its box, as :func:`_kept_median` of
    ``grid_samples(data[:, :, q])`` gives, without gathering them first.
    Returns (C, ny * nx) float64, NaN for a box with no kept pixel.
    """
    out = np.empty((data.shape[2], ny * nx))
    geometry = (ny, nx, box_y, box_x, start, step)
    threaded(_grid_band_sky_part, ny * nx, data, ref, lo, hi, *geometry, out)
    return out


@njit(cache=True, nogil=True)
def _grid_band_sky_part(
    b0, b1, data, ref, lo, hi, ny, nx, box_y, box_x, start, step, out
):  # pragma: no cover
    """Boxes ``b0`` to ``b1`` of :func:`grid_band_sky`, into ``out``."""
    n_bands = data.shape[2]
    sy = (box_y - start + step - 1) // step
    sx = (box_x - start + step - 1) // step
    for b in range(b0, b1):
        by = b // nx
        bx = b - by * nx
        buf = np.empty(sy * sx, np.float32)
        for q in range(n_bands):
            k = _ZERO  # not the literal 0: see _ZERO
            for a in range(sy):
                i = by * box_y + start + a * step
                for c in range(sx):
                    e = ref[b, a * sx + c]
                    if e >= lo[b] and e <= hi[b]:
                        v = np.float32(data[i, bx * box_x + start + c * step, q])
                        if v == v:
                            buf[k] = v
                            k += 1
            out[q, b] = _median_select(buf, k) if k else np.nan


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

    def grid(self):
        """(start, step) of the sub-grid of every box, for the numba kernels."""
        return self.sub.start, self.sub.step

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
        out = np.empty((len(meshes), i0.size))
        for k, m in enumerate(flat):
            top = m[i0 * self.nx + j0] * (1 - fx) + m[i0 * self.nx + j1] * fx
            bottom = m[i1 * self.nx + j0] * (1 - fx) + m[i1 * self.nx + j1] * fx
            out[k] = top * (1 - fy) + bottom * fy
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
    mesh = _Mesh(image.shape, box_size)
    med, std, _ = _clipped_stats(mesh.samples(image), n_sigma, max_iters)
    return (
        mesh.expand(mesh.finish(med, filter_size), np.float64),
        mesh.expand(mesh.finish(std, filter_size), np.float64),
    )


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
    threaded(_local_means_part, rows.size, *args, min_per_thread=4096)
    return out


@njit(cache=True, nogil=True)
def _local_means_part(p0, p1, data, rows, cols, kernel, sky, box_y, box_x, out):  # pragma: no cover
    """Pixels ``p0`` to ``p1`` of :func:`local_means`, into ``out``."""
    h, w, c = data.shape
    ny, nx = sky.shape[1], sky.shape[2]
    r = (kernel.size - 1) // 2
    for p in range(p0, p1):
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


@njit(cache=True)
def band_mean(data):  # pragma: no cover - compiled
    """Mean over the bands of an (M, N, C) array as float32 (NaN if any is NaN)."""
    h, w, c = data.shape
    out = np.empty((h, w), np.float32)
    for i in range(h):
        for j in range(w):
            s = 0.0
            for q in range(c):
                s += data[i, j, q]
            out[i, j] = s / c
    return out


@njit(cache=True)
def grid_samples(image, ny, nx, box_y, box_x, start, step):  # pragma: no cover
    """Values of an (M, N) image on the sub-grid of every box, as float32.

    The same layout as :meth:`_Mesh.samples`: (ny * nx, n_per_box), boxes
    row by row, the sub-grid of a box row by row.
    """
    sy = (box_y - start + step - 1) // step
    sx = (box_x - start + step - 1) // step
    out = np.empty((ny * nx, sy * sx), np.float32)
    for by in range(ny):
        for bx in range(nx):
            b = by * nx + bx
            for a in range(sy):
                i = by * box_y + start + a * step
                for c in range(sx):
                    out[b, a * sx + c] = np.float32(image[i, bx * box_x + start + c * step])
    return out


def grid_band_mean(data, mask, ny, nx, box_y, box_x, start, step):
    """Band mean of an (M, N, C) image on the sub-grid of every box, as float32.

    The values :func:`band_mean` gives at those pixels (NaN if a band is NaN,
    or where ``mask``, an (M, N) uint8 array or an empty one for no mask, is
    non-zero), in the layout of :func:`grid_samples`.
    """
    sy = (box_y - start + step - 1) // step
    sx = (box_x - start + step - 1) // step
    out = np.empty((ny * nx, sy * sx), np.float32)
    threaded(_grid_band_mean_part, ny, data, mask, ny, nx, box_y, box_x, start, step, out)
    return out


@njit(cache=True, nogil=True)
def _grid_band_mean_part(
    r0, r1, data, mask, ny, nx, box_y, box_x, start, step, out
):  # pragma: no cover
    """Rows of boxes ``r0`` to ``r1`` of :func:`grid_band_mean`, into ``out``."""
    n_bands = data.shape[2]
    has_mask = mask.size > 0
    sy = (box_y - start + step - 1) // step
    sx = (box_x - start + step - 1) // step
    for by in range(r0, r1):
        for bx in range(nx):
            b = by * nx + bx
            for a in range(sy):
                i = by * box_y + start + a * step
                for c in range(sx):
                    j = bx * box_x + start + c * step
                    s = 0.0
                    for q in range(n_bands):
                        s += data[i, j, q]
                    v = np.float32(s / n_bands)
                    if has_mask and mask[i, j]:
                        v = np.float32(np.nan)
                    out[b, a * sx + c] = v


@njit(cache=True)
def _interpolate_row(rows, i, segments, j0, j1, w0, w1, out):  # pragma: no cover
    """Row ``i`` of the interpolated mesh into ``out``, float32, as a BLAS product.

    ``rows[i, j0] * w0 + rows[i, j1] * w1`` with the second term added to
    the rounded first one before a single rounding, as a fused multiply-add
    does: this reproduces the values of :meth:`_Mesh.expand` (a float32
    matrix product) to the bit on the machines we measured, instead of
    differing by one unit in the last place.
    """
    for s in range(segments.size - 1):
        a = rows[i, j0[segments[s]]]
        b = np.float64(rows[i, j1[segments[s]]])
        for j in range(segments[s], segments[s + 1]):
            out[j] = np.float32(b * w1[j] + np.float64(a * w0[j]))


@njit(cache=True)
def _row_band_mean(src, dst):  # pragma: no cover - compiled
    """Band mean of one (N, C) image row into ``dst``, as :func:`band_mean`."""
    w, n_bands = src.shape
    if n_bands == 3:
        for j in range(w):
            s = 0.0 + src[j, 0]
            s += src[j, 1]
            s += src[j, 2]
            dst[j] = s / 3
    elif n_bands == 1:
        for j in range(w):
            dst[j] = 0.0 + src[j, 0]
    else:
        for j in range(w):
            s = 0.0
            for q in range(n_bands):
                s += src[j, q]
            dst[j] = s / n_bands


def luminosity(data, mask, rows, segments, j0, j1, w0, w1, out):
    """Band mean minus the interpolated sky, float32, in one pass over the image.

    ``data`` is (M, N, C); the band mean is :func:`band_mean`'s (NaN if a
    band is NaN), NaN where ``mask`` (an (M, N) uint8 array, or an empty
    one) is non-zero; the sky is the mesh interpolated as
    :meth:`_Mesh.interpolation` describes. Also returns the largest absolute
    finite value of the result (0 if none), as :func:`abs_max_finite`.
    ``out`` is the (M, N) float32 result, allocated by the caller (NumPy
    backs large arrays with huge pages, which are much faster to fill the
    first time).
    """
    args = (data, mask, rows, segments, j0, j1, w0, w1, out)
    best = threaded(_luminosity_part, data.shape[0], *args, min_per_thread=16)
    return out, max(best)


@njit(cache=True, nogil=True)
def _luminosity_part(i0, i1, data, mask, rows, segments, j0, j1, w0, w1, out):  # pragma: no cover
    """Rows ``i0`` to ``i1`` of :func:`luminosity`; returns their largest finite |value|."""
    w = data.shape[1]
    has_mask = mask.size > 0
    best = 0.0
    for i in range(i0, i1):
        row = out[i]
        sky = np.empty(w, np.float32)
        _interpolate_row(rows, i, segments, j0, j1, w0, w1, sky)
        _row_band_mean(data[i], row)
        if has_mask:
            for j in range(w):
                if mask[i, j]:
                    row[j] = np.nan
        for j in range(w):
            row[j] = row[j] - sky[j]
        # The largest finite |value|: on the bits of float32 with the sign
        # cleared, finite values are those below the exponent of inf and
        # their order is the integers' (a loop the compiler vectorises).
        bits = row.view(np.int32)
        m = np.int32(0)
        for j in range(w):
            a = bits[j] & np.int32(0x7FFFFFFF)
            m = max(m, a if a < np.int32(0x7F800000) else np.int32(0))
        best = max(best, _bits_to_float(m))
    return best


@njit(cache=True)
def _bits_to_float(bits):  # pragma: no cover - compiled
    """The float32 whose bits are the non-negative int32 ``bits``, as float64."""
    a = np.empty(1, np.int32)
    a[0] = bits
    return np.float64(a.view(np.float32)[0])


# Rows of the image per block of the fused smoothing: each block smooths its
# rows along x (plus the kernel's halo) into a buffer of its own, then along y.
_SMOOTH_BLOCK = 64


@njit(cache=True)
def _smooth_x(image, ii, kernel, pad, s, out):  # pragma: no cover - compiled
    """Row ``ii`` of ``image`` smoothed along x into ``out`` (float32).

    NaN counts as 0 (adding 0 * k leaves the never negative-zero sums of
    float64 unchanged, so the sums are those of skipping NaN) and edges are
    replicated; ``pad`` (N + 2r) and ``s`` (N) are float64 scratch rows.
    """
    w = out.size
    r = (kernel.size - 1) // 2
    for j in range(w + 2 * r):
        v = np.float64(image[ii, min(max(j - r, 0), w - 1)])
        pad[j] = v if v == v else 0.0
    if r == 4:  # sigma = 1, the default: the same sums, held in registers
        k0, k1, k2, k3, k4 = kernel[0], kernel[1], kernel[2], kernel[3], kernel[4]
        k5, k6, k7, k8 = kernel[5], kernel[6], kernel[7], kernel[8]
        for j in range(w):
            v = 0.0 + k0 * pad[j]
            v += k1 * pad[j + 1]
            v += k2 * pad[j + 2]
            v += k3 * pad[j + 3]
            v += k4 * pad[j + 4]
            v += k5 * pad[j + 5]
            v += k6 * pad[j + 6]
            v += k7 * pad[j + 7]
            v += k8 * pad[j + 8]
            out[j] = v
        return
    s[:] = 0.0
    for t in range(2 * r + 1):
        kt = kernel[t]
        for j in range(w):
            s[j] += kt * pad[j + t]
    for j in range(w):
        out[j] = s[j]


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
    n_blocks = (h + _SMOOTH_BLOCK - 1) // _SMOOTH_BLOCK
    threaded(_smooth_part, n_blocks, image, kernel, out)
    return out


@njit(cache=True, nogil=True)
def _smooth_part(b0, b1, image, kernel, out):  # pragma: no cover - compiled
    """Blocks of rows ``b0`` to ``b1`` of :func:`smooth_nan_as_zero`, into ``out``."""
    h, w = image.shape
    r = (kernel.size - 1) // 2
    block = _SMOOTH_BLOCK
    for b in range(b0, b1):
        i0 = b * block
        i1 = min(i0 + block, h)
        lo = max(i0 - r, 0)
        hi = min(i1 + r, h)
        tmp = np.empty((hi - lo, w), np.float32)
        pad = np.empty(w + 2 * r)
        s = np.empty(w)
        for ii in range(lo, hi):
            _smooth_x(image, ii, kernel, pad, s, tmp[ii - lo])
        for i in range(i0, i1):
            _smooth_y(tmp, i, lo, h, kernel, out[i])


@njit(cache=True)
def _smooth_y(tmp, i, lo, h, kernel, acc):  # pragma: no cover - compiled
    """Row ``i`` smoothed along y from x-smoothed rows ``tmp`` (row ``lo`` first).

    Every term is added in float64 and rounded to float32, as a float32
    array accumulates.
    """
    r = (kernel.size - 1) // 2
    if r == 4:  # sigma = 1, the default: the same sums, held in registers
        s0 = tmp[min(max(i - 4, 0), h - 1) - lo]
        s1 = tmp[min(max(i - 3, 0), h - 1) - lo]
        s2 = tmp[min(max(i - 2, 0), h - 1) - lo]
        s3 = tmp[min(max(i - 1, 0), h - 1) - lo]
        s4 = tmp[min(max(i, 0), h - 1) - lo]
        s5 = tmp[min(max(i + 1, 0), h - 1) - lo]
        s6 = tmp[min(max(i + 2, 0), h - 1) - lo]
        s7 = tmp[min(max(i + 3, 0), h - 1) - lo]
        s8 = tmp[min(max(i + 4, 0), h - 1) - lo]
        k0, k1, k2, k3, k4 = kernel[0], kernel[1], kernel[2], kernel[3], kernel[4]
        k5, k6, k7, k8 = kernel[5], kernel[6], kernel[7], kernel[8]
        # In two loops of few arrays each, which the compiler vectorises.
        for j in range(acc.size):
            a = np.float32(0.0 + k0 * s0[j])
            a = np.float32(a + k1 * s1[j])
            a = np.float32(a + k2 * s2[j])
            a = np.float32(a + k3 * s3[j])
            acc[j] = np.float32(a + k4 * s4[j])
        for j in range(acc.size):
            a = np.float32(acc[j] + k5 * s5[j])
            a = np.float32(a + k6 * s6[j])
            a = np.float32(a + k7 * s7[j])
            acc[j] = np.float32(a + k8 * s8[j])
        return
    acc[:] = 0.0
    for t in range(-r, r + 1):
        src = tmp[min(max(i + t, 0), h - 1) - lo]
        kt = kernel[t + r]
        for j in range(acc.size):
            acc[j] = acc[j] + kt * src[j]


def grid_smooth(image, kernel, ny, nx, box_y, box_x, start, step):
    """:func:`smooth_nan_as_zero` of an (M, N) image at the boxes' sub-grids only.

    The same values to the bit, in the layout of :func:`grid_samples`: for
    every row of boxes, the rows it needs are smoothed along x at the
    sub-grid's columns only, then along y at its rows.
    """
    sy = (box_y - start + step - 1) // step
    sx = (box_x - start + step - 1) // step
    out = np.empty((ny * nx, sy * sx), np.float32)
    threaded(_grid_smooth_part, ny, image, kernel, ny, nx, box_y, box_x, start, step, out)
    return out


@njit(cache=True, nogil=True)
def _grid_smooth_part(
    r0, r1, image, kernel, ny, nx, box_y, box_x, start, step, out
):  # pragma: no cover
    """Rows of boxes ``r0`` to ``r1`` of :func:`grid_smooth`, into ``out``."""
    h, w = image.shape
    r = (kernel.size - 1) // 2
    sy = (box_y - start + step - 1) // step
    sx = (box_x - start + step - 1) // step
    n_cols = nx * sx
    cols = np.empty(n_cols, np.intp)
    for bx in range(nx):
        for c in range(sx):
            cols[bx * sx + c] = bx * box_x + start + c * step
    for by in range(r0, r1):
        first = by * box_y + start
        last = first + (sy - 1) * step
        lo = max(first - r, 0)
        hi = min(last + r + 1, h)
        tmp = np.empty((hi - lo, n_cols), np.float32)
        for ii in range(lo, hi):
            src = image[ii]
            row = tmp[ii - lo]
            for c in range(n_cols):
                j = cols[c] - r
                s = 0.0
                if j >= 0 and j + 2 * r < w:
                    for t in range(2 * r + 1):
                        v = np.float64(src[j + t])
                        s += kernel[t] * (v if v == v else 0.0)
                else:
                    for t in range(2 * r + 1):
                        v = np.float64(src[min(max(j + t, 0), w - 1)])
                        s += kernel[t] * (v if v == v else 0.0)
                row[c] = s
        for a in range(sy):
            i = first + a * step
            for c in range(n_cols):
                acc = np.float32(0.0)
                for t in range(-r, r + 1):
                    acc = np.float32(acc + kernel[t + r] * tmp[min(max(i + t, 0), h - 1) - lo, c])
                bx = c // sx
                out[by * nx + bx, a * sx + c - bx * sx] = acc


def smooth_footprint(
    lum, kernel, rows, segments, j0, j1, w0, w1, footprint, analysis_rows, analysis
):
    """Footprint of ``lum``: pixels whose smoothed value is above the threshold.

    The smoothing is :func:`smooth_nan_as_zero`'s (the same sums, block by
    block, without keeping the smoothed image); the threshold is the mesh
    interpolated as :meth:`_Mesh.interpolation` describes; pixels where
    ``lum`` is NaN are never in. Fills the (M, N) boolean ``footprint`` and
    returns its flat indices in increasing order (int64) and ``max(lum, 0)``
    at them (float64). ``analysis_rows`` is a second threshold interpolated
    the same way (the factors share ``segments`` to ``w1``): the (M, N)
    boolean ``analysis`` holds the footprint pixels whose smoothed value
    reaches it too.
    """
    h = lum.shape[0]
    counts = np.zeros(h + 1, np.int64)
    n_blocks = (h + _SMOOTH_BLOCK - 1) // _SMOOTH_BLOCK
    args = (lum, kernel, rows, segments, j0, j1, w0, w1, footprint, analysis_rows, analysis, counts)
    threaded(_footprint_part, n_blocks, *args)
    offsets = np.cumsum(counts)
    flat = np.empty(offsets[h], np.int64)
    signal = np.empty(offsets[h])
    threaded(_footprint_pixels, h, lum, footprint, counts, offsets, flat, signal, min_per_thread=16)
    return flat, signal


@njit(cache=True, nogil=True)
def _footprint_part(
    b0, b1, lum, kernel, rows, segments, j0, j1, w0, w1, footprint, analysis_rows, analysis, counts
):  # pragma: no cover
    """Blocks of rows ``b0`` to ``b1`` of :func:`smooth_footprint`: the two maps and row counts."""
    h, w = lum.shape
    r = (kernel.size - 1) // 2
    block = _SMOOTH_BLOCK
    for b in range(b0, b1):
        i0 = b * block
        i1 = min(i0 + block, h)
        lo = max(i0 - r, 0)
        hi = min(i1 + r, h)
        tmp = np.empty((hi - lo, w), np.float32)
        pad = np.empty(w + 2 * r)
        s = np.empty(w)
        acc = np.empty(w, np.float32)
        threshold = np.empty(w, np.float32)
        second = np.empty(w, np.float32)
        for ii in range(lo, hi):
            _smooth_x(lum, ii, kernel, pad, s, tmp[ii - lo])
        for i in range(i0, i1):
            _smooth_y(tmp, i, lo, h, kernel, acc)
            _interpolate_row(rows, i, segments, j0, j1, w0, w1, threshold)
            _interpolate_row(analysis_rows, i, segments, j0, j1, w0, w1, second)
            row = footprint[i]
            row_a = analysis[i]
            values = lum[i]
            c = 0
            for j in range(w):
                f = (acc[j] > threshold[j]) & (values[j] == values[j])
                row[j] = f
                row_a[j] = f & (acc[j] >= second[j])
                c += f
            counts[i + 1] = c


@njit(cache=True, nogil=True)
def _footprint_pixels(i0, i1, lum, footprint, counts, offsets, flat, signal):  # pragma: no cover
    """Rows ``i0`` to ``i1`` of :func:`smooth_footprint`'s flat indices and signal."""
    w = lum.shape[1]
    for i in range(i0, i1):
        if counts[i + 1] == 0:
            continue
        k = offsets[i]
        row = footprint[i]
        values = lum[i]
        for j in range(w):
            if row[j]:
                flat[k] = i * w + j
                signal[k] = max(np.float64(values[j]), 0.0)
                k += 1
