"""labels_to_image: labels of sampled points -> pixels."""

from numbers import Integral, Real

import numpy as np
from skimage.segmentation import expand_labels

from ._hierarchy import cluster_depths
from ._kernels.labels import flood
from ._validation import Interval, check_memory, check_params

__all__ = ["labels_to_image", "cluster_masks"]

# The label image holds label + 1 as int32.
_MAX_LABEL = np.iinfo(np.int32).max - 1

# Working memory per pixel of labels_to_image: the int32 votes (flooded in
# place through the footprint with an int32 queue), or expand_labels' int32
# output and distance transform (float64 distances and two intp index planes).
_BYTES_PER_PIXEL = 4 + 4 + 8 + 2 * 8

_FILL_DISTANCE = {"fill_distance": [Interval(Real, 0, None, closed="left")]}


def _as_array(value, name):
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged lists
        raise TypeError(
            f"{name} must be an array; could not convert {type(value).__name__}: {exc}"
        ) from None


def _check_shape(shape):
    """``(M, N)`` as ints from ``shape`` (a longer shape is cut to two)."""
    if isinstance(shape, (str, bytes)):
        raise TypeError(f"shape must be a tuple of ints (M, N); got {shape!r}.")
    try:
        dims = np.atleast_1d(np.asarray(shape))[:2]
    except (TypeError, ValueError):
        raise TypeError(f"shape must be a tuple of ints (M, N); got {shape!r}.") from None
    if dims.ndim != 1 or dims.dtype.kind not in "iuf":
        raise TypeError(f"shape must be a tuple of ints (M, N); got {shape!r}.")
    if dims.dtype.kind == "f" and not np.all(np.isfinite(dims) & (dims == np.round(dims))):
        raise ValueError(f"shape must be a tuple of ints (M, N); got {shape!r}.")
    if dims.size != 2 or dims.min() <= 0:
        raise ValueError(f"shape must be (M, N) with M, N >= 1; got {tuple(dims.tolist())}.")
    return tuple(int(s) for s in dims)


def _check_points(labels, points, shape):
    labels = _as_array(labels, "labels")
    points = _as_array(points, "points")
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D of shape (n_samples,); got shape {labels.shape}.")
    if labels.size == 0:
        labels = np.empty(0, dtype=np.intp)  # e.g. [], of dtype float64
    elif labels.dtype.kind not in "iu":
        if not (
            labels.dtype.kind == "f"
            and np.all(np.isfinite(labels))
            and np.all(labels == np.round(labels))
        ):
            raise TypeError(f"labels must be integers; got dtype={labels.dtype}.")
    # The range is checked in the given dtype, before the cast to intp, which
    # would wrap uint64 values >= 2**63 (and large floats) to negative ones.
    # ``item()`` compares exactly: a float16 array cannot hold _MAX_LABEL.
    if labels.size and labels.min().item() < -1:
        raise ValueError(f"labels must be -1 (noise) or >= 0; got {labels.min()}.")
    if labels.size and labels.max().item() > _MAX_LABEL:
        raise ValueError(
            f"labels must be at most {_MAX_LABEL} so that label + 1 fits the int32 "
            f"label image; got {labels.max()}."
        )
    labels = labels.astype(np.intp, copy=False)
    if points.ndim != 2 or points.shape[1] < 2:
        raise ValueError(
            "points must have shape (n_samples, >= 2) with x and y first; "
            f"got shape {points.shape}."
        )
    if points.shape[0] != labels.shape[0]:
        raise ValueError(
            f"labels and points must have the same length; got {labels.shape[0]} labels "
            f"and {points.shape[0]} points."
        )
    if points.dtype.kind not in "iuf":
        raise TypeError(f"points must be numeric; got dtype={points.dtype}.")
    shape = _check_shape(shape)
    finite = np.isfinite(points[:, 0]) & np.isfinite(points[:, 1])
    if not finite.all():
        i = int(np.argmin(finite))
        raise ValueError(
            f"points must have finite x and y; got {np.count_nonzero(~finite)} point(s) "
            f"that do not, the first points[{i}] = {points[i, :2].tolist()}."
        )
    return labels, points, shape


def _votes(labels, points, shape):
    """Pixel of every point and the majority label of every sampled pixel.

    Returns an (M, N) int32 image of ``label + 1`` (0 where the pixel holds no
    sample or a majority of noise samples).
    """
    h, w = shape
    # Clip before the cast: far-away points would overflow the integers.
    col = np.clip(np.floor(points[:, 0] + 0.5), 0, w - 1).astype(np.intp)
    row = np.clip(np.floor(points[:, 1] + 0.5), 0, h - 1).astype(np.intp)
    pix = row * w + col
    out = np.zeros(h * w, dtype=np.int32)  # labels + 1 fit: _check_points
    if labels.size == 0:
        return out.reshape(shape)
    # Count (pixel, label) pairs; the most frequent label wins, ties go to the
    # smaller label (noise, -1, first) so the result is deterministic.
    key = pix * (labels.max() + 2) + (labels + 1)
    uniq, counts = np.unique(key, return_counts=True)
    upix, ulab = np.divmod(uniq, labels.max() + 2)
    # By pixel, then label: each pixel's first entry with its largest count.
    starts = np.flatnonzero(np.r_[True, upix[1:] != upix[:-1]])
    pixel_of_entry = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, upix.size]))
    top = np.flatnonzero(counts == np.maximum.reduceat(counts, starts)[pixel_of_entry])
    first = top[np.r_[True, pixel_of_entry[top[1:]] != pixel_of_entry[top[:-1]]]]
    out[upix[first]] = ulab[first]
    return out.reshape(shape)


def labels_to_image(labels, points, shape, *, footprint=None, fill_distance=1.0):
    """Turn the labels of sampled points into a label image.

    Parameters
    ----------
    labels : ndarray of shape (n_samples,)
        Cluster label of every point, ``-1`` for noise (``labels_`` of
        :class:`AstroLinkClusterer`).
    points : ndarray of shape (n_samples, n_features)
        The points, ``x`` (column) and ``y`` (row) first, as produced by
        :class:`LuminositySampler`.
    shape : tuple of int
        ``(M, N)``, the shape of the image (a longer shape is cut to two).
    footprint : (M, N) ndarray of bool, default=None
        Pixels that belong to some source (e.g. ``SampledImage.footprint``).
        When given, every footprint pixel connected within the footprint to a
        labelled pixel takes the label of the nearest one along paths inside
        the footprint (breadth-first flooding from the labelled pixels with
        4-connectivity, ties to the seed first in raster order); pixels
        outside it stay 0.
    fill_distance : float, default=1.0
        Without a footprint, labelled pixels are grown by this many pixels
        (:func:`skimage.segmentation.expand_labels`) to close the gaps between
        sampled pixels. 0 keeps only sampled pixels.

    Returns
    -------
    label_image : (M, N) ndarray of int32
        0 for background and ``label + 1`` for a pixel of cluster ``label``,
        so sources are numbered 1..K where K is ``labels.max() + 1``; it goes
        straight into :func:`skimage.measure.regionprops`.

    Raises
    ------
    InsufficientMemoryError
        If an image of ``shape`` would need more memory than is available.

    Notes
    -----
    The rule: every point falls in the pixel whose centre is nearest (points
    are clipped to the image); each pixel that received points takes the
    label most of its points carry (noise counts as a label, ties go to the
    lower label). Those seed pixels are then grown to the footprint, or by
    ``fill_distance``. A cluster whose points lose every pixel's vote is
    absent from the image.

    Examples
    --------
    >>> import numpy as np
    >>> from skimgcluster import labels_to_image
    >>> points = np.array([[1.0, 1.0], [1.2, 0.9], [3.0, 3.0]])
    >>> labels_to_image([0, 0, -1], points, (4, 4), fill_distance=0)
    array([[0, 0, 0, 0],
           [0, 1, 0, 0],
           [0, 0, 0, 0],
           [0, 0, 0, 0]], dtype=int32)
    """
    labels, points, shape = _check_points(labels, points, shape)
    check_params(_FILL_DISTANCE, {"fill_distance": fill_distance}, "labels_to_image")
    check_memory(
        _BYTES_PER_PIXEL * shape[0] * shape[1] + 48 * labels.size,
        what=f"labels_to_image with shape={shape} and {labels.size} points",
        advice="Check shape: it is the (M, N) of the image the points were sampled from.",
    )
    seeds = _votes(labels, points, shape)
    if footprint is not None:
        footprint = np.asarray(footprint, dtype=bool)
        if footprint.shape != shape:
            raise ValueError(f"footprint must have the image shape {shape}; got {footprint.shape}.")
        # In place: seeds outside the footprint are cleared, then flooded.
        queue = np.empty(shape[0] * shape[1], dtype=np.int32 if seeds.size < 2**31 else np.int64)
        flood(seeds, footprint, queue)
    elif fill_distance > 0:
        seeds = expand_labels(seeds, distance=fill_distance)
    return seeds.astype(np.int32, copy=False)


def cluster_masks(clusterer, points, shape, *, footprint=None, fill_distance=1.0, level=None):
    """Boolean pixel masks of the clusters of a fitted :class:`AstroLinkClusterer`.

    The mask of a cluster covers the pixels of all its members, its children
    included, so a child's mask lies inside its parent's.

    Parameters
    ----------
    clusterer : AstroLinkClusterer
        Fitted on ``points``.
    points : ndarray of shape (n_samples, n_features)
        The points the clusterer was fitted on.
    shape : tuple of int
        ``(M, N)``.
    footprint : (M, N) ndarray of bool or None, default=None
        As in :func:`labels_to_image`, applied to each cluster's members.
    fill_distance : float, default=1.0
        As in :func:`labels_to_image`, applied to each cluster's members.
    level : int or None, default=None
        Depth in the hierarchy (1 for the top level, children of the root);
        ``None`` gives every cluster.

    Returns
    -------
    ids : ndarray of shape (n_masks,)
        The id string of each mask's cluster.
    masks : ndarray of shape (n_masks, M, N), bool
        One mask per cluster.

    Raises
    ------
    TypeError
        If ``clusterer`` is not an AstroLinkClusterer or ``level`` not an int.
    ValueError
        If the clusterer is not fitted (``NotFittedError``), if ``points``
        are not as many as the points it was fitted on, or if ``level < 1``.
    """
    from sklearn.utils.validation import check_is_fitted

    from ._clusterer import AstroLinkClusterer

    check_params(
        {
            "clusterer": [AstroLinkClusterer],
            "level": [Interval(Integral, 1, None, closed="left"), None],
            **_FILL_DISTANCE,
        },
        {"clusterer": clusterer, "level": level, "fill_distance": fill_distance},
        "cluster_masks",
    )
    check_is_fitted(clusterer)
    points = _as_array(points, "points")
    n_fit = clusterer.labels_.shape[0]
    if points.ndim != 2 or points.shape[0] != n_fit:
        raise ValueError(
            f"points must be the {n_fit} points the clusterer was fitted on, of shape "
            f"({n_fit}, n_features); got shape {points.shape}."
        )
    _, points, shape = _check_points(np.zeros(n_fit, dtype=np.intp), points, shape)
    depth = cluster_depths(clusterer.cluster_ids_)
    chosen = np.arange(clusterer.n_clusters_)
    if level is not None:
        chosen = chosen[depth == level]
    masks = np.zeros((chosen.size, *shape), dtype=bool)
    # Parents before children: a child's mask is intersected with its parent's.
    index = {}
    for out_i, j in enumerate(chosen):
        index[j] = out_i
    full = {}
    for j in range(clusterer.n_clusters_):
        need = j in index or any(_is_ancestor(clusterer.parents_, j, k) for k in index)
        if not need:
            continue
        members = clusterer.cluster_members(j)
        lab = np.full(points.shape[0], -1, dtype=np.intp)
        lab[members] = 0
        m = (
            labels_to_image(lab, points, shape, footprint=footprint, fill_distance=fill_distance)
            > 0
        )
        parent = clusterer.parents_[j]
        if parent >= 0 and parent in full:
            m &= full[parent]
        full[j] = m
        if j in index:
            masks[index[j]] = m
    return clusterer.cluster_ids_[chosen], masks


def _is_ancestor(parents, a, b):
    """True if cluster ``a`` is an ancestor of cluster ``b``."""
    b = parents[b]
    while b >= 0:
        if b == a:
            return True
        b = parents[b]
    return False
