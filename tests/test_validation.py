"""Tests of the shared image and mask checks."""

import numpy as np
import pytest

from skimgcluster._validation import check_image, check_mask


@pytest.mark.parametrize(
    ("dtype", "quantum"),
    [
        (np.uint8, 1.0),
        (np.uint16, 1.0),
        (np.int32, 1.0),
        (bool, 1.0),
        (np.float16, 0.0),
        (np.float32, 0.0),
        (np.float64, 0.0),
    ],
)
def test_dtypes_and_quantum(dtype, quantum):
    rng = np.random.default_rng(0)
    image = (rng.random((5, 7)) * 100).astype(dtype)
    data, q = check_image(image)
    assert q == quantum
    assert data.dtype == image.dtype  # no conversion: large images are not copied
    assert data.shape == (5, 7, 1)
    np.testing.assert_array_equal(data[:, :, 0], image)


def test_colour_image_keeps_its_bands():
    rng = np.random.default_rng(1)
    image = rng.random((4, 6, 3))
    data, _ = check_image(image)
    assert data.shape == (4, 6, 3)
    np.testing.assert_array_equal(data, image)


def test_plain_arrays_are_not_copied():
    image = np.ones((300, 400, 3), dtype=np.float32)
    data, _ = check_image(image)
    assert np.shares_memory(data, image)
    gray = np.ones((30, 40))
    assert np.shares_memory(check_image(gray)[0], gray)


def test_masked_arrays_are_copied():
    image = np.ma.masked_array(np.ones((3, 3)), mask=np.eye(3, dtype=bool))
    data, _ = check_image(image)
    assert data.dtype == np.float64
    assert not np.shares_memory(data, image.data)


def test_nested_list_is_accepted():
    data, q = check_image([[1, 2], [3, 4]])
    assert q == 1.0
    np.testing.assert_array_equal(data[:, :, 0], [[1, 2], [3, 4]])


def test_nan_is_kept():
    image = np.array([[1.0, np.nan], [2.0, 3.0]])
    data, _ = check_image(image)
    assert np.isnan(data[0, 1, 0])
    assert np.isfinite(data[[0, 1, 1], [0, 0, 1], 0]).all()


def test_masked_array_becomes_nan():
    values = np.arange(12, dtype=np.uint8).reshape(3, 4)
    image = np.ma.masked_array(values.copy(), mask=np.eye(3, 4, dtype=bool))
    data, q = check_image(image)
    assert q == 1.0
    np.testing.assert_array_equal(np.isnan(data[:, :, 0]), np.eye(3, 4, dtype=bool))
    np.testing.assert_array_equal(data[~np.eye(3, 4, dtype=bool), 0], image.compressed())
    # The caller's array is not touched.
    np.testing.assert_array_equal(image.data, values)
    np.testing.assert_array_equal(image.mask, np.eye(3, 4, dtype=bool))


def test_masked_colour_array_masks_per_band():
    rng = np.random.default_rng(2)
    mask = np.zeros((3, 4, 2), dtype=bool)
    mask[1, 2, 0] = True
    image = np.ma.masked_array(rng.random((3, 4, 2)), mask=mask)
    data, _ = check_image(image)
    np.testing.assert_array_equal(np.isnan(data), mask)


def test_masked_array_without_mask():
    image = np.ma.masked_array(np.ones((2, 3)))
    data, _ = check_image(image)
    assert not np.isnan(data).any()


def test_infinite_value_under_the_mask_is_accepted():
    values = np.array([[1.0, np.inf], [2.0, 3.0]])
    data, _ = check_image(np.ma.masked_invalid(values))
    assert np.isnan(data[0, 1, 0])


@pytest.mark.parametrize(
    ("image", "error", "match"),
    [
        (np.zeros(4), ValueError, r"\(M, N\).*1 dimension"),
        (np.zeros((2, 2, 2, 2)), ValueError, r"got shape \(2, 2, 2, 2\)"),
        (np.zeros((0, 3)), ValueError, "zero-sized"),
        (np.zeros((3, 0)), ValueError, "zero-sized"),
        (np.zeros((3, 3, 0)), ValueError, "zero-sized"),
        (np.array([[1.0, np.inf], [-np.inf, 0.0]]), ValueError, "2 infinite"),
        (np.array([["a", "b"]]), TypeError, "dtype"),
        (np.zeros((2, 2), dtype=object), TypeError, "dtype"),
        (np.zeros((2, 2), dtype=complex), TypeError, "dtype"),
        (np.zeros((2, 2), dtype="datetime64[s]"), TypeError, "dtype"),
        ([[1, 2], [3]], TypeError, "could not convert list"),
    ],
)
def test_bad_images_raise(image, error, match):
    with pytest.raises(error, match=match):
        check_image(image)


def test_name_appears_in_messages():
    with pytest.raises(ValueError, match="^science must"):
        check_image(np.zeros(3), name="science")


def test_check_mask():
    assert check_mask(None, (3, 4)) is None
    mask = check_mask([[True, False], [False, False]], (2, 2))
    assert isinstance(mask, np.ndarray) and mask.dtype == bool
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(4, 3\)"):
        check_mask(np.zeros((4, 3), dtype=bool), (3, 4))
    with pytest.raises(TypeError, match="boolean"):
        check_mask(np.zeros((3, 4), dtype=np.uint8), (3, 4))
    with pytest.raises(ValueError, match="^weights must"):
        check_mask(np.zeros((1, 1), dtype=bool), (3, 4), name="weights")
