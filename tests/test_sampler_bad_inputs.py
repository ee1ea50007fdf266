"""Bad input to LuminositySampler gets a clear error (see bad_inputs.py for the rows' outcomes)."""

import numpy as np
import pytest
from bad_inputs import (
    IMAGE_ROWS,
    Raises,
    Valid,
    _check_sampler,
    _run_row,
    _sampler_run,
    _segment_run,
    source_image,
)

from skimgcluster import (
    InsufficientMemoryError,
    LuminositySampler,
)


@pytest.mark.parametrize(("make", "outcome"), [pytest.param(*r[1:], id=r[0]) for r in IMAGE_ROWS])
def test_sampler_image(make, outcome):
    image = make()
    _run_row(lambda: _sampler_run(image), outcome, lambda r, e: _check_sampler(r, image, e))


def test_hw1_is_the_same_image_as_hw():
    image = source_image(seed=3)
    np.testing.assert_array_equal(_sampler_run(image[:, :, None]), _sampler_run(image))
    np.testing.assert_array_equal(
        _segment_run(image[:, :, None]).label_image, _segment_run(image).label_image
    )


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


def test_transform_with_other_bands_than_fit():
    sampler = LuminositySampler(n_samples=10, random_state=0).fit(source_image())
    with pytest.raises(
        ValueError, match=r"X has 3 band\(s\), but LuminositySampler was fitted with 1"
    ):
        sampler.transform(np.dstack([source_image()] * 3))
