"""Fuzzing of the public API with arbitrary arrays and parameters.

Every call either returns a result that satisfies the invariants of its
function or raises one of the documented exceptions, a ``ValueError`` or a
``TypeError`` (scikit-learn's ``InvalidParameterError`` and
:class:`~skimgcluster.InsufficientMemoryError` are both ``ValueError``).
Warnings other than the documented ones fail the test, as do all other
exceptions (``AssertionError``, ``IndexError``, ``ZeroDivisionError``, numba
errors...). Run with ``--hypothesis-show-statistics`` to see how many
examples ran.
"""

import warnings

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.exceptions import ConvergenceWarning

from skimgcluster import (
    AstroLinkClusterer,
    DegenerateDataWarning,
    LuminositySampler,
    SparseSamplingWarning,
    labels_to_image,
    segment,
)

DOCUMENTED_ERRORS = (ValueError, TypeError)
DOCUMENTED_WARNINGS = (DegenerateDataWarning, SparseSamplingWarning, ConvergenceWarning)


def fuzz(max_examples):
    """Settings of a fuzz test (the profile of conftest.py for the rest)."""
    return settings(
        deadline=None, suppress_health_check=list(HealthCheck), max_examples=max_examples
    )


# -- strategies ----------------------------------------------------------------------

# Every kind of dtype numpy has a strategy for: bool, all integer and float
# sizes (float16 and extended precision included), complex, datetime,
# timedelta, bytes and unicode, in both byte orders.
ANY_DTYPE = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="?"),
    hnp.unsigned_integer_dtypes(endianness="?"),
    hnp.floating_dtypes(endianness="?", sizes=(16, 32, 64, 128)),
    hnp.complex_number_dtypes(endianness="?"),
    hnp.datetime64_dtypes(endianness="?"),
    hnp.timedelta64_dtypes(endianness="?"),
    hnp.byte_string_dtypes(max_len=3),
    hnp.unicode_string_dtypes(max_len=3),
)
NUMERIC_DTYPE = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="?"),
    hnp.unsigned_integer_dtypes(endianness="?"),
    hnp.floating_dtypes(endianness="?", sizes=(16, 32, 64, 128)),
)


def arrays(dtype, *, min_dims=0, max_dims=4, max_side=12):
    """Arrays of 0 to 4 dimensions, zero-sized axes included, NaN and inf allowed."""
    return hnp.arrays(
        dtype,
        hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=0, max_side=max_side),
        elements=None,  # the dtype's full range: NaN, inf, extremes
    )


def chance(tenths):
    """True about ``tenths`` times in ten (hypothesis favours small integers,
    so ``integers(0, 9) == 0`` would be true far more often than one in ten)."""
    return st.sampled_from([True] * tenths + [False] * (10 - tenths))


@st.composite
def images(draw):
    """Mostly plausible images with a source, sometimes anything at all."""
    if draw(chance(2)):
        return draw(
            st.one_of(
                arrays(ANY_DTYPE),
                st.none(),
                st.text(max_size=3),
                st.floats(),
                st.lists(st.lists(st.floats(), max_size=3), max_size=3),
                st.builds(object),
            )
        )
    dtype = draw(NUMERIC_DTYPE)
    h, w = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    shape = draw(st.sampled_from([(h, w), (h, w, 1), (h, w, draw(st.integers(2, 4)))]))
    image = draw(hnp.arrays(dtype, shape, elements=None))
    if dtype.kind == "f" and draw(st.booleans()):
        # Typical data: finite values, a source somewhere, some NaN.
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        sky = rng.normal(draw(st.floats(-1e3, 1e3)), 1.0, shape)
        sky[rng.integers(0, h), rng.integers(0, w)] += draw(st.floats(0, 1e6))
        sky[rng.random(shape) < draw(st.floats(0, 0.5))] = np.nan
        with np.errstate(over="ignore"):  # float16 overflows to inf
            image = sky.astype(dtype)
    return image


def mostly(valid, invalid):
    """``valid`` about nine times in ten, ``invalid`` otherwise."""
    return chance(1).flatmap(lambda bad: invalid if bad else valid)


PARAMS = {
    "n_samples": mostly(
        st.just("auto") | st.integers(0, 400),
        st.one_of(st.integers(-2, -1), st.floats(-1, 10), st.none(), st.just(10**13)),
    ),
    "max_samples": mostly(st.integers(1, 2000), st.integers(-1, 0)),
    "samples_per_pixel": mostly(st.floats(0.1, 10), st.floats(-1, 0)),
    "background": mostly(
        st.one_of(st.just("auto"), st.none(), st.floats(-1e3, 1e3)),
        st.one_of(st.floats(), st.text(max_size=2)),  # NaN, inf, 1e308, junk
    ),
    "background_box_size": mostly(st.integers(4, 40), st.integers(0, 3)),
    "detection_threshold": mostly(st.floats(-5, 50), st.just(float("nan"))),
    "smoothing": mostly(st.floats(0, 5), st.floats(-1, 0, exclude_max=True)),
    "stretch": mostly(st.sampled_from(["linear", "sqrt", "asinh"]), st.just("log")),
    "color_scale": mostly(st.floats(0, 50), st.floats(-1, 0, exclude_max=True)),
    "jitter": mostly(st.sampled_from(["triangular", "uniform", "none"]), st.just("gauss")),
    "sampling": mostly(st.sampled_from(["systematic", "random"]), st.just("stratified")),
}
CLUSTER_PARAMS = {
    "k_den": mostly(st.just("auto") | st.integers(2, 40), st.integers(0, 1) | st.floats(0, 10)),
    "k_link": mostly(st.just("auto") | st.integers(2, 25), st.integers(0, 1)),
    "min_significance": mostly(
        st.just("auto") | st.floats(-10, 38), st.floats(38.5, 50) | st.just(float("nan"))
    ),
    "adaptive": st.booleans(),
    "h_style": mostly(st.integers(0, 1), st.sampled_from([-1, 2])),
    "d_intrinsic": mostly(st.none() | st.integers(1, 5), st.just(0)),
    "label_level": mostly(st.sampled_from(["deepest", "leaf", "top"]), st.just("all")),
    "min_cluster_size": mostly(st.integers(1, 30), st.just(0)),
    "working_memory": mostly(st.none() | st.floats(1e-6, 1), st.floats(-1, 0)),
    "algorithm": mostly(st.sampled_from(["kd_tree", "grid"]), st.just("brute")),
    "n_jobs": mostly(st.sampled_from([None, -2, -1, 1, 2, 3]), st.sampled_from([0, 1.5, "2"])),
}


def some_of(params):
    """A dict of some of ``params``, each drawn from its strategy."""
    return st.fixed_dictionaries({}, optional=params)


# -- running a call -----------------------------------------------------------------


def call(function, *args, **kwargs):
    """Run a call; return (result, warnings) or (exception, warnings).

    The outcome is recorded as a hypothesis event, so the statistics show how
    many examples gave a result and how many a documented error.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = function(*args, **kwargs)
        except DOCUMENTED_ERRORS as exc:
            result = exc
    if isinstance(result, Exception):
        event(f"raised {type(result).__name__}")
    else:
        warned = sorted({w.category.__name__ for w in caught})
        event("result" + (f" with {', '.join(warned)}" if warned else ""))
    undocumented = [w for w in caught if not issubclass(w.category, DOCUMENTED_WARNINGS)]
    assert not undocumented, [f"{w.category.__name__}: {w.message}" for w in undocumented]
    return result, [w.category for w in caught]


def check_error_message(exc):
    """A documented error says something, on its first line."""
    assert isinstance(exc, DOCUMENTED_ERRORS)
    assert str(exc).strip(), type(exc)


# -- LuminositySampler -----------------------------------------------------------------


def check_points(points, image, sampler, caught):
    data = np.asarray(image)
    h, w = data.shape[:2]
    n_bands = data.shape[2] if data.ndim == 3 else 1
    n_colour = n_bands if (n_bands > 1 and sampler.color_scale > 0) else 0
    assert isinstance(points, np.ndarray) and points.dtype == np.float64
    assert points.ndim == 2 and points.shape[1] == 2 + n_colour
    if isinstance(sampler.n_samples, int) and points.shape[0] != sampler.n_samples:
        # Fewer points than asked only when nothing could be sampled, and
        # then the caller is told.
        assert points.shape[0] == 0 and DegenerateDataWarning in caught
    assert np.all(np.isfinite(points))
    x, y = points[:, 0], points[:, 1]
    assert np.all((x >= -0.5) & (x < w - 0.5)) and np.all((y >= -0.5) & (y < h - 0.5))
    if n_colour and points.shape[0]:
        colours = points[:, 2:]
        assert np.all(colours >= 0)
        # (atol: a subnormal color_scale has no relative precision)
        np.testing.assert_allclose(colours.sum(axis=1), sampler.color_scale, rtol=1e-9, atol=1e-300)


@fuzz(600)
@given(image=images(), params=some_of(PARAMS), seed=st.integers(0, 2**32 - 1))
def test_fuzz_sampler(image, params, seed):
    sampler = LuminositySampler(random_state=seed, **params)
    result, caught = call(sampler.fit_transform, image)
    if isinstance(result, Exception):
        check_error_message(result)
    else:
        check_points(result, image, sampler, caught)


# -- AstroLinkClusterer ------------------------------------------------------------------


@st.composite
def point_clouds(draw):
    """Small point clouds: clumps of points, or arbitrary arrays."""
    if draw(chance(2)):
        return draw(st.one_of(arrays(ANY_DTYPE, max_side=40), st.none(), st.text(max_size=3)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(1, 150))
    d = draw(st.integers(1, 4))
    n_clumps = draw(st.integers(1, 4))
    centres = rng.normal(0, draw(st.floats(0, 20)), (n_clumps, d))
    X = centres[rng.integers(0, n_clumps, n)] + rng.normal(0, 1, (n, d))
    X *= 10.0 ** draw(st.integers(-200, 200))
    if draw(st.booleans()):  # duplicated points
        X[rng.random(n) < 0.3] = X[0]
    if draw(chance(2)):  # a few extreme or missing values
        X.flat[rng.integers(0, X.size)] = draw(st.sampled_from([np.nan, np.inf, 1e300, -1e300]))
    dtype = draw(st.sampled_from([np.float64, np.float32, np.int32, np.float16]))
    with np.errstate(all="ignore"):  # too large values become inf or wrap
        return X.astype(dtype)


def check_clusterer(clusterer, X):
    X = np.asarray(X)
    n = X.shape[0]
    labels = clusterer.labels_
    assert labels.shape == (n,) and labels.dtype.kind == "i"
    used = np.unique(labels[labels >= 0])
    np.testing.assert_array_equal(used, np.arange(used.size))  # consecutive from 0
    k = clusterer.n_clusters_
    for attribute in ("cluster_ids_", "significances_", "parents_", "cluster_labels_"):
        assert getattr(clusterer, attribute).shape == (k,)
    assert clusterer.cluster_bounds_.shape == (k, 2)
    assert np.all(clusterer.parents_ < np.arange(k))  # parents are listed first
    np.testing.assert_array_equal(np.sort(clusterer.ordering_), np.arange(n))
    density = clusterer.log_density_
    assert density.shape == (n,) and np.all(np.isfinite(density))
    assert np.all((density >= 0) & (density <= 1))
    for j in range(k):
        members = clusterer.cluster_members(j)
        parent = clusterer.parents_[j]
        if parent >= 0:
            assert np.isin(members, clusterer.cluster_members(parent)).all()


@fuzz(300)
@given(X=point_clouds(), params=some_of(CLUSTER_PARAMS), weighted=st.integers(0, 5))
def test_fuzz_clusterer(X, params, weighted):
    clusterer = AstroLinkClusterer(**params)
    sample_weight = None
    if weighted == 0 and isinstance(X, np.ndarray) and X.ndim:
        rng = np.random.default_rng(X.shape[0])
        sample_weight = rng.choice([0.0, 0.5, 1.0, 3.0], size=X.shape[0])
        if rng.random() < 0.2:  # a negative or missing weight
            sample_weight[rng.integers(0, X.shape[0])] = rng.choice([-1.0, np.nan])
    result, caught = call(clusterer.fit, X, sample_weight=sample_weight)
    if isinstance(result, Exception):
        check_error_message(result)
        return
    check_clusterer(clusterer, X)
    k_den = clusterer.k_den_
    if np.asarray(X).shape[0] <= k_den:
        # Too few points for k_den: no cluster, and the caller is told.
        assert clusterer.n_clusters_ == 0 and DegenerateDataWarning in caught
    predicted, _ = call(clusterer.predict, X)
    assert predicted.shape == (np.asarray(X).shape[0],)
    if _all_apart(X):
        # predict agrees with labels_ on the fitted points (when no two
        # coincide: a duplicate may sit in another cluster than its twin).
        np.testing.assert_array_equal(predicted, clusterer.labels_)


def _all_apart(X):
    """No two points at a squared distance of 0 (equal, or closer than float64 can tell)."""
    X = np.asarray(X, dtype=np.float64)
    with np.errstate(over="ignore"):
        d2 = ((X[:, None, :] - X[None, :, :]) ** 2).sum(axis=-1)
    np.fill_diagonal(d2, np.inf)
    return bool((d2 > 0).all())


# -- labels_to_image ------------------------------------------------------------------------

SHAPES = mostly(
    st.tuples(st.integers(1, 20), st.integers(1, 20))
    | st.tuples(st.integers(1, 20), st.integers(1, 20), st.integers(0, 4)),
    st.one_of(
        st.tuples(st.integers(-2, 0), st.integers(-2, 20)),
        st.tuples(st.floats(-2, 20), st.integers(1, 20)),
        st.integers(-2, 20),
        st.none(),
        st.text(max_size=3),
        st.lists(st.integers(1, 20), max_size=4),
    ),
)


@st.composite
def labelled_points(draw):
    n = draw(st.integers(0, 60))
    if draw(chance(1)):
        labels = draw(st.one_of(arrays(ANY_DTYPE, max_side=60), st.lists(st.integers())))
    else:
        labels = draw(hnp.arrays(draw(hnp.integer_dtypes()), n, elements=st.integers(-1, 9)))
    if draw(chance(1)):
        points = draw(arrays(ANY_DTYPE, max_side=60))
    else:
        n_points = draw(mostly(st.just(n), st.sampled_from([max(n - 1, 0), n + 1])))
        n_columns = draw(mostly(st.integers(2, 4), st.just(1)))
        points = draw(
            hnp.arrays(
                draw(hnp.floating_dtypes(sizes=(32, 64))),
                (n_points, n_columns),
                elements=st.floats(-30, 50, width=32),
            )
        )
        if points.size and draw(chance(1)):  # far away or missing
            points.flat[draw(st.integers(0, points.size - 1))] = draw(
                st.sampled_from([np.nan, 1e30, -1e30])
            )
    return labels, points


@fuzz(400)
@given(
    data=labelled_points(),
    shape=SHAPES,
    fill_distance=mostly(
        st.none() | st.floats(0, 3) | st.just(np.inf),
        st.sampled_from([-1.0, np.nan, "1"]),
    ),
    use_footprint=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_fuzz_labels_to_image(data, shape, fill_distance, use_footprint, seed):
    labels, points = data
    kwargs = {} if fill_distance is None else {"fill_distance": fill_distance}
    if use_footprint and isinstance(shape, tuple) and all(isinstance(s, int) for s in shape):
        rng = np.random.default_rng(seed)
        kwargs["footprint"] = rng.random(tuple(max(s, 0) for s in shape[:2])) < 0.7
    result, caught = call(labels_to_image, labels, points, shape, **kwargs)
    assert not caught  # labels_to_image never warns
    if isinstance(result, Exception):
        check_error_message(result)
        return
    labels = np.asarray(labels)
    assert result.dtype == np.int32 and result.ndim == 2
    assert result.shape == tuple(int(s) for s in np.atleast_1d(shape)[:2])
    values = np.unique(result[result > 0])
    # Every non-zero pixel is label + 1 of a label some point carries.
    assert np.isin(values - 1, labels).all()
    if "footprint" in kwargs:
        assert not result[~kwargs["footprint"]].any()


# -- segment ---------------------------------------------------------------------------------


@fuzz(150)
@given(
    image=images(),
    params=some_of({**PARAMS, **{k: CLUSTER_PARAMS[k] for k in ("k_den", "min_significance")}}),
    seed=st.integers(0, 2**32 - 1),
)
def test_fuzz_segment(image, params, seed):
    params.setdefault("n_samples", 300)  # 'auto' draws at least 1,000: slow
    result, caught = call(segment, image, random_state=seed, **params)
    if isinstance(result, Exception):
        check_error_message(result)
        return
    data = np.asarray(image)
    label_image = result.label_image
    assert label_image.dtype == np.int32 and label_image.shape == data.shape[:2]
    assert result.labels.shape == (result.points.shape[0],)
    n_labels = int(result.labels.max()) + 1 if result.labels.size else 0
    assert label_image.min() >= 0 and label_image.max() <= n_labels
    assert result.n_sources == np.unique(label_image[label_image > 0]).size
    if result.n_sources == 0 and result.points.shape[0] == 0 and params["n_samples"] != 0:
        assert DegenerateDataWarning in caught
