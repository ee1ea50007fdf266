"""scikit-learn's estimator checks.

``AstroLinkClusterer`` is an ordinary clusterer: it runs the whole suite,
with no expected failure.

``LuminositySampler`` is not an ordinary transformer: it takes one image
(rows x columns x bands, NaN = masked pixel) and returns a point cloud whose
length is ``n_samples``, not the number of image rows. So the checks that
assume a transformer maps row i of X to row i of its output (subset and
sample-order invariance, ``check_transformer_general``, ``set_output`` with
a pandas index, ``get_feature_names_out``), that X has ``n_features_in_``
columns of features, or that NaN must be rejected (NaN pixels are masked
pixels here) do not apply, and the full suite cannot run. The checks below
test the estimator API itself, which the sampler must honour like any
scikit-learn estimator, plus a few that feed a 2-D array: any such array is
a valid one-band image, so they exercise ``fit``/``transform`` for real.

``ImageSegmenter`` runs the whole suite. Its samples are whole images: ``X``
is a list of images or an array of shape ``(n_images, M, N[, C])``. The
checks that feed a 2-D array of feature rows are refused before they reach
what they check, so they are listed, each with its reason, as expected
failures; the others (parameters, cloning, tags, pickling an unfitted
estimator, ...) must pass.
"""

import pytest
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import parametrize_with_checks

from skimgcluster import AstroLinkClusterer, ImageSegmenter, LuminositySampler


# Some checks fit tiny or structureless data, on which the clusterer warns
# that it found no clusters: that warning is expected there. It is filtered
# for the clusterer's checks only, so that the sampler's checks below must
# draw points (the sampler warns with the same class when it draws none).
@pytest.mark.filterwarnings("ignore::skimgcluster.DegenerateDataWarning")
@parametrize_with_checks([AstroLinkClusterer()])
def test_sklearn_compatible_clusterer(estimator, check):
    check(estimator)


SAMPLER_CHECKS = [
    # The estimator API: construction, parameters, cloning, repr, tags.
    "check_parameters_default_constructible",
    "check_get_params_invariance",
    "check_set_params",
    "check_no_attributes_set_in_init",
    "check_estimator_cloneable",
    "check_estimator_repr",
    "check_do_not_raise_errors_in_init_or_set_params",
    "check_mixin_order",
    "check_valid_tag_types",
    "check_estimator_tags_renamed",
    "check_param_validation",
    # Fitting a 2-D array (read as a one-band image).
    "check_fit_check_is_fitted",
    "check_transformers_unfitted",
    "check_estimators_fit_returns_self",
    "check_fit_score_takes_y",
    "check_requires_y_none",
    "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters",
    "check_dict_unchanged",
    "check_estimators_dtypes",
    "check_readonly_memmap_input",
    "check_estimators_pickle",
    "check_pipeline_consistency",
]


@pytest.mark.parametrize("check_name", SAMPLER_CHECKS)
def test_sklearn_api_of_sampler(check_name):
    check = getattr(estimator_checks, check_name)
    check("LuminositySampler", LuminositySampler())


_ROWS_ARE_NOT_IMAGES = (
    "fits a 2-D array of feature rows, which is not a sequence of images "
    "(ImageSegmenter refuses it with a ValueError before the property checked)"
)
SEGMENTER_EXPECTED_FAILURES = {
    name: _ROWS_ARE_NOT_IMAGES
    for name in [
        "check_complex_data",
        "check_dict_unchanged",
        "check_dont_overwrite_parameters",
        "check_dtype_object",
        "check_estimators_dtypes",
        "check_estimators_empty_data_messages",
        "check_estimators_fit_returns_self",
        "check_estimators_overwrite_params",
        "check_estimators_pickle",
        "check_f_contiguous_array_estimator",
        "check_fit2d_1feature",
        "check_fit2d_1sample",
        "check_fit2d_predict1d",
        "check_fit_check_is_fitted",
        "check_fit_idempotent",
        "check_fit_score_takes_y",
        "check_methods_sample_order_invariance",
        "check_methods_subset_invariance",
        "check_n_features_in",
        "check_n_features_in_after_fitting",
        "check_pipeline_consistency",
        "check_positive_only_tag_during_fit",
        "check_readonly_memmap_input",
    ]
}
# NaN pixels are masked pixels, valid input; and a row array is refused for
# its shape, so the message names neither NaN nor sparse input.
SEGMENTER_EXPECTED_FAILURES["check_estimators_nan_inf"] = (
    "NaN pixels are masked pixels, not invalid input; " + _ROWS_ARE_NOT_IMAGES
)
for _name in ["check_estimator_sparse_array", "check_estimator_sparse_matrix",
              "check_estimator_sparse_tag"]:  # fmt: skip
    SEGMENTER_EXPECTED_FAILURES[_name] = (
        "a sparse matrix is refused as not a sequence of images, with a message "
        "that does not say 'sparse'"
    )


@parametrize_with_checks(
    [ImageSegmenter(LuminositySampler(random_state=0))],
    expected_failed_checks=lambda estimator: SEGMENTER_EXPECTED_FAILURES,
)
def test_sklearn_compatible_segmenter(estimator, check):
    check(estimator)
