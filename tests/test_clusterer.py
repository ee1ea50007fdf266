"""Tests of AstroLinkClusterer: point cloud -> labels and a hierarchy."""

import functools
import logging
import os
import pickle

import numba
import numpy as np
import pytest
from conftest import nested_points
from sklearn.exceptions import NotFittedError

from skimgcluster import AstroLinkClusterer, DegenerateDataWarning, _clusterer
from skimgcluster._astrolink import CachedAstroLink, _check_prominence_fit


@pytest.fixture(scope="module")
def nested():
    X = nested_points()
    clusterer = AstroLinkClusterer(k_den=20, min_significance=3.0).fit(X)
    return X, clusterer


def _depth(ids):
    return np.array([cid.count("-") for cid in ids])


# -- basic clustering ------------------------------------------------------------------


def test_two_well_separated_blobs_are_found(two_blobs):
    X, truth = two_blobs
    clusterer = AstroLinkClusterer(min_significance=2.0).fit(X)
    labels = clusterer.labels_
    assert labels.shape == (600,)
    assert labels.dtype == np.intp
    assert set(np.unique(labels)) <= {-1, 0, 1}
    assert clusterer.n_clusters_ == 2
    # Each blob is (nearly) one cluster, and the two clusters differ.
    majority = [np.bincount(labels[truth == t] + 1).argmax() - 1 for t in (0, 1)]
    assert majority[0] != majority[1] and -1 not in majority
    for t, m in zip((0, 1), majority, strict=True):
        assert np.mean(labels[truth == t] == m) > 0.9
    assert clusterer.n_features_in_ == 2


def test_fit_returns_self_and_fit_predict_returns_labels(two_blobs):
    X, _ = two_blobs
    clusterer = AstroLinkClusterer(min_significance=2.0)
    assert clusterer.fit(X) is clusterer
    labels = AstroLinkClusterer(min_significance=2.0).fit_predict(X)
    np.testing.assert_array_equal(labels, clusterer.labels_)


def test_labels_are_consecutive_from_zero(nested):
    _, clusterer = nested
    labels = clusterer.labels_
    used = np.unique(labels[labels >= 0])
    np.testing.assert_array_equal(used, np.arange(used.size))
    # cluster_labels_ maps clusters onto exactly those labels.
    mapped = clusterer.cluster_labels_[clusterer.cluster_labels_ >= 0]
    np.testing.assert_array_equal(np.sort(mapped), used)


def test_noise_is_minus_one():
    rng = np.random.default_rng(6)
    X = np.concatenate(
        [
            rng.normal(0.0, 0.5, (300, 2)),
            rng.normal(10.0, 0.5, (300, 2)),
            rng.uniform(-30, 30, (300, 2)),
        ]
    )
    labels = AstroLinkClusterer(min_significance=2.0).fit(X).labels_
    assert labels.min() == -1
    # The uniform background is mostly noise, the blobs are not.
    assert np.mean(labels[600:] == -1) > 0.6
    assert np.mean(labels[:600] >= 0) > 0.95


def test_fitted_attributes_shapes(nested):
    X, c = nested
    n = X.shape[0]
    assert c.n_clusters_ == len(c.cluster_ids_)
    for name in ("cluster_ids_", "significances_", "parents_", "cluster_labels_"):
        assert getattr(c, name).shape == (c.n_clusters_,), name
    assert c.cluster_bounds_.shape == (c.n_clusters_, 2)
    assert c.ordering_.shape == (n,)
    np.testing.assert_array_equal(np.sort(c.ordering_), np.arange(n))
    assert c.log_density_.shape == (n,)
    assert c.log_density_.min() == pytest.approx(0.0)
    assert c.log_density_.max() == pytest.approx(1.0)
    assert c.k_den_ == 20
    assert c.min_significance_ == 3.0


# -- hierarchy -------------------------------------------------------------------------


def test_test_data_are_nested(nested):
    # Precondition of the hierarchy tests: the data give a two-level tree.
    _, c = nested
    assert list(c.cluster_ids_) == ["1-1", "1-2", "1-2-1", "1-2-2"]
    np.testing.assert_array_equal(c.parents_, [-1, -1, 1, 1])


def test_parents_index_earlier_clusters(nested):
    _, c = nested
    for j, parent in enumerate(c.parents_):
        assert -1 <= parent < j
        if parent == -1:
            assert _depth([c.cluster_ids_[j]])[0] == 1
        else:
            # '1-2-1' -> '1-2'
            assert c.cluster_ids_[j].rsplit("-", 1)[0] == c.cluster_ids_[parent]


def test_ids_are_astrolink_style(nested):
    _, c = nested
    for cid in c.cluster_ids_:
        parts = cid.split("-")
        assert parts[0] == "1" and len(parts) >= 2
        assert all(p.isdigit() and int(p) >= 1 for p in parts)
    assert len(set(c.cluster_ids_)) == c.n_clusters_


def test_child_members_are_subset_of_parent_members(nested):
    X, c = nested
    for j, parent in enumerate(c.parents_):
        members = c.cluster_members(j)
        assert members.size >= 3
        assert np.all(np.diff(members) > 0)  # sorted, unique
        assert members.max() < X.shape[0]
        if parent >= 0:
            parent_members = c.cluster_members(parent)
            assert np.isin(members, parent_members).all()
            assert members.size < parent_members.size
    # Siblings are disjoint.
    assert not np.intersect1d(c.cluster_members(2), c.cluster_members(3)).size


def test_cluster_members_by_id_and_by_index(nested):
    _, c = nested
    np.testing.assert_array_equal(c.cluster_members("1-2-1"), c.cluster_members(2))
    np.testing.assert_array_equal(c.cluster_members(-1), c.cluster_members(c.n_clusters_ - 1))
    with pytest.raises(ValueError, match="1-9"):
        c.cluster_members("1-9")
    with pytest.raises(ValueError, match="index"):
        c.cluster_members(c.n_clusters_)


def test_knots_are_found_where_they_are(nested):
    X, c = nested
    # '1-2-1' and '1-2-2' sit on the knots at x = -4 and x = +4 (in some order).
    # Their members include some of the envelope, which pulls them inwards.
    centres = sorted(X[c.cluster_members(j)].mean(axis=0)[0] for j in (2, 3))
    np.testing.assert_allclose(centres, [-4.0, 4.0], atol=1.5)
    np.testing.assert_allclose(X[c.cluster_members(0)].mean(axis=0), [30.0, 0.0], atol=0.5)


def test_significances_at_least_min_significance(nested):
    _, c = nested
    assert np.all(c.significances_ >= c.min_significance_)
    assert np.all(np.isfinite(c.significances_))


def test_auto_min_significance_is_resolved(two_blobs):
    X, _ = two_blobs
    c = AstroLinkClusterer().fit(X)
    assert np.isfinite(c.min_significance_) and c.min_significance_ > 0
    assert np.all(c.significances_ >= c.min_significance_)


def test_higher_min_significance_keeps_a_subset(nested):
    X, c = nested
    strict = AstroLinkClusterer(k_den=20, min_significance=10.0).fit(X)
    assert set(strict.cluster_ids_) <= set(c.cluster_ids_)
    assert strict.n_clusters_ < c.n_clusters_


# -- label_level -----------------------------------------------------------------------


def test_label_level_deepest(nested):
    X, c = nested
    # The envelope's own points get the label of '1-2'; knot points theirs.
    for j in range(c.n_clusters_):
        assert c.cluster_labels_[j] >= 0
    for j in (2, 3):
        members = c.cluster_members(j)
        assert np.all(c.labels_[members] == c.cluster_labels_[j])
    envelope_only = np.setdiff1d(c.cluster_members(1), c.cluster_members(2))
    envelope_only = np.setdiff1d(envelope_only, c.cluster_members(3))
    assert np.all(c.labels_[envelope_only] == c.cluster_labels_[1])
    assert np.unique(c.labels_[c.labels_ >= 0]).size == 4


def test_label_level_top(nested):
    X, deepest = nested
    top = AstroLinkClusterer(k_den=20, min_significance=3.0, label_level="top").fit(X)
    # Same hierarchy, labels only at the top level.
    np.testing.assert_array_equal(top.cluster_ids_, deepest.cluster_ids_)
    np.testing.assert_array_equal(top.cluster_labels_[top.parents_ >= 0], -1)
    assert np.unique(top.labels_[top.labels_ >= 0]).size == 2
    for j in np.flatnonzero(top.parents_ == -1):
        members = top.cluster_members(j)
        assert np.all(top.labels_[members] == top.cluster_labels_[j])
    # Noise is the same at both levels, and 'top' merges deeper labels.
    np.testing.assert_array_equal(top.labels_ == -1, deepest.labels_ == -1)
    for label in np.unique(deepest.labels_[deepest.labels_ >= 0]):
        assert np.unique(top.labels_[deepest.labels_ == label]).size == 1


def test_label_level_leaf(nested):
    X, deepest = nested
    leaf = AstroLinkClusterer(k_den=20, min_significance=3.0, label_level="leaf").fit(X)
    # Clusters with children label no point; every point of the galaxy goes
    # to one of its two knots.
    assert leaf.cluster_labels_[1] == -1
    galaxy = leaf.cluster_members(1)
    knot_labels = leaf.cluster_labels_[[2, 3]]
    assert np.isin(leaf.labels_[galaxy], knot_labels).all()
    left = galaxy[X[galaxy, 0] < -6]
    right = galaxy[X[galaxy, 0] > 6]
    assert np.unique(leaf.labels_[left]).size == 1
    assert np.unique(leaf.labels_[right]).size == 1
    assert leaf.labels_[left][0] != leaf.labels_[right][0]
    np.testing.assert_array_equal(leaf.labels_ == -1, deepest.labels_ == -1)


def test_min_cluster_size_drops_small_clusters(nested):
    X, c = nested
    sizes = np.diff(c.cluster_bounds_, axis=1).ravel()
    threshold = int(np.sort(sizes)[1]) + 1  # drops the two smallest: the knots
    pruned = AstroLinkClusterer(k_den=20, min_significance=3.0, min_cluster_size=threshold).fit(X)
    np.testing.assert_array_equal(pruned.cluster_ids_, c.cluster_ids_[sizes >= threshold])
    assert np.all(np.diff(pruned.cluster_bounds_, axis=1) >= threshold)
    assert np.all(pruned.parents_ < np.arange(pruned.n_clusters_))
    # The knots' points go to their parent.
    knots = np.concatenate([c.cluster_members(2), c.cluster_members(3)])
    galaxy_label = pruned.cluster_labels_[list(pruned.cluster_ids_).index("1-2")]
    assert np.all(pruned.labels_[knots] == galaxy_label)


# -- predict ---------------------------------------------------------------------------


@pytest.mark.parametrize("label_level", ["deepest", "top", "leaf"])
def test_predict_on_fitted_points_returns_labels(label_level):
    X = nested_points()
    c = AstroLinkClusterer(k_den=20, min_significance=3.0, label_level=label_level).fit(X)
    np.testing.assert_array_equal(c.predict(X), c.labels_)
    # Any subset, in any order.
    rng = np.random.default_rng(0)
    idx = rng.permutation(X.shape[0])[:500]
    np.testing.assert_array_equal(c.predict(X[idx]), c.labels_[idx])


@pytest.mark.parametrize("seed", [0, 1, 4])
def test_predict_on_fitted_points_with_adaptive_scaling(seed):
    # Features on very different scales, rescaled by adaptive=True. predict
    # must transform new points exactly as fit did (this failed for seeds 1
    # and 4 when fit used AstroLink's fastmath kernel and predict X / scale).
    X = nested_points(seed) * np.array([1.0, 37.3])
    c = AstroLinkClusterer(k_den=20, min_significance=3.0, adaptive=True).fit(X)
    assert c.n_clusters_ >= 2
    np.testing.assert_array_equal(c.predict(X), c.labels_)


def test_adaptive_makes_result_scale_invariant():
    X = nested_points()
    a = AstroLinkClusterer(k_den=20, min_significance=3.0, adaptive=True).fit(X)
    b = AstroLinkClusterer(k_den=20, min_significance=3.0, adaptive=True).fit(X * [5.0, 0.1])
    np.testing.assert_array_equal(a.cluster_ids_, b.cluster_ids_)
    assert np.mean(a.labels_ == b.labels_) > 0.99


def test_adaptive_with_a_constant_feature():
    # A constant feature must be left as it is (AstroLink's rescaling kernel
    # left it uninitialised), so with d_intrinsic=2 it changes nothing.
    X = nested_points()
    Z = np.column_stack([X, np.full(X.shape[0], 5.0)])
    a = AstroLinkClusterer(k_den=20, min_significance=3.0, adaptive=True).fit(X)
    for _ in range(3):
        b = AstroLinkClusterer(k_den=20, min_significance=3.0, adaptive=True, d_intrinsic=2).fit(Z)
        np.testing.assert_array_equal(a.labels_, b.labels_)
        np.testing.assert_array_equal(b.predict(Z), b.labels_)


def test_predict_on_far_away_points_is_noise(nested):
    X, c = nested
    far = np.array([[500.0, 500.0], [-300.0, 0.0], [15.0, 60.0], [15.0, -60.0]])
    np.testing.assert_array_equal(c.predict(far), -1)


def test_predict_on_new_points_near_clusters(nested):
    X, c = nested
    rng = np.random.default_rng(11)
    new = rng.normal([30.0, 0.0], 0.5, (50, 2))  # the dense core of the big blob
    assert np.all(c.predict(new) == c.cluster_labels_[0])


def test_predict_checks_n_features(nested):
    _, c = nested
    with pytest.raises(ValueError, match="features"):
        c.predict(np.zeros((3, 3)))


def test_predict_before_fit_raises():
    with pytest.raises(NotFittedError):
        AstroLinkClusterer().predict(np.zeros((3, 2)))


def test_predict_with_no_clusters_gives_noise():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(10, 2))
    with pytest.warns(DegenerateDataWarning):
        c = AstroLinkClusterer(k_den=20).fit(X)
    np.testing.assert_array_equal(c.predict(rng.normal(size=(4, 2))), -1)


# -- sample_weight ---------------------------------------------------------------------


def test_sample_weight_accepted(two_blobs):
    X, _ = two_blobs
    base = AstroLinkClusterer(min_significance=2.0).fit(X)
    # A constant weight scales every density by the same factor: same result.
    same = AstroLinkClusterer(min_significance=2.0).fit(X, sample_weight=np.full(600, 3.0))
    np.testing.assert_array_equal(same.labels_, base.labels_)
    np.testing.assert_array_equal(same.predict(X), same.labels_)


def test_sample_weight_changes_density(two_blobs):
    X, _ = two_blobs
    rng = np.random.default_rng(3)
    w = rng.uniform(0.1, 10.0, 600)
    c = AstroLinkClusterer(min_significance=2.0).fit(X, sample_weight=w)
    base = AstroLinkClusterer(min_significance=2.0).fit(X)
    assert c.labels_.shape == (600,)
    assert not np.allclose(c.log_density_, base.log_density_)
    np.testing.assert_array_equal(c.predict(X), c.labels_)
    labels = AstroLinkClusterer(min_significance=2.0).fit_predict(X, sample_weight=w)
    np.testing.assert_array_equal(labels, c.labels_)


@pytest.mark.parametrize(
    ("weights", "error"),
    [(-np.ones(600), "non-negative"), (np.ones(599), "shape")],
)
def test_bad_sample_weight_raises(two_blobs, weights, error):
    X, _ = two_blobs
    with pytest.raises(ValueError, match=error):
        AstroLinkClusterer().fit(X, sample_weight=weights)


# -- degenerate data -------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5, 20])
def test_fewer_points_than_k_den_gives_noise_and_warning(n):
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 2))
    with pytest.warns(DegenerateDataWarning, match="k_den"):
        c = AstroLinkClusterer(k_den=20).fit(X)
    np.testing.assert_array_equal(c.labels_, np.full(n, -1))
    assert c.n_clusters_ == 0
    assert c.cluster_ids_.shape == (0,)


def test_identical_points_give_noise_and_warning():
    X = np.ones((100, 2))
    with pytest.warns(DegenerateDataWarning):
        c = AstroLinkClusterer().fit(X)
    np.testing.assert_array_equal(c.labels_, -1)


def test_auto_k_den_adapts_to_small_data():
    rng = np.random.default_rng(6)
    assert AstroLinkClusterer().fit(rng.normal(size=(500, 2))).k_den_ == 20
    small = np.concatenate([rng.normal(0, 0.3, (40, 2)), rng.normal(5, 0.3, (40, 2))])
    assert AstroLinkClusterer().fit(small).k_den_ == 8


# -- parameters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"k_den": 1}, "k_den"),
        ({"k_link": 1}, "k_link"),
        ({"k_link": 30, "k_den": 10}, "k_link"),
        ({"min_significance": 50.0}, "min_significance"),
        ({"h_style": 2}, "h_style"),
        ({"label_level": "bottom"}, "label_level"),
        ({"d_intrinsic": 3}, "d_intrinsic"),
        ({"n_jobs": 0}, "n_jobs"),
        ({"min_cluster_size": 0}, "min_cluster_size"),
    ],
)
def test_invalid_parameters_raise(params, match, two_blobs):
    X, _ = two_blobs
    with pytest.raises(ValueError, match=match):
        AstroLinkClusterer(**params).fit(X)


def test_rejects_nan(two_blobs):
    X, _ = two_blobs
    X = X.copy()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        AstroLinkClusterer().fit(X)


def test_working_memory_does_not_change_the_result(nested):
    X, c = nested
    chunked = AstroLinkClusterer(k_den=20, min_significance=3.0, working_memory=0.01).fit(X)
    np.testing.assert_array_equal(chunked.labels_, c.labels_)
    np.testing.assert_array_equal(chunked.log_density_, c.log_density_)


def test_h_style_zero_runs(nested):
    X, _ = nested
    c = AstroLinkClusterer(k_den=20, min_significance=3.0, h_style=0).fit(X)
    assert np.all(c.significances_ >= 3.0)
    np.testing.assert_array_equal(c.predict(X), c.labels_)


# -- global state, threads, determinism ------------------------------------------------


def test_fit_leaves_os_environ_unchanged(two_blobs):
    X, _ = two_blobs
    before = dict(os.environ)
    AstroLinkClusterer(n_jobs=2).fit(X)
    AstroLinkClusterer(n_jobs=-1).fit(X)
    assert dict(os.environ) == before


@pytest.mark.parametrize("n_jobs", [None, 1, 2, -1])
def test_numba_thread_count_is_restored(two_blobs, n_jobs):
    X, _ = two_blobs
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        AstroLinkClusterer(n_jobs=n_jobs).fit(X)
        assert numba.get_num_threads() == 1
    finally:
        numba.set_num_threads(previous)


def test_numba_thread_count_is_restored_after_an_error(two_blobs, monkeypatch):
    X, _ = two_blobs
    previous = numba.get_num_threads()

    def boom(self):
        assert numba.get_num_threads() == _clusterer._n_threads(2)
        raise RuntimeError("boom")

    monkeypatch.setattr(_clusterer.CachedAstroLink, "run", boom)
    numba.set_num_threads(1)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            AstroLinkClusterer(n_jobs=2).fit(X)
        assert numba.get_num_threads() == 1
    finally:
        numba.set_num_threads(previous)


def test_negative_n_jobs_respects_numba_thread_limit(two_blobs, monkeypatch):
    # On a machine with more processors than NUMBA_NUM_THREADS (set by the
    # user), n_jobs=-1 asked numba for more threads than it has and failed.
    X, _ = two_blobs
    limit = numba.config.NUMBA_NUM_THREADS
    monkeypatch.setattr(_clusterer.os, "cpu_count", lambda: limit + 6)
    labels = AstroLinkClusterer(n_jobs=-1, min_significance=2.0).fit(X).labels_
    expected = AstroLinkClusterer(n_jobs=1, min_significance=2.0).fit(X).labels_
    np.testing.assert_array_equal(labels, expected)
    assert AstroLinkClusterer(n_jobs=-3).fit(X).n_clusters_ >= 1


def test_n_jobs_does_not_change_labels(nested):
    X, _ = nested
    one = AstroLinkClusterer(k_den=20, min_significance=3.0, n_jobs=1).fit(X)
    two = AstroLinkClusterer(k_den=20, min_significance=3.0, n_jobs=2).fit(X)
    np.testing.assert_array_equal(one.labels_, two.labels_)
    np.testing.assert_array_equal(one.ordering_, two.ordering_)
    np.testing.assert_array_equal(one.cluster_ids_, two.cluster_ids_)
    np.testing.assert_array_equal(one.significances_, two.significances_)


def test_refit_gives_the_same_result(nested):
    X, c = nested
    again = AstroLinkClusterer(k_den=20, min_significance=3.0).fit(X)
    np.testing.assert_array_equal(again.labels_, c.labels_)
    np.testing.assert_array_equal(again.significances_, c.significances_)


def test_fit_does_not_modify_x(nested):
    X, _ = nested
    X = X.copy()
    copy = X.copy()
    AstroLinkClusterer(k_den=20, min_significance=3.0, adaptive=True).fit(X)
    np.testing.assert_array_equal(X, copy)


def test_no_output_on_stdout(two_blobs, capsys, caplog):
    X, _ = two_blobs
    with caplog.at_level(logging.INFO, logger="skimgcluster"):
        AstroLinkClusterer(verbose=2).fit(X)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert any("AstroLink" in r.getMessage() for r in caplog.records)


# -- pickling --------------------------------------------------------------------------


@pytest.mark.parametrize("adaptive", [False, True])
def test_pickle_round_trip_then_predict(nested, adaptive):
    X = nested[0] * np.array([1.0, 7.0])
    c = AstroLinkClusterer(k_den=20, min_significance=3.0, adaptive=adaptive).fit(X)
    restored = pickle.loads(pickle.dumps(c))
    np.testing.assert_array_equal(restored.labels_, c.labels_)
    np.testing.assert_array_equal(restored.cluster_ids_, c.cluster_ids_)
    np.testing.assert_array_equal(restored.predict(X), c.labels_)
    new = np.random.default_rng(1).normal([0.0, 0.0], [6.0, 42.0], (200, 2))
    np.testing.assert_array_equal(restored.predict(new), c.predict(new))


def test_pickling_does_not_change_the_original(nested):
    X, c = nested
    tree = c._tree
    pickle.dumps(c)
    assert c._tree is tree


# -- the neighbour-search hook ---------------------------------------------------------


def _image_like_points(seed, n=4000):
    """Points like a sampler's: pixel positions of a few blobs plus three colours."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(10, 90, (6, 2))
    pos = centres[rng.integers(0, 6, n)] + rng.normal(0, 2.5, (n, 2))
    colour = rng.dirichlet([2, 2, 2], n) * 20
    return np.column_stack([pos, colour])


@functools.cache
def _raw_astrolink_class():
    """AstroLink itself, with its numba kernels cached on disk.

    Each kernel is AstroLink's own function compiled with AstroLink's own
    options; only ``cache=True`` is added. With a warm cache a test session
    loads them instead of compiling AstroLink again (about 20 s of CPU); with
    a cold one it loads those the package's subclass compiled already (the
    same functions: about 5 s) and compiles the rest once.
    """
    from astrolink import AstroLink

    kernels = {}
    for name, value in vars(AstroLink).items():
        value = getattr(value, "__func__", value)  # the kernels are static methods
        if isinstance(value, numba.core.dispatcher.Dispatcher):
            options = {k: v for k, v in value.targetoptions.items() if k != "nopython"}
            kernels[name] = staticmethod(numba.njit(cache=True, **options)(value.py_func))
    assert kernels, "AstroLink has numba kernels"
    return type("AstroLink", (AstroLink,), kernels)


def test_raw_astrolink_class_is_astrolink_with_cached_kernels():
    from astrolink import AstroLink

    raw = _raw_astrolink_class()
    assert raw.__mro__[1] is AstroLink and set(vars(raw)) - {"__module__", "__doc__"}
    for name in set(vars(raw)) - {"__module__", "__doc__"}:
        ours, theirs = getattr(raw, name), getattr(AstroLink, name)
        assert ours.py_func is theirs.py_func
        assert ours.targetoptions == theirs.targetoptions
        assert type(ours._cache).__name__ == "FunctionCache"  # on disk (numba's private API)


def _raw_astrolink(X, **params):
    """Raw AstroLink, its prominence fit checked as our subclass checks it."""
    from scipy.stats import beta, norm

    raw = _raw_astrolink_class()(X, **params)
    raw.run()
    fitted, refitted = _check_prominence_fit(raw.prominences[:, 1], raw.pFit)
    if refitted:  # extract the clusters again with the refitted model
        raw.pFit = fitted
        raw.groups_sigs = norm.isf(beta.sf(raw.prominences, *fitted))
        raw.S = params["S"]
        raw.extract_clusters()
    return raw


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grid_search_gives_raw_astrolinks_result(seed):
    X = _image_like_points(seed)
    grid = AstroLinkClusterer(k_den=15, min_significance=2.5, algorithm="grid").fit(X)
    raw = _raw_astrolink(X, k_den=15, adaptive=0, S=2.5, workers=1)
    np.testing.assert_array_equal(grid.cluster_ids_, raw.ids[1:])
    np.testing.assert_array_equal(grid.ordering_, raw.ordering)
    np.testing.assert_allclose(grid.significances_, raw.significances[1:])
    kd = AstroLinkClusterer(k_den=15, min_significance=2.5).fit(X)
    np.testing.assert_array_equal(grid.labels_, kd.labels_)
    np.testing.assert_array_equal(grid.predict(X), grid.labels_)


def test_grid_knn_matches_a_kd_tree():
    from helpers import grid_knn
    from pykdtree.kdtree import KDTree

    X = _image_like_points(3, 3000)
    X[:, 1] *= 0.2  # anisotropic spread, sparse and dense cells
    for k in (1, 7, 20):
        sqr, idx = grid_knn(X, k)
        ref_sqr, ref_idx = KDTree(X).query(X, k=k, sqr_dists=True)
        np.testing.assert_allclose(sqr, np.asarray(ref_sqr).reshape(sqr.shape))
        np.testing.assert_array_equal(idx, np.asarray(ref_idx).reshape(idx.shape))


def test_grid_needs_two_features():
    with pytest.raises(ValueError, match="algorithm='grid'"):
        AstroLinkClusterer(algorithm="grid").fit(np.arange(300.0).reshape(-1, 1))


@pytest.mark.parametrize("min_cluster_size", [1, 40])
def test_hierarchy_tables_match_the_id_strings(nested, min_cluster_size):
    """Parents, depths, deepest clusters and density floors, as the ids and ranges say."""
    X, _ = nested
    clusterer = AstroLinkClusterer(k_den=20, min_significance=2.0)
    clusterer.set_params(min_cluster_size=min_cluster_size).fit(X)
    ids = list(clusterer.cluster_ids_)
    assert clusterer.n_clusters_ >= 2
    assert clusterer._depth.max() >= 2  # nested
    index = {cid: i for i, cid in enumerate(ids)}
    parents = [index.get(cid.rsplit("-", 1)[0], -1) for cid in ids]
    np.testing.assert_array_equal(clusterer.parents_, parents)
    np.testing.assert_array_equal(clusterer._depth, [cid.count("-") for cid in ids])
    deepest = np.full(len(X), -1)
    floors = []
    for j, (start, stop) in enumerate(clusterer.cluster_bounds_):
        members = clusterer.ordering_[start:stop]
        deepest[members] = j
        floors.append(clusterer._raw_density[members].min())
    np.testing.assert_array_equal(clusterer._deepest, deepest)
    np.testing.assert_array_equal(clusterer._cluster_floor, floors)
    used = np.unique(deepest[deepest >= 0])
    np.testing.assert_array_equal(clusterer.cluster_labels_[used], np.arange(used.size))
    np.testing.assert_array_equal(
        clusterer.labels_, np.where(deepest >= 0, clusterer.cluster_labels_[deepest], -1)
    )


# -- AstroLink's prominence model -------------------------------------------------------

DATA = os.path.join(os.path.dirname(__file__), "data")


def _exact_w1(params, prominences):
    """Wasserstein-1 distance of a Beta model to the prominences, by quadrature."""
    from scipy.special import betainc

    x = np.sort(prominences)
    grid = np.union1d(x, np.linspace(0.0, 1.0, 400_001))
    model = betainc(params[0], params[1], grid)
    empirical = np.searchsorted(x, grid, side="right") / x.size
    gap = np.abs(model - empirical)
    return np.sum(0.5 * (gap[1:] + gap[:-1]) * np.diff(grid))


def test_runaway_prominence_fit_is_refitted():
    # The prominences (second column) of a 512x512 generated field on which
    # AstroLink's optimiser ran away to b ~ 6,200: 906 sources for 120 true.
    prom = np.load(os.path.join(DATA, "runaway_prominences.npy"))
    AstroLink = _raw_astrolink_class()
    raw = AstroLink.__new__(AstroLink)
    raw.prominences, raw.verbose = np.column_stack([prom, prom]), 0
    with np.errstate(all="ignore"):
        raw.compute_significances()
    assert raw.pFit[1] > 1000  # the fixture still shows the run-away

    fitted, refitted = _check_prominence_fit(prom, raw.pFit)
    assert refitted
    assert fitted.min() >= 1.0  # AstroLink's bounds
    # The refitted model describes the bulk of the prominences: its median is
    # near theirs, and it is closer to them than AstroLink's run-away fit.
    from scipy.stats import beta

    assert 0.5 < beta.median(*fitted) / np.median(prom) < 2.0
    assert _exact_w1(fitted, prom) < 0.8 * _exact_w1(raw.pFit, prom)


def test_runaway_fit_gives_few_significant_groups():
    prom = np.load(os.path.join(DATA, "runaway_prominences.npy"))
    model = CachedAstroLink(np.zeros((4, 2)), k_den=2, S=2.5)
    model.prominences = np.column_stack([prom, prom])
    model.verbose = 0
    model.compute_significances()
    assert model.refitted_
    # A handful of sigma outliers (the real sources), not hundreds of groups.
    n_significant = int(np.sum(model.groups_sigs[:, 1] >= 2.5))
    assert 50 < n_significant < 200, n_significant


def test_sound_prominence_fit_is_kept():
    # A fit at least as close to the prominences as the baseline is kept to the
    # bit. Whether AstroLink's own optimiser finds one depends on the machine's
    # floating point (its fit moves between AVX2 and AVX-512), so the sound fit
    # is the refit of a poor one, which beats the baseline by construction.
    X = _image_like_points(4, 8000)
    raw = _raw_astrolink_class()(X, k_den=15, adaptive=0, S=2.5, workers=1)
    raw.run()
    prom = raw.prominences[:, 1]
    sound, refitted = _check_prominence_fit(prom, np.array([1.0, 1.0]))
    assert refitted  # the uniform model is far from prominences near 0
    kept, refitted = _check_prominence_fit(prom, sound)
    assert not refitted
    np.testing.assert_array_equal(kept, sound)
    # The clusterer applies the same check to AstroLink's fit, kept or not.
    expected, refitted = _check_prominence_fit(prom, raw.pFit)
    ours = AstroLinkClusterer(k_den=15, min_significance=2.5).fit(X)
    assert ours.prominence_model_refitted_ == refitted
    np.testing.assert_array_equal(ours.prominence_model_, expected)
    checked = _raw_astrolink(X, k_den=15, adaptive=0, S=2.5, workers=1)
    np.testing.assert_array_equal(ours.cluster_ids_, checked.ids[1:])
    np.testing.assert_array_equal(ours.significances_, checked.significances[1:])


# -- ties: one rule, (distance, index), everywhere ---------------------------------------


def _tied_points(seed, n=3000):
    """Points like a sampler's with jitter='none': pixel centres, many copies."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(10, 50, (5, 2))
    return np.round(centres[rng.integers(0, 5, n)] + rng.normal(0, 3.0, (n, 2)))


def _knn_by_distance_then_index(X, k):
    sqr = ((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=2)
    order = np.lexsort((np.broadcast_to(np.arange(len(X)), sqr.shape), sqr), axis=1)
    return np.take_along_axis(sqr, order, axis=1)[:, :k], order[:, :k]


@pytest.mark.parametrize("k", [1, 5, 20])
def test_both_neighbour_searches_break_ties_by_index(k):
    from helpers import grid_knn
    from pykdtree.kdtree import KDTree

    from skimgcluster._neighbors import kd_tree_knn

    X = _tied_points(0, 600)
    ref_sqr, ref_idx = _knn_by_distance_then_index(X, k)
    sqr, idx = grid_knn(X, k)
    np.testing.assert_array_equal(sqr, ref_sqr)
    np.testing.assert_array_equal(idx, ref_idx)
    sqr, idx = kd_tree_knn(KDTree(X), X, X, k)
    np.testing.assert_array_equal(sqr, ref_sqr)
    np.testing.assert_array_equal(idx, ref_idx)


@pytest.mark.parametrize("points_per_cell", [0.2, 3.0, 60.0])
def test_grid_knn_is_exact_whatever_the_cell_size(points_per_cell):
    # Small cells make the grid skip many cells, and many points after their
    # first two features, as provably farther than the k-th found; rounded
    # positions and colours tie many distances at that k-th place.
    from helpers import grid_knn

    X = np.round(_image_like_points(4, 600))
    for k in (1, 9, 30):
        ref_sqr, ref_idx = _knn_by_distance_then_index(X, k)
        sqr, idx = grid_knn(X, k, points_per_cell=points_per_cell)
        np.testing.assert_array_equal(sqr, ref_sqr)
        np.testing.assert_array_equal(idx, ref_idx)


@pytest.mark.parametrize("seed", range(4))
def test_grid_cell_follows_the_points_weighted_median_density(seed):
    # The cell side comes from the median, over the points, of the count of
    # points in each one's unit square: read off the sorted counts, it is
    # that of the counts repeated once per point, odd and even totals alike.
    from skimgcluster._neighbors import GridIndex

    rng = np.random.default_rng(seed)
    X = _image_like_points(seed, 400 + 37 * seed)
    X = X[: X.shape[0] - rng.integers(0, 2)]
    ux = np.floor(X[:, 0] - X[:, 0].min()).astype(np.int64)
    uy = np.floor(X[:, 1] - X[:, 1].min()).astype(np.int64)
    _, counts = np.unique(uy * (ux.max() + 1) + ux, return_counts=True)
    density = float(np.median(np.repeat(counts, counts)))
    span = max(np.ptp(X[:, 0]), np.ptp(X[:, 1]))
    expected = max(np.sqrt(9.0 / density), span / 4096.0)
    assert GridIndex(X, 9.0).cell == expected


def test_kd_tree_knn_with_more_copies_than_k():
    from pykdtree.kdtree import KDTree

    from skimgcluster._neighbors import kd_tree_knn

    # 50 copies of each of three points, in shuffled order: each row holds
    # the 10 lowest indices of its copies.
    rng = np.random.default_rng(1)
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]]), 50, axis=0)[rng.permutation(150)]
    sqr, idx = kd_tree_knn(KDTree(X), X, X, 10)
    ref_sqr, ref_idx = _knn_by_distance_then_index(X, 10)
    np.testing.assert_array_equal(sqr, ref_sqr)
    np.testing.assert_array_equal(idx, ref_idx)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grid_and_kd_tree_agree_on_tied_points(seed):
    # Issue 13, row 7: on pixel-centred points the two searches took tied
    # neighbours in different orders and found different clusters.
    X = _tied_points(seed)
    params = dict(k_den=20, min_significance=2.0)
    grid = AstroLinkClusterer(algorithm="grid", **params).fit(X)
    kd = AstroLinkClusterer(algorithm="kd_tree", **params).fit(X)
    np.testing.assert_array_equal(grid.log_density_, kd.log_density_)
    np.testing.assert_array_equal(grid.ordering_, kd.ordering_)
    np.testing.assert_array_equal(grid.cluster_ids_, kd.cluster_ids_)
    np.testing.assert_array_equal(grid.labels_, kd.labels_)


def test_grid_and_kd_tree_agree_on_a_segmented_image():
    # Issue 13, row 7, the reproducer: 966 vs 967 sources on this crop.
    from skimage import data

    from skimgcluster import segment

    image = data.hubble_deep_field()[:300, :300].mean(axis=2)
    n = [
        segment(image, random_state=0, jitter="none", algorithm=a).n_sources
        for a in ("grid", "kd_tree")
    ]
    assert n[0] == n[1]


@pytest.mark.parametrize("label_level", ["deepest", "top", "leaf"])
@pytest.mark.parametrize("algorithm", ["kd_tree", "grid"])
def test_predict_on_duplicated_points_returns_labels(label_level, algorithm):
    # Issue 13, row 11: copies of a point could fall in different clusters,
    # and predict (which cannot tell them apart) disagreed with labels_.
    rng = np.random.default_rng(380)
    X = np.repeat(rng.normal(size=(76, 2 if algorithm == "grid" else 1)), 5, axis=0)
    c = AstroLinkClusterer(
        k_den=44, min_significance=1.0, label_level=label_level, algorithm=algorithm
    ).fit(X)
    np.testing.assert_array_equal(c.predict(X), c.labels_)
    np.testing.assert_array_equal(c.predict(X[::-1]), c.labels_[::-1])
    # Copies share a label.
    assert np.all(c.labels_.reshape(76, 5) == c.labels_[::5, None])


def test_predict_on_duplicated_points_of_the_reproducer():
    rng = np.random.default_rng(380)
    X = np.repeat(rng.normal(size=(76, 1)), 5, axis=0)
    c = AstroLinkClusterer(k_den=44, min_significance=1.0).fit(X)
    assert c.n_clusters_ >= 1
    np.testing.assert_array_equal(c.predict(X), c.labels_)


def test_degenerate_k_den_warns_before_the_memory_guard(monkeypatch):
    # Issue 13, row 8: k_den far above n_samples was sized by the memory
    # guard (205 GiB) instead of giving the documented degenerate result.
    from skimgcluster import _validation

    monkeypatch.setattr(_validation, "available_memory", lambda: 2**30)
    X = np.random.default_rng(0).normal(size=(1376, 2))
    with pytest.warns(DegenerateDataWarning, match="k_den"):
        c = AstroLinkClusterer(k_den=10**7).fit(X)
    np.testing.assert_array_equal(c.labels_, -1)
    with pytest.warns(DegenerateDataWarning, match="k_den"):
        c = AstroLinkClusterer(k_den=10**7, k_link=10**7).fit(X)
    np.testing.assert_array_equal(c.labels_, -1)


@pytest.mark.parametrize("d_intrinsic", [1, 2, 5])
def test_log_density_kernel_is_astrolinks_to_the_bit(d_intrinsic):
    # log_density replaces AstroLink's _compute_logRho_njit (slow to compile):
    # the same values to the bit, on spreads of scale from tiny to huge.
    from skimgcluster._kernels.astrolink import log_density

    rng = np.random.default_rng(d_intrinsic)
    for k_den, scale in [(15, 1.0), (5, 1e-6), (20, 1e6), (2, 3.0)]:
        sqr = np.sort(rng.random((500, k_den)) * scale, axis=1)
        sqr[:, 0] = 0.0  # the point itself
        want = CachedAstroLink._compute_logRho_njit(sqr, k_den, d_intrinsic)
        got = log_density(sqr, k_den, d_intrinsic)
        np.testing.assert_array_equal(got.view(np.int64), want.view(np.int64))


@pytest.mark.parametrize("batch", [2**20, 50])
def test_leaf_searches_in_one_tree_are_those_of_one_tree_a_cluster(nested, monkeypatch, batch):
    # Points on a coarse grid have many ties in distance: those go to the
    # lower index either way. A small batch makes several shared trees.
    from skimgcluster import _clusterer

    monkeypatch.setattr(_clusterer, "_GROUP_BATCH", batch)
    rng = np.random.default_rng(0)
    X = np.round(nested[0] * 2) / 2
    X = np.concatenate([X, X[rng.integers(0, X.shape[0], 300)]])  # exact copies
    c = AstroLinkClusterer(k_den=20, min_significance=3.0, label_level="leaf").fit(X)
    Xt = c._X_fit / c._scale
    deepest = c._deepest[c._nearest]
    batched = c._leaf(deepest, Xt, batched=True)
    np.testing.assert_array_equal(batched, c._leaf(deepest, Xt, batched=False))
    assert (batched != deepest).any()  # points were moved to leaves


def test_nearest_in_groups_is_the_nearest_by_distance_then_index():
    from skimgcluster._clusterer import _group_step, _nearest_in_groups

    rng = np.random.default_rng(1)
    X = rng.integers(0, 6, (400, 3)).astype(float)  # many ties and copies
    scale = np.ones(3)
    groups = []
    for _ in range(30):
        candidates = np.sort(rng.choice(400, rng.integers(1, 60), replace=False))
        groups.append((rng.choice(400, rng.integers(1, 20), replace=False), candidates))
    shared = _nearest_in_groups(X, X, scale, groups, _group_step(X))
    for (queries, candidates), got in zip(groups, shared, strict=True):
        sqr = ((X[queries, None, :] - X[None, candidates, :]) ** 2).sum(axis=2)
        np.testing.assert_array_equal(got, np.argmin(sqr, axis=1))  # first of ties
        alone = _nearest_in_groups(X, X, scale, [(queries, candidates)], None)[0]
        np.testing.assert_array_equal(got, alone)
    assert _group_step(np.array([[0.0], [1e300]])) is None


@pytest.mark.parametrize("case", ["blobs", "ties", "components"])
def test_aggregation_kernel_is_astrolinks_to_the_bit(case):
    # kruskal_aggregate and make_graph_part replace AstroLink's aggregation
    # kernels (13-15 s to compile): the same graph, ordering, groups and
    # prominences to the bit, also on tied densities (points on a grid) and on
    # several components, which AstroLink merges at the end by size.
    X = _image_like_points(7, 3000)
    if case == "ties":
        X = np.round(X)
    elif case == "components":
        X = np.concatenate([X[:1500], X[1500:2200] + 500, X[2200:] - 500, X[:40] + 2000])
    ours = CachedAstroLink(X, k_den=15)
    ours.transform_data()
    ours.estimate_density_and_kNN()
    log_rho, knn = ours.logRho.copy(), ours.kNN.copy()
    ours.aggregate()
    raw = _raw_astrolink_class()
    pairs, edges = raw._make_graph_njit(log_rho, knn)
    # The graph too (ours runs on threads instead of parallel=True).
    for g, w in zip(CachedAstroLink._make_graph_njit(log_rho, knn), (pairs, edges), strict=True):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)
    want = raw._aggregate_njit_float64_uint32(log_rho, pairs[edges.argsort()[::-1]])
    got = (ours.ordering, ours.groups, ours.prominences)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)
    if case == "components":  # the neighbour graph falls apart (at least the four parts of X)
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        rows = np.repeat(np.arange(knn.shape[0]), knn.shape[1])
        graph = coo_matrix((np.ones(knn.size), (rows, knn.ravel().astype(np.intp))))
        assert connected_components(graph, directed=False)[0] >= 4


@pytest.mark.parametrize(("dtype", "width"), [(np.uint32, 2), (np.uint64, 2), (np.float64, 5)])
def test_rows_gathered_in_order_on_threads_are_the_fancy_indexed_rows(dtype, width):
    # The aggregation gathers its edges, and the grid index its points, in
    # parts on threads (above 2**18 rows a part): the rows of array[order],
    # whatever the parts.
    from skimgcluster._threads import take_rows

    rng = np.random.default_rng(0)
    if dtype == np.float64:
        array = rng.normal(size=(2**19 + 7, width))
    else:
        array = rng.integers(0, np.iinfo(dtype).max, (2**19 + 7, width), dtype=dtype)
    order = rng.permutation(array.shape[0])[::-1]
    got = take_rows(array, order)
    assert got.dtype == array.dtype and got.flags.c_contiguous
    np.testing.assert_array_equal(got, array[order])


def test_prominence_fit_set_up_is_astrolinks_to_the_bit():
    # CachedAstroLink._minimize_init_njit (from beta_fit_start) replaces
    # AstroLink's kernel of that name (3.7-5.9 s to compile): the same start,
    # objective arrays, bounds and tolerance to the bit.
    raw = _raw_astrolink_class()
    rng = np.random.default_rng(0)
    sizes = [4, 7, 10, 333, 1000, 50000, *rng.integers(4, 5000, 24)]
    for n in sizes:
        prom = rng.beta(rng.uniform(1, 3), rng.uniform(1, 100), n)
        want = raw._minimize_init_njit(prom)
        got = CachedAstroLink._minimize_init_njit(prom)
        for g, w in zip([got[0], *got[1]], [want[0], *want[1]], strict=True):
            np.testing.assert_array_equal(g.view(np.int64), w.view(np.int64))
        assert got[2] == want[2] and got[3] == want[3]
    # Negative prominences: numba's np.bincount lets a negative first bin
    # through (counted from the end) and refuses any other.
    prom = np.sort(prom)
    prom[0] = -0.5
    want, got = raw._minimize_init_njit(prom), CachedAstroLink._minimize_init_njit(prom)
    np.testing.assert_array_equal(got[0].view(np.int64), want[0].view(np.int64))
    prom[1] = -0.5
    for fit in (raw, CachedAstroLink):
        with pytest.raises(ValueError, match="non-negative"):
            fit._minimize_init_njit(prom)
