"""A private subclass of :class:`astrolink.AstroLink` that is safe to embed.

Raw AstroLink compiles its numba kernels in every new process (about 30 s),
checks its inputs with ``assert``, mutates ``os.environ['OMP_NUM_THREADS']``,
prints to stdout and fails with numba or NumPy errors on tiny or structureless
data. This subclass keeps AstroLink's algorithm (aggregation, prominence model
and cluster extraction run AstroLink's own code) and changes only that glue:

* every numba kernel is re-wrapped with ``cache=True`` so a second process
  loads the machine code from disk instead of compiling it again; while that
  cache is empty, importing this module starts one process that compiles them
  into it (:func:`._compiling.compile_in_background`), so that a fresh
  environment compiles AstroLink's kernels and the sampler's at the same time;
* ``__init__`` stores already validated parameters and touches no global state
  (the caller sets the numba thread count around :meth:`run`);
* messages go to the ``skimgcluster`` logger and warnings, never to stdout;
* degenerate inputs (too few points, no spread in prominence) are detected
  before they reach a kernel and give a hierarchy with the root cluster only;
* the density step is a documented hook, :meth:`estimate_density_and_kNN`,
  that also keeps the un-normalised log-density and its normalisation so
  that new points can be compared with fitted ones.
"""

import logging
import warnings

import numba
import numpy as np
from astrolink import AstroLink
from pykdtree.kdtree import KDTree
from scipy.optimize import minimize
from scipy.special import betainc, betaincinv
from scipy.stats import beta, norm
from sklearn.exceptions import ConvergenceWarning

from ._compiling import compile_in_background, wait_for_compilation
from ._kernels.astrolink import (
    beta_fit_start,
    cached,
    copy_neighbours,
    kruskal_aggregate,
    log_density,
    make_graph_part,
)
from ._neighbors import GridIndex, kd_tree_knn
from ._threads import take_rows, threaded

__all__ = []

logger = logging.getLogger("skimgcluster")

# Names of AstroLink's numba kernels; each is re-compiled with a disk cache.
_KERNELS = (
    "_rescale_njit",
    "_compute_logRho_njit",
    "_compute_weighted_logRho_njit",
    "_normalise_njit",
    "_wasserstein1_beta_njit",
)

# Points per neighbour query when no working memory is given: the distance
# and index arrays of a query stay near 16 MB, and memory freed by one query
# serves the next (2**20 points a query took 0.5 s more on 2.16e6 points, in
# page faults of new memory).
DEFAULT_CHUNK = 2**16


def knn_chunk(n, k, working_memory):
    """Points per neighbour query of ``k`` neighbours among ``n`` points, 1 to ``n``.

    A query holds 16 bytes per neighbour (distance and index); with
    ``working_memory`` bytes (None: no bound given) the chunk fits in them,
    else it is :data:`DEFAULT_CHUNK` points.
    """
    if working_memory is None:
        return min(n, DEFAULT_CHUNK)
    return max(min(int(working_memory // (16 * k)), n), 1)


# Fewest prominences the Beta-model fit in AstroLink can work with.
_MIN_GROUPS = 3


# Order statistics of the prominences on which fits are compared and refitted.
_FIT_POINTS = 4096


def _wasserstein1_exact(params, x, levels):
    """Wasserstein-1 distance of ``Beta(*params)`` to a step CDF, in closed form.

    The distance is the area between the two CDFs, ``int_0^1 |F(t) - E(t)| dt``,
    where ``E`` is ``levels[j]`` on ``[x[j-1], x[j])`` (with ``x[-1] = 0``;
    the last level holds up to 1). On each step ``F`` rises monotonically, so
    the area is exact from the antiderivative of the Beta CDF,
    ``G(t) = t I_t(a, b) - a / (a + b) I_t(a + 1, b)``, split where ``F``
    crosses the level. AstroLink integrates the pdf by the midpoint rule over
    the gaps between prominences instead, which goes wrong where the pdf is
    narrower than the gaps (a large ``b``) and where a few gaps are wide (few
    prominences: the fit is then drawn to the largest, the real structures).

    Parameters
    ----------
    params : array-like of shape (2,)
        The Beta parameters ``a, b``.
    x : ndarray of shape (m,)
        The step positions, increasing, in ``[0, 1]``.
    levels : ndarray of shape (m + 1,)
        The step CDF's value below ``x[0]``, then after each step.
    """
    a, b = float(params[0]), float(params[1])
    edges = np.concatenate(([0.0], x, [1.0]))
    cdf = betainc(a, b, edges)
    mean = a / (a + b)
    antiderivative = edges * cdf - mean * betainc(a + 1.0, b, edges)
    left, right = edges[:-1], edges[1:]
    rise = antiderivative[1:] - antiderivative[:-1]
    box = levels * (right - left)
    area = np.where(cdf[:-1] >= levels, rise - box, box - rise)
    cross = (cdf[:-1] < levels) & (cdf[1:] > levels)
    if cross.any():
        level = levels[cross]
        at = np.clip(betaincinv(a, b, level), left[cross], right[cross])
        at_g = at * level - mean * betainc(a + 1.0, b, at)
        area[cross] = (
            level * (at - left[cross])
            - (at_g - antiderivative[:-1][cross])
            + (antiderivative[1:][cross] - at_g)
            - level * (right[cross] - at)
        )
    return float(np.sum(np.maximum(area, 0.0)))


def _check_prominence_fit(prominences, p_fit):
    """AstroLink's Beta fit, or a better one where its optimiser ran away.

    AstroLink fits its noise model, a Beta distribution with ``a, b >= 1``,
    to the prominences by minimising a Wasserstein-1 distance in which the
    pdf is integrated numerically. For a large ``b`` the pdf lives inside
    the first gaps between prominences, the integral goes wrong and the
    objective falls: the optimiser can run away to ``b`` in the thousands, a
    model of almost no noise that makes hundreds of noise groups
    "significant" (seen on a few of the generated fields of ``benchmarks/``).

    The check is cheap: the fit's exact distance (on at most
    ``_FIT_POINTS`` order statistics) against that of the one-parameter
    model ``Beta(1, b)`` with the prominences' median. A fit
    no better than that baseline is refitted by minimising the exact
    distance from both starts, under AstroLink's bounds; otherwise AstroLink's
    fit is kept as it is.

    Returns
    -------
    params : ndarray of shape (2,)
        The Beta parameters to use.
    refitted : bool
        Whether they replace AstroLink's.
    """
    x = np.clip(np.sort(np.asarray(prominences, dtype=np.float64)), 0.0, 1.0)
    n = x.size
    median = min(max(float(x[(n - 1) // 2] + x[n // 2]) / 2, 1e-12), 1 - 1e-12)
    # The distances compare fits: evenly spaced order statistics (at most
    # _FIT_POINTS) describe the empirical CDF well enough and bound the cost.
    # Between two of them the empirical CDF is taken at its mean level (its
    # exact level when no order statistic is left out).
    rank = np.arange(n)
    if n > _FIT_POINTS:
        rank = np.unique(np.linspace(0, n - 1, _FIT_POINTS).round().astype(np.intp))
        x = x[rank]
    levels = np.concatenate(([0.0], (rank[:-1] + 1 + rank[1:]) / (2 * n), [1.0]))
    b_median = max(np.log(0.5) / np.log1p(-median), 1.0)  # Beta(1, b) has this median
    baseline = np.array([1.0, b_median])
    e_fit = np.inf
    if np.all(np.isfinite(p_fit)):
        e_fit = _wasserstein1_exact(p_fit, x, levels)
    e_base = _wasserstein1_exact(baseline, x, levels)
    if e_fit <= e_base:
        return np.asarray(p_fit, dtype=np.float64), False

    def objective(log_params):
        return _wasserstein1_exact(np.exp(log_params), x, levels)

    best, e_best = baseline, e_base
    bounds = [(0.0, np.log(1e7))] * 2
    for start in (baseline, np.clip(np.nan_to_num(p_fit, nan=1.0), 1.0, 1e7)):
        sol = minimize(objective, np.log(start), method="L-BFGS-B", bounds=bounds)
        if np.isfinite(sol.fun) and sol.fun < e_best:
            best, e_best = np.exp(sol.x), float(sol.fun)
    return np.maximum(best, 1.0), True


def _self_first(knn, start):
    """Neighbour rows with each point itself first, as AstroLink's graph needs.

    AstroLink links every point to the ``k_link - 1`` entries of its row that
    are not itself, and assumes it is in its row. Among duplicated points (all
    at distance 0) a search may list others first and leave a point out of
    its own row; AstroLink's parallel kernel then writes one link too many,
    into the next point's slots or past the end of its array. Here the point
    moves to the front of its row (dropping the last neighbour if it was
    missing). Rows of distinct points already start with the point itself and
    are returned unchanged.
    """
    knn = np.asarray(knn)
    own = np.arange(start, start + knn.shape[0], dtype=knn.dtype)
    wrong = knn[:, 0] != own
    if not wrong.any():
        return knn
    knn = knn.copy()
    rows = np.flatnonzero(wrong)
    sub = knn[rows]
    is_self = sub == own[rows, None]
    # Self first, the others in their order: a stable sort of the key below;
    # where self is missing the sort changes nothing and the last one goes.
    order = np.argsort(np.where(is_self, -1, np.arange(sub.shape[1])), axis=1, kind="stable")
    sub = np.take_along_axis(sub, order, axis=1)
    missing = ~is_self.any(axis=1)
    sub[missing, 1:] = sub[missing, :-1]
    sub[:, 0] = own[rows]
    knn[rows] = sub
    return knn


class CachedAstroLink(AstroLink):
    """AstroLink with cached kernels, no global side effects and no asserts.

    Parameters are those of :class:`astrolink.AstroLink`, already validated
    by the caller (``AstroLinkClusterer``); ``workers`` is not used here.
    """

    for _name in _KERNELS:
        locals()[_name] = staticmethod(cached(getattr(AstroLink, _name)))
    del _name

    def __init__(
        self,
        P,
        *,
        d_intrinsic=None,
        weights=None,
        k_den=20,
        adaptive=1,
        S="auto",
        k_link="auto",
        h_style=1,
        verbose=0,
        working_memory=None,
        algorithm="kd_tree",
    ):
        self.P = P
        self.n_samples, self.d_features = P.shape
        self.d_intrinsic = self.d_features if d_intrinsic is None else d_intrinsic
        self.weights = weights
        self.k_den = int(k_den)
        self.adaptive = int(adaptive)
        self.S = S
        if k_link == "auto":
            # AstroLink's own fitted rule for k_link.
            k_link = max(
                int(
                    np.ceil(
                        11.97 * self.d_intrinsic ** (-2.23) - 22.97 * self.k_den ** (-0.57) + 10.03
                    )
                ),
                7,
            )
        self.k_link = min(int(k_link), self.k_den)
        self.h_style = h_style
        self.workers = None
        self.verbose = verbose
        self.working_memory = working_memory
        self.algorithm = algorithm
        self.degenerate_ = None
        self.refitted_ = False

    # -- messages -----------------------------------------------------------
    def _printFunction(self, message, returnLine=True, urgent=False):
        if urgent:
            text = str(message).replace("[Warning]", "").strip()
            warnings.warn(f"AstroLink: {text}", ConvergenceWarning, stacklevel=3)
        elif self.verbose:
            logger.info("AstroLink: %s", str(message).strip())

    # -- stages -------------------------------------------------------------
    def transform_data(self):
        """Rescale features to unit variance when ``adaptive`` is 1.

        Also stores ``scale_``, the divisor applied to each feature (1 where
        nothing was done), so that new points can be transformed alike.
        """
        P = self.P
        if self.adaptive:
            std = P.std(axis=0)
            self.scale_ = np.where(std > 0, std, 1.0)
            # Not AstroLink's _rescale_njit: that kernel leaves constant
            # features uninitialised, and (compiled with fastmath) its result
            # differs from ``P / scale_`` in the last bits, so new points
            # transformed alike by ``predict`` would not meet the fitted ones.
            self.P_transform = P / self.scale_
        else:
            self.P_transform = P
            self.scale_ = np.ones(self.d_features)
        self._transformTime = 0.0

    def estimate_density_and_kNN(self):
        """Density and neighbour step: the hook that image-aware searches replace.

        Computes, as AstroLink does, the Epanechnikov balloon estimate of the
        log-density of every point from its ``k_den`` nearest neighbours in
        ``P_transform`` and keeps the ``k_link`` nearest neighbours. The
        neighbours come from AstroLink's KD-tree (``algorithm='kd_tree'``) or
        from an exact search on a grid of the first two features
        (``algorithm='grid'``, :mod:`skimgcluster._neighbors`); a subclass can
        replace this method to supply neighbours and densities any other way
        (AstroLink's aggregation and significance stages only read ``logRho``
        and ``kNN``). It also
        keeps ``tree_`` (the KD-tree), ``log_density_raw_`` (before AstroLink's
        normalisation to [0, 1]), ``log_density_range_`` (min and max) and
        ``nearest_``, the first neighbour of every point.

        Both searches order neighbours by (squared distance, index), so tied
        neighbours (duplicated points, points on a pixel grid) come in the
        same order whichever search runs, and a point's row depends only on
        its coordinates. On data without ties this is the order of
        AstroLink's own KD-tree query; with ties AstroLink takes them in the
        KD-tree's own order, which neither search reproduces.

        The squared distance to the ``k_den``-th neighbour is floored at a
        tiny positive value so that duplicated points give a finite density
        instead of ``inf``/``nan``; for distinct points this changes nothing.
        Where AstroLink's kernel overflows (``r**d`` out of float64's range),
        the same estimate is computed in log space; points whose neighbours
        all have zero weight get a density of ``-inf``, normalised to 0.
        """
        X = np.ascontiguousarray(self.P_transform)
        n = self.n_samples
        if self.algorithm == "grid":
            grid = GridIndex(X, points_per_cell=self.k_den)

            def query(start, stop):
                return grid.query_own(self.k_den, start, stop)

            self.tree_ = None  # built by predict when needed
        else:
            self.tree_ = KDTree(X)

            def query(start, stop):
                return kd_tree_knn(self.tree_, X, X[start:stop], self.k_den)

        self.logRho = np.empty(n, dtype=X.dtype)
        int_type = np.uint32 if n < 2**32 - 1 else np.uint64
        self.kNN = np.empty((n, self.k_link), dtype=int_type)
        self.nearest_ = np.empty(n, dtype=np.intp)
        # The points are queried in steps, one on each thread at a time: while
        # a step goes through the checks and densities after its query, which
        # run on one core, another step's query keeps the other busy. The
        # points in flight, and so the memory, are those of one chunk.
        chunk = knn_chunk(n, self.k_den, self.working_memory)
        step = max(-(-chunk // numba.get_num_threads()), 1)

        def steps(first, last):
            for start in range(first * step, min(last * step, n), step):
                stop = min(start + step, n)
                sqr, idx = query(start, stop)
                sqr = np.asarray(sqr, dtype=np.float64).reshape(stop - start, self.k_den)
                idx = np.asarray(idx).reshape(stop - start, self.k_den)
                # One pass: the checks below, and the k_link nearest into kNN.
                overflow, self_first = copy_neighbours(sqr, idx, n, start, self.kNN[start:stop])
                if overflow:
                    # An index past the end is pykdtree's mark of a neighbour
                    # at an infinite distance, on which the aggregation kernel
                    # would read past the end of the data.
                    raise ValueError(
                        "the squared distances between the points overflow float64; "
                        "rescale X to smaller values."
                    )
                self.logRho[start:stop] = self.log_density_from_neighbours(sqr, idx)
                self.nearest_[start:stop] = idx[:, 0]
                if not self_first:
                    self.kNN[start:stop] = _self_first(idx[:, : self.k_link], start)

        threaded(steps, -(-n // step))
        del self.P_transform
        self.log_density_raw_ = self.logRho.copy()
        # Points whose neighbours all weigh 0 have a log-density of -inf:
        # the normalisation spans the finite values and puts them at 0.
        finite = np.isfinite(self.logRho)
        if finite.all():
            lo, hi = float(self.logRho.min()), float(self.logRho.max())
        elif finite.any():
            lo, hi = float(self.logRho[finite].min()), float(self.logRho[finite].max())
        else:
            lo = hi = 0.0
        self.log_density_range_ = (lo, hi)
        if hi > lo and finite.all():
            self.logRho = self._normalise_njit(self.logRho)
        elif hi > lo:
            self.logRho = np.where(finite, (self.logRho - lo) / (hi - lo), 0.0)
        else:
            self.logRho = np.zeros_like(self.logRho)
        self._logRhoTime = 0.0

    def log_density_from_neighbours(self, sqr_distances, indices):
        """Un-normalised log-density from neighbour distances, as AstroLink."""
        sqr = np.asarray(sqr_distances, dtype=np.float64).reshape(-1, self.k_den)
        # Only the distance to the k_den-th neighbour divides: floor it where
        # duplicated points make it zero (a copy only then, so no cost else).
        tiny = np.finfo(np.float64).tiny ** 0.25
        if (sqr[:, -1] < tiny).any():
            sqr = sqr.copy()
            np.maximum(sqr[:, -1], tiny, out=sqr[:, -1])
        if self.weights is None:
            out = log_density(sqr, self.k_den, self.d_intrinsic)
        else:
            w = self.weights[np.asarray(indices).reshape(-1, self.k_den)]
            out = self._compute_weighted_logRho_njit(sqr, w, self.d_intrinsic)
        bad = ~np.isfinite(out)
        if bad.any():
            # The volume r**d overflowed or underflowed (many features, or
            # extreme scales): the same estimate, computed in log space. Only
            # neighbours that all weigh 0 still give -inf (zero density).
            core = sqr[bad, -1]
            if self.weights is None:
                mass = self.k_den - sqr[bad].sum(axis=1) / core
            else:
                mass = w[bad].sum(axis=1) - (w[bad] * sqr[bad]).sum(axis=1) / core
            with np.errstate(divide="ignore", invalid="ignore"):
                out[bad] = np.log(mass) - 0.5 * self.d_intrinsic * np.log(core)
            out[np.isnan(out)] = -np.inf  # infinitely far neighbours: no density
        return out

    def aggregate(self):
        """AstroLink's aggregation, with its kernels replaced by ours.

        The order of the edges and the final clean-up are AstroLink's; the
        graph (:meth:`_make_graph_njit`) and the aggregation kernel
        (:func:`._kernels.astrolink.kruskal_aggregate`, on arrays instead of
        AstroLink's lists of lists) are ours. They give the same ordering,
        groups and prominences to the bit (tested against raw AstroLink) and
        compile in a small part of the time (AstroLink's aggregation kernel
        took 13-15 s in a new environment, most of the first run's compiling).
        """
        pairs, edges = self._make_graph_njit(self.logRho, self.kNN)
        del self.kNN
        ordered_pairs = take_rows(pairs, edges.argsort()[::-1])
        del pairs, edges
        log_rho = np.ascontiguousarray(self.logRho, dtype=np.float64)
        ordering, groups, prominences = kruskal_aggregate(log_rho, ordered_pairs)
        del ordered_pairs
        keep = groups[:, 2] > 2
        groups, prominences = groups[keep], prominences[keep]
        groups[:, 2] += groups[:, 1]
        # By start, the root (the one group starting at 0) dropped. AstroLink
        # sorts with numba's quicksort, which is not stable, but no two groups
        # start at the same point (a child starts at least two points after
        # its parent, and after its earlier siblings), so every sort agrees.
        reorder = np.argsort(groups[:, 1], kind="stable")[1:]
        self.ordering = ordering
        self.groups, self.prominences = groups[reorder], prominences[reorder]
        self._aggregateTime = 0.0

    @staticmethod
    def _make_graph_njit(logRho, kNN):
        """AstroLink's graph of neighbour edges, by :func:`._kernels.astrolink.make_graph_part`.

        The same ``(pairs, edges)``, on threads instead of numba's
        ``parallel=True`` (whose kernel compiled in 0.7-1.5 s).
        """
        n, k_link = kNN.shape
        edges = np.empty(n * (k_link - 1), dtype=logRho.dtype)
        pairs = np.empty((n * (k_link - 1), 2), dtype=kNN.dtype)
        threaded(make_graph_part, n, logRho, kNN, pairs, edges, min_per_thread=2**16)
        return pairs, edges

    @staticmethod
    def _minimize_init_njit(prominences):
        """AstroLink's set-up of its prominence fit, by :func:`._kernels.astrolink.beta_fit_start`.

        The same values to the bit as AstroLink's kernel of this name (tested),
        which took 3.7-5.9 s of a first run to compile.
        """
        params, mid, one_minus_mid, widths, quantiles, tol = beta_fit_start(np.sort(prominences))
        return params, [mid, one_minus_mid, widths, quantiles], [(1, np.inf), (1, np.inf)], tol

    def compute_significances(self):
        """AstroLink's prominence model, or no significant group if degenerate."""
        prom = self.prominences
        self.degenerate_ = None
        self.refitted_ = False
        if prom.shape[0] < _MIN_GROUPS:
            self.degenerate_ = (
                f"only {prom.shape[0]} groups formed; at least {_MIN_GROUPS} are "
                "needed to fit AstroLink's prominence model"
            )
        else:
            q = np.sort(prom[:, 1])
            iqr = q[3 * q.size // 4] - q[q.size // 4]
            if not np.isfinite(q).all() or iqr <= 0 or q.var() <= 0:
                self.degenerate_ = "the group prominences have no spread"
        if self.degenerate_ is not None:
            self.pFit = np.array([np.nan, np.nan])
            self.groups_sigs = np.full(prom.shape, -np.inf)
            return
        with np.errstate(all="ignore"):
            super().compute_significances()
            self.pFit, self.refitted_ = _check_prominence_fit(prom[:, 1], self.pFit)
            if self.refitted_:
                logger.info(
                    "AstroLink's prominence model was refitted (its optimiser ran away); "
                    "Beta parameters now %s",
                    self.pFit,
                )
                self.groups_sigs = norm.isf(beta.sf(prom, self.pFit[0], self.pFit[1]))
        self.groups_sigs = np.nan_to_num(
            self.groups_sigs, nan=-np.inf, posinf=np.inf, neginf=-np.inf
        )

    def extract_clusters(self):
        if self.S == "auto" and self.prominences.shape[0] == 0:
            self.S = np.inf
        super().extract_clusters()

    def run(self):
        """Run AstroLink's stages; tiny data give the root cluster only."""
        wait_for_compilation()
        if self.n_samples <= self.k_den or self.n_samples < 3:
            self.degenerate_ = (
                f"n_samples={self.n_samples} is too few for k_den={self.k_den} "
                "(AstroLink needs more points than k_den)"
            )
            self._root_only()
            return
        self.transform_data()
        self.estimate_density_and_kNN()
        self.aggregate()
        self.compute_significances()
        self.extract_clusters()

    def _root_only(self):
        n = self.n_samples
        self.scale_ = np.ones(self.d_features)
        self.logRho = np.zeros(n)
        self.log_density_raw_ = np.zeros(n)
        self.log_density_range_ = (0.0, 0.0)
        self.ordering = np.arange(n, dtype=np.uint32)
        self.clusters = np.array([[0, n]], dtype=np.uint32)
        self.nearest_ = np.arange(n)
        self.significances = np.array([np.inf])
        self.ids = np.array(["1"])
        self.groups = np.empty((0, 3), dtype=np.uint32)
        self.prominences = np.empty((0, 2))
        self.groups_sigs = np.empty((0, 2))
        self.pFit = np.array([np.nan, np.nan])
        self.tree_ = None


compile_in_background()
