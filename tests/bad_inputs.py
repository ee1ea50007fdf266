"""Shared rows and helpers of the bad-input tests (tests/test_*_bad_inputs.py).

Bad input gets a clear error; valid input that holds nothing, an empty result and a warning.

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

import re
from typing import NamedTuple

import numpy as np
import pytest
from conftest import TWO_SOURCES, gaussian_image
from PIL import Image

from skimgcluster import (
    DegenerateDataWarning,
    LuminositySampler,
    segment,
)


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


def labelled(n=50, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(-1, 3, n), rng.uniform(0, 15, (n, 2))


LAB, PTS = labelled()


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
