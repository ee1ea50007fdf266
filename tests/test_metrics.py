import numpy as np
import pytest

from skimgcluster.metrics import (
    detection_f1_score,
    detection_scores,
    make_detection_scorer,
    match_segments,
    pairs_separated,
)


def _truth():
    truth = np.zeros((20, 20), dtype=np.int32)
    truth[2:8, 2:8] = 1
    truth[10:16, 10:16] = 2
    truth[2:5, 14:18] = 3
    return truth


def test_perfect_segmentation_scores_one():
    truth = _truth()
    found = np.where(truth > 0, truth + 10, 0)  # other label values, same regions
    s = detection_scores(found, truth)
    assert s["f1"] == s["completeness"] == s["purity"] == 1.0
    assert s["mean_iou"] == 1.0
    assert (s["n_true"], s["n_found"], s["n_matched"]) == (3, 3, 3)


def test_split_and_spurious_segments():
    truth = _truth()
    found = np.zeros_like(truth)
    found[2:8, 2:5] = 1  # half of source 1: IoU 0.5 -> matched
    found[2:8, 5:8] = 2  # the other half: IoU 0.5 but source 1 is taken
    found[10:16, 10:16] = 3  # exact
    found[18:20, 0:2] = 4  # spurious
    fl, tl, iou = match_segments(found, truth)
    assert sorted(tl.tolist()) == [1, 2]
    assert len(set(fl.tolist())) == fl.size  # one-to-one
    s = detection_scores(found, truth)
    assert s["completeness"] == pytest.approx(2 / 3)
    assert s["purity"] == pytest.approx(2 / 4)
    assert s["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))


def test_stricter_threshold_drops_partial_matches():
    truth = _truth()
    found = np.zeros_like(truth)
    found[2:8, 2:6] = 1  # IoU 4/6
    assert detection_scores(found, truth, iou_threshold=0.6)["n_matched"] == 1
    assert detection_scores(found, truth, iou_threshold=0.7)["n_matched"] == 0


def test_empty_cases():
    empty = np.zeros((5, 5), dtype=int)
    assert detection_scores(empty, empty)["f1"] == 1.0
    truth = _truth()
    s = detection_scores(np.zeros_like(truth), truth)
    assert s["f1"] == 0.0 and np.isnan(s["mean_iou"])


def test_validation():
    truth = _truth()
    with pytest.raises(ValueError, match="same shape"):
        detection_scores(truth[:5], truth)
    with pytest.raises(TypeError, match="integer"):
        detection_scores(truth.astype(float), truth)
    with pytest.raises(ValueError, match="iou_threshold"):
        match_segments(truth, truth, iou_threshold=0.3)
    with pytest.raises(ValueError, match="metric"):
        make_detection_scorer("accuracy")


def test_f1_over_sequences_and_scorer():
    truth = _truth()
    assert detection_f1_score([truth, truth], [truth, np.zeros_like(truth)]) == 0.5

    class Fixed:
        def predict(self, X):
            return [truth for _ in X]

    scorer = make_detection_scorer("completeness")
    assert scorer(Fixed(), [None, None], [truth, truth]) == 1.0


def test_pairs_separated():
    truth = np.zeros((10, 20), dtype=np.int32)
    truth[2:6, 1:4], truth[2:6, 4:7] = 1, 2  # pair 0
    truth[2:6, 11:14], truth[2:6, 14:17] = 3, 4  # pair 1
    truth[8:10, 0:2] = 5  # single
    found = np.zeros_like(truth)
    found[2:6, 1:4], found[2:6, 4:7] = 1, 2  # pair 0 separated
    found[2:6, 11:17] = 3  # pair 1 merged into one segment
    pair = np.array([0, 0, 1, 1, -1])
    assert pairs_separated(found, truth, pair, np.arange(1, 6)) == (1, 2)
    with pytest.raises(ValueError, match="one entry per source"):
        pairs_separated(found, truth, pair, np.arange(1, 5))
