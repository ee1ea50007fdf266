"""AstroLink's kernels with a disk cache, and kernels that replace parts of AstroLink.

Served by the AstroLink wrapper (:mod:`.._astrolink`).
"""

import numpy as np
from numba import njit


def cached(dispatcher):
    """One of AstroLink's numba kernels, compiled again with a disk cache.

    The same Python function and options (AstroLink's own dispatchers have
    no ``cache=True``, so every new process would compile them again). With
    the JIT disabled (``NUMBA_DISABLE_JIT=1``, to measure coverage) numba's
    decorators return plain functions, which are returned as they are.
    """
    if not hasattr(dispatcher, "py_func"):  # NUMBA_DISABLE_JIT=1: a plain function
        return dispatcher
    options = {k: v for k, v in dispatcher.targetoptions.items() if k != "nopython"}
    return njit(cache=True, **options)(dispatcher.py_func)


# NumPy's error model: a zero core ** power gives inf, as AstroLink's array
# expressions do, where numba's Python model would raise ZeroDivisionError.
@njit(cache=True, error_model="numpy")
def log_density(sqr_distances, k_den, d_intrinsic):
    """AstroLink's ``_compute_logRho_njit``, the same arithmetic as plain loops.

    ``log((k_den - sum(sqr) / core) / core ** (d_intrinsic / 2))`` for every
    row, ``core`` its last entry, the sum taken left to right from 0 as
    numba's ``sum(axis=1)`` does: the same values to the bit (tested), and a
    kernel that compiles in a fraction of the time of AstroLink's array
    expressions.
    """
    n, k = sqr_distances.shape
    power = d_intrinsic / 2
    out = np.empty(n)
    for i in range(n):
        core = sqr_distances[i, k - 1]
        total = 0.0
        for j in range(k):
            total += sqr_distances[i, j]
        out[i] = np.log((k_den - total / core) / core**power)
    return out


@njit(cache=True)
def copy_neighbours(sqr, idx, n, start, knn):
    """Copy the first ``knn.shape[1]`` columns of ``idx`` into ``knn``, checking.

    Returns ``(overflow, self_first)``: ``overflow`` if an index is ``n`` or
    more or a row's last squared distance is not finite (pykdtree's marks of
    neighbours at an infinite distance); ``self_first`` if every row starts
    with its own point ``start + row`` (else :func:`_self_first` must fix
    the rows).
    """
    rows, k = idx.shape
    k_link = knn.shape[1]
    overflow = False
    self_first = True
    for i in range(rows):
        last = sqr[i, k - 1]
        if not last < np.inf:
            overflow = True
        for j in range(k):
            if idx[i, j] >= n:
                overflow = True
        for j in range(k_link):
            knn[i, j] = idx[i, j]
        if idx[i, 0] != start + i:
            self_first = False
    return overflow, self_first
