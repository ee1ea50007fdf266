"""Kernels of the sky background: sigma clipping, medians, band means, luminosity.

Medians by sorting or selection with the float64 arithmetic of the NumPy
reference (``_clipped_stats_reference`` in :mod:`.._background`), box
statistics computed on the boxes' sub-grids without gathering the pixels
first, and the one pass over the image that turns its bands into the
background-subtracted luminosity. Served by :mod:`.._background`.
"""

import numpy as np
from numba import njit

# Start of counters passed to the helpers below: a literal 0 would make numba
# compile every helper twice, once for the constant and once for int64.
_ZERO = np.int64(0)


# Below this many values a part of the array is sorted by insertion, as in
# numba's quicksort.
_SMALL_SORT = 15


@njit(cache=True)
def sort(x):
    """Sort ``x`` (no NaN) in place, as ``np.sort`` does in numba.

    numba's own quicksort, written out for values without NaN: the same
    pivots, swaps and insertion sorts, so equal values (-0.0 and 0.0) end
    in the same places as with ``np.sort``, which took 1.7 s of a first run
    to compile against a few tenths of a second for this loop.
    """
    n = x.size
    if n < 2:
        return
    # The larger part waits on the stack: at most log2(n) parts wait.
    stack = np.empty(128, np.int64)
    stack[0] = 0
    stack[1] = n - 1
    top = 2
    while top > 0:
        top -= 2
        low = stack[top]
        high = stack[top + 1]
        while high - low >= _SMALL_SORT:
            # Median of three, stashed at the end during the partition.
            mid = (low + high) >> 1
            if x[mid] < x[low]:
                x[low], x[mid] = x[mid], x[low]
            if x[high] < x[mid]:
                x[high], x[mid] = x[mid], x[high]
            if x[mid] < x[low]:
                x[low], x[mid] = x[mid], x[low]
            pivot = x[mid]
            x[high], x[mid] = x[mid], x[high]
            i = low
            j = high - 1
            while True:
                while i < high and x[i] < pivot:
                    i += 1
                while j >= low and pivot < x[j]:
                    j -= 1
                if i >= j:
                    break
                x[i], x[j] = x[j], x[i]
                i += 1
                j -= 1
            x[i], x[high] = x[high], x[i]
            if high - i > i - low:
                if high > i:
                    stack[top] = i + 1
                    stack[top + 1] = high
                    top += 2
                high = i - 1
            else:
                if i > low:
                    stack[top] = low
                    stack[top + 1] = i - 1
                    top += 2
                low = i + 1
        for i in range(low + 1, high + 1):
            v = x[i]
            j = i
            while j > low and v < x[j - 1]:
                x[j] = x[j - 1]
                j -= 1
            x[j] = v


@njit(cache=True)
def median_sorted(s, a, b):
    """Median of the sorted ``s[a:b]`` as ``_nanmedian_rows`` computes it."""
    n = b - a
    return 0.5 * (np.float64(s[a + (n - 1) // 2]) + np.float64(s[a + n // 2]))


@njit(cache=True)
def mad_sorted(s, a, b, md):
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
def select(x, n, k):
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
def median_select(x, n):
    """``_nanmedian_rows`` of ``x[:n]`` (no NaN, n > 0), reordering ``x``."""
    k1 = (n - 1) // 2
    k2 = n // 2
    lo = select(x, n, k1)
    if k2 == k1:
        return 0.5 * (np.float64(lo) + np.float64(lo))
    # After the selection every value from k1 on is >= x[k1]: the next order
    # statistic is the smallest of them.
    hi = x[k1 + 1]
    for t in range(k1 + 2, n):
        if x[t] < hi:
            hi = x[t]
    return 0.5 * (np.float64(lo) + np.float64(hi))


@njit(cache=True)
def gather_kept(values, r, ref, lo, hi, buf):
    """The values of row ``r`` not NaN whose ``ref`` lies in ``[lo, hi]``, into ``buf``.

    Returns their number; ``buf`` holds them first, in their order.
    """
    k = _ZERO  # not the literal 0: see _ZERO
    for j in range(values.shape[1]):
        v = values[r, j]
        if ref[r, j] >= lo and ref[r, j] <= hi and v == v:
            buf[k] = v
            k += 1
    return k


@njit(cache=True, nogil=True)
def clip_rows_part(r0, r1, values, n_sigma, max_iters, med, std, lo, hi, flag):
    """Rows ``r0`` to ``r1`` of :func:`_clip_rows`, into its outputs."""
    m = values.shape[1]
    for r in range(r0, r1):
        buf = np.empty(m)  # float64 whatever the values: one compile of the helpers
        k = gather_kept(values, r, values, -np.inf, np.inf, buf)  # the values not NaN
        if k == 0:
            med[r] = np.nan
            std[r] = np.nan
            lo[r] = np.inf
            hi[r] = -np.inf
            continue
        s = buf[:k]
        sort(s)
        a, b = _ZERO, k
        for _ in range(max_iters):
            md = median_sorted(s, a, b)
            sd = 1.4826 * mad_sorted(s, a, b, md)
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
        md = median_sorted(s, a, b)
        sd = 1.4826 * mad_sorted(s, a, b, md)
        if not sd > 0:
            flag[r] = True
        med[r] = md
        std[r] = sd
        lo[r] = s[a]
        hi[r] = s[b - 1]


@njit(cache=True, nogil=True)
def kept_median_part(r0, r1, values, ref, lo, hi, with_mad, med, std):
    """Rows ``r0`` to ``r1`` of :func:`_kept_median`, into its outputs."""
    m = values.shape[1]
    for r in range(r0, r1):
        buf = np.empty(m)  # float64, as in clip_rows_part
        k = gather_kept(values, r, ref, lo[r], hi[r], buf)
        if k == 0:
            med[r] = np.nan
            std[r] = np.nan
            continue
        md = median_select(buf, k)
        med[r] = md
        if with_mad:
            dev = np.empty(k)
            for t in range(k):
                dev[t] = abs(np.float64(buf[t]) - md)
            std[r] = 1.4826 * median_select(dev, k)
        else:
            std[r] = np.nan


@njit(cache=True, nogil=True)
def grid_band_sky_part(b0, b1, data, ref, lo, hi, ny, nx, box_y, box_x, start, step, out):
    """Boxes ``b0`` to ``b1`` of :func:`grid_band_sky`, into ``out``."""
    n_bands = data.shape[2]
    sy = (box_y - start + step - 1) // step
    sx = (box_x - start + step - 1) // step
    for b in range(b0, b1):
        by = b // nx
        bx = b - by * nx
        buf = np.empty(sy * sx)  # float64, as in clip_rows_part
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
            out[q, b] = median_select(buf, k) if k else np.nan


@njit(cache=True)
def mesh_coordinate(p, n, box):
    """Lower mesh index and fraction at pixel ``p`` (as ``Mesh._index``)."""
    if n == 1:
        return 0, 0.0
    t = (p + 0.5) / box - 0.5
    if t <= 0.0:
        return 0, 0.0
    if t >= n - 1:
        return n - 2, 1.0
    i0 = int(np.floor(t))
    return i0, t - i0


@njit(cache=True, nogil=True)
def local_means_part(p0, p1, data, rows, cols, kernel, sky, box_y, box_x, out):
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
        i0, fy = mesh_coordinate(rows[p], ny, box_y)
        j0, fx = mesh_coordinate(cols[p], nx, box_x)
        i1 = min(i0 + 1, ny - 1)
        j1 = min(j0 + 1, nx - 1)
        for q in range(c):
            top = sky[q, i0, j0] * (1 - fx) + sky[q, i0, j1] * fx
            bottom = sky[q, i1, j0] * (1 - fx) + sky[q, i1, j1] * fx
            out[p, q] -= top * (1 - fy) + bottom * fy


@njit(cache=True, nogil=True)
def grid_band_mean_part(r0, r1, data, mask, ny, nx, box_y, box_x, start, step, out):
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
def interpolate_row(rows, i, segments, j0, j1, w0, w1, out):
    """Row ``i`` of the interpolated mesh into ``out``, float32, as a BLAS product.

    ``rows[i, j0] * w0 + rows[i, j1] * w1`` with the second term added to
    the rounded first one before a single rounding, as a fused multiply-add
    does: this reproduces the values of :meth:`Mesh.expand` (a float32
    matrix product) to the bit on the machines we measured, instead of
    differing by one unit in the last place.
    """
    for s in range(segments.size - 1):
        a = rows[i, j0[segments[s]]]
        b = np.float64(rows[i, j1[segments[s]]])
        for j in range(segments[s], segments[s + 1]):
            out[j] = np.float32(b * w1[j] + np.float64(a * w0[j]))


@njit(cache=True)
def row_band_mean(src, dst):
    """Band mean of one (N, C) image row into ``dst``, as the luminosity's band mean."""
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


@njit(cache=True, nogil=True)
def luminosity_part(i0, i1, data, mask, rows, segments, j0, j1, w0, w1, out):
    """Rows ``i0`` to ``i1`` of :func:`luminosity`; returns their largest finite |value|."""
    w = data.shape[1]
    has_mask = mask.size > 0
    best = 0.0
    for i in range(i0, i1):
        row = out[i]
        sky = np.empty(w, np.float32)
        interpolate_row(rows, i, segments, j0, j1, w0, w1, sky)
        row_band_mean(data[i], row)
        if has_mask:
            for j in range(w):
                if mask[i, j]:
                    row[j] = np.nan
        for j in range(w):
            row[j] = row[j] - sky[j]
        # The largest finite |value| (inf and NaN fail the first test).
        for j in range(w):
            a = abs(row[j])
            if a < np.inf and a > best:
                best = np.float64(a)
    return best
