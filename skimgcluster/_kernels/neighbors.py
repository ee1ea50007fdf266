"""Kernels of the grid index of exact nearest neighbours in two dimensions.

Building the cells, querying them part by part and sorting each point's
candidates. Served by :mod:`.._neighbors`.
"""

import numpy as np
from numba import njit


@njit(cache=True)
def build(cx, cy, ncx, ncy):
    """Counting sort of points by cell: (order, start of each cell in order)."""
    n = cx.size
    counts = np.zeros(ncx * ncy + 1, dtype=np.int64)
    for i in range(n):
        counts[cy[i] * ncx + cx[i] + 1] += 1
    for c in range(1, counts.size):
        counts[c] += counts[c - 1]
    fill = counts[:-1].copy()
    order = np.empty(n, dtype=np.int64)
    for i in range(n):
        c = cy[i] * ncx + cx[i]
        order[fill[c]] = i
        fill[c] += 1
    return order, counts


@njit(cache=True, nogil=True)
def query_part(r0, r1, X, lo, k, cell, x0, y0, slack, cx, cy, ncx, ncy, order, start, sqr, idx):
    """Rows ``r0`` to ``r1`` of :func:`_query`, into ``sqr`` and ``idx``."""
    n, d = X.shape
    rmax = max(ncx, ncy)
    for row in range(r0, r1):
        i = row + lo
        best = np.full(k, np.inf)
        bidx = np.full(k, -1, dtype=np.int64)
        found = 0
        ci, cj = cx[i], cy[i]
        # Distance from the point to the edges of its own cell, in x and y.
        px = X[i, 0] - x0 - ci * cell
        py = X[i, 1] - y0 - cj * cell
        # Less the rounding of these coordinates: a point beyond the rings
        # must be provably no nearer than ``reach``, ties included.
        margin = min(px, cell - px, py, cell - py) - slack
        if margin < 0.0:
            margin = 0.0
        for r in range(rmax + 1):
            for b in range(cj - r, cj + r + 1):
                if b < 0 or b >= ncy:
                    continue
                edge_row = b == cj - r or b == cj + r
                step = 1 if edge_row else 2 * r
                a = ci - r
                while a <= ci + r:
                    if 0 <= a < ncx:
                        c = b * ncx + a
                        for p in range(start[c], start[c + 1]):
                            j = order[p]
                            s = 0.0
                            for q in range(d):
                                t = X[i, q] - X[j, q]
                                s += t * t
                            if (
                                found < k
                                or s < best[k - 1]
                                or (s == best[k - 1] and j < bidx[k - 1])
                            ):
                                # Insert keeping (distance, index) ascending.
                                m = found if found < k else k - 1
                                while m > 0 and (
                                    best[m - 1] > s or (best[m - 1] == s and bidx[m - 1] > j)
                                ):
                                    best[m] = best[m - 1]
                                    bidx[m] = bidx[m - 1]
                                    m -= 1
                                best[m] = s
                                bidx[m] = j
                                if found < k:
                                    found += 1
                    if step == 0:
                        break
                    a += step
            # Every point outside the rings scanned is at least this far away;
            # strictly nearer than that, the k-th can be tied by none of them.
            reach = r * cell + margin
            if found == k and best[k - 1] < reach * reach:
                break
        sqr[row] = best
        idx[row] = bidx


@njit(cache=True)
def sort_rows(sqr, idx, k, more):
    """Sort each row by (squared distance, index), in place; rows still open.

    A row is still open when its ``k``-th squared distance equals its last
    one and ``more`` points exist beyond the columns queried: another point
    at that distance, with a lower index, may then have been left out.
    """
    rows, kq = idx.shape
    still_open = np.empty(rows, dtype=np.bool_)
    still_open[:] = False
    for i in range(rows):
        for a in range(1, kq):
            s = sqr[i, a]
            j = idx[i, a]
            m = a
            while m > 0 and (sqr[i, m - 1] > s or (sqr[i, m - 1] == s and idx[i, m - 1] > j)):
                sqr[i, m] = sqr[i, m - 1]
                idx[i, m] = idx[i, m - 1]
                m -= 1
            sqr[i, m] = s
            idx[i, m] = j
        if more and sqr[i, k - 1] == sqr[i, kq - 1]:
            still_open[i] = True
    return still_open
