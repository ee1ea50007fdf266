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
"""

import pytest
from sklearn.utils import estimator_checks
from sklearn.utils.estimator_checks import parametrize_with_checks

from skimgcluster import AstroLinkClusterer, LuminositySampler


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
