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
def query_part(
    r0, r1, X, Xs, order, lo, k, cell, x0, y0, slack, cx, cy, ncx, ncy, start, sqr, idx
):  # fmt: skip
    """Rows ``r0`` to ``r1`` of :func:`_query`, into ``sqr`` and ``idx``.

    ``Xs`` holds the points in cell order (``X[order]``), so that a cell's
    points are read from consecutive memory.
    """
    n, d = X.shape
    rmax = max(ncx, ncy)
    best = np.empty(k)
    bidx = np.empty(k, dtype=np.int64)
    xi = np.empty(d)
    # Lower bounds of squared distances are compared with this factor below
    # 1: the rounding of a computed squared distance (a sum of d squares)
    # and of the bound itself is far smaller.
    shrink = 1.0 - 1e-12
    for row in range(r0, r1):
        i = row + lo
        for q in range(d):
            xi[q] = X[i, q]
        found = 0
        ci, cj = cx[i], cy[i]
        # Distance from the point to the edges of its own cell, in x and y.
        px = xi[0] - x0 - ci * cell
        py = xi[1] - y0 - cj * cell
        # Less the rounding of these coordinates: a point beyond the rings
        # must be provably no nearer than ``reach``, ties included.
        margin = min(px, cell - px, py, cell - py) - slack
        if margin < 0.0:
            margin = 0.0
        for r in range(rmax + 1):
            for b in range(cj - r, cj + r + 1):
                if b < 0 or b >= ncy:
                    continue
                gy2 = _gap2(b, cj, py, cell, slack)
                if found == k and gy2 * shrink > best[k - 1]:
                    continue
                edge_row = b == cj - r or b == cj + r
                step = 1 if edge_row else 2 * r
                a = ci - r
                while a <= ci + r:
                    if 0 <= a < ncx:
                        gap = gy2 + _gap2(a, ci, px, cell, slack)
                        # Every point of the cell is farther than the k-th
                        # found, ties excluded: skip the cell.
                        if not (found == k and gap * shrink > best[k - 1]):
                            c = b * ncx + a
                            found = _scan_cell(
                                Xs, order, start[c], start[c + 1], xi, d, k, best, bidx, found
                            )
                    if step == 0:
                        break
                    a += step
            # Every point outside the rings scanned is at least this far away;
            # strictly nearer than that, the k-th can be tied by none of them.
            reach = r * cell + margin
            if found == k and best[k - 1] < reach * reach:
                break
        for t in range(k):
            sqr[row, t] = best[t]
            idx[row, t] = bidx[t]


@njit(cache=True, nogil=True, inline="always")
def _gap2(c, own, offset, cell, slack):
    """Squared gap along one axis between a point and the cells ``c``, less ``slack``.

    The point lies ``offset`` into its own cells ``own``; 0 within them.
    """
    if c < own:
        gap = offset + (own - c - 1) * cell - slack
    elif c > own:
        gap = (c - own) * cell - offset - slack
    else:
        return 0.0
    return gap * gap if gap > 0.0 else 0.0


@njit(cache=True, nogil=True, inline="always")
def _scan_cell(Xs, order, p0, p1, xi, d, k, best, bidx, found):
    """Insert the points ``p0`` to ``p1`` of ``Xs`` into the ``found`` best; the new count."""
    for p in range(p0, p1):
        t = xi[0] - Xs[p, 0]
        s = t * t
        t = xi[1] - Xs[p, 1]
        s += t * t
        # The sum only grows with more terms (rounded sums of non-negative
        # terms do not decrease), so a partial sum beyond the k-th rules the
        # point out exactly.
        if found == k and s > best[k - 1]:
            continue
        for q in range(2, d):
            t = xi[q] - Xs[p, q]
            s += t * t
        j = order[p]
        if found < k or s < best[k - 1] or (s == best[k - 1] and j < bidx[k - 1]):
            # Insert keeping (distance, index) ascending.
            m = found if found < k else k - 1
            while m > 0 and (best[m - 1] > s or (best[m - 1] == s and bidx[m - 1] > j)):
                best[m] = best[m - 1]
                bidx[m] = bidx[m - 1]
                m -= 1
            best[m] = s
            bidx[m] = j
            if found < k:
                found += 1
    return found


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
