"""Properties of labels_to_image."""

from collections import Counter

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from skimgcluster import labels_to_image


@st.composite
def labelled_points(draw, max_points=60, max_side=16, max_label=5):
    """Labels in [-1, max_label], points in and around an (M, N) image."""
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    n = draw(st.integers(0, max_points))
    labels = draw(hnp.arrays(np.intp, n, elements=st.integers(-1, max_label)))
    x = draw(hnp.arrays(np.float64, n, elements=st.floats(-3.0, w + 2.0)))
    y = draw(hnp.arrays(np.float64, n, elements=st.floats(-3.0, h + 2.0)))
    return labels, np.column_stack([x, y]), (h, w)


def _pixel(points, shape):
    h, w = shape
    col = np.clip(np.floor(points[:, 0] + 0.5).astype(int), 0, w - 1)
    row = np.clip(np.floor(points[:, 1] + 0.5).astype(int), 0, h - 1)
    return row, col


def _reference_votes(labels, points, shape):
    """Majority label + 1 of each pixel, ties to the lower label, by brute force."""
    out = np.zeros(shape, dtype=np.int32)
    votes = {}
    for label, r, c in zip(labels, *_pixel(points, shape), strict=True):
        votes.setdefault((r, c), Counter())[int(label)] += 1
    for (r, c), counter in votes.items():
        best = max(counter.values())
        out[r, c] = min(lab for lab, k in counter.items() if k == best) + 1
    return out


# -- shape, dtype and values -----------------------------------------------------------


def test_output_shape_dtype_values_example():
    points = np.array([[0.0, 0.0], [2.0, 1.0], [1.0, 1.0]])
    image = labels_to_image([4, -1, 1], points, (2, 3))
    assert image.shape == (2, 3) and image.dtype == np.int32
    assert set(np.unique(image)) <= {0, 2, 5}


@given(data=labelled_points(), fill_distance=st.floats(0.0, 4.0))
def test_output_shape_dtype_values(data, fill_distance):
    labels, points, shape = data
    image = labels_to_image(labels, points, shape, fill_distance=fill_distance)
    assert image.shape == shape
    assert image.dtype == np.int32
    allowed = {0} | {int(v) + 1 for v in labels if v >= 0}
    assert set(np.unique(image).tolist()) <= allowed
    assert image.min() >= 0
    assert image.max() <= (labels.max() + 1 if labels.size else 0)


# -- the vote --------------------------------------------------------------------------


def test_vote_matches_reference_example():
    points = np.array([[0.2, 0.1], [0.3, -0.2], [0.0, 0.4], [1.0, 0.0]])
    labels = np.array([2, -1, 2, 0])
    np.testing.assert_array_equal(
        labels_to_image(labels, points, (1, 2), fill_distance=0),
        _reference_votes(labels, points, (1, 2)),
    )


@given(data=labelled_points(max_label=3))
def test_vote_matches_reference(data):
    labels, points, shape = data
    np.testing.assert_array_equal(
        labels_to_image(labels, points, shape, fill_distance=0),
        _reference_votes(labels, points, shape),
    )


# -- every labelled pixel is near a point of its label ---------------------------------


def test_labelled_pixels_near_their_points_example():
    points = np.array([[5.0, 5.0], [5.4, 5.4]])
    image = labels_to_image([0, 0], points, (11, 11), fill_distance=2)
    rows, cols = np.nonzero(image)
    assert np.all(np.hypot(rows - 5, cols - 5) <= 2)


@given(data=labelled_points(), fill_distance=st.floats(0.0, 4.0))
def test_labelled_pixels_near_their_points(data, fill_distance):
    labels, points, shape = data
    image = labels_to_image(labels, points, shape, fill_distance=fill_distance)
    prow, pcol = _pixel(points, shape)
    for r, c in zip(*np.nonzero(image), strict=True):
        mine = labels == image[r, c] - 1
        assert mine.any()
        # Within fill_distance of the pixel of some point of that label
        # (pixel centres; the point itself may be up to half a pixel away).
        d = np.hypot(prow[mine] - r, pcol[mine] - c).min()
        assert d <= fill_distance + 1e-9


# -- footprint -------------------------------------------------------------------------


def test_footprint_bounds_the_labels_example():
    footprint = np.array([[True, True, False, True]])
    image = labels_to_image([0], np.array([[0.0, 0.0]]), (1, 4), footprint=footprint)
    np.testing.assert_array_equal(image, [[1, 1, 0, 0]])


@given(data=st.data(), labelled=labelled_points(max_side=12))
def test_footprint_bounds_the_labels(data, labelled):
    labels, points, shape = labelled
    footprint = data.draw(hnp.arrays(bool, shape))
    image = labels_to_image(labels, points, shape, footprint=footprint)
    assert image.shape == shape and image.dtype == np.int32
    assert not np.any(image[~footprint])
    # Seed pixels inside the footprint keep their vote.
    seeds = _reference_votes(labels, points, shape)
    keep = footprint & (seeds > 0)
    np.testing.assert_array_equal(image[keep], seeds[keep])
