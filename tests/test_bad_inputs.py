"""Bad input gets a clear error; valid input that holds nothing, an empty result and a warning.

One table per entry point of the public API (``LuminositySampler``,
``segment``, ``AstroLinkClusterer``, ``labels_to_image``) and one for the
command line. Every row names the input and its expected outcome:

* ``Raises(error, match)``: a ``ValueError`` or ``TypeError`` (scikit-learn's
  ``InvalidParameterError`` and :class:`~skimgcluster.InsufficientMemoryError`
  are both ``ValueError``) whose *first line* matches ``match``, which names
  the parameter and the value that came, so the one line the command line
  prints says what was wrong;
* ``Empty(warning, match)``: the input is valid but holds nothing (an
  all-zero image): an empty result and a warning that says why;
* ``Valid()``: unusual but valid input, a result and no warning at all.

``filterwarnings = error`` makes any other warning fail a row, and
``pytest.raises`` lets any other exception (``AssertionError``,
``IndexError``, ``ZeroDivisionError``, numba's errors) through as a failure.
"""

import builtins
import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from conftest import TWO_SOURCES, gaussian_image
from PIL import Image

from skimgcluster import (
    AstroLinkClusterer,
    DegenerateDataWarning,
    InsufficientMemoryError,
    LuminositySampler,
    _validation,
    labels_to_image,
    segment,
)
from skimgcluster._astrolink import _CachedAstroLink
from skimgcluster._cli import main
from skimgcluster._io import read_image


class Raises(NamedTuple):
    error: type
    match: str


class Empty(NamedTuple):
    warning: type
    match: str


class Valid(NamedTuple):
    pass


# -- inputs ------------------------------------------------------------------------------


def source_image(shape=(24, 24), seed=0):
    """A float image with one bright source on noise."""
    return gaussian_image(shape, ((shape[0] // 2, shape[1] // 2, 60.0, 2.0),), sky=10.0, seed=seed)


def rgba_image(seed=0):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 20, (24, 24, 4)).astype(np.uint8)
    image[10:14, 10:14, :3] += 200
    image[:, :, 3] = 255
    return image


def all_masked_image():
    return np.ma.masked_array(source_image(), mask=np.ones((24, 24), dtype=bool))


def with_infinities():
    image = source_image()
    image[0, 0] = image[3, 5] = np.inf
    image[7, 7] = -np.inf
    return image


def with_one_huge_pixel(value=1e30):
    image = two_source_image()
    image[60, 3] = value  # thirty decades above the noise, within float32
    return image


def cloud(n=600, d=2, seed=0):
    """Three clumps of points, ten standard deviations apart."""
    rng = np.random.default_rng(seed)
    centres = 10.0 * np.arange(3)[:, None] * np.ones(d)
    return centres[np.arange(n) % 3] + rng.normal(0, 1, (n, d))


def two_source_image():
    return gaussian_image((64, 64), TWO_SOURCES, noise=1.0, sky=10.0, seed=1)


def with_value(X, value):
    X = X.copy()
    X[3, 1] = value
    return X


# Images: (id, image factory, outcome). The same rows run through
# LuminositySampler.fit_transform and segment.
IMAGE_ROWS = [
    (
        "not-an-array",
        object,
        Raises(TypeError, r"^image must have a real numeric dtype.*dtype=object"),
    ),
    (
        "none",
        lambda: None,
        Raises(TypeError, r"^image must have a real numeric dtype.*dtype=object"),
    ),
    ("string", lambda: "abc", Raises(TypeError, r"^image must have a real .*dtype=<U3")),
    ("scalar", lambda: 3.0, Raises(ValueError, r"^image must have shape \(M, N\).*got shape \(\)")),
    (
        "ragged-nested-list",
        lambda: [[1, 2], [3]],
        Raises(TypeError, r"^image must be an array.*could not convert list"),
    ),
    ("nested-list", lambda: source_image().tolist(), Valid()),
    (
        "1-D",
        lambda: np.ones(16),
        Raises(ValueError, r"^image must have shape .*got shape \(16,\) with 1 dimension"),
    ),
    (
        "4-D",
        lambda: np.ones((4, 4, 3, 2)),
        Raises(ValueError, r"^image must have shape .*got shape \(4, 4, 3, 2\) with 4 dimension"),
    ),
    (
        "5-D",
        lambda: np.ones((2,) * 5),
        Raises(
            ValueError, r"^image must have shape .*got shape \(2, 2, 2, 2, 2\) with 5 dimension"
        ),
    ),
    (
        "empty-0x0",
        lambda: np.ones((0, 0)),
        Raises(ValueError, r"^image must have no zero-sized axis; got shape \(0, 0\)"),
    ),
    (
        "zero-rows",
        lambda: np.ones((0, 16)),
        Raises(ValueError, r"^image must have no zero-sized axis; got shape \(0, 16\)"),
    ),
    (
        "zero-columns",
        lambda: np.ones((16, 0)),
        Raises(ValueError, r"^image must have no zero-sized axis; got shape \(16, 0\)"),
    ),
    (
        "zero-bands",
        lambda: np.ones((16, 16, 0)),
        Raises(ValueError, r"^image must have no zero-sized axis; got shape \(16, 16, 0\)"),
    ),
    (
        "complex",
        lambda: source_image().astype(complex),
        Raises(TypeError, r"^image must have a real numeric dtype.*dtype=complex128"),
    ),
    (
        "object",
        lambda: source_image().astype(object),
        Raises(TypeError, r"^image must have a real numeric dtype.*dtype=object"),
    ),
    (
        "strings",
        lambda: np.full((8, 8), "a"),
        Raises(TypeError, r"^image must have a real numeric dtype.*dtype=<U1"),
    ),
    (
        "datetime",
        lambda: np.zeros((8, 8), "datetime64[s]"),
        Raises(TypeError, r"dtype=datetime64\[s\]"),
    ),
    ("boolean", lambda: source_image() > 30, Valid()),
    (
        "all-NaN",
        lambda: np.full((16, 16), np.nan),
        Empty(
            DegenerateDataWarning,
            r"No pixel .* above the detection threshold \(detection_threshold=3.5\)",
        ),
    ),
    (
        "all-masked",
        all_masked_image,
        Empty(DegenerateDataWarning, r"No pixel .*\(detection_threshold=3\.5\)"),
    ),
    (
        "constant",
        lambda: np.full((16, 16), 7.0),
        Empty(DegenerateDataWarning, r"No pixel .*\(detection_threshold=3\.5\)"),
    ),
    (
        "all-zero",
        lambda: np.zeros((16, 16)),
        Empty(DegenerateDataWarning, r"No pixel .*\(detection_threshold=3\.5\)"),
    ),
    (
        "all-zero-uint8",
        lambda: np.zeros((16, 16, 3), np.uint8),
        Empty(DegenerateDataWarning, r"No pixel .*\(detection_threshold=3\.5\)"),
    ),
    (
        "infinite",
        with_infinities,
        Raises(ValueError, r"^image must not contain infinite values; got 3 infinite"),
    ),
    ("negative-sky", lambda: source_image() - 1000.0, Valid()),
    (
        "all-negative-absorption",
        lambda: -source_image(),
        Empty(DegenerateDataWarning, r"No pixel .*\(detection_threshold=3\.5\)"),
    ),
    ("huge-dynamic-range", with_one_huge_pixel, Valid()),
    (
        "beyond-float32",
        lambda: source_image() * 1e300,
        Raises(
            ValueError,
            r"^image values must satisfy \|value\| <= 8.507e\+37 "
            r".*got \|value\| up to 7\.\d+e\+301",
        ),
    ),
    (
        "below-float32",
        lambda: source_image() * 1e-42,
        Raises(ValueError, r"^image values are too small .*\|value\| up to 7\.\d+e-41"),
    ),
    (
        "1x1",
        lambda: np.ones((1, 1)),
        Empty(DegenerateDataWarning, r"No pixel .*\(detection_threshold=3\.5\)"),
    ),
    ("HxWx1", lambda: source_image()[:, :, None], Valid()),
    ("RGBA", rgba_image, Valid()),
    ("float16", lambda: source_image().astype(np.float16), Valid()),
    ("big-endian", lambda: source_image().astype(">f8"), Valid()),
    ("extended-precision", lambda: source_image().astype(np.longdouble), Valid()),
]


def _sampler_run(image, **params):
    return LuminositySampler(n_samples=300, random_state=0, **params).fit_transform(image)


def _segment_run(image, **params):
    return segment(image, random_state=0, **{"n_samples": 300, **params})


def _check_sampler(points, image, empty):
    data = np.asarray(image)
    n_bands = data.shape[2] if data.ndim == 3 else 1
    n_features = 2 + (n_bands if n_bands > 1 else 0)
    assert points.shape == ((0 if empty else 300), n_features)
    assert np.isfinite(points).all()


def _check_segment(result, image, empty):
    label_image = result.label_image
    assert label_image.shape == np.asarray(image).shape[:2]
    assert label_image.dtype == np.int32
    if empty:
        assert result.n_sources == 0 and not label_image.any()
        assert result.points.shape[0] == 0
    else:
        assert result.points.shape[0] == 300


def _run_row(call, outcome, check):
    if isinstance(outcome, Raises):
        with pytest.raises(outcome.error) as info:
            call()
        exc = info.value
        assert isinstance(exc, (ValueError, TypeError))
        first_line = str(exc).splitlines()[0]
        assert re.search(outcome.match, first_line), first_line
    elif isinstance(outcome, Empty):
        with pytest.warns(outcome.warning, match=outcome.match):
            result = call()
        check(result, True)
    else:
        check(call(), False)  # filterwarnings=error: no warning either


@pytest.mark.parametrize(("make", "outcome"), [pytest.param(*r[1:], id=r[0]) for r in IMAGE_ROWS])
def test_sampler_image(make, outcome):
    image = make()
    _run_row(lambda: _sampler_run(image), outcome, lambda r, e: _check_sampler(r, image, e))


@pytest.mark.parametrize(("make", "outcome"), [pytest.param(*r[1:], id=r[0]) for r in IMAGE_ROWS])
def test_segment_image(make, outcome):
    image = make()
    _run_row(lambda: _segment_run(image), outcome, lambda r, e: _check_segment(r, image, e))


def test_hw1_is_the_same_image_as_hw():
    image = source_image(seed=3)
    np.testing.assert_array_equal(_sampler_run(image[:, :, None]), _sampler_run(image))
    np.testing.assert_array_equal(
        _segment_run(image[:, :, None]).label_image, _segment_run(image).label_image
    )


def test_unusual_dtypes_give_the_float64_answer():
    """float16, big-endian and extended-precision images are the same image."""
    image = np.round(source_image(seed=4))  # exactly representable in float16
    expected = _segment_run(image).label_image
    for dtype in (np.float16, ">f8", np.longdouble):
        np.testing.assert_array_equal(_segment_run(image.astype(dtype)).label_image, expected)


def test_huge_dynamic_range_finds_the_faint_sources_with_asinh():
    """A hot pixel ten decades above the sources takes every point of the
    linear stretch (and is the one source found); the asinh stretch still
    finds the two sources.

    (Beyond twelve decades the noise floor, 1e-12 of the brightest pixel
    for the float32 maps, hides fainter sources: a valid but empty answer.)
    """
    image = with_one_huge_pixel(1e10)
    linear = segment(image, random_state=0)
    # Only the hot pixel's footprint has points: one isolated source, no cluster.
    assert linear.n_sources == 1 and linear.label_image[60, 3] == 1
    assert linear.isolated.tolist() == [True]
    result = segment(image, random_state=0, stretch="asinh")
    sources = {result.label_image[20, 18], result.label_image[44, 46]}
    assert 0 not in sources and len(sources) == 2


# -- sampler and segment parameters ---------------------------------------------------------

SAMPLER_PARAM_ROWS = [
    ("n_samples-zero", {"n_samples": 0}, Valid()),  # asked for nothing: gets nothing, silently
    (
        "n_samples-negative",
        {"n_samples": -1},
        Raises(
            ValueError,
            r"'n_samples' parameter of LuminositySampler must be an int in the range "
            r"\[0, inf\).*Got -1 instead",
        ),
    ),
    (
        "n_samples-float",
        {"n_samples": 2.5},
        Raises(ValueError, r"'n_samples' parameter.*Got 2.5 instead"),
    ),
    (
        "n_samples-string",
        {"n_samples": "10"},
        Raises(ValueError, r"'n_samples' parameter.*Got '10' instead"),
    ),
    (
        "n_samples-none",
        {"n_samples": None},
        Raises(ValueError, r"'n_samples' parameter.*Got None instead"),
    ),
    (
        "n_samples-beyond-memory",
        {"n_samples": 10**13},
        Raises(
            InsufficientMemoryError,
            r"n_samples=10000000000000 needs about [\d.]+ [TP]iB of memory, "
            r"but only .* is available",
        ),
    ),
    (
        "max_samples-zero",
        {"n_samples": "auto", "max_samples": 0},
        Raises(ValueError, r"'max_samples' parameter.*Got 0 instead"),
    ),
    (
        "background-nan",
        {"background": np.nan},
        Raises(ValueError, r"'background' parameter.*Got nan instead"),
    ),
    (
        "background-inf",
        {"background": np.inf},
        Raises(ValueError, r"'background' parameter.*Got inf instead"),
    ),
    (
        "background-beyond-float32",
        {"background": 1e300},
        Raises(
            ValueError,
            r"^background must satisfy \|background\| <= 8.507e\+37.*got background=1e\+300",
        ),
    ),
    (
        "detection_threshold-nan",
        {"detection_threshold": np.nan},
        Raises(ValueError, r"'detection_threshold' parameter.*Got nan instead"),
    ),
    (
        "smoothing-negative",
        {"smoothing": -1.0},
        Raises(ValueError, r"'smoothing' parameter.*Got -1.0 instead"),
    ),
    (
        "stretch-unknown",
        {"stretch": "log"},
        Raises(ValueError, r"'stretch' parameter.*Got 'log' instead"),
    ),
    (
        "random_state-negative",
        {"random_state": -1},
        Raises(ValueError, r"'random_state' parameter.*Got -1 instead"),
    ),
]


@pytest.mark.parametrize(
    ("params", "outcome"), [pytest.param(*r[1:], id=r[0]) for r in SAMPLER_PARAM_ROWS]
)
def test_sampler_parameter(params, outcome):
    image = source_image()

    def call():
        kwargs = {"n_samples": 300, "random_state": 0, **params}
        return LuminositySampler(**kwargs).fit_transform(image)

    def check(points, _):
        assert points.shape == (params.get("n_samples", 300), 2)

    _run_row(call, outcome, check)


SEGMENT_PARAM_ROWS = [
    (
        "unknown-keyword",
        {"bogus": 1},
        Raises(TypeError, r"segment\(\) got an unexpected keyword argument 'bogus'"),
    ),
    ("n_samples-zero", {"n_samples": 0}, Valid()),
    (
        "n_samples-negative",
        {"n_samples": -1},
        Raises(ValueError, r"'n_samples' parameter.*Got -1 instead"),
    ),
    (
        "n_samples-float",
        {"n_samples": 2.5},
        Raises(ValueError, r"'n_samples' parameter.*Got 2.5 instead"),
    ),
    (
        "n_samples-beyond-memory",
        {"n_samples": 10**13},
        Raises(InsufficientMemoryError, r"n_samples=10000000000000 needs about"),
    ),
    (
        "k_den-larger-than-data",
        {"k_den": 10**6},
        Empty(DegenerateDataWarning, r"n_samples=300 is too few for k_den=1000000"),
    ),
    ("k_den-one", {"k_den": 1}, Raises(ValueError, r"'k_den' parameter.*Got 1 instead")),
    (
        "min_significance-out-of-range",
        {"min_significance": 100},
        Raises(ValueError, r"'min_significance' parameter.*Got 100 instead"),
    ),
    (
        "min_significance-nan",
        {"min_significance": np.nan},
        Raises(ValueError, r"'min_significance' parameter.*Got nan instead"),
    ),
    (
        "n_jobs-zero",
        {"n_jobs": 0},
        Raises(ValueError, r"n_jobs must be a non-zero integer or None; got n_jobs=0"),
    ),
    ("n_jobs-float", {"n_jobs": 1.5}, Raises(ValueError, r"'n_jobs' parameter.*Got 1.5 instead")),
    ("n_jobs-string", {"n_jobs": "2"}, Raises(ValueError, r"'n_jobs' parameter.*Got '2' instead")),
    (
        "mask-wrong-shape",
        {"mask": np.zeros((3, 3), bool)},
        Raises(ValueError, r"^mask must have shape \(24, 24\), the image's; got \(3, 3\)"),
    ),
    (
        "mask-not-boolean",
        {"mask": np.zeros((24, 24), int)},
        Raises(TypeError, r"^mask must be a boolean array; got dtype=int64"),
    ),
]


@pytest.mark.parametrize(
    ("params", "outcome"), [pytest.param(*r[1:], id=r[0]) for r in SEGMENT_PARAM_ROWS]
)
def test_segment_parameter(params, outcome):
    image = source_image()

    def check(result, empty):
        assert result.label_image.shape == (24, 24) and result.label_image.dtype == np.int32
        if empty or params.get("n_samples") == 0:
            assert result.n_sources == 0 and not result.label_image.any()

    _run_row(lambda: _segment_run(image, **params), outcome, check)


def test_transform_with_other_bands_than_fit():
    sampler = LuminositySampler(n_samples=10, random_state=0).fit(source_image())
    with pytest.raises(
        ValueError, match=r"X has 3 band\(s\), but LuminositySampler was fitted with 1"
    ):
        sampler.transform(np.dstack([source_image()] * 3))


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
    model = _CachedAstroLink(X, k_den=5, adaptive=0, algorithm=algorithm)
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
    model = _CachedAstroLink(X, k_den=3, adaptive=0, algorithm=algorithm)
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


# -- labels_to_image -------------------------------------------------------------------------


def labelled(n=50, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(-1, 3, n), rng.uniform(0, 15, (n, 2))


LAB, PTS = labelled()

# (id, labels, points, shape, keywords, outcome)
LABELS_ROWS = [
    (
        "labels-not-an-array",
        object(),
        PTS,
        (16, 16),
        {},
        Raises(ValueError, r"^labels must be 1-D of shape \(n_samples,\); got shape \(\)"),
    ),
    (
        "labels-ragged",
        [[1], [1, 2]],
        PTS,
        (16, 16),
        {},
        Raises(TypeError, r"^labels must be an array; could not convert list"),
    ),
    (
        "labels-2-D",
        LAB.reshape(5, 10),
        PTS,
        (16, 16),
        {},
        Raises(ValueError, r"^labels must be 1-D of shape \(n_samples,\); got shape \(5, 10\)"),
    ),
    (
        "labels-below-minus-one",
        LAB - 5,
        PTS,
        (16, 16),
        {},
        Raises(ValueError, r"^labels must be -1 \(noise\) or >= 0; got -6"),
    ),
    (
        "labels-too-large-for-int32",
        np.full(50, 2**40),
        PTS,
        (16, 16),
        {},
        Raises(ValueError, r"^labels must be at most 2147483646 .*got 1099511627776"),
    ),
    (
        "labels-float",
        LAB + 0.5,
        PTS,
        (16, 16),
        {},
        Raises(TypeError, r"^labels must be integers; got dtype=float64"),
    ),
    ("labels-integral-float", LAB.astype(float), PTS, (16, 16), {}, Valid()),
    (
        "labels-complex",
        LAB.astype(complex),
        PTS,
        (16, 16),
        {},
        Raises(TypeError, r"^labels must be integers; got dtype=complex128"),
    ),
    (
        "labels-object",
        LAB.astype(object),
        PTS,
        (16, 16),
        {},
        Raises(TypeError, r"^labels must be integers; got dtype=object"),
    ),
    (
        "labels-strings",
        LAB.astype(str),
        PTS,
        (16, 16),
        {},
        Raises(TypeError, r"^labels must be integers; got dtype=<U21"),
    ),
    (
        "labels-boolean",
        LAB > 0,
        PTS,
        (16, 16),
        {},
        Raises(TypeError, r"^labels must be integers; got dtype=bool"),
    ),
    (
        "length-mismatch",
        LAB[:10],
        PTS,
        (16, 16),
        {},
        Raises(
            ValueError, r"^labels and points must have the same length; got 10 labels and 50 points"
        ),
    ),
    (
        "points-1-D",
        LAB,
        PTS[:, 0],
        (16, 16),
        {},
        Raises(ValueError, r"^points must have shape \(n_samples, >= 2\).*got shape \(50,\)"),
    ),
    (
        "points-one-column",
        LAB,
        PTS[:, :1],
        (16, 16),
        {},
        Raises(ValueError, r"^points must have shape .*got shape \(50, 1\)"),
    ),
    (
        "points-3-D",
        LAB,
        PTS[:, :, None],
        (16, 16),
        {},
        Raises(ValueError, r"^points must have shape .*got shape \(50, 2, 1\)"),
    ),
    (
        "points-NaN",
        LAB,
        with_value(PTS, np.nan),
        (16, 16),
        {},
        Raises(
            ValueError,
            r"^points must have finite x and y; got 1 point\(s\) .*points\[3\] = \[[\d.]+, nan\]",
        ),
    ),
    (
        "points-infinite",
        LAB,
        with_value(PTS, np.inf),
        (16, 16),
        {},
        Raises(ValueError, r"^points must have finite x and y; .*points\[3\]"),
    ),
    (
        "points-complex",
        LAB,
        PTS.astype(complex),
        (16, 16),
        {},
        Raises(TypeError, r"^points must be numeric; got dtype=complex128"),
    ),
    (
        "points-object",
        LAB,
        PTS.astype(object),
        (16, 16),
        {},
        Raises(TypeError, r"^points must be numeric; got dtype=object"),
    ),
    (
        "points-strings",
        LAB,
        PTS.astype(str),
        (16, 16),
        {},
        Raises(TypeError, r"^points must be numeric; got dtype=<U"),
    ),
    (
        "points-far-outside",
        LAB,
        with_value(PTS, 1e300),
        (16, 16),
        {},
        Valid(),
    ),  # clipped to the edge
    (
        "shape-zero",
        LAB,
        PTS,
        (0, 16),
        {},
        Raises(ValueError, r"^shape must be \(M, N\) with M, N >= 1; got \(0, 16\)"),
    ),
    (
        "shape-negative",
        LAB,
        PTS,
        (-3, 16),
        {},
        Raises(ValueError, r"^shape must be \(M, N\) with M, N >= 1; got \(-3, 16\)"),
    ),
    (
        "shape-one-axis",
        LAB,
        PTS,
        (16,),
        {},
        Raises(ValueError, r"^shape must be \(M, N\) with M, N >= 1; got \(16,\)"),
    ),
    (
        "shape-scalar",
        LAB,
        PTS,
        16,
        {},
        Raises(ValueError, r"^shape must be \(M, N\) with M, N >= 1; got \(16,\)"),
    ),
    (
        "shape-non-integer",
        LAB,
        PTS,
        (16.5, 16),
        {},
        Raises(ValueError, r"^shape must be a tuple of ints \(M, N\); got \(16.5, 16\)"),
    ),
    (
        "shape-string",
        LAB,
        PTS,
        "16x16",
        {},
        Raises(TypeError, r"^shape must be a tuple of ints \(M, N\); got '16x16'"),
    ),
    (
        "shape-none",
        LAB,
        PTS,
        None,
        {},
        Raises(TypeError, r"^shape must be a tuple of ints \(M, N\); got None"),
    ),
    ("shape-image-HxWxC", LAB, PTS, (16, 16, 3), {}, Valid()),  # a longer shape is cut to two
    (
        "shape-beyond-memory",
        LAB,
        PTS,
        (10**7, 10**7),
        {},
        Raises(
            InsufficientMemoryError,
            r"^labels_to_image with shape=\(10000000, 10000000\) and 50 points "
            r"needs about [\d.]+ PiB",
        ),
    ),
    (
        "footprint-wrong-shape",
        LAB,
        PTS,
        (16, 16),
        {"footprint": np.ones((8, 8), bool)},
        Raises(ValueError, r"^footprint must have the image shape \(16, 16\); got \(8, 8\)"),
    ),
    (
        "fill_distance-negative",
        LAB,
        PTS,
        (16, 16),
        {"fill_distance": -1},
        Raises(ValueError, r"^The 'fill_distance' parameter of labels_to_image must be a float in "
            r"the range \[0.0, inf\); got fill_distance=-1"),
    ),
    (
        "fill_distance-nan",
        LAB,
        PTS,
        (16, 16),
        {"fill_distance": np.nan},
        Raises(ValueError, r"^The 'fill_distance' parameter of labels_to_image must be a float in "
            r"the range \[0.0, inf\); got fill_distance=nan"),
    ),
    (
        "fill_distance-string",
        LAB,
        PTS,
        (16, 16),
        {"fill_distance": "1"},
        Raises(TypeError, r"^The 'fill_distance' parameter of labels_to_image must be a float in "
            r"the range \[0.0, inf\); got fill_distance='1'"),
    ),
    (
        "no-points",
        np.empty(0, int),
        np.empty((0, 2)),
        (4, 4),
        {},
        Valid(),
    ),  # nothing to map: background
]


@pytest.mark.parametrize(
    ("labels", "points", "shape", "kwargs", "outcome"),
    [pytest.param(*r[1:], id=r[0]) for r in LABELS_ROWS],
)
def test_labels_to_image(labels, points, shape, kwargs, outcome):
    def check(label_image, _):
        assert label_image.dtype == np.int32
        assert label_image.shape == tuple(np.atleast_1d(shape)[:2])
        assert set(np.unique(label_image)) <= set(np.asarray(labels).astype(int) + 1) | {0}

    _run_row(lambda: labels_to_image(labels, points, shape, **kwargs), outcome, check)


# -- the command line ---------------------------------------------------------------------------


def _png(path, array):
    Image.fromarray(array).save(path)
    return path


def field_png(tmp_path, name="field.png"):
    """A 48 x 48 8-bit image of two sources."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:48, :48]
    image = rng.normal(20, 3, (48, 48))
    for row, col in [(14, 15), (34, 32)]:
        image += 160 * np.exp(-((yy - row) ** 2 + (xx - col) ** 2) / 14)
    return _png(tmp_path / name, np.clip(image, 0, 255).astype(np.uint8))


def _truncated_png(tmp_path):
    good = field_png(tmp_path, "whole.png").read_bytes()
    path = tmp_path / "truncated.png"
    path.write_bytes(good[: len(good) // 2])
    return path


def _existing_output(tmp_path):
    image = field_png(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "sources.csv").write_text("keep me")
    return [str(image), "-o", str(out)]


# (id, argv factory given tmp_path, exit status, regex of the one line on stderr)
CLI_ROWS = [
    (
        "missing-file",
        lambda p: [str(p / "missing.png"), "-o", str(p / "o")],
        1,
        r"^skimgcluster: error: no such image file: .*missing\.png$",
    ),
    (
        "folder-as-image",
        lambda p: [str(p), "-o", str(p / "o")],
        1,
        r"^skimgcluster: error: cannot read .* as an image: it is a folder$",
    ),
    (
        "corrupt-png",
        lambda p: [str(_bytes(p / "bad.png", b"\x89PNG\r\n\x1a\n not really")), "-o", str(p / "o")],
        1,
        r"^skimgcluster: error: cannot read .*bad\.png as an image",
    ),
    (
        "truncated-png",
        lambda p: [str(_truncated_png(p)), "-o", str(p / "o")],
        1,
        r"^skimgcluster: error: cannot read .*truncated\.png as an image",
    ),
    (
        "empty-file",
        lambda p: [str(_bytes(p / "empty.tif", b"")), "-o", str(p / "o")],
        1,
        r"^skimgcluster: error: cannot read .*empty\.tif as an image",
    ),
    (
        "text-as-tiff",
        lambda p: [str(_bytes(p / "notes.tif", b"hello\n")), "-o", str(p / "o")],
        1,
        r"^skimgcluster: error: cannot read .*notes\.tif as an image",
    ),
    (
        "output-exists",
        _existing_output,
        1,
        r"^skimgcluster: error: .*sources\.csv already exist\(s\); pass --overwrite to replace$",
    ),
    (
        "output-is-a-file",
        lambda p: [str(field_png(p)), "-o", str(_bytes(p / "o", b"x"))],
        1,
        r"^skimgcluster: error: output .*o exists and is not a folder$",
    ),
    (
        "n-samples-negative",
        lambda p: [str(field_png(p)), "-o", str(p / "o"), "--n-samples", "-5"],
        1,
        r"^skimgcluster: error: The 'n_samples' parameter .*Got -5 instead\.$",
    ),
    (
        "n-samples-beyond-memory",
        lambda p: [str(field_png(p)), "-o", str(p / "o"), "--n-samples", str(10**13)],
        1,
        r"^skimgcluster: error: LuminositySampler "
        r".*n_samples=10000000000000 needs about .* is available\.",
    ),
    (
        "min-significance-out-of-range",
        lambda p: [str(field_png(p)), "-o", str(p / "o"), "--min-significance", "100"],
        1,
        r"^skimgcluster: error: The 'min_significance' parameter .*Got 100.0 instead\.$",
    ),
    (
        "detection-threshold-nan",
        lambda p: [str(field_png(p)), "-o", str(p / "o"), "--detection-threshold", "nan"],
        1,
        r"^skimgcluster: error: The 'detection_threshold' parameter .*Got nan instead\.$",
    ),
]


def _bytes(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("argv", "status", "message"), [pytest.param(*r[1:], id=r[0]) for r in CLI_ROWS]
)
def test_command_line(tmp_path, capsys, argv, status, message):
    argv = ["segment", *argv(tmp_path), "--quiet"]
    before = _snapshot(tmp_path)
    assert main(argv) == status
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err  # one line, no traceback
    assert re.search(message, lines[0]), lines[0]
    assert captured.out == ""
    assert _snapshot(tmp_path) == before  # nothing written, nothing changed


def _snapshot(folder):
    return {p: p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def test_command_line_unreadable_file(tmp_path, capsys, monkeypatch):
    """A file the user may not read (simulated: the tests may run as root)."""
    image = field_png(tmp_path, "locked.png")
    real_open = builtins.open

    def deny(file, *args, **kwargs):
        if os.fspath(file) == str(image):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    assert main(["segment", str(image), "-o", str(tmp_path / "o"), "-q"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert re.search(
        r"^skimgcluster: error: cannot read .*locked\.png as an image: .*Permission denied",
        lines[0],
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "argv",
    [["--n-samples", "abc"], ["--seed", "1.5"], ["--bogus"]],
    ids=["n-samples-abc", "seed-float", "unknown-option"],
)
def test_command_line_usage_errors(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(["segment", str(field_png(tmp_path)), "-o", str(tmp_path / "o"), *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert re.match(r"skimgcluster( segment)?: error: ", err.splitlines()[-1])
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("image", "n_sources"),
    [
        (np.zeros((32, 32), np.uint8), 0),  # valid but empty
        (np.full((1, 1), 200, np.uint8), 0),  # 1 x 1
        (np.full((32, 32, 4), 255, np.uint8), 0),  # RGBA, opaque and constant
    ],
    ids=["all-zero", "1x1", "constant-RGBA"],
)
def test_command_line_empty_image_warns_and_writes_empty_outputs(
    tmp_path, capsys, image, n_sources
):
    path = _png(tmp_path / "image.png", image)
    out = tmp_path / "out"
    assert main(["segment", str(path), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    assert re.search(r"skimgcluster: warning: No pixel of the image lies above", captured.err)
    assert captured.out.startswith(f"found {n_sources} sources")
    labels, _ = read_image(out / "labels.png")
    assert labels.shape == image.shape[:2] and not labels.any()
    assert (out / "sources.csv").read_text().count("\n") == 1  # the header only


# -- memory ---------------------------------------------------------------------------------------


@pytest.fixture
def memory(monkeypatch):
    """Set the memory the checks believe is available, in bytes."""

    def set_available(n_bytes):
        monkeypatch.setattr(_validation, "available_memory", lambda: n_bytes)

    return set_available


def test_memory_error_is_a_value_error_and_a_memory_error():
    assert issubclass(InsufficientMemoryError, ValueError)
    assert issubclass(InsufficientMemoryError, MemoryError)


def test_sampler_refuses_an_image_too_large_for_memory(memory):
    memory(2**20)  # 1 MiB
    image = np.ones((512, 512), np.float32)
    with pytest.raises(
        InsufficientMemoryError,
        match=r"^LuminositySampler on an image of shape \(512, 512, 1\) with n_samples=300 "
        r"needs about 11\.\d MiB of memory, but only 1\.0 MiB is available\. Lower n_samples",
    ):
        LuminositySampler(n_samples=300).fit_transform(image)
    with pytest.raises(InsufficientMemoryError, match=r"shape \(512, 512, 1\) needs about"):
        LuminositySampler().analyse(image)


def test_sampler_refuses_n_samples_before_the_maps(memory, monkeypatch):
    """A fixed n_samples is refused before any map is computed."""
    memory(50 * 2**20)
    from skimgcluster import _sampler

    def fail(*args):
        raise AssertionError("the maps were computed")

    monkeypatch.setattr(_sampler, "_band_mean", fail)
    with pytest.raises(
        InsufficientMemoryError, match=r"n_samples=10000000 needs about 9\d\d\.\d MiB"
    ):
        LuminositySampler(n_samples=10**7).fit_transform(source_image())


def test_sampler_refuses_auto_n_samples_after_analysis(memory):
    """With n_samples='auto' the number is known after the analysis only."""
    image = source_image((64, 64))
    maps_only = 64 * 64 * 64  # more than the maps need, less than the points
    memory(maps_only)
    sampler = LuminositySampler(samples_per_pixel=10**4, max_samples=10**9, random_state=0)
    with pytest.raises(InsufficientMemoryError, match=r"with n_samples=\d{6,} needs about"):
        sampler.fit_transform(image)


def test_clusterer_refuses_data_too_large_for_memory(memory):
    memory(100 * 2**10)  # 100 KiB
    with pytest.raises(
        InsufficientMemoryError,
        match=r"^AstroLinkClusterer\.fit of X of shape \(2000, 2\) with k_den=20 and "
        r"k_link=\d+ needs about 9\d\d\.\d KiB of memory, but only 100\.0 KiB is available\. "
        r"Sample fewer points",
    ):
        AstroLinkClusterer().fit(cloud(2000))


def test_clusterer_memory_estimate_follows_the_parameters(memory):
    """The estimate grows with n_samples, n_features and k_den."""

    def needed(X, **params):
        memory(1)
        with pytest.raises(InsufficientMemoryError) as info:
            AstroLinkClusterer(**params).fit(X)
        value, unit = re.search(r"needs about ([\d.]+) (\w+)", str(info.value)).groups()
        return float(value) * {"bytes": 1, "KiB": 2**10, "MiB": 2**20}[unit]

    base = needed(cloud(1000))
    assert needed(cloud(4000)) == pytest.approx(4 * base, rel=0.05)
    assert needed(cloud(1000, d=20)) > base
    assert needed(cloud(1000), k_den=40) > base


def test_segment_and_labels_to_image_refuse_too(memory):
    memory(2**10)
    with pytest.raises(InsufficientMemoryError, match=r"LuminositySampler .* needs about"):
        segment(source_image(), random_state=0)
    with pytest.raises(InsufficientMemoryError, match=r"labels_to_image with shape=\(16, 16\)"):
        labels_to_image(LAB, PTS, (16, 16))


def test_enough_memory_is_not_refused(memory):
    memory(2**30)
    assert segment(two_source_image(), random_state=0).n_sources == 2


def test_unknown_memory_is_not_refused(memory):
    memory(None)  # psutil missing or unable to tell
    assert _sampler_run(source_image()).shape == (300, 2)


def test_command_line_refuses_too_large_a_run(tmp_path, capsys, memory):
    memory(2**10)
    assert main(["segment", str(field_png(tmp_path)), "-o", str(tmp_path / "o"), "-q"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert re.search(
        r"^skimgcluster: error: LuminositySampler .* needs about .* but only 1\.0 KiB", lines[0]
    )
    assert not (tmp_path / "o").exists()


def test_available_memory_is_measured():
    available = _validation.available_memory()
    assert isinstance(available, int) and available > 0


# -- nothing lost on disk ---------------------------------------------------------------------


def _run_twice_setup(tmp_path, capsys):
    """An image and the outputs of a finished run on it."""
    image = field_png(tmp_path)
    out = tmp_path / "out"
    assert main(["segment", str(image), "-o", str(out), "-q"]) == 0
    capsys.readouterr()
    return image, out


def test_ctrl_c_during_a_write_keeps_the_old_output(tmp_path, capsys, monkeypatch):
    image, out = _run_twice_setup(tmp_path, capsys)
    before = _snapshot(out)
    real_save = Image.Image.save

    def interrupted_save(self, fp, *args, **kwargs):
        real_save(self, fp, *args, **kwargs)
        with open(fp, "r+b") as f:  # leave half a file behind, then Ctrl-C
            f.truncate(Path(fp).stat().st_size // 2)
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", interrupted_save)
    argv = ["segment", str(image), "-o", str(out), "-q", "--overwrite", "--seed", "9"]
    assert main(argv) == 130
    assert capsys.readouterr().err.splitlines() == ["skimgcluster: interrupted"]
    assert _snapshot(out) == before  # the old files, whole; no temporary file


_CHILD = r"""
import sys, time
import matplotlib.figure
import skimgcluster._segment

where = sys.argv[1]
real_segment = skimgcluster._segment.segment
real_savefig = matplotlib.figure.Figure.savefig


def wait():
    print("ready", file=sys.stderr, flush=True)
    time.sleep(120)


def slow_segment(*args, **kwargs):
    wait()
    return real_segment(*args, **kwargs)


def half_savefig(self, fname, **kwargs):
    real_savefig(self, fname, **kwargs)
    with open(fname, "r+b") as f:
        f.truncate(f.seek(0, 2) // 2)
    wait()


if where == "segment":
    skimgcluster._segment.segment = slow_segment
else:
    matplotlib.figure.Figure.savefig = half_savefig

from skimgcluster._cli import main

sys.exit(main(sys.argv[2:]))
"""


def _interrupt_child(where, argv, sig):
    import signal
    import subprocess
    import sys

    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, where, "segment", *argv],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        for line in child.stderr:  # progress lines, then "ready"
            lines.append(line)
            if line.strip() == "ready":
                break
        child.send_signal(getattr(signal, sig))
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return child.returncode, "".join(lines) + err


def test_ctrl_c_while_computing_writes_nothing(tmp_path):
    out = tmp_path / "out"
    status, err = _interrupt_child("segment", [str(field_png(tmp_path)), "-o", str(out)], "SIGINT")
    assert status == 130
    assert err.splitlines()[-1] == "skimgcluster: interrupted"
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("sig", ["SIGINT", "SIGKILL"])
def test_interrupted_write_leaves_whole_files_only(tmp_path, capsys, sig):
    """Killed halfway through writing overview.png (which is written last)."""
    image, out = _run_twice_setup(tmp_path, capsys)
    old_overview = (out / "overview.png").read_bytes()
    argv = [str(image), "-o", str(out), "--overwrite", "--seed", "9"]
    status, err = _interrupt_child("savefig", argv, sig)
    assert "Traceback" not in err
    # The finished outputs are whole; the one being written is the old one.
    labels, _ = read_image(out / "labels.png")
    assert labels.shape == (48, 48) and labels.max() == 2
    assert (out / "sources.csv").read_text().startswith("label,cluster_id")
    assert (out / "overview.png").read_bytes() == old_overview
    leftovers = sorted(p.name for p in out.iterdir())
    names = {"labels.png", "overview.png", "sources.csv"}
    if sig == "SIGINT":
        assert status == 130 and err.splitlines()[-1] == "skimgcluster: interrupted"
        assert set(leftovers) == names  # the temporary file was removed
    else:
        # No process can clean up after SIGKILL: the half-written output set
        # stays in its hidden staging folder, never under an output's name.
        assert status == -9
        extra = set(leftovers) - names
        assert all(re.fullmatch(r"\.skimgcluster-\w+\.part", name) for name in extra)


_MEASURE = r"""
import json, re, sys, warnings
import numpy as np
from skimgcluster import AstroLinkClusterer, InsufficientMemoryError, LuminositySampler, _validation

warnings.simplefilter("ignore")
rng = np.random.default_rng(0)
if sys.argv[1] == "sampler":
    image = rng.normal(10, 1, (2048, 2048)).astype(np.float32)
    image[:, :1800] += 100  # nearly every pixel in the footprint: the worst case
    sampler = LuminositySampler(n_samples=100_000, background=None, random_state=0)
    run = lambda: sampler.fit_transform(image)
    LuminositySampler(n_samples=10, random_state=0).fit_transform(image[:200, :200])
else:
    X = rng.normal(0, 1, (300_000, 3))
    X[::2] += 6
    run = lambda: AstroLinkClusterer(min_significance=3).fit(X)
    AstroLinkClusterer(min_significance=3).fit(X[:3000])  # load the kernels
measure = _validation.available_memory
_validation.available_memory = lambda: 1
try:
    run()
except InsufficientMemoryError as exc:
    value, unit = re.search(r"needs about ([\d.]+) (\w+)", str(exc)).groups()
    estimate = float(value) * {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit]
_validation.available_memory = measure


def status(field):
    with open("/proc/self/status") as f:
        return int(re.search(field + r":\s+(\d+) kB", f.read()).group(1)) * 1024


# The peak resident memory the run adds. ru_maxrss would be of no use: Linux
# keeps it across fork and exec, so a child of a big pytest process starts
# with its parent's peak. Resetting the high-water mark avoids that.
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
run()
print(json.dumps({"estimate": estimate, "measured": status("VmHWM") - before}))
"""


@pytest.mark.parametrize("stage", ["sampler", "clusterer"])
def test_memory_estimate_is_close_to_the_measured_peak(stage):
    """The estimate covers the peak resident memory a run adds (measured on
    Linux), without refusing runs that need much less."""
    import json
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, stage], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    sizes = json.loads(done.stdout)
    assert 0.9 * sizes["measured"] <= sizes["estimate"] <= 3 * sizes["measured"], sizes
