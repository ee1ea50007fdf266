"""Kernels of the Gaussian smoothing and of the footprint it thresholds.

A separable filter with edge replication and NaN counted as 0, run block by
block of rows so that the intermediate image never exists whole; the same
sums at the boxes' sub-grids only; and the footprint, thresholded as it is
smoothed. Served by :mod:`.._background`.
"""

import numpy as np
from numba import njit

from .background import interpolate_row

# Rows of the image per block of the fused smoothing: each block smooths its
# rows along x (plus the kernel's halo) into a buffer of its own, then along y.
SMOOTH_BLOCK = 64


@njit(cache=True)
def smooth_x(image, ii, kernel, pad, s, out):
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
    s[:] = 0.0
    for t in range(2 * r + 1):
        kt = kernel[t]
        for j in range(w):
            s[j] += kt * pad[j + t]
    for j in range(w):
        out[j] = s[j]


@njit(cache=True, nogil=True)
def smooth_part(b0, b1, image, kernel, out):
    """Blocks of rows ``b0`` to ``b1`` of :func:`smooth_nan_as_zero`, into ``out``."""
    h = image.shape[0]
    for b in range(b0, b1):
        i0, i1, lo, tmp = block_along_x(image, b, kernel)
        for i in range(i0, i1):
            smooth_y(tmp, i, lo, h, kernel, out[i])


@njit(cache=True)
def block_along_x(image, b, kernel):
    """Block ``b`` of rows of ``image`` and its halo, smoothed along x.

    Returns the block's rows ``i0`` to ``i1``, the first row ``lo`` of its
    halo, and the rows ``lo`` to ``i1 + r`` (clipped to the image) smoothed
    along x (float32), which the smoothing along y of rows ``i0`` to ``i1``
    reads.
    """
    h, w = image.shape
    r = (kernel.size - 1) // 2
    i0 = b * SMOOTH_BLOCK
    i1 = min(i0 + SMOOTH_BLOCK, h)
    lo = max(i0 - r, 0)
    hi = min(i1 + r, h)
    tmp = np.empty((hi - lo, w), np.float32)
    pad = np.empty(w + 2 * r)
    s = np.empty(w)
    for ii in range(lo, hi):
        smooth_x(image, ii, kernel, pad, s, tmp[ii - lo])
    return i0, i1, lo, tmp


@njit(cache=True)
def smooth_y(tmp, i, lo, h, kernel, acc):
    """Row ``i`` smoothed along y from x-smoothed rows ``tmp`` (row ``lo`` first).

    Every term is added in float64 and rounded to float32, as a float32
    array accumulates.
    """
    r = (kernel.size - 1) // 2
    acc[:] = 0.0
    for t in range(-r, r + 1):
        src = tmp[min(max(i + t, 0), h - 1) - lo]
        kt = kernel[t + r]
        for j in range(acc.size):
            acc[j] = acc[j] + kt * src[j]


@njit(cache=True, nogil=True)
def grid_smooth_part(r0, r1, image, kernel, ny, nx, box_y, box_x, start, step, out):
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


@njit(cache=True, nogil=True)
def footprint_part(
    b0, b1, lum, kernel, rows, segments, j0, j1, w0, w1, footprint, analysis_rows, analysis, counts
):
    """Blocks of rows ``b0`` to ``b1`` of :func:`smooth_footprint`: the two maps and row counts."""
    h, w = lum.shape
    for b in range(b0, b1):
        i0, i1, lo, tmp = block_along_x(lum, b, kernel)
        acc = np.empty(w, np.float32)
        threshold = np.empty(w, np.float32)
        second = np.empty(w, np.float32)
        for i in range(i0, i1):
            smooth_y(tmp, i, lo, h, kernel, acc)
            interpolate_row(rows, i, segments, j0, j1, w0, w1, threshold)
            interpolate_row(analysis_rows, i, segments, j0, j1, w0, w1, second)
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
def footprint_pixels(i0, i1, lum, footprint, counts, offsets, flat, signal):
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
