"""Bad input to AstroLinkClusterer gets a clear error (see bad_inputs.py for the rows' outcomes)."""

import numpy as np
import pytest
from bad_inputs import Empty, Raises, Valid, _run_row, cloud, source_image, with_value

from skimgcluster import (
    AstroLinkClusterer,
    DegenerateDataWarning,
)
from skimgcluster._astrolink import CachedAstroLink

# -- AstroLinkClusterer ----------------------------------------------------------------------


def with_features(n_features):
    return np.random.default_rng(5).normal(0, 1, (300, n_features))


# (id, X factory, constructor parameters, fit keywords, outcome)
CLUSTERER_ROWS = [
    (
        "not-an-array",
        object,
        {},
        {},
        Raises(
            TypeError, r"^X must be an array of shape \(n_samples, n_features\); .*not 'object'"
        ),
    ),
    (
        "none",
        lambda: None,
        {},
        {},
        Raises(ValueError, r"^X must be an array .*got scalar array instead"),
    ),
    (
        "string",
        lambda: "abc",
        {},
        {},
        Raises(ValueError, r"^X must be an array .*could not convert string to float: 'abc'"),
    ),
    (
        "ragged-nested-list",
        lambda: [[1.0, 2.0], [3.0]],
        {},
        {},
        Raises(ValueError, r"^X must be an array .*inhomogeneous"),
    ),
    ("nested-list", lambda: cloud().tolist(), {}, {}, Valid()),
    (
        "1-D",
        lambda: np.ones(50),
        {},
        {},
        Raises(ValueError, r"^X must be an array .*Expected 2D array, got 1D array"),
    ),
    (
        "image-HxWx1",
        lambda: source_image()[:, :, None],
        {},
        {},
        Raises(ValueError, r"^X must be an array .*Found array with dim 3"),
    ),
    (
        "4-D",
        lambda: np.ones((4, 4, 3, 2)),
        {},
        {},
        Raises(ValueError, r"^X must be an array .*Found array with dim 4"),
    ),
    (
        "empty",
        lambda: np.ones((0, 2)),
        {},
        {},
        Raises(ValueError, r"^X must be an array .*0 sample\(s\) \(shape=\(0, 2\)\)"),
    ),
    (
        "zero-features",
        lambda: np.ones((50, 0)),
        {},
        {},
        Raises(ValueError, r"^X must be an array .*0 feature\(s\) \(shape=\(50, 0\)\)"),
    ),
    (
        "complex",
        lambda: cloud().astype(complex),
        {},
        {},
        Raises(ValueError, r"^X must be an array .*Complex data not supported"),
    ),
    (
        "strings",
        lambda: np.full((50, 2), "a"),
        {},
        {},
        Raises(
            ValueError, r"^X must be an array .*could not convert string to float: (np\.str_\()?'a'"
        ),
    ),
    ("object-numbers", lambda: cloud().astype(object), {}, {}, Valid()),
    (
        "boolean",
        lambda: cloud() > 4,
        {},
        {},
        Empty(DegenerateDataWarning, r"No clusters can be found"),
    ),
    (
        "NaN",
        lambda: with_value(cloud(), np.nan),
        {},
        {},
        Raises(ValueError, r"^Input X contains NaN"),
    ),
    (
        "infinite",
        lambda: with_value(cloud(), np.inf),
        {},
        {},
        Raises(ValueError, r"^Input X contains infinity"),
    ),
    (
        "squared-distances-overflow",
        lambda: with_value(cloud(), 1e300),
        {},
        {},
        Raises(ValueError, r"^X must have \|values\| <= 4.74e\+153 .*got \|value\| up to 1e\+300"),
    ),
    (
        "constant",
        lambda: np.full((100, 2), 3.0),
        {},
        {},
        Empty(DegenerateDataWarning, r"only 0 groups formed"),
    ),
    (
        "all-zero",
        lambda: np.zeros((100, 2)),
        {},
        {},
        Empty(DegenerateDataWarning, r"only 0 groups formed"),
    ),
    (
        "one-point",
        lambda: np.ones((1, 2)),
        {},
        {},
        Empty(DegenerateDataWarning, r"n_samples=1 is too few for k_den=4"),
    ),
    (
        "k_den-larger-than-data",
        lambda: cloud(50),
        {"k_den": 100},
        {},
        Empty(DegenerateDataWarning, r"n_samples=50 is too few for k_den=100"),
    ),
    (
        "k_den-one",
        cloud,
        {"k_den": 1},
        {},
        Raises(
            ValueError,
            r"'k_den' parameter of AstroLinkClusterer must be an int in the range "
            r"\[2, inf\).*Got 1 instead",
        ),
    ),
    (
        "k_den-float",
        cloud,
        {"k_den": 2.5},
        {},
        Raises(ValueError, r"'k_den' parameter.*Got 2.5 instead"),
    ),
    (
        "k_link-above-k_den",
        cloud,
        {"k_den": 10, "k_link": 30},
        {},
        Raises(
            ValueError, r"^k_link must satisfy 1 < k_link <= k_den; got k_link=30 with k_den=10"
        ),
    ),
    (
        "min_significance-out-of-range",
        cloud,
        {"min_significance": 100},
        {},
        Raises(ValueError, r"'min_significance' parameter.*\(-inf, 38.4\d+\].*Got 100 instead"),
    ),
    (
        "min_significance-nan",
        cloud,
        {"min_significance": np.nan},
        {},
        Raises(ValueError, r"'min_significance' parameter.*Got nan instead"),
    ),
    (
        "min_significance-string",
        cloud,
        {"min_significance": "high"},
        {},
        Raises(ValueError, r"'min_significance' parameter.*Got 'high' instead"),
    ),
    (
        "n_jobs-zero",
        cloud,
        {"n_jobs": 0},
        {},
        Raises(ValueError, r"^n_jobs must be a non-zero integer or None; got n_jobs=0"),
    ),
    (
        "n_jobs-float",
        cloud,
        {"n_jobs": 1.5},
        {},
        Raises(ValueError, r"'n_jobs' parameter.*Got 1.5 instead"),
    ),
    (
        "n_jobs-string",
        cloud,
        {"n_jobs": "2"},
        {},
        Raises(ValueError, r"'n_jobs' parameter.*Got '2' instead"),
    ),
    (
        "n_jobs-below-minus-cpus",
        cloud,
        {"n_jobs": -1000},
        {},
        Valid(),
    ),  # scikit-learn's rule: at least 1
    (
        "d_intrinsic-above-features",
        cloud,
        {"d_intrinsic": 5},
        {},
        Raises(
            ValueError,
            r"^d_intrinsic must be at most the number of features \(2\); got d_intrinsic=5",
        ),
    ),
    (
        "too-many-features-for-kd_tree",
        lambda: with_features(200),
        {},
        {},
        Raises(
            ValueError,
            r"^X must have at most 127 features for algorithm='kd_tree'.*got 200 features",
        ),
    ),
    (
        "grid-one-feature",
        lambda: cloud(d=1),
        {"algorithm": "grid"},
        {},
        Raises(ValueError, r"^algorithm='grid' .* got X with 1 feature"),
    ),
    (
        "sample_weight-negative",
        cloud,
        {},
        {"sample_weight": with_value(np.ones((600, 2)), -1.0)[:, 1]},
        Raises(ValueError, r"^sample_weight must be non-negative; got sample_weight=-1 at index 3"),
    ),
    (
        "sample_weight-wrong-length",
        cloud,
        {},
        {"sample_weight": np.ones(10)},
        Raises(ValueError, r"sample_weight.shape == \(10,\), expected \(600,\)"),
    ),
    (
        "sample_weight-NaN",
        cloud,
        {},
        {"sample_weight": with_value(np.ones((600, 2)), np.nan)[:, 1]},
        Raises(ValueError, r"^Input sample_weight contains NaN"),
    ),
]


@pytest.mark.parametrize(
    ("make", "params", "fit_params", "outcome"),
    [pytest.param(*r[1:], id=r[0]) for r in CLUSTERER_ROWS],
)
def test_clusterer(make, params, fit_params, outcome):
    X = make()

    def check(clusterer, empty):
        n = np.asarray(X).shape[0]
        assert clusterer.labels_.shape == (n,)
        if empty:
            assert clusterer.n_clusters_ == 0 and (clusterer.labels_ == -1).all()

    _run_row(lambda: AstroLinkClusterer(**params).fit(X, **fit_params), outcome, check)


def test_clusterer_predict_bad_inputs():
    clusterer = AstroLinkClusterer(min_significance=2).fit(cloud())
    with pytest.raises(
        ValueError, match=r"X has 3 features, but AstroLinkClusterer is expecting 2"
    ):
        clusterer.predict(cloud(d=3))
    with pytest.raises(ValueError, match=r"^X must be an array .*Expected 2D array, got 1D"):
        clusterer.predict(np.ones(4))
    with pytest.raises(
        ValueError, match=r"^X must have \|values\| <= .*got \|value\| up to 1e\+300"
    ):
        clusterer.predict(with_value(cloud(), 1e300))
    with pytest.raises(ValueError, match=r"^Input X contains NaN"):
        clusterer.predict(with_value(cloud(), np.nan))


@pytest.mark.parametrize("algorithm", ["kd_tree", "grid"])
def test_overflowing_distances_never_reach_the_kernels(algorithm):
    """A point at 1e300 made pykdtree report a neighbour past the end of the
    data, on which AstroLink's aggregation crashed the interpreter."""
    X = with_value(cloud(), 1e300)
    model = CachedAstroLink(X, k_den=5, adaptive=0, algorithm=algorithm)
    with pytest.raises(ValueError, match="squared distances between the points overflow"):
        model.run()


@pytest.mark.parametrize("algorithm", ["kd_tree", "grid"])
def test_duplicated_points_are_first_in_their_own_neighbour_rows(algorithm):
    """Among duplicates a search may leave a point out of its own row of
    neighbours; AstroLink's parallel graph kernel then wrote one link too many,
    over the next point's links or past the end of its array (an IndexError
    from the aggregation, now and then, or a silently wrong graph)."""
    rng = np.random.default_rng(1)
    X = np.repeat(rng.normal(0, 1, (30, 2)), 4, axis=0)  # every point four times
    model = CachedAstroLink(X, k_den=3, adaptive=0, algorithm=algorithm)
    model.transform_data()
    model.estimate_density_and_kNN()
    knn = np.asarray(model.kNN).astype(np.intp)
    np.testing.assert_array_equal(knn[:, 0], np.arange(X.shape[0]))
    assert all(np.unique(row).size == row.size for row in knn)


def test_all_equal_points_with_the_smallest_k_den():
    X = np.zeros((89, 2))
    orderings = set()
    for _ in range(20):  # the crash was a race: rare and irregular
        with pytest.warns(DegenerateDataWarning, match="only 0 groups"):
            fit = AstroLinkClusterer(k_den=2, n_jobs=-1).fit(X)
        orderings.add(tuple(fit.ordering_))
    assert len(orderings) == 1


def test_grid_on_a_huge_span_does_not_overflow():
    X = cloud() * 1e100
    labels = AstroLinkClusterer(algorithm="grid", min_significance=2).fit(X).labels_
    expected = AstroLinkClusterer(algorithm="kd_tree", min_significance=2).fit(X).labels_
    np.testing.assert_array_equal(labels, expected)
