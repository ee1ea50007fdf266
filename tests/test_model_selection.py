"""ImageSegmenter in scikit-learn's model selection.

The GridSearchCV example of the docs runs, as a script, in test_docs.py.
"""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV

from skimgcluster import AstroLinkClusterer, ImageSegmenter, LuminositySampler, segment
from skimgcluster.datasets import make_field
from skimgcluster.metrics import make_detection_scorer


def test_segmenter_matches_segment():
    image, _, _ = make_field((80, 80), 5, random_state=2)
    segmenter = ImageSegmenter(
        LuminositySampler(random_state=0),
        # segment() labels at the leaves; the clusterer's own default is 'deepest'.
        AstroLinkClusterer(k_den=12, min_significance=3.0, label_level="leaf"),
    )
    [label_image] = segmenter.fit([image]).predict([image])
    expected = segment(image, random_state=0, k_den=12, min_significance=3.0).label_image
    np.testing.assert_array_equal(label_image, expected)


def test_segmenter_params_and_clone():
    segmenter = ImageSegmenter(LuminositySampler(), AstroLinkClusterer())
    segmenter.set_params(sampler__color_scale=5.0, clusterer__k_den=7)
    copy = clone(segmenter)
    assert copy.get_params()["sampler__color_scale"] == 5.0
    assert copy.get_params()["clusterer__k_den"] == 7


def test_segmenter_score_is_f1_on_held_out_images():
    fields = [make_field((80, 80), 4, snr_range=(100, 300), random_state=s) for s in range(2)]
    images = np.stack([f[0] for f in fields])  # an (n, M, N, C) array works too
    truths = np.stack([f[1] for f in fields])
    segmenter = ImageSegmenter(LuminositySampler(random_state=0)).fit(images)
    assert segmenter.n_images_ == 2
    score = segmenter.score(images, truths)
    assert score == pytest.approx(make_detection_scorer()(segmenter, images, truths))
    assert score > 0.5  # bright isolated sources are found


def test_segmenter_rejects_a_single_image():
    with pytest.raises(ValueError, match="sequence of images"):
        ImageSegmenter().fit(np.zeros((8, 8)))
    with pytest.raises(TypeError, match="sequence of images"):
        ImageSegmenter().fit("image.png")


def test_gridsearch_default_scoring_uses_score():
    fields = [make_field((64, 64), 3, snr_range=(100, 300), random_state=s) for s in range(3)]
    search = GridSearchCV(
        ImageSegmenter(LuminositySampler(random_state=0), AstroLinkClusterer()),
        {"clusterer__min_significance": [2.5, 3.0]},
        cv=3,
    ).fit([f[0] for f in fields], [f[1] for f in fields])
    assert search.best_params_["clusterer__min_significance"] in (2.5, 3.0)
