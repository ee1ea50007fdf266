"""Kernels of the clusterer's hierarchy: parents, deepest clusters, labels.

Served by :class:`~skimgcluster.AstroLinkClusterer` (:mod:`.._clusterer`).
"""

import numba
import numpy as np


@numba.njit(cache=True)
def hierarchy(clusters, keep, ordering, raw):
    """Parents, deepest cluster of every point and density floors.

    ``clusters`` is AstroLink's (m + 1, 2) array of ranges of ``ordering``
    (the root first, then parents before their children), ``keep`` the (m,)
    clusters kept. A cluster's parent is the nearest earlier cluster whose
    range contains its start, as in AstroLink's ids (``'1-2-1'`` is a child
    of ``'1-2'``). Returns, over the kept clusters (numbered in order): the
    index of each one's parent (``-1`` for a child of the root or of a
    dropped cluster), the deepest kept cluster of every point (``-1`` for
    none) and the lowest ``raw`` value among each one's members.
    """
    m = clusters.shape[0] - 1
    n = ordering.size
    new_index = np.empty(m + 1, np.intp)
    new_index[:] = -1
    k = 0
    for i in range(1, m + 1):
        if keep[i - 1]:
            new_index[i] = k
            k += 1
    parents = np.empty(k, np.intp)
    parents[:] = -1
    stack = np.empty(m + 1, np.intp)
    stack[0] = 0
    top = 0
    for i in range(1, m + 1):
        while top > 0 and clusters[i, 0] >= clusters[stack[top], 1]:
            top -= 1
        parent = stack[top]
        top += 1
        stack[top] = i
        j = new_index[i]
        if j >= 0:
            parents[j] = new_index[parent]
    # Deepest cluster by position in ordering (children overwrite parents),
    # then by point.
    position = np.empty(n, np.intp)
    position[:] = -1
    floor = np.empty(k)
    for i in range(1, m + 1):
        j = new_index[i]
        if j < 0:
            continue
        lo = np.inf
        for p in range(clusters[i, 0], clusters[i, 1]):
            position[p] = j
            v = raw[ordering[p]]
            if lo == lo and not v >= lo:  # a smaller value or NaN (which stays)
                lo = v
        floor[j] = lo
    deepest = np.empty(n, np.intp)
    for p in range(n):
        deepest[ordering[p]] = position[p]
    return parents, deepest, floor


@numba.njit(cache=True)
def number_used(chosen, n_clusters):
    """Labels of points and clusters: the clusters that label a point, in order."""
    used = np.empty(n_clusters, np.bool_)
    used[:] = False
    for c in chosen:
        if c >= 0:
            used[c] = True
    cluster_labels = np.empty(n_clusters, np.intp)
    cluster_labels[:] = -1
    k = 0
    for j in range(n_clusters):
        if used[j]:
            cluster_labels[j] = k
            k += 1
    labels = np.empty(chosen.size, np.intp)
    for p in range(chosen.size):
        c = chosen[p]
        labels[p] = cluster_labels[c] if c >= 0 else -1
    return labels, cluster_labels
