"""Tests of the shared image, mask and parameter checks."""

import re

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


# -- parameters: one check for every public function ---------------------------------


def test_check_params_names_parameter_rule_and_value():
    from numbers import Integral

    from skimgcluster._validation import Interval, StrOptions, check_params

    constraints = {"n": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})]}
    check_params(constraints, {"n": 3}, "f")
    check_params(constraints, {"n": "auto"}, "f")
    with pytest.raises(ValueError, match=r"^The 'n' parameter of f must be an int in the range "
                       r"\[1, inf\) or a str among \{'auto'\}; got n=0\.$"):  # fmt: skip
        check_params(constraints, {"n": 0}, "f")
    # bool is an Integral, but never a count.
    with pytest.raises(TypeError, match="got n=True"):
        check_params(constraints, {"n": True}, "f")
    with pytest.raises(TypeError, match="got n=np.True_|got n=True"):
        check_params(constraints, {"n": np.bool_(True)}, "f")


def test_check_params_describes_every_kind_of_constraint():
    from numbers import Real

    from skimgcluster._validation import Interval, check_params

    constraints = {
        "x": [Interval(Real, None, None, closed="neither"), None],
        "flag": ["boolean"],
        "fn": ["callable", None],
        "kind": [dict],
    }
    check_params(constraints, {"x": None, "flag": False, "fn": len, "kind": {}}, "g")
    for name, value, text in [
        ("x", np.inf, "a finite number or None; got x=inf"),
        ("x", np.nan, "a finite number or None; got x=nan"),
        ("flag", 1, "a bool; got flag=1"),
        ("fn", 5, "a callable or None; got fn=5"),
        ("kind", [], "an instance of dict; got kind=[]"),
    ]:
        with pytest.raises(ValueError, match=re.escape(f"'{name}' parameter of g must be {text}")):
            check_params(constraints, {name: value}, "g")


def test_sklearn_constraint_classes_keep_their_api():
    # check_params reuses scikit-learn's Interval, StrOptions and
    # InvalidParameterError, which live in a private module; this fails first if
    # a release changes what is used of them.
    from numbers import Integral, Real

    from sklearn.utils import _param_validation as pv

    interval = pv.Interval(Integral, 1, None, closed="left")
    assert (interval.type, interval.left, interval.right) == (Integral, 1, None)
    assert interval.is_satisfied_by(1) and not interval.is_satisfied_by(0)
    assert not interval.is_satisfied_by(1.0)
    assert str(interval) == "an int in the range [1, inf)"
    assert str(pv.Interval(Real, 0, 1, closed="both")) == "a float in the range [0.0, 1.0]"
    assert not pv.Interval(Real, None, None, closed="neither").is_satisfied_by(np.nan)
    options = pv.StrOptions({"auto"})
    assert options.is_satisfied_by("auto") and not options.is_satisfied_by("x")
    assert str(options) == "a str among {'auto'}"
    assert issubclass(pv.InvalidParameterError, ValueError)
    assert issubclass(pv.InvalidParameterError, TypeError)


def _public_calls():
    from skimgcluster import (
        ImageSegmenter,
        estimate_background,
        labels_to_image,
        plot_hierarchy,
        plot_ordered_density,
        plot_segmentation,
    )
    from skimgcluster.datasets import make_blended_pairs, make_field
    from skimgcluster.metrics import make_detection_scorer, match_segments

    im = np.zeros((16, 16))
    lab = np.zeros((16, 16), dtype=int)
    pts = np.array([[1.0, 1.0]])
    return [
        ("labels_to_image", "fill_distance",
         lambda v: labels_to_image([0], pts, (4, 4), fill_distance=v)),
        ("estimate_background", "box_size", lambda v: estimate_background(im, box_size=v)),
        ("estimate_background", "n_sigma", lambda v: estimate_background(im, n_sigma=v)),
        ("plot_segmentation", "n_annotated", lambda v: plot_segmentation(im, lab, n_annotated=v)),
        ("plot_ordered_density", "n_legend", lambda v: plot_ordered_density(_fitted(), n_legend=v)),
        ("plot_hierarchy", "max_annotated", lambda v: plot_hierarchy(_fitted(), max_annotated=v)),
        ("match_segments", "iou_threshold", lambda v: match_segments(lab, lab, iou_threshold=v)),
        ("make_detection_scorer", "iou_threshold",
         lambda v: make_detection_scorer(iou_threshold=v)),
        ("make_field", "n_bands", lambda v: make_field((32, 32), 1, n_bands=v)),
        ("make_blended_pairs", "n_pairs", lambda v: make_blended_pairs(v)),
        ("ImageSegmenter", "min_area", lambda v: ImageSegmenter(min_area=v).fit([im])),
    ]  # fmt: skip


def _fitted():
    from skimgcluster import AstroLinkClusterer

    rng = np.random.default_rng(0)
    return AstroLinkClusterer(min_significance=2).fit(rng.normal(size=(60, 2)))


@pytest.mark.parametrize("index", range(11))
@pytest.mark.parametrize("value", [-1, True])
def test_public_functions_check_parameters_one_way(index, value):
    caller, name, call = _public_calls()[index]
    with pytest.raises(ValueError, match=rf"^The '{name}' parameter of {caller} must be .*; "
                       rf"got {name}={value!r}\.$"):  # fmt: skip
        call(value)
    with pytest.raises(TypeError):  # the same error is a TypeError too
        call(value)
