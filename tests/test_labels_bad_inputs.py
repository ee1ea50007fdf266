"""Bad input to labels_to_image gets a clear error (see bad_inputs.py for the rows' outcomes)."""

import numpy as np
import pytest
from bad_inputs import LAB, PTS, Raises, Valid, _run_row, with_value

from skimgcluster import (
    InsufficientMemoryError,
    labels_to_image,
)

# -- labels_to_image -------------------------------------------------------------------------


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
        Raises(
            ValueError,
            r"^The 'fill_distance' parameter of labels_to_image must be a float in "
            r"the range \[0.0, inf\); got fill_distance=-1",
        ),
    ),
    (
        "fill_distance-nan",
        LAB,
        PTS,
        (16, 16),
        {"fill_distance": np.nan},
        Raises(
            ValueError,
            r"^The 'fill_distance' parameter of labels_to_image must be a float in "
            r"the range \[0.0, inf\); got fill_distance=nan",
        ),
    ),
    (
        "fill_distance-string",
        LAB,
        PTS,
        (16, 16),
        {"fill_distance": "1"},
        Raises(
            TypeError,
            r"^The 'fill_distance' parameter of labels_to_image must be a float in "
            r"the range \[0.0, inf\); got fill_distance='1'",
        ),
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
