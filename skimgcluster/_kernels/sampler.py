"""Kernels of the drawing of points: systematic sampling, jitter and colours.

Served by :class:`~skimgcluster.LuminositySampler` (:mod:`.._sampler`).
"""

import numpy as np
from numba import njit


@njit(cache=True)
def systematic_index(cdf, n, offset):
    """``min(searchsorted(cdf, (arange(n) + offset) * (cdf[-1] / n), 'right'), m - 1)``."""
    m = cdf.size
    step = cdf[m - 1] / n
    out = np.empty(n, np.int64)
    j = 0
    for k in range(n):
        u = (k + offset) * step
        while j < m and cdf[j] <= u:
            j += 1
        out[k] = min(j, m - 1)
    return out


@njit(cache=True, nogil=True)
def place(q0, q1, pick, w, h, u, start, n_draws, stage, top_x, top_y, points):
    """One stage of columns 0 (x) and 1 (y) of ``points[start + q0:start + q1]``.

    ``pick`` are flat pixel indices; ``u`` are uniform [0, 1) draws for
    these points. With ``n_draws`` 0 the points go on pixel centres; with 2
    (uniform jitter) stage 0 gives x and stage 1 y; with 4 (triangular),
    stages 0 and 2 store the first offset of x and y, stages 1 and 3 add
    the second and reflect at the image's edge (see :func:`reflect_one`):
    ``x = col + ((u0 - 0.5) + (u1 - 0.5))`` in that order.
    """
    for q in range(q0, q1):
        p = start + q
        if n_draws == 0:
            row = pick[p] // w
            points[p, 0] = np.float64(pick[p] - row * w)
            points[p, 1] = np.float64(row)
        elif n_draws == 2:
            row = pick[p] // w
            if stage == 0:
                points[p, 0] = np.float64(pick[p] - row * w) + (-0.5 + u[q])
            else:
                points[p, 1] = np.float64(row) + (-0.5 + u[q])
        elif stage == 0 or stage == 2:
            points[p, stage // 2] = -0.5 + u[q]
        else:
            row = pick[p] // w
            if stage == 1:
                x = np.float64(pick[p] - row * w) + (points[p, 0] + (-0.5 + u[q]))
                points[p, 0] = reflect_one(x, w - 0.5, top_x)
            else:
                y = np.float64(row) + (points[p, 1] + (-0.5 + u[q]))
                points[p, 1] = reflect_one(y, h - 0.5, top_y)


@njit(cache=True)
def reflect_one(v, hi, top):
    """A coordinate that left ``[-0.5, hi)`` reflected back inside at the edge it crossed.

    ``top`` is ``nextafter(hi, -0.5)``: an axis one pixel wide can still be
    outside after one reflection, so the result is clipped to ``[-0.5, top]``.
    """
    lo = -0.5
    if v < lo:
        v = 2 * lo - v
    if v >= hi:
        v = 2 * hi - v
    return min(max(v, lo), top)


@njit(cache=True)
def runs(pick):
    """Starts of the runs of equal values of ``pick``, and every entry's run."""
    n = pick.size
    run = np.empty(n, np.int64)
    starts = np.empty(n, np.int64)
    k = -1
    for p in range(n):
        if p == 0 or pick[p] != pick[p - 1]:
            k += 1
            starts[k] = p
        run[p] = k
    return starts[: k + 1], run


@njit(cache=True, nogil=True)
def colour_fractions(p0, p1, values, run, noise, quantum, scale, points):
    """Columns 2 onwards of ``points[p0:p1]``: ``scale`` times each band's share.

    ``values[run[p]]`` are point ``p``'s band values; with ``quantum``, each
    is de-quantised by ``quantum * (noise - 0.5)`` (``noise`` uniform in
    [0, 1), one per point and band). Negative values count as 0; a point
    whose values are all 0 gets equal shares.
    """
    c = values.shape[1]
    for p in range(p0, p1):
        total = 0.0
        for q in range(c):
            v = values[run[p], q]
            if quantum:
                v = v + quantum * (-0.5 + noise[p, q])
            v = max(v, 0.0)
            points[p, 2 + q] = v
            total += v
        for q in range(c):
            if total > 0:
                points[p, 2 + q] = scale * (points[p, 2 + q] / total)
            else:
                points[p, 2 + q] = scale * (1.0 / c)
