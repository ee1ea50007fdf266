"""Segmentation quality against a true label image.

Found segments are matched one-to-one to true sources when their
intersection over union (IoU) reaches a threshold of at least 0.5; above 0.5
a segment can overlap that much with at most one true source (and vice
versa), so the matching is unique without any assignment step.
"""

from numbers import Real

import numpy as np

from ._validation import Interval, StrOptions, check_params

__all__ = [
    "match_segments",
    "detection_scores",
    "detection_f1_score",
    "make_detection_scorer",
    "pairs_separated",
]

# Above 0.5 IoU a segment matches at most one true source (module docstring).
_IOU_THRESHOLD = {"iou_threshold": [Interval(Real, 0.5, 1, closed="both")]}


def _check_label_images(found, truth):
    found = np.asarray(found)
    truth = np.asarray(truth)
    if found.shape != truth.shape:
        raise ValueError(
            f"found and truth must have the same shape; got {found.shape} and {truth.shape}."
        )
    for name, arr in (("found", found), ("truth", truth)):
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{name} must be an integer label image; got dtype={arr.dtype}.")
        if arr.size and arr.min() < 0:
            raise ValueError(f"{name} must hold labels >= 0 (0 = background); got {arr.min()}.")
    return found.ravel(), truth.ravel()


def match_segments(found, truth, *, iou_threshold=0.5):
    """One-to-one matching of found segments to true sources by IoU.

    Parameters
    ----------
    found : (M, N) ndarray of int
        Label image to evaluate, 0 = background.
    truth : (M, N) ndarray of int
        True label image, 0 = background.
    iou_threshold : float, default=0.5
        Smallest IoU of a match, in [0.5, 1].

    Returns
    -------
    found_labels : ndarray of shape (n_matches,)
        The matched labels of ``found``.
    true_labels : ndarray of shape (n_matches,)
        The labels of ``truth`` they match, in the same order.
    iou : ndarray of shape (n_matches,)
        The IoU of each matched pair.
    """
    check_params(_IOU_THRESHOLD, {"iou_threshold": iou_threshold}, "match_segments")
    f, t = _check_label_images(found, truth)
    f_ids, f_area = np.unique(f[f > 0], return_counts=True)
    t_ids, t_area = np.unique(t[t > 0], return_counts=True)
    both = (f > 0) & (t > 0)
    if not both.any():
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0)
    pairs, inter = np.unique(
        np.stack([f[both].astype(np.int64), t[both].astype(np.int64)]), axis=1, return_counts=True
    )
    fa = f_area[np.searchsorted(f_ids, pairs[0])]
    ta = t_area[np.searchsorted(t_ids, pairs[1])]
    iou = inter / (fa + ta - inter)
    good = iou >= iou_threshold
    if iou_threshold == 0.5:
        # Exactly 0.5 can tie; keep the best match of each label only.
        order = np.argsort(-iou[good], kind="stable")
        fl, tl, io = pairs[0][good][order], pairs[1][good][order], iou[good][order]
        _, first_f = np.unique(fl, return_index=True)
        keep = np.zeros(fl.size, dtype=bool)
        keep[first_f] = True
        _, first_t = np.unique(np.where(keep, tl, -1 - np.arange(tl.size)), return_index=True)
        keep2 = np.zeros(fl.size, dtype=bool)
        keep2[first_t] = True
        keep &= keep2
        return fl[keep], tl[keep], io[keep]
    return pairs[0][good], pairs[1][good], iou[good]


def detection_scores(found, truth, *, iou_threshold=0.5):
    """Completeness, purity, F1 and mean IoU of a segmentation.

    Parameters
    ----------
    found, truth : (M, N) ndarray of int
        The label image to evaluate and the true one, 0 = background.
    iou_threshold : float, default=0.5
        Smallest IoU of a match, in [0.5, 1] (see :func:`match_segments`).

    Returns
    -------
    scores : dict
        ``completeness`` (matched true sources / true sources), ``purity``
        (matched segments / found segments), ``f1`` (their harmonic mean),
        ``mean_iou`` (over matched pairs, NaN without matches), ``n_true``,
        ``n_found`` and ``n_matched``. With no true source and no segment the
        scores are 1; with one side empty they are 0.

    Examples
    --------
    >>> import numpy as np
    >>> from skimgcluster.metrics import detection_scores
    >>> truth = np.zeros((8, 8), dtype=int); truth[1:4, 1:4] = 1; truth[5:7, 5:7] = 2
    >>> found = np.zeros((8, 8), dtype=int); found[1:4, 1:3] = 7
    >>> s = detection_scores(found, truth)
    >>> s["completeness"], s["purity"], round(s["mean_iou"], 3)
    (0.5, 1.0, 0.667)
    """
    fl, tl, iou = match_segments(found, truth, iou_threshold=iou_threshold)
    f, t = _check_label_images(found, truth)
    n_true = int(np.unique(t[t > 0]).size)
    n_found = int(np.unique(f[f > 0]).size)
    n_matched = int(fl.size)
    if n_true == 0 and n_found == 0:
        completeness = purity = f1 = 1.0
    else:
        completeness = n_matched / n_true if n_true else 0.0
        purity = n_matched / n_found if n_found else 0.0
        total = completeness + purity
        f1 = 2 * completeness * purity / total if total > 0 else 0.0
    return {
        "completeness": float(completeness),
        "purity": float(purity),
        "f1": float(f1),
        "mean_iou": float(iou.mean()) if n_matched else float("nan"),
        "n_true": n_true,
        "n_found": n_found,
        "n_matched": n_matched,
    }


def detection_f1_score(found, truth, *, iou_threshold=0.5):
    """Detection F1 of one label image, or the mean over sequences of them.

    Parameters
    ----------
    found : (M, N) ndarray of int or sequence of them
        Label image(s) to evaluate, 0 = background.
    truth : (M, N) ndarray of int or sequence of them
        True label image(s), 0 = background.
    iou_threshold : float, default=0.5
        Smallest IoU of a match, in [0.5, 1].

    Returns
    -------
    f1 : float
        The F1 score of the detections, or its mean over the images.
    """
    if isinstance(found, np.ndarray) and found.ndim == 2:
        return detection_scores(found, truth, iou_threshold=iou_threshold)["f1"]
    if len(found) != len(truth):
        raise ValueError(
            f"found and truth must hold as many images; got {len(found)} and {len(truth)}."
        )
    return float(
        np.mean(
            [
                detection_scores(f, t, iou_threshold=iou_threshold)["f1"]
                for f, t in zip(found, truth, strict=True)
            ]
        )
    )


def make_detection_scorer(metric="f1", *, iou_threshold=0.5):
    """A scorer for :class:`~sklearn.model_selection.GridSearchCV`.

    The scorer is called as ``scorer(estimator, images, truths)`` with an
    estimator whose ``predict(images)`` returns one label image per image
    (:class:`~skimgcluster.ImageSegmenter`) and returns the mean of
    ``metric`` over the images.

    Parameters
    ----------
    metric : {'f1', 'completeness', 'purity', 'mean_iou'}, default='f1'
        The score of :func:`detection_scores` to average over the images.
    iou_threshold : float, default=0.5
        Smallest IoU of a match, in [0.5, 1].

    Returns
    -------
    scorer : callable
        ``scorer(estimator, images, truths)``, the mean of ``metric``.
    """
    check_params(
        {"metric": [StrOptions({"f1", "completeness", "purity", "mean_iou"})], **_IOU_THRESHOLD},
        {"metric": metric, "iou_threshold": iou_threshold},
        "make_detection_scorer",
    )

    def scorer(estimator, X, y):
        found = estimator.predict(X)
        values = [
            detection_scores(f, t, iou_threshold=iou_threshold)[metric]
            for f, t in zip(found, y, strict=True)
        ]
        return float(np.nanmean(values)) if not np.all(np.isnan(values)) else 0.0

    scorer.__name__ = f"detection_{metric}"
    return scorer


def pairs_separated(found, truth, pair, true_labels, *, iou_threshold=0.5):
    """How many pairs of blended sources are both recovered.

    Parameters
    ----------
    found, truth : (M, N) ndarray of int
        The label image to evaluate and the true one, 0 = background.
    pair : ndarray of shape (n_sources,)
        Pair index of every true source, ``-1`` for a source in no pair (the
        ``pair`` column of :mod:`skimgcluster.datasets`' source tables).
    true_labels : ndarray of shape (n_sources,)
        Value of every source in ``truth`` (0 if it covers no pixel).
    iou_threshold : float, default=0.5
        Smallest IoU of a match, in [0.5, 1].

    Returns
    -------
    n_separated : int
        Pairs whose two sources are each matched to a segment of their own.
    n_pairs : int
        Number of pairs.
    """
    pair = np.asarray(pair)
    true_labels = np.asarray(true_labels)
    if pair.shape != true_labels.shape:
        raise ValueError(
            f"pair and true_labels must have one entry per source; got shapes {pair.shape} "
            f"and {true_labels.shape}."
        )
    _, matched_true, _ = match_segments(found, truth, iou_threshold=iou_threshold)
    matched = np.isin(true_labels, matched_true) & (true_labels > 0)
    ids = np.unique(pair[pair >= 0])
    return int(sum(bool(matched[pair == p].all()) for p in ids)), int(ids.size)
