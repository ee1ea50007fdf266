"""Properties of AstroLinkClusterer and cluster_masks."""

import os
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.exceptions import ConvergenceWarning

from skimgcluster import AstroLinkClusterer, DegenerateDataWarning, cluster_masks, labels_to_image

# An AstroLink run takes 10-100 ms: fewer examples than the default.
FEW = settings(max_examples=15)

SHAPE = (48, 48)


@st.composite
def blob_clouds(draw, max_blobs=4):
    """Gaussian blobs (centres and widths drawn by hypothesis) on uniform noise.

    Points lie in the 48 x 48 image frame; all rows are distinct.
    """
    k = draw(st.integers(1, max_blobs))
    centres = draw(hnp.arrays(np.float64, (k, 2), elements=st.floats(6.0, 42.0)))
    widths = draw(hnp.arrays(np.float64, k, elements=st.floats(0.5, 4.0)))
    sizes = draw(hnp.arrays(np.intp, k, elements=st.integers(20, 300)))
    n_noise = draw(st.integers(0, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    parts = [rng.normal(c, w, (s, 2)) for c, w, s in zip(centres, widths, sizes, strict=True)]
    parts.append(rng.uniform(0.0, 47.0, (n_noise, 2)))
    X = np.clip(np.concatenate(parts), -0.5, 47.49)
    return np.unique(X, axis=0)  # distinct points, in a fixed order


def _fit(X, **params):
    # Structureless draws are allowed: they give a DegenerateDataWarning, or
    # AstroLink's own warning that its prominence model did not converge.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        warnings.filterwarnings("ignore", r".*Prominence model fitting failed", ConvergenceWarning)
        return AstroLinkClusterer(**params).fit(X)


def _two_blobs():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(10, 1.5, (200, 2)), rng.normal(35, 1.5, (200, 2))])


CLUSTERER_PARAMS = st.fixed_dictionaries(
    {
        "k_den": st.sampled_from(["auto", 5, 10, 20]),
        "min_significance": st.sampled_from(["auto", 1.0, 2.0, 3.0]),
        "label_level": st.sampled_from(["deepest", "top", "leaf"]),
        "adaptive": st.booleans(),
    }
)


# -- labels are consecutive from 0, or -1 ----------------------------------------------


def test_labels_consecutive_example():
    c = _fit(_two_blobs(), min_significance=2.0)
    assert sorted(set(c.labels_.tolist())) == [0, 1]


@FEW
@given(X=blob_clouds(), params=CLUSTERER_PARAMS)
def test_labels_consecutive(X, params):
    c = _fit(X, **params)
    labels = c.labels_
    assert labels.shape == (X.shape[0],)
    assert labels.min() >= -1
    used = np.unique(labels[labels >= 0])
    np.testing.assert_array_equal(used, np.arange(used.size))
    # Each used label stands for exactly one cluster of the hierarchy.
    mapped = c.cluster_labels_[c.cluster_labels_ >= 0]
    np.testing.assert_array_equal(np.sort(mapped), used)


# -- the hierarchy is consistent -------------------------------------------------------


def test_hierarchy_consistent_example():
    c = _fit(_two_blobs(), min_significance=2.0)
    assert list(c.cluster_ids_) == ["1-1", "1-2"]
    np.testing.assert_array_equal(c.parents_, [-1, -1])


@FEW
@given(X=blob_clouds(), params=CLUSTERER_PARAMS)
def test_hierarchy_consistent(X, params):
    c = _fit(X, **params)
    assert np.all(c.significances_ >= c.min_significance_)
    members = [set(c.cluster_members(j).tolist()) for j in range(c.n_clusters_)]
    for j, parent in enumerate(c.parents_):
        assert -1 <= parent < j
        depth = c.cluster_ids_[j].count("-")
        if parent >= 0:
            assert c.cluster_ids_[j].rsplit("-", 1)[0] == c.cluster_ids_[parent]
            assert members[j] < members[parent]
        else:
            assert depth == 1
    # Clusters with the same parent are disjoint.
    for a in range(c.n_clusters_):
        for b in range(a + 1, c.n_clusters_):
            if c.parents_[a] == c.parents_[b]:
                assert not members[a] & members[b]
    # A point labelled with a cluster's label is one of its members; with
    # label_level='leaf' a member of one of its ancestors (an envelope's
    # points are shared among the leaves below it).
    for j in np.flatnonzero(c.cluster_labels_ >= 0):
        labelled = set(np.flatnonzero(c.labels_ == c.cluster_labels_[j]).tolist())
        if params["label_level"] == "leaf":
            top = j
            while c.parents_[top] >= 0:
                top = c.parents_[top]
            assert labelled <= members[top]
            assert not any(c.parents_ == j)  # only leaves label points
        else:
            assert labelled <= members[j]
        if params["label_level"] == "top":
            assert c.parents_[j] == -1


# -- predict on the fitted points returns labels_ --------------------------------------


def test_predict_on_fitted_points_example():
    X = _two_blobs()
    c = _fit(X, min_significance=2.0)
    np.testing.assert_array_equal(c.predict(X), c.labels_)


@FEW
@given(X=blob_clouds(), params=CLUSTERER_PARAMS)
def test_predict_on_fitted_points(X, params):
    c = _fit(X, **params)
    np.testing.assert_array_equal(c.predict(X), c.labels_)


# -- ties: duplicated points and points at equal distances -----------------------------


@st.composite
def tied_points(draw, max_blobs=3):
    """Blobs on the integer lattice: many neighbours at exactly equal distances.

    Like a sampler's points with ``jitter='none'``, on pixel centres; with
    repeated lattice points, so exact copies too.
    """
    k = draw(st.integers(1, max_blobs))
    centres = draw(hnp.arrays(np.float64, (k, 2), elements=st.floats(8.0, 40.0)))
    widths = draw(hnp.arrays(np.float64, k, elements=st.floats(0.7, 4.0)))
    sizes = draw(hnp.arrays(np.intp, k, elements=st.integers(30, 250)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    parts = [rng.normal(c, w, (s, 2)) for c, w, s in zip(centres, widths, sizes, strict=True)]
    parts.append(rng.uniform(0.0, 47.0, (draw(st.integers(0, 150)), 2)))
    return np.round(np.concatenate(parts))


@st.composite
def duplicated_points(draw, max_features=3):
    """Points of which some are repeated (1 to 12 copies), in shuffled order."""
    d = draw(st.integers(1, max_features))
    n = draw(st.integers(20, 150))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    base = rng.normal(size=(n, d)) * draw(st.sampled_from([1.0, 10.0]))
    copies = draw(hnp.arrays(np.intp, n, elements=st.integers(1, 12)))
    X = np.repeat(base, copies, axis=0)
    if draw(st.booleans()):
        X = X[rng.permutation(X.shape[0])]
    return X


TIE_PARAMS = st.fixed_dictionaries(
    {
        "k_den": st.sampled_from(["auto", 5, 12, 30]),
        "min_significance": st.sampled_from([1.0, 2.0]),
        "label_level": st.sampled_from(["deepest", "top", "leaf"]),
    }
)


def _copies_share_labels(X, labels):
    _, group = np.unique(X, axis=0, return_inverse=True)
    group = group.ravel()
    first = np.full(group.max() + 1, -2)
    first[group[::-1]] = labels[::-1]  # the label of each group's first point
    return np.array_equal(first[group], labels)


def test_tied_points_example():
    X = np.round(_two_blobs())
    grid = _fit(X, min_significance=2.0, algorithm="grid")
    kd = _fit(X, min_significance=2.0)
    np.testing.assert_array_equal(grid.labels_, kd.labels_)
    np.testing.assert_array_equal(kd.predict(X), kd.labels_)


@FEW
@given(X=tied_points(), params=TIE_PARAMS)
def test_tied_points_grid_equals_kd_tree_and_predict_equals_labels(X, params):
    grid = _fit(X, algorithm="grid", **params)
    kd = _fit(X, algorithm="kd_tree", **params)
    np.testing.assert_array_equal(grid.ordering_, kd.ordering_)
    np.testing.assert_array_equal(grid.labels_, kd.labels_)
    np.testing.assert_array_equal(kd.predict(X), kd.labels_)
    np.testing.assert_array_equal(grid.predict(X), grid.labels_)
    assert _copies_share_labels(X, kd.labels_)


def test_duplicated_points_example():
    rng = np.random.default_rng(380)
    X = np.repeat(rng.normal(size=(76, 1)), 5, axis=0)
    c = _fit(X, k_den=44, min_significance=1.0)
    np.testing.assert_array_equal(c.predict(X), c.labels_)
    assert _copies_share_labels(X, c.labels_)


@FEW
@given(X=duplicated_points(), params=TIE_PARAMS)
def test_duplicated_points_predict_equals_labels(X, params):
    c = _fit(X, **params)
    np.testing.assert_array_equal(c.predict(X), c.labels_)
    assert _copies_share_labels(X, c.labels_)
    # Any subset, in any order.
    rng = np.random.default_rng(0)
    idx = rng.permutation(X.shape[0])[: X.shape[0] // 2]
    np.testing.assert_array_equal(c.predict(X[idx]), c.labels_[idx])


# -- os.environ is unchanged -----------------------------------------------------------


def test_environ_unchanged_example():
    before = dict(os.environ)
    _fit(_two_blobs(), n_jobs=2)
    assert dict(os.environ) == before


@FEW
@given(X=blob_clouds(max_blobs=2), n_jobs=st.sampled_from([None, 1, 2, -1, -2]))
def test_environ_unchanged(X, n_jobs):
    before = dict(os.environ)
    _fit(X, n_jobs=n_jobs)
    assert dict(os.environ) == before


# -- child masks lie inside parent masks -----------------------------------------------
# cluster_masks clips each child's mask to its parent's, so the nesting of its
# output is true by construction. The properties below check what can fail:
# the pixels of a child's members alone, unclipped, lie inside those of its
# parent's members, and each mask is exactly its members' pixels.


def _members_mask(c, X, j, **kwargs):
    lab = np.full(X.shape[0], -1, dtype=np.intp)
    lab[c.cluster_members(j)] = 0
    return labels_to_image(lab, X, SHAPE, **kwargs) > 0


def _nested_in_frame():
    rng = np.random.default_rng(0)
    return np.concatenate(
        [
            rng.normal([14.0, 24.0], 3.0, (800, 2)),
            rng.normal([11.0, 24.0], 0.6, (150, 2)),
            rng.normal([17.0, 24.0], 0.6, (150, 2)),
            rng.normal([36.0, 24.0], 2.5, (2000, 2)),
        ]
    )


def test_child_masks_inside_parent_masks_example():
    X = _nested_in_frame()
    c = _fit(X, k_den=20, min_significance=3.0)
    assert (c.parents_ >= 0).any()
    _, masks = cluster_masks(c, X, SHAPE)
    own = [_members_mask(c, X, j) for j in range(c.n_clusters_)]
    for j, parent in enumerate(c.parents_):
        np.testing.assert_array_equal(masks[j], own[j])
        if parent >= 0:
            assert np.all(own[parent][own[j]])


@FEW
@given(
    X=blob_clouds(),
    min_significance=st.sampled_from([1.0, 2.0]),
    fill_distance=st.sampled_from([0.0, 1.0, 2.5]),
    footprint_seed=st.one_of(st.none(), st.integers(0, 2**32 - 1)),
)
def test_child_masks_inside_parent_masks(X, min_significance, fill_distance, footprint_seed):
    c = _fit(X, k_den=10, min_significance=min_significance)
    footprint = None
    if footprint_seed is not None:
        footprint = np.random.default_rng(footprint_seed).random(SHAPE) > 0.2
    ids, masks = cluster_masks(c, X, SHAPE, footprint=footprint, fill_distance=fill_distance)
    np.testing.assert_array_equal(ids, c.cluster_ids_)
    assert masks.shape == (c.n_clusters_, *SHAPE)
    kwargs = {"footprint": footprint, "fill_distance": fill_distance}
    own = [_members_mask(c, X, j, **kwargs) for j in range(c.n_clusters_)]
    for j, parent in enumerate(c.parents_):
        np.testing.assert_array_equal(masks[j], own[j])
        if parent >= 0:
            assert np.all(own[parent][own[j]])
    if footprint is not None:
        assert not np.any(masks & ~footprint)


@pytest.mark.parametrize("level", [1, 2])
def test_masks_by_level_are_those_of_all_levels(level):
    X = _nested_in_frame()
    c = _fit(X, k_den=20, min_significance=3.0)
    ids_all, masks_all = cluster_masks(c, X, SHAPE)
    ids, masks = cluster_masks(c, X, SHAPE, level=level)
    chosen = np.array([cid.count("-") == level for cid in ids_all])
    assert chosen.any()
    np.testing.assert_array_equal(ids, ids_all[chosen])
    np.testing.assert_array_equal(masks, masks_all[chosen])
