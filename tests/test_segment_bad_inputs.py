"""Bad input to segment gets a clear error (see bad_inputs.py for the rows' outcomes)."""

import numpy as np
import pytest
from bad_inputs import (
    IMAGE_ROWS,
    Empty,
    Raises,
    Valid,
    _check_segment,
    _run_row,
    _segment_run,
    source_image,
    with_one_huge_pixel,
)

from skimgcluster import (
    DegenerateDataWarning,
    InsufficientMemoryError,
    segment,
)


@pytest.mark.parametrize(("make", "outcome"), [pytest.param(*r[1:], id=r[0]) for r in IMAGE_ROWS])
def test_segment_image(make, outcome):
    image = make()
    _run_row(lambda: _segment_run(image), outcome, lambda r, e: _check_segment(r, image, e))


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


# -- segment parameters ----------------------------------------------------------------


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
