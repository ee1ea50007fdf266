"""Exact k-nearest-neighbour search on a grid of the first two features.

Points sampled from an image have pixel coordinates as their first two
features, and their neighbours are spatially local. Bucketing the points in
square cells of those two coordinates and scanning rings of cells outwards
finds the exact k nearest neighbours in the full feature space: the distance
in all features is at least the distance in the first two, so once the k-th
best distance is within the ring already scanned, no farther cell can hold a
closer point.

Both neighbour searches of the package, this grid and the KD-tree
(:func:`kd_tree_knn`), follow one rule for ties: neighbours are ordered by
(squared distance, index), so that among points at the same distance the
lower index comes first, and the ``k`` neighbours returned are the first
``k`` in that order. A KD-tree returns tied neighbours in an order of its
own, so :func:`kd_tree_knn` queries past the ``k``-th neighbour until the
ties at that distance are all in hand and then sorts each row.
"""

import numpy as np

from ._kernels.neighbors import build, query_part, sort_rows
from ._threads import take_rows, threaded
from ._validation import check_memory

__all__ = ["GridIndex", "kd_tree_knn"]

_MAX_UNIT = float(2**31 - 1)


def _query(X, Xs, order, lo, hi, k, cell, x0, y0, slack, cx, cy, ncx, ncy, start):
    """Exact ``k`` nearest neighbours of points ``lo`` to ``hi``, split among threads."""
    sqr = np.empty((hi - lo, k))
    idx = np.empty((hi - lo, k), dtype=np.int64)
    args = (X, Xs, order, lo, k, cell, x0, y0, slack, cx, cy, ncx, ncy, start, sqr, idx)
    threaded(query_part, hi - lo, *args, min_per_thread=1024)
    return sqr, idx


class GridIndex:
    """A grid of the points' first two features for exact k-NN queries.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), n_features >= 2
        Points; the grid is laid on the first two features.
    points_per_cell : float
        Target number of points in the cells where most points lie.
    """

    def __init__(self, X, points_per_cell):
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] < 2 or X.shape[0] == 0:
            raise ValueError(f"X must have shape (n_samples >= 1, >= 2); got {X.shape}.")
        self.X = X
        x0, y0 = X[:, 0].min(), X[:, 1].min()
        # Cell side from the density where most points are: the points-weighted
        # median count of points per unit square.
        # Unit squares beyond 2**31 are merged into the last one, so that the
        # cast and the keys below cannot overflow (only the estimate of the
        # density for such far-flung points changes, not the neighbours).
        ux = np.floor(np.minimum(X[:, 0] - x0, _MAX_UNIT)).astype(np.int64)
        uy = np.floor(np.minimum(X[:, 1] - y0, _MAX_UNIT)).astype(np.int64)
        nux = int(ux.max()) + 1
        # 32-bit keys where they fit (an image's pixels): they sort faster.
        key_type = np.int32 if nux * (int(uy.max()) + 1) <= np.iinfo(np.int32).max else np.int64
        keys = np.sort((uy * nux + ux).astype(key_type))
        # The count of every occupied square (NumPy's sort of the keys is much
        # faster than np.unique's argsort, for the same counts), and their
        # median weighted by the points in each: the median of each square's
        # count repeated once per point in it, read off the sorted counts.
        bounds = np.flatnonzero(keys[1:] != keys[:-1]) + 1
        counts = np.sort(np.diff(np.concatenate(([0], bounds, [keys.size]))))
        points_below = np.cumsum(counts)
        middle = [(keys.size - 1) // 2, keys.size // 2]
        median = counts[np.searchsorted(points_below, middle, side="right")].mean()
        density = max(float(median), 1e-12)
        cell = max(np.sqrt(points_per_cell / density), 1e-9)
        span = max(X[:, 0].max() - x0, X[:, 1].max() - y0, 1e-9)
        cell = max(cell, span / 4096.0)  # at most 4096 x 4096 cells
        last = int(span / cell)
        self.cx = np.minimum(((X[:, 0] - x0) / cell).astype(np.int64), last)
        self.cy = np.minimum(((X[:, 1] - y0) / cell).astype(np.int64), last)
        self.ncx, self.ncy = int(self.cx.max()) + 1, int(self.cy.max()) + 1
        self.cell, self.x0, self.y0 = cell, x0, y0
        # Rounding error of the cell coordinates computed from X, x0 and cell.
        scale = max(abs(x0), abs(y0), span, cell * max(self.ncx, self.ncy))
        self.slack = 64 * np.finfo(np.float64).eps * scale
        self.order, self.start = build(self.cx, self.cy, self.ncx, self.ncy)
        self.X_sorted = take_rows(X, self.order)

    def query_own(self, k, lo=0, hi=None):
        """k nearest neighbours of the indexed points ``lo:hi`` among all of them."""
        n = self.X.shape[0]
        hi = n if hi is None else hi
        if not 1 <= k <= n:
            raise ValueError(f"k must be in [1, n_samples={n}]; got {k}.")
        return _query(
            self.X, self.X_sorted, self.order, lo, hi, k, self.cell, self.x0, self.y0,
            self.slack, self.cx, self.cy, self.ncx, self.ncy, self.start,
        )  # fmt: skip


def _query_sorted(tree, Xq, k, kq, n_tree):
    """The tree's ``kq`` nearest of ``Xq``, rows sorted; and the rows still open."""
    sqr, idx = tree.query(Xq, k=kq, sqr_dists=True)
    m = Xq.shape[0]
    sqr = np.asarray(sqr, dtype=np.float64).reshape(m, kq)
    idx = np.asarray(idx).reshape(m, kq)
    still_open = sort_rows(sqr, idx, k, kq < n_tree)
    return sqr, idx, still_open


# The KD-tree is queried in this many blocks of rows: its own output for a
# block (k + 1 distances and indices a row) is then a quarter of the result's.
_N_BLOCKS = 4


def _lowest_copies(X_tree, Xq, rows, first, k):
    """The ``k`` lowest indices of the copies of ``X_tree[first]``, per row.

    For the rows whose query point equals ``X_tree[first]`` and has at least
    ``k`` copies; returns those rows and their (len(rows), k) indices.
    """
    n, d = X_tree.shape
    check_memory(
        n * (16.0 * d + 32),  # a sorted copy of the points, the groups and their order
        what=f"grouping the copies among {n} points with {d} feature(s)",
        advice="Sample fewer points.",
    )
    _, inverse, counts = np.unique(X_tree, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")  # by copy group, then by index
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    group = inverse[first]
    ok = (counts[group] >= k) & (Xq[rows] == X_tree[first]).all(axis=1)
    return rows[ok], order[starts[group[ok], None] + np.arange(k)]


def kd_tree_knn(tree, X_tree, Xq, k):
    """Exact ``k`` nearest neighbours from a KD-tree, ties to the lower index.

    Parameters
    ----------
    tree : pykdtree.kdtree.KDTree
        KD-tree of ``X_tree``.
    X_tree : ndarray of shape (n_points, n_features)
        The points of the tree.
    Xq : ndarray of shape (n_queries, n_features)
        Query points, C-contiguous float64.
    k : int
        Number of neighbours, at most ``n_points``.

    Returns
    -------
    sqr_distances : ndarray of shape (n_queries, k)
        Squared distances, ascending.
    indices : ndarray of shape (n_queries, k) of uint32 (int64 for 2**32 points or more)
        Indices into ``X_tree``, ordered by (squared distance, index): the
        rule of :meth:`GridIndex.query_own`.

    Raises
    ------
    InsufficientMemoryError
        If resolving a tie would need more memory than is available.

    Notes
    -----
    The tree is asked for ``k + 1`` neighbours: a row whose ``k``-th and
    ``k + 1``-th distances differ holds every point nearer than its ``k``-th
    and, sorted, is exact. Rows where a tie straddles the ``k``-th place are
    asked again for twice as many, until the tie ends or every point is in
    the row. A query point that equals ``k`` or more points of the tree is
    answered from those copies directly, so duplicated data cost no more
    than distinct data. (Distinct points whose squared distance underflows
    to 0, closer than about 1e-154, count as copies only in the first case.)
    """
    n_tree = X_tree.shape[0]
    m = Xq.shape[0]
    kq = min(k + 1, n_tree)
    sqr = np.empty((m, k))
    idx = np.empty((m, k), dtype=np.uint32 if n_tree < 2**32 - 1 else np.int64)
    still_open = np.empty(m, dtype=bool)
    block = max(-(-m // _N_BLOCKS), 1)
    for lo in range(0, m, block):
        hi = min(lo + block, m)
        s, i, still_open[lo:hi] = _query_sorted(tree, Xq[lo:hi], k, kq, n_tree)
        sqr[lo:hi], idx[lo:hi] = s[:, :k], i[:, :k]
        del s, i
    rows = np.flatnonzero(still_open)
    zero = rows[sqr[rows, k - 1] == 0.0]
    if zero.size:
        solved, copies = _lowest_copies(X_tree, Xq, zero, idx[zero, 0], k)
        idx[solved] = copies
        rows = np.setdiff1d(rows, solved, assume_unique=True)
    while rows.size:
        kq = min(2 * kq, n_tree)
        check_memory(
            rows.size * kq * 24.0,
            what=(
                f"the neighbour search of {rows.size} point(s) whose {k}-th nearest "
                f"neighbour is tied in distance with {kq - k} or more others"
            ),
            advice="Such large ties come from duplicated points: jitter the points.",
        )
        s2, i2, open2 = _query_sorted(tree, Xq[rows], k, kq, n_tree)
        sqr[rows], idx[rows] = s2[:, :k], i2[:, :k]
        rows = rows[open2]
    return sqr, idx
