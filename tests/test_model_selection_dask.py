"""Model selection on a Dask cluster: GridSearchCV with joblib's dask backend."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold

from skimgcluster import AstroLinkClusterer, ImageSegmenter, LuminositySampler
from skimgcluster.datasets import make_field
from skimgcluster.metrics import make_detection_scorer

distributed = pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_grid_search_on_a_local_cluster(process_cluster):
    fields = [make_field((64, 64), 4, random_state=k) for k in range(4)]
    images = [image for image, _, _ in fields]
    truths = [truth for _, truth, _ in fields]
    search = GridSearchCV(
        ImageSegmenter(LuminositySampler(random_state=0), AstroLinkClusterer(k_den=10)),
        {"clusterer__min_significance": [2.0, 3.0], "sampler__detection_threshold": [3.0, 4.0]},
        scoring=make_detection_scorer("f1"),
        cv=KFold(n_splits=2, shuffle=True, random_state=0),
        n_jobs=2,
        error_score="raise",
    )
    in_process = clone(search).set_params(n_jobs=1).fit(images, truths)
    with (
        distributed.Client(process_cluster) as client,
        distributed.get_task_stream(client) as stream,
        joblib.parallel_backend("dask"),
    ):  # fmt: skip
        search.fit(images, truths)
    # The 4 candidates x 2 folds ran on the cluster's workers ...
    assert len({task["worker"] for task in stream.data}) >= 1
    assert len(stream.data) >= 8
    # ... and scored as in this process: every image is segmented with its seed.
    assert search.best_params_ == in_process.best_params_
    np.testing.assert_allclose(
        search.cv_results_["mean_test_score"], in_process.cv_results_["mean_test_score"]
    )
    assert 0 < search.best_score_ <= 1
    [labels] = search.predict(images[:1])
    assert labels.shape == (64, 64)
