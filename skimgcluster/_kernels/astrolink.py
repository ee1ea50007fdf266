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
@njit(cache=True, error_model="numpy", nogil=True)
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


@njit(cache=True, nogil=True)
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


# fastmath as AstroLink's aggregation kernels, so that the arithmetic on
# prominences (an fma where AstroLink's has one) gives the same bits.
@njit(cache=True, fastmath=True)
def kruskal_aggregate(log_rho, ordered_pairs):
    """AstroLink's ``_aggregate_njit_*`` up to its final clean-up, on arrays instead of lists.

    Kruskal's aggregation of the points along ``ordered_pairs`` (edges by
    descending weight), with the same groups in the same order: each
    group's members are a linked list (``nxt``), so that merging the
    smaller group into the larger appends its members in AstroLink's order,
    and each group's children are a linked list too. The components left at
    the end are merged by increasing ``(size, id)``, as AstroLink's
    ``sorted(zip(sizes, ids))``, and the noise correction walks the children
    as AstroLink does. Returns the ordering (uint32), the groups (uint32,
    ``(m, 3)``) and the prominences (``(m, 2)``) before AstroLink drops the
    groups of two points and sorts them by start (done by the caller).
    Compiles in a fraction of the time of AstroLink's lists of lists and
    sorted tuples (tested to give the same arrays to the bit).
    """
    n = log_rho.size
    m_max = n // 2 + 1  # a new group takes two points not yet aggregated
    ids = np.empty(n, np.int64)
    ids[:] = n
    nxt = np.empty(n, np.int64)
    nxt[:] = -1
    head = np.empty(m_max, np.int64)
    tail = np.empty(m_max, np.int64)
    start = np.empty(m_max, np.int64)
    start[:] = 0
    offset = np.empty(m_max, np.int64)
    offset[:] = 0
    size = np.empty(m_max, np.int64)
    size[:] = 0
    prom = np.empty((m_max, 2))
    prom[:] = 0.0
    first_child = np.empty(m_max, np.int64)
    first_child[:] = -1
    last_child = np.empty(m_max, np.int64)
    last_child[:] = -1
    next_child = np.empty(m_max, np.int64)
    next_child[:] = -1
    merged = np.empty(m_max, np.bool_)
    merged[:] = False
    count = 0
    for e in range(ordered_pairs.shape[0]):
        p_0 = np.int64(ordered_pairs[e, 0])
        p_1 = np.int64(ordered_pairs[e, 1])
        id_0 = ids[p_0]
        id_1 = ids[p_1]
        if id_0 != n:
            if id_0 == id_1:
                continue
            if id_1 == n:  # p_1 joins p_0's group
                ids[p_1] = id_0
                nxt[tail[id_0]] = p_1
                tail[id_0] = p_1
                size[id_0] += 1
                continue
            # Two groups: the smaller joins the larger.
            if size[id_0] < size[id_1]:
                id_0, id_1 = id_1, id_0
            p = head[id_1]
            while p != -1:
                ids[p] = id_0
                p = nxt[p]
            nxt[tail[id_0]] = head[id_1]
            tail[id_0] = tail[id_1]
            merged[id_1] = True
            current = log_rho[p_1]
            start[id_1] = offset[id_0]
            offset[id_1] = size[id_0]
            size[id_0] += size[id_1]
            prom[id_1, 0] = prom[id_0, 1] - current
            prom[id_0, 1] = max(prom[id_0, 1], prom[id_1, 1])
            prom[id_1, 1] -= current
            _add_child(id_0, id_1, first_child, last_child, next_child)
        elif id_1 == n:  # a new group of two
            ids[p_0] = count
            ids[p_1] = count
            head[count] = p_0
            nxt[p_0] = p_1
            tail[count] = p_1
            size[count] = 2
            prom[count, 1] = log_rho[p_0]
            count += 1
        else:  # p_0 joins p_1's group
            ids[p_0] = id_1
            nxt[tail[id_1]] = p_0
            tail[id_1] = p_0
            size[id_1] += 1
            prom[id_1, 1] = max(prom[id_1, 1], log_rho[p_0])
    # The components left, by increasing (size, id): a counting sort by size
    # of the ids in increasing order.
    n_sizes = np.empty(n + 2, np.int64)
    n_sizes[:] = 0
    n_left = 0
    for g in range(count):
        if not merged[g]:
            n_sizes[size[g] + 1] += 1
            n_left += 1
    for s in range(1, n + 2):
        n_sizes[s] += n_sizes[s - 1]
    left = np.empty(n_left, np.int64)
    for g in range(count):
        if not merged[g]:
            left[n_sizes[size[g]]] = g
            n_sizes[size[g]] += 1
    final = left[n_left - 1]
    for t in range(n_left - 2, -1, -1):
        g = left[t]
        nxt[tail[final]] = head[g]
        tail[final] = tail[g]
        start[g] = offset[final]
        offset[g] = size[final]
        prom[g, 0] = prom[final, 1]
        size[final] += size[g]
        _add_child(final, g, first_child, last_child, next_child)
    ordering = np.empty(n, np.uint32)
    p = head[final]
    k = 0
    while p != -1:
        ordering[k] = p
        k += 1
        p = nxt[p]
    groups = np.empty((count, 3), np.uint32)
    for g in range(count):
        groups[g, 0] = start[g]
        groups[g, 1] = offset[g]
        groups[g, 2] = size[g]
    prominences = prom[:count].copy()
    # The children's starts and AstroLink's noise correction, parents first.
    stack = np.empty(count, np.int64)
    stack[0] = final
    top = 1
    while top > 0:
        top -= 1
        g = stack[top]
        child = first_child[g]
        if child == -1:
            continue
        adjust = groups[g, 1]
        c = child
        while c != -1:
            stack[top] = c
            top += 1
            c = next_child[c]
        noise = 0.0
        rank = 0
        c = child
        while c != -1:
            groups[c, 0] += adjust
            groups[c, 1] += adjust
            if rank > 0:
                prominences[c, 0] -= np.sqrt(noise / rank)
            noise += prominences[c, 1] ** 2
            rank += 1
            c = next_child[c]
        prominences[g, 1] -= np.sqrt(noise / rank)
    return ordering, groups, prominences


@njit(cache=True)
def _add_child(parent, child, first_child, last_child, next_child):
    """Append ``child`` to the linked list of ``parent``'s children."""
    if first_child[parent] == -1:
        first_child[parent] = child
    else:
        next_child[last_child[parent]] = child
    last_child[parent] = child



# fastmath as AstroLink's _minimize_init_njit, for the same bits.
@njit(cache=True, fastmath=True)
def beta_fit_start(prominence_sorted):
    """AstroLink's ``_minimize_init_njit`` on prominences already sorted.

    The initial Beta parameters (mean of the method-of-moments and the
    mode estimates, the mode from a Freedman-Diaconis histogram), the
    midpoints, their complements, the widths and quantiles of the
    Wasserstein-1 objective, and the tolerance: the same arithmetic with
    the same compiler flags, without the sort (NumPy's gives the same
    values), ``np.bincount``, ``np.concatenate``, ``argmax``, ``mean``,
    ``var`` and ``np.zeros``, each a function numba compiles on first use
    (AstroLink's kernel took 3.7-5.9 s to compile, this one 1.2 s). Returns
    ``(params, mid_points, one_minus_mid_points, widths, quantiles, tol)``;
    a negative histogram bin raises ValueError where numba's ``np.bincount``
    raises one (any bin but the first).
    """
    n = prominence_sorted.size
    binwidth = 2 * (prominence_sorted[3 * n // 4] - prominence_sorted[n // 4]) * n ** (-1 / 3)
    bins = (prominence_sorted // binwidth).astype(np.int64)
    # numba's np.bincount, step by step: it checks every bin but the first,
    # and a negative first bin counts from the end.
    a_max = bins[0]
    for i in range(1, n):
        if bins[i] < 0:
            raise ValueError("bincount(): first argument must be non-negative")
        a_max = max(a_max, bins[i])
    counts = np.empty(max(a_max + 1, 0), np.intp)
    counts[:] = 0
    for i in range(n):
        counts[bins[i]] += 1
    most = 0  # counts.argmax(): the first largest count
    for i in range(1, counts.size):
        if counts[i] > counts[most]:
            most = i
    mode = binwidth * (most + 0.5)
    # mean() and var() as numba computes them: sums from the first value on.
    total = 0.0
    for i in range(n):
        total += prominence_sorted[i]
    mu = total / n
    ssd = 0.0
    for i in range(n):
        deviation = prominence_sorted[i] - mu
        ssd += deviation * deviation
    var = ssd / n
    term1 = 1 - mu
    term2 = mu * term1 / var - 1
    a1, b1 = mu * term2, term1 * term2
    a2 = (2 * mode - 1) * mu / (term1 * mode - (1 - mode) * mu)
    b2 = a2 * term1 / mu
    params = np.empty(2)
    params[0] = 0.5 * (a1 + a2)
    params[1] = 0.5 * (b1 + b2)
    widths = np.empty(n)
    mid_points = np.empty(n)
    previous = 0.0
    for i in range(n):
        widths[i] = prominence_sorted[i] - previous
        mid_points[i] = (prominence_sorted[i] + previous) / 2
        previous = prominence_sorted[i]
    one_minus_mid_points = 1 - mid_points
    half = 1 / (2 * n)
    quantiles = np.linspace(half, 1 - half, n)
    tol = 10 ** (-np.ceil(np.log10(n)) - 3)
    return params, mid_points, one_minus_mid_points, widths, quantiles, tol


@njit(cache=True, nogil=True)
def make_graph_part(i0, i1, log_rho, knn, pairs, edges):
    """Rows ``i0`` to ``i1`` of AstroLink's ``_make_graph_njit``, into ``pairs`` and ``edges``.

    Each point's edges to its neighbours but itself, weighted by the lower
    density, the denser point first: the same arrays (only comparisons and
    copies), run by :func:`.._threads.threaded` instead of numba's
    ``parallel=True``, which compiled several times as slowly.
    """
    k_link = knn.shape[1]
    for i in range(i0, i1):
        lr_i = log_rho[i]
        pos = i * (k_link - 1)
        for t in range(k_link):
            j = knn[i, t]
            if i != j:
                lr_j = log_rho[j]
                if lr_i >= lr_j:
                    edges[pos] = lr_j
                    pairs[pos, 0] = i
                    pairs[pos, 1] = j
                else:
                    edges[pos] = lr_i
                    pairs[pos, 0] = j
                    pairs[pos, 1] = i
                pos += 1
