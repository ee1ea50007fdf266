"""AstroLinkClusterer: point cloud -> labels and a hierarchy of clusters."""

import os
import re
import warnings
from numbers import Integral, Real

import numba
import numpy as np
from pykdtree.kdtree import KDTree
from sklearn.base import BaseEstimator, ClusterMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from ._astrolink import CachedAstroLink, knn_chunk
from ._hierarchy import cluster_depths
from ._kernels.clusterer import hierarchy, number_used
from ._neighbors import kd_tree_knn
from ._validation import check_memory
from .exceptions import DegenerateDataWarning

__all__ = ["AstroLinkClusterer"]

# AstroLink's significance threshold is limited by scipy's survival functions.
_MAX_SIGNIFICANCE = 38.44939448087599

# pykdtree, AstroLink's neighbour search, handles at most this many features.
_KD_TREE_MAX_FEATURES = 127


def _validate_points(estimator, X, *, reset):
    """``validate_data`` with messages that always name ``X``.

    scikit-learn's own messages (``Expected 2D array, got 1D array instead``,
    ``could not convert string to float``) do not all say which argument was
    wrong; the error keeps its type and gains the name.
    """
    try:
        # scikit-learn's quick finiteness test sums X: +inf and -inf together
        # would warn before the ValueError that names them.
        with np.errstate(invalid="ignore", over="ignore"):
            return validate_data(
                estimator, X, dtype=np.float64, ensure_min_samples=int(reset), reset=reset
            )
    except (TypeError, ValueError) as exc:
        message = str(exc)
        if re.search(r"\bX\b", message):
            raise
        kind = TypeError if isinstance(exc, TypeError) else ValueError
        raise kind(f"X must be an array of shape (n_samples, n_features); {message}") from exc


def _check_magnitude(X):
    """Refuse points whose squared distances would overflow float64.

    pykdtree reports neighbours at an infinite distance with an index past
    the end of the data, on which AstroLink's compiled kernels would crash.
    """
    if X.size == 0:
        return
    bound = float(np.sqrt(np.finfo(np.float64).max / (4 * X.shape[1])))
    hi = max(abs(float(np.fmax.reduce(X, axis=None))), abs(float(np.fmin.reduce(X, axis=None))))
    if hi > bound:
        raise ValueError(
            f"X must have |values| <= {bound:.4g} so that squared distances between "
            f"points with {X.shape[1]} feature(s) fit in float64; got |value| up to "
            f"{hi:.4g}. Rescale X."
        )


def _n_threads(n_jobs):
    """Number of numba threads for ``n_jobs`` (scikit-learn's convention)."""
    n_cpu = os.cpu_count() or 1
    if n_jobs is None:
        return 1
    if n_jobs < 0:
        n_jobs = max(n_cpu + 1 + n_jobs, 1)
    # numba refuses more threads than NUMBA_NUM_THREADS, which may be below
    # the number of processors.
    return min(n_jobs, n_cpu, numba.config.NUMBA_NUM_THREADS)


# Candidates of the KD-tree that serves the leaf searches of many clusters.
_GROUP_BATCH = 2**20


def _group_step(Xt):
    """A power of two larger than twice the diameter of the points, or None.

    Points of different groups set this far apart in an added feature are
    never each other's nearest; ``None`` if that step would overflow.
    """
    if Xt.shape[0] == 0:
        return None
    # Column by column: a reduction along axis 0 of a few features strides
    # through memory at half the speed.
    with np.errstate(over="ignore", invalid="ignore"):
        extent = np.array([np.ptp(column) for column in Xt.T])
        diameter = float(np.sqrt(np.sum(extent**2)))
    if not np.isfinite(diameter) or diameter > 1e100:
        return None
    return 2.0 ** np.ceil(np.log2(2.0 * diameter + 1.0))


def _nearest_in_groups(Xt, X_fit, scale, groups, step):
    """Nearest candidate of each query, every group searched on its own.

    ``groups`` holds ``(queries, candidates)`` pairs of indices into the
    points (candidates in increasing order); returns, per group, the index
    into its candidates of each query's nearest by (distance, index). With
    ``step`` (from :func:`_group_step`) all groups share one KD-tree: an
    added feature ``rank * step`` keeps each search within its group, and
    adds exactly 0 to the squared distances within it, so the result is
    that of one tree a group (whose fixed cost, many small trees on a large
    image, was most of the time). ``step=None`` takes one group.
    """
    if step is None:
        ((todo, candidates),) = groups
        Xc = np.take(X_fit, candidates, axis=0) / scale
        _, nearest = kd_tree_knn(KDTree(Xc), Xc, np.take(Xt, todo, axis=0), 1)
        return [nearest[:, 0]]
    n_cand = np.array([g[1].size for g in groups])
    n_query = np.array([g[0].size for g in groups])
    d = Xt.shape[1]
    check_memory(
        # The points with their added feature, the tree's index and the
        # query's distances and indices (kd_tree_knn's k + 1 = 2 per row).
        (n_cand.sum() + n_query.sum()) * 8.0 * (d + 1) + n_cand.sum() * 16 + n_query.sum() * 64,
        what=f"the nearest leaf members of {n_query.sum()} points among {n_cand.sum()}",
        advice="Sample fewer points, or use label_level='deepest'.",
    )
    candidates = np.concatenate([g[1] for g in groups])
    queries = np.concatenate([g[0] for g in groups])
    rank = np.arange(len(groups), dtype=np.float64) * step
    Xc = np.empty((candidates.size, d + 1))
    # np.take gathers rows of a few features several times as fast as X[...].
    Xc[:, :d] = np.take(X_fit, candidates, axis=0) / scale
    Xc[:, d] = np.repeat(rank, n_cand)
    Xq = np.empty((queries.size, d + 1))
    Xq[:, :d] = np.take(Xt, queries, axis=0)
    Xq[:, d] = np.repeat(rank, n_query)
    _, nearest = kd_tree_knn(KDTree(Xc), Xc, Xq, 1)
    # Back to indices into each group's own candidates.
    offset = np.repeat(np.cumsum(n_cand) - n_cand, n_query)
    local = nearest[:, 0].astype(np.intp) - offset
    return np.split(local, np.cumsum(n_query)[:-1])


class AstroLinkClusterer(ClusterMixin, BaseEstimator):
    """Hierarchical density-based clustering with AstroLink.

    A scikit-learn estimator around :class:`astrolink.AstroLink`: it estimates
    the local density of every point from its ``k_den`` nearest neighbours,
    aggregates points into a merge tree, fits a model to the prominence of
    every group and keeps as clusters the groups that are at least
    ``min_significance`` sigma outliers from that noise model. Clusters are
    nested: AstroLink returns a hierarchy with ids such as ``'1-2-1'``.

    Parameters
    ----------
    k_den : int or 'auto', default='auto'
        Number of nearest neighbours used to estimate the density of each
        point (AstroLink's ``k_den``). ``'auto'`` uses AstroLink's default of
        20 when there are at least 200 points and ``max(4, n_samples // 10)``
        below that, so that small data sets still form enough groups for
        AstroLink's noise model.
    k_link : int or 'auto', default='auto'
        Number of nearest neighbours used to link points while aggregating
        (AstroLink's ``k_link``); with ``'auto'`` AstroLink's own rule picks it
        from ``k_den`` and the dimensionality. Must satisfy
        ``1 < k_link <= k_den``.
    min_significance : float or 'auto', default='auto'
        Lowest significance, in sigma, of a group kept as a cluster
        (AstroLink's ``S``). ``'auto'`` uses AstroLink's data-driven value.
    adaptive : bool, default=False
        Rescale every feature to unit variance before clustering (AstroLink's
        ``adaptive``). Off by default because :class:`LuminositySampler`
        already puts position and colour on a chosen relative scale.
    h_style : {0, 1}, default=1
        AstroLink's hierarchy style: 0 keeps only the groups that are outliers
        themselves (as SubFind and EnLink do); 1 also adds the significant
        complementary groups.
    d_intrinsic : int or None, default=None
        Intrinsic dimensionality of the data used by the density estimate;
        ``None`` means the number of features.
    label_level : {'deepest', 'leaf', 'top'}, default='deepest'
        Which cluster a point's label names: the deepest cluster of the
        hierarchy that contains it; or a leaf cluster (one without children):
        a point whose deepest cluster has children takes the leaf below that
        cluster whose members include its nearest neighbour (the envelope of
        nested structures is shared among them, as a deblender does); or the
        top-level cluster (a child of the root) that contains it.
    min_cluster_size : int, default=1
        Clusters with fewer points are dropped from the hierarchy (with their
        children, which are smaller still); their points go to the parent.
        AstroLink itself keeps groups of three points or more.
    working_memory : float or None, default=None
        Memory, in MiB, that the neighbour query may use at once (scikit-learn's
        unit). ``None`` queries 2**16 points at a time. The result does not
        depend on it.
    algorithm : {'kd_tree', 'grid'}, default='kd_tree'
        Neighbour search of the density step. ``'kd_tree'`` is AstroLink's
        own (pykdtree); ``'grid'`` is an exact search on a grid of the first
        two features, meant for points sampled from an image (their pixel
        coordinates). Both order neighbours by (distance, index), so the
        result is the same, ties included.
    n_jobs : int or None, default=None
        Number of threads for AstroLink's parallel kernels. ``None`` means 1,
        ``-1`` all processors. The result does not depend on it.
    verbose : int, default=0
        Log AstroLink's progress to the ``skimgcluster`` logger at INFO level.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        Cluster label of every point, ``-1`` for points in no cluster (noise).
        Labels are consecutive integers from 0; ``cluster_labels_`` maps the
        clusters of the hierarchy to them.
    n_clusters_ : int
        Number of clusters in the hierarchy (the root, the whole data set, is
        not counted).
    cluster_ids_ : ndarray of shape (n_clusters_,)
        AstroLink's id string of every cluster, such as ``'1-2-1'``.
    significances_ : ndarray of shape (n_clusters_,)
        Significance of every cluster, in sigma.
    parents_ : ndarray of shape (n_clusters_,)
        Index of the parent of every cluster, ``-1`` for a top-level cluster.
    cluster_labels_ : ndarray of shape (n_clusters_,)
        The value that stands for every cluster in ``labels_``, or ``-1`` for
        a cluster that labels no point (with ``label_level='deepest'``, a
        cluster whose points all lie in its children, or whose points are
        all copies of points labelled by another cluster; see Notes).
    ordering_ : ndarray of shape (n_samples,)
        AstroLink's ordered list: ``X[ordering_]`` is the order of aggregation.
    cluster_bounds_ : ndarray of shape (n_clusters_, 2)
        Start and stop of every cluster in ``ordering_``.
    log_density_ : ndarray of shape (n_samples,)
        AstroLink's normalised log-density of every point, in [0, 1].
    k_den_ : int
        The ``k_den`` used (the value ``'auto'`` resolved to).
    min_significance_ : float
        The significance threshold used (the value ``'auto'`` resolved to).
    prominence_model_ : ndarray of shape (2,)
        Parameters ``(a, b)`` of AstroLink's noise model, the Beta
        distribution fitted to the prominences of the groups (NaN when there
        were too few groups to fit it).
    prominence_model_refitted_ : bool
        True when AstroLink's own fit of that model was no closer to the
        prominences than the one-parameter model with their median, a sign
        that its optimiser ran away, and the model was refitted (see Notes).
    n_features_in_ : int
        Number of features seen during :term:`fit`.

    See Also
    --------
    LuminositySampler : Turns an image into a point cloud for this estimator.
    labels_to_image : Maps labels of sampled points back to pixels.
    sklearn.cluster.HDBSCAN : Another hierarchical density-based clustering.

    Notes
    -----
    The numba kernels of AstroLink are compiled once and cached on disk, so a
    new process reuses the compiled code. Data that are too small for
    ``k_den`` or that hold no measurable structure give every point the label
    ``-1`` and a :class:`~skimgcluster.DegenerateDataWarning`.

    The noise model is AstroLink's, fitted by AstroLink's code; its fit is
    then checked with the exact Beta CDF. AstroLink integrates the pdf
    numerically between the sorted prominences, which goes wrong when the
    fitted distribution is narrower than those gaps, and its optimiser can
    run away there (``b`` in the thousands, a noise model so narrow that
    hundreds of noise groups come out significant; seen on a few of the
    generated fields of ``benchmarks/``). When its fit is no closer to the
    prominences, in the Wasserstein-1 distance AstroLink minimises, than
    ``Beta(1, b)`` with their median, the model is refitted to minimise that
    distance computed with the exact CDF, under AstroLink's bounds
    (``a, b >= 1``). Small data (a few dozen groups) are refitted more often,
    as the numerical integral is coarse there.

    :meth:`predict` gives a new point the label of the deepest cluster whose
    density region contains it: it starts from the deepest cluster of its
    nearest fitted point and climbs the hierarchy until the new point's
    density (estimated from its ``k_den`` nearest fitted points, exactly as in
    :meth:`fit`) is at least the lowest density among that cluster's members;
    if no cluster qualifies it gets ``-1``. On the fitted points it returns
    ``labels_``.

    Ties follow one rule throughout: neighbours are ordered by (distance,
    index), in both neighbour searches (``algorithm='grid'`` and
    ``'kd_tree'`` give the same result), in :meth:`fit` and in
    :meth:`predict`. Exact copies of a point (duplicated rows of ``X``)
    share the label of the first of them: AstroLink may place copies in
    different clusters (they have the same density, and ties in its
    aggregation go either way), but nothing can tell them apart in
    :meth:`predict`. Their places in the hierarchy (``cluster_members``,
    ``ordering_``) stay AstroLink's. On data without ties in distance the
    result is AstroLink's own; with ties, AstroLink takes tied neighbours
    in the order of its KD-tree, which depends on how the tree was built.

    References
    ----------
    .. [1] Oliver, W. H., et al. "AstroLink: a general-purpose algorithm for
       finding astrophysically-relevant clusters from point-cloud data",
       MNRAS (2024).

    Examples
    --------
    >>> import numpy as np
    >>> from skimgcluster import AstroLinkClusterer
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(0, 1, (300, 2)),
    ...                     rng.normal(8, 1, (300, 2))])
    >>> clusterer = AstroLinkClusterer(min_significance=2).fit(X)
    >>> clusterer.n_clusters_ >= 1
    True
    """

    _parameter_constraints: dict = {
        "k_den": [Interval(Integral, 2, None, closed="left"), StrOptions({"auto"})],
        "k_link": [Interval(Integral, 2, None, closed="left"), StrOptions({"auto"})],
        "min_significance": [
            Interval(Real, None, _MAX_SIGNIFICANCE, closed="right"),
            StrOptions({"auto"}),
        ],
        "adaptive": ["boolean"],
        "h_style": [Interval(Integral, 0, 1, closed="both")],
        "d_intrinsic": [Interval(Integral, 1, None, closed="left"), None],
        "label_level": [StrOptions({"deepest", "leaf", "top"})],
        "min_cluster_size": [Interval(Integral, 1, None, closed="left")],
        "working_memory": [Interval(Real, 0, None, closed="neither"), None],
        "algorithm": [StrOptions({"kd_tree", "grid"})],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        k_den="auto",
        k_link="auto",
        min_significance="auto",
        adaptive=False,
        h_style=1,
        d_intrinsic=None,
        label_level="deepest",
        min_cluster_size=1,
        working_memory=None,
        algorithm="kd_tree",
        n_jobs=None,
        verbose=0,
    ):
        self.k_den = k_den
        self.k_link = k_link
        self.min_significance = min_significance
        self.adaptive = adaptive
        self.h_style = h_style
        self.d_intrinsic = d_intrinsic
        self.label_level = label_level
        self.min_cluster_size = min_cluster_size
        self.working_memory = working_memory
        self.algorithm = algorithm
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _check_params_against_data(self, X):
        if self.k_den == "auto":
            self.k_den_ = int(min(20, max(4, X.shape[0] // 10)))
        else:
            self.k_den_ = int(self.k_den)
        if self.k_link != "auto" and self.k_link > self.k_den_:
            raise ValueError(
                f"k_link must satisfy 1 < k_link <= k_den; got k_link={self.k_link} "
                f"with k_den={self.k_den_}."
            )
        if self.d_intrinsic is not None and self.d_intrinsic > X.shape[1]:
            raise ValueError(
                f"d_intrinsic must be at most the number of features ({X.shape[1]}); "
                f"got d_intrinsic={self.d_intrinsic}."
            )
        if X.shape[1] > _KD_TREE_MAX_FEATURES and (
            self.algorithm == "kd_tree" or self.label_level == "leaf"
        ):
            raise ValueError(
                f"X must have at most {_KD_TREE_MAX_FEATURES} features for "
                f"algorithm={self.algorithm!r} with label_level={self.label_level!r} "
                f"(the limit of pykdtree's KD-tree); got {X.shape[1]} features."
            )
        if self.algorithm == "grid" and X.shape[1] < 2:
            raise ValueError(
                "algorithm='grid' lays its grid on the first two features and needs at "
                f"least two; got X with {X.shape[1]} feature(s)."
            )
        if self.n_jobs == 0:
            raise ValueError("n_jobs must be a non-zero integer or None; got n_jobs=0.")

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, sample_weight=None):
        """Find the clusters of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The points, e.g. the output of :class:`LuminositySampler`.
        y : None
            Ignored, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of every point, passed to AstroLink as ``weights``; its
            density estimate then sums the weights of the neighbours.

        Returns
        -------
        self : AstroLinkClusterer
            The fitted estimator.

        Raises
        ------
        InsufficientMemoryError
            If the clustering would need more memory than is available
            (checked before AstroLink runs).
        """
        X = _validate_points(self, X, reset=True)
        self._check_params_against_data(X)
        _check_magnitude(X)
        weights = None
        if sample_weight is not None:
            weights = _check_sample_weight(sample_weight, X, dtype=np.float64)
            if np.any(weights < 0):
                raise ValueError(
                    f"sample_weight must be non-negative; got sample_weight={weights.min():g} "
                    f"at index {int(np.argmin(weights))}."
                )
        self._X_fit = X
        self._weights = weights
        model = CachedAstroLink(
            X,
            d_intrinsic=self.d_intrinsic,
            weights=weights,
            k_den=self.k_den_,
            adaptive=int(self.adaptive),
            S=self.min_significance,
            k_link=self.k_link,
            h_style=self.h_style,
            verbose=self.verbose,
            working_memory=None if self.working_memory is None else self.working_memory * 2**20,
            algorithm=self.algorithm,
        )
        self._check_memory(X, model.k_link)
        previous = numba.get_num_threads()
        numba.set_num_threads(_n_threads(self.n_jobs))
        try:
            with np.errstate(divide="ignore", invalid="ignore"):
                model.run()
        finally:
            numba.set_num_threads(previous)
        if model.degenerate_ is not None:
            warnings.warn(
                f"No clusters can be found: {model.degenerate_}. Every point is labelled -1.",
                DegenerateDataWarning,
                stacklevel=3,  # past scikit-learn's _fit_context wrapper
            )
        self._store(model)
        return self

    def _check_memory(self, X, k_link):
        """Refuse data whose clustering would not fit in memory.

        Peak working memory, beyond ``X`` itself: per point, the search
        index's copy of the points, its order and (the grid's) cell
        coordinates, the log-densities (raw and
        normalised), the ``k_link`` neighbours and a few per-point results;
        plus the larger of the two stages that come and go: the neighbour
        distances and indices of one query chunk, and the edges of
        AstroLink's aggregation graph (pairs, weights, their sort order and
        the sorted pairs). Data too few for ``k_den`` are not checked: they
        give the degenerate result without running AstroLink.
        """
        n, d = X.shape
        k = self.k_den_
        if n <= k or n < 3:
            # Degenerate: AstroLink does not run, and nothing scales with
            # k_den; the result is all -1 and a DegenerateDataWarning.
            return
        working_memory = None if self.working_memory is None else self.working_memory * 2**20
        chunk = knn_chunk(n, k, working_memory)
        persistent = n * (8 * d + 24 + 8 + 8 + 8 * k_link + 56)
        # The k distances and indices of a query chunk (float64 and uint32),
        # and the KD-tree's own k + 1 of a quarter of it at a time.
        query = chunk * (12 * k + 3 * (k + 1))
        graph = n * max(k_link - 1, 1) * 32
        check_memory(
            persistent + max(query, graph),
            what=(
                f"AstroLinkClusterer.fit of X of shape {X.shape} with k_den={k} and k_link={k_link}"
            ),
            advice="Sample fewer points (n_samples) or lower k_den.",
        )

    def _store(self, model):
        full = np.asarray(model.clusters, dtype=np.intp)
        clusters = full[1:]
        keep = (clusters[:, 1] - clusters[:, 0]) >= self.min_cluster_size
        clusters = np.ascontiguousarray(clusters[keep])
        self.n_clusters_ = clusters.shape[0]
        self.cluster_ids_ = np.asarray(model.ids[1:], dtype=str)[keep]
        self.significances_ = np.asarray(model.significances[1:], dtype=np.float64)[keep]
        self.cluster_bounds_ = clusters
        self.ordering_ = np.asarray(model.ordering, dtype=np.intp)
        self.log_density_ = np.asarray(model.logRho, dtype=np.float64)
        s = model.S
        self.min_significance_ = float(s) if s != "auto" else np.inf
        self.prominence_model_ = np.asarray(model.pFit, dtype=np.float64)
        self.prominence_model_refitted_ = bool(model.refitted_)
        raw = np.asarray(model.log_density_raw_, dtype=np.float64)
        self._raw_density = raw
        # Parents, the deepest cluster of every point and the lowest raw
        # log-density among each cluster's members (its density region), in
        # one compiled pass over the hierarchy: clusters are nested ranges of
        # ordering_, listed parents first, as AstroLink's ids say.
        self.parents_, self._deepest, self._cluster_floor = hierarchy(
            full, keep, self.ordering_, raw
        )
        self._depth = cluster_depths(self.cluster_ids_)
        self._scale = np.asarray(model.scale_, dtype=np.float64)
        self._tree = model.tree_
        # A point is labelled from the deepest cluster of its nearest fitted
        # point by (distance, index): itself, or the first of its exact
        # copies, so that copies share a label and predict, which cannot
        # tell copies apart, returns labels_ on the fitted points.
        self._nearest = np.asarray(model.nearest_, dtype=np.intp)
        self.labels_, self.cluster_labels_ = self._labels_from_clusters(
            self._deepest[self._nearest]
        )

    def _top(self, clusters):
        """Top-level ancestor of each cluster index (-1 stays -1)."""
        top = np.arange(self.n_clusters_)
        for j in range(self.n_clusters_):  # parents come before children
            if self.parents_[j] >= 0:
                top[j] = top[self.parents_[j]]
        out = np.full(clusters.shape, -1, dtype=np.intp)
        ok = clusters >= 0
        out[ok] = top[clusters[ok]]
        return out

    def _leaf(self, clusters, Xt, batched=True):
        """Leaf cluster for points in ``clusters`` (their deepest cluster).

        A point whose cluster has children takes the leaf descendant of that
        cluster that holds its nearest neighbour among the leaves' members.
        A cluster's descendants are the sub-ranges of its range in
        ``ordering_``, so the candidates of cluster ``j`` are read off its
        range. With ``batched``, the searches of many clusters share one
        KD-tree (:func:`_nearest_in_groups`), with the same result as one
        tree a cluster.
        """
        clusters = clusters.copy()
        has_child = np.zeros(self.n_clusters_, dtype=bool)
        has_child[self.parents_[self.parents_ >= 0]] = True
        inner = np.flatnonzero(has_child)
        if inner.size == 0:
            return clusters
        in_leaf = self._deepest >= 0
        in_leaf[in_leaf] = ~has_child[self._deepest[in_leaf]]
        todo_all = np.flatnonzero(has_child[np.maximum(clusters, 0)] & (clusters >= 0))
        if todo_all.size == 0:
            return clusters
        order = np.argsort(clusters[todo_all], kind="stable")
        todo_all = todo_all[order]
        bounds = np.searchsorted(clusters[todo_all], inner, side="left")
        ends = np.searchsorted(clusters[todo_all], inner, side="right")
        groups = []
        for j, lo, hi in zip(inner, bounds, ends, strict=True):
            if lo == hi:
                continue
            start, stop = self.cluster_bounds_[j]
            members = self.ordering_[start:stop]
            # In index order, so that ties in distance go to the lower index.
            groups.append((todo_all[lo:hi], np.sort(members[in_leaf[members]])))
        step = _group_step(Xt) if batched else None
        # Trees of about _GROUP_BATCH candidates or one cluster's (the nested
        # clusters' candidates overlap: all of them may be many times n_samples).
        limit = _GROUP_BATCH
        while groups:
            size = np.cumsum([g[1].size for g in groups])
            n_batch = 1 if step is None else int(np.searchsorted(size, limit, side="left")) + 1
            batch, groups = groups[:n_batch], groups[n_batch:]
            nearest = _nearest_in_groups(Xt, self._X_fit, self._scale, batch, step)
            for (todo, candidates), near in zip(batch, nearest, strict=True):
                clusters[todo] = self._deepest[candidates[near]]
        return clusters

    def _choose(self, cluster_of_point, Xt):
        if self.label_level == "top":
            return self._top(cluster_of_point)
        if self.label_level == "leaf":
            return self._leaf(cluster_of_point, Xt)
        return cluster_of_point

    def _labels_from_clusters(self, cluster_of_point):
        # Only leaf labels need the (transformed) points.
        Xt = self._X_fit / self._scale if self.label_level == "leaf" else None
        chosen = np.ascontiguousarray(self._choose(cluster_of_point, Xt), dtype=np.intp)
        # Clusters that label a point are numbered in order: the labels of
        # the clusters in np.unique(chosen), computed without sorting.
        return number_used(chosen, self.n_clusters_)

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit to ``X`` and return ``labels_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The points.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of every point.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Cluster labels, ``-1`` for noise.
        """
        return self.fit(X, sample_weight=sample_weight).labels_

    def predict(self, X):
        """Label new points with the clusters found by :meth:`fit`.

        A new point takes the deepest cluster of its nearest fitted point,
        then climbs towards the root until its own density reaches the lowest
        density of that cluster's members; ``-1`` if none does. See Notes of
        the class.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            New points with the fitted number of features.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Cluster labels, ``-1`` for noise.
        """
        check_is_fitted(self)
        X = _validate_points(self, X, reset=False)
        _check_magnitude(X)
        n = X.shape[0]
        if self.n_clusters_ == 0 or n == 0:
            return np.full(n, -1, dtype=np.intp)
        Xt = np.ascontiguousarray(X / self._scale)
        k = self.k_den_
        check_memory(
            n * (12.0 * k + 3 * (k + 1)) + 8.0 * self._X_fit.size,
            what=f"AstroLinkClusterer.predict of X of shape {X.shape} with k_den={k}",
            advice="Predict fewer points at a time.",
        )
        Xfit_t = np.ascontiguousarray(self._X_fit / self._scale)
        if self._tree is None:
            self._tree = KDTree(Xfit_t)
        # Neighbours by (distance, index), as fit ordered them: on a fitted
        # point this gives its own density and its own nearest point.
        sqr, idx = kd_tree_knn(self._tree, Xfit_t, Xt, k)
        idx = idx.astype(np.intp, copy=False)
        model = CachedAstroLink.__new__(CachedAstroLink)
        model.k_den = k
        model.d_intrinsic = self._X_fit.shape[1] if self.d_intrinsic is None else self.d_intrinsic
        model.weights = self._weights
        with np.errstate(divide="ignore", invalid="ignore"):
            density = np.asarray(model.log_density_from_neighbours(sqr, idx))
        density = np.nan_to_num(density, nan=-np.inf)
        cluster = self._deepest[idx[:, 0]].copy()
        for _ in range(int(self._depth.max()) + 1 if self._depth.size else 0):
            active = cluster >= 0
            below = np.zeros(n, dtype=bool)
            below[active] = density[active] < self._cluster_floor[cluster[active]]
            if not below.any():
                break
            cluster[below] = self.parents_[cluster[below]]
        labels = np.full(n, -1, dtype=np.intp)
        chosen = self._choose(cluster, Xt)
        ok = chosen >= 0
        labels[ok] = self.cluster_labels_[chosen[ok]]
        return labels

    def cluster_members(self, cluster):
        """Indices of the fitted points in a cluster of the hierarchy.

        Parameters
        ----------
        cluster : int or str
            Index into ``cluster_ids_`` or an AstroLink id such as ``'1-2'``.

        Returns
        -------
        indices : ndarray of shape (n_members,)
            Sorted indices into the fitted ``X``; a child's members are a
            subset of its parent's.
        """
        check_is_fitted(self)
        if isinstance(cluster, str):
            hits = np.flatnonzero(self.cluster_ids_ == cluster)
            if hits.size == 0:
                raise ValueError(f"cluster must be an id in cluster_ids_; got {cluster!r}.")
            cluster = int(hits[0])
        if not isinstance(cluster, Integral) or not -self.n_clusters_ <= cluster < self.n_clusters_:
            raise ValueError(
                f"cluster must be an index in [0, {self.n_clusters_}) or an id string; "
                f"got {cluster!r}."
            )
        start, stop = self.cluster_bounds_[cluster]
        return np.sort(self.ordering_[start:stop])

    def __getstate__(self):
        # The KD-tree is a C extension object that cannot be pickled; it is
        # rebuilt from the fitted points on the next call to predict.
        state = dict(super().__getstate__())  # a copy: do not drop our own tree
        state["_tree"] = None
        return state


def compile_kernels(algorithm="grid"):
    """Fit a clusterer on small image-like points: compiles and caches its kernels.

    The points have the dtypes of the sampler's output, so the kernels
    compiled are those a segmentation loads.

    Parameters
    ----------
    algorithm : {'grid', 'kd_tree'}, default='grid'
        The neighbour search: ``'grid'`` compiles what a segmentation runs
        (the grid search, and the KD-tree search of its leaf labels),
        ``'kd_tree'`` what the clusterer's default runs besides.
    """
    rng = np.random.default_rng(0)
    centres = rng.uniform(10, 90, (6, 2))
    pos = centres[rng.integers(0, 6, 2000)] + rng.normal(0, 2.5, (2000, 2))
    colour = rng.dirichlet([2, 2, 2], 2000) * 20
    points = np.column_stack([pos, colour])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        AstroLinkClusterer(k_den=15, min_significance=2.5, algorithm=algorithm).fit(points)
    if algorithm == "grid":
        # Leaf labels search the nearest leaf member in a KD-tree
        # (_nearest_in_groups), which these points do not nest deep enough
        # to reach.
        X = np.ascontiguousarray(points[:50])
        kd_tree_knn(KDTree(X), X, X, 1)
