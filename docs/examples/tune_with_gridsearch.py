"""Tune skimgcluster with GridSearchCV on generated fields with known truth.

Every sample of the search is a whole image and its target is the true label image:
``ImageSegmenter`` segments each image on its own, and the detection-F1 scorer compares
the result with the truth. The folds split the set of images, so each parameter choice
is scored on images it was not picked on.

Run as a script (``python docs/examples/tune_with_gridsearch.py``) or call ``main``;
the test suite runs it on small fields.
"""

import numpy as np
from sklearn.model_selection import GridSearchCV, KFold

from skimgcluster import AstroLinkClusterer, ImageSegmenter, LuminositySampler
from skimgcluster.datasets import make_field
from skimgcluster.metrics import make_detection_scorer


def main(n_fields=6, size=192, n_sources=25, n_jobs=2, verbose=True):
    """Run the search and return the fitted ``GridSearchCV``."""
    fields = [make_field((size, size), n_sources, random_state=seed) for seed in range(n_fields)]
    images = [image for image, _, _ in fields]
    truths = [truth for _, truth, _ in fields]

    segmenter = ImageSegmenter(
        sampler=LuminositySampler(random_state=0),
        clusterer=AstroLinkClusterer(k_den=15, min_significance=3.0, label_level="leaf"),
    )
    param_grid = {
        "sampler__detection_threshold": [3.0, 4.0],
        "sampler__color_scale": [0.0, 20.0],
        "clusterer__k_den": [10, 15],
        "clusterer__min_significance": [2.5, 3.0],
    }
    search = GridSearchCV(
        segmenter,
        param_grid,
        scoring=make_detection_scorer("f1"),
        cv=KFold(n_splits=3, shuffle=True, random_state=0),
        n_jobs=n_jobs,
    )
    search.fit(images, truths)
    if verbose:
        print("best parameters:", search.best_params_)
        print(f"best cross-validated F1: {search.best_score_:.3f}")
        order = np.argsort(search.cv_results_["rank_test_score"])
        for i in order[:5]:
            params = search.cv_results_["params"][i]
            mean = search.cv_results_["mean_test_score"][i]
            std = search.cv_results_["std_test_score"][i]
            print(f"  F1 {mean:.3f} +/- {std:.3f}  {params}")
    return search


if __name__ == "__main__":
    main()
