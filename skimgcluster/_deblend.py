"""Deblending on the image: segments split at significant peaks, merged where flat.

AstroLink splits a point cloud wherever its density has a significant bump.
On a broad, smooth source the pixel noise alone makes such bumps, because
the points follow the noisy image: the source comes back in pieces. And a
faint source beside a bright one gets too few points to stand out at all.
A deblender that works on the image (SExtractor, photutils) keeps two peaks
apart when each rises far enough above the lowest level that joins them.
:func:`split_segments` cuts a segment at such peaks, and
:func:`merge_segments` merges touching segments that no such dip separates,
unless their colours differ significantly, which is what the colour
features of the points are for.
"""

import numpy as np
from scipy import ndimage
from skimage.morphology import h_maxima
from skimage.segmentation import watershed

__all__ = ["merge_segments", "split_segments"]


def _touching_pairs(label_image, smoothed):
    """Pairs of touching labels and the level at which they join.

    Returns ``(a, b, saddle)``: for every pair of distinct non-zero values
    ``a < b`` of 4-connected neighbouring pixels, the highest value over
    their common boundary of the lower of the two smoothed pixel values.
    """
    a_parts, b_parts, v_parts = [], [], []
    for first, second in (
        (label_image[:, :-1], label_image[:, 1:]),
        (label_image[:-1, :], label_image[1:, :]),
    ):
        s1 = smoothed[: first.shape[0], : first.shape[1]]
        s2 = smoothed[-first.shape[0] :, -first.shape[1] :]
        edge = (first != second) & (first > 0) & (second > 0)
        a, b = first[edge], second[edge]
        a_parts.append(np.minimum(a, b))
        b_parts.append(np.maximum(a, b))
        v_parts.append(np.minimum(s1[edge], s2[edge]))
    a = np.concatenate(a_parts).astype(np.int64)
    b = np.concatenate(b_parts).astype(np.int64)
    v = np.concatenate(v_parts).astype(np.float64)
    if a.size == 0:
        return a, b, v
    key = a * (int(label_image.max()) + 1) + b
    order = np.lexsort((v, key))
    key, a, b, v = key[order], a[order], b[order], v[order]
    last = np.r_[key[1:] != key[:-1], True]  # the highest value of each pair
    return a[last], b[last], v[last]


def _label_colours(labels, points, n_values):
    """Mean colour features, their variance and pixel count per label value."""
    n_colour = points.shape[1] - 2
    value = labels + 1
    ok = value > 0
    value = value[ok]
    colours = points[ok, 2:]
    count = np.bincount(value, minlength=n_values).astype(np.float64)
    mean = np.zeros((n_values, n_colour))
    var = np.zeros((n_values, n_colour))
    for c in range(n_colour):
        s = np.bincount(value, colours[:, c], minlength=n_values)
        s2 = np.bincount(value, colours[:, c] ** 2, minlength=n_values)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean[:, c] = s / count
            var[:, c] = np.maximum(s2 / count - mean[:, c] ** 2, 0.0)
    return mean, var, count


def merge_segments(
    label_image,
    smoothed,
    smooth_noise,
    *,
    labels,
    points,
    dip,
    colour_z,
    samples_per_pixel,
    correlation_area,
):
    """Merge touching segments that neither a dip nor a colour separates.

    Two touching segments stay apart when each one's peak rises at least
    ``dip`` standard deviations of the smoothed noise above their saddle
    (the highest level along their common boundary), or when their mean
    colours differ by at least ``colour_z`` standard errors. Pairs are
    examined from the highest saddle down, on the segments merged so far,
    as a merge tree is built.

    Parameters
    ----------
    label_image : (M, N) ndarray of int
        0 for background, ``k + 1`` for label ``k``.
    smoothed : (M, N) ndarray of float
        The smoothed, background-subtracted luminosity.
    smooth_noise : (M, N) ndarray of float
        Standard deviation of the noise of ``smoothed``.
    labels : ndarray of shape (n_samples,)
        Label of every point (``-1`` for noise).
    points : ndarray of shape (n_samples, n_features)
        The points; columns 2 onwards are colour features.
    dip : float
        Least rise of each peak above the saddle, in noise deviations.
    colour_z : float or None
        Least colour difference in standard errors that keeps two segments
        apart; ``None`` ignores colour.
    samples_per_pixel : float
        Mean number of points per pixel, to turn point counts into the
        number of independent pixels behind a mean colour.
    correlation_area : float
        Area in pixels over which the noise of the colours is correlated
        (``4 pi sigma**2`` for a Gaussian smoothing of ``sigma`` pixels).

    Returns
    -------
    new_value : ndarray of int
        For every value ``label + 1`` of ``label_image`` or of ``labels``
        (0 included), the value after merging; merged segments take the
        smallest value among them.
    """
    n_values = max(int(label_image.max()), int(labels.max(initial=-1)) + 1) + 1
    new_value = np.arange(n_values)
    if n_values <= 2:
        return new_value
    smoothed = np.where(np.isfinite(smoothed), smoothed, -np.inf)
    a, b, saddle = _touching_pairs(label_image, smoothed)
    if a.size == 0:
        return new_value
    flat = label_image.ravel()
    peak = np.full(n_values, -np.inf)
    np.maximum.at(peak, flat, smoothed.ravel())
    peak[0] = -np.inf
    noise_at_peak = np.zeros(n_values)
    # The noise where each segment peaks: the noise map varies slowly.
    order = np.lexsort((smoothed.ravel(), flat))
    last = np.r_[flat[order][1:] != flat[order][:-1], True]
    noise_at_peak[flat[order][last]] = smooth_noise.ravel()[order][last]
    use_colour = colour_z is not None and points.shape[1] > 2
    if use_colour:
        mean, var, count = _label_colours(labels, points, n_values)
        # Sums, so that merged segments add up.
        s1 = mean * count[:, None]
        s2 = (var + mean**2) * count[:, None]
    parent = np.arange(n_values)

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for k in np.argsort(-saddle, kind="stable"):
        ra, rb = root(a[k]), root(b[k])
        if ra == rb:
            continue
        level = saddle[k]
        low = min(peak[ra], peak[rb])
        sigma = max(noise_at_peak[ra], noise_at_peak[rb])
        if low - level >= dip * sigma:
            continue
        if use_colour and count[ra] > 1 and count[rb] > 1:
            ma, mb = s1[ra] / count[ra], s1[rb] / count[rb]
            va = np.maximum(s2[ra] / count[ra] - ma**2, 0.0)
            vb = np.maximum(s2[rb] / count[rb] - mb**2, 0.0)
            # Points in one pixel share its colour, and the colours come from
            # the smoothed bands, whose noise is correlated over an area of
            # ``correlation_area`` pixels: those are the independent samples.
            na = max(count[ra] / samples_per_pixel / correlation_area, 1.0)
            nb = max(count[rb] / samples_per_pixel / correlation_area, 1.0)
            se = np.sqrt(va / na + vb / nb)
            with np.errstate(invalid="ignore", divide="ignore"):
                z = np.abs(ma - mb) / se
            if np.any(z >= colour_z):
                continue
        keep, gone = (ra, rb) if ra < rb else (rb, ra)
        parent[gone] = keep
        if peak[gone] > peak[keep]:
            peak[keep] = peak[gone]
            noise_at_peak[keep] = noise_at_peak[gone]
        if use_colour:
            s1[keep] += s1[gone]
            s2[keep] += s2[gone]
            count[keep] += count[gone]
    return np.array([root(i) for i in range(n_values)])


def split_segments(label_image, smoothed, smooth_noise, *, dip, min_area, first=0):
    """Split segments that hold more than one significant peak.

    A peak is significant when it rises at least ``dip`` standard
    deviations of the smoothed noise above the highest saddle that joins it
    to a higher peak (an h-maximum of ``smoothed / smooth_noise`` with
    ``h = dip``): the same rule by which :func:`merge_segments` keeps two
    segments apart. A segment holding several such peaks is cut along the
    watershed of ``smoothed`` between them; a part of fewer than
    ``min_area`` pixels gives its peak up to its neighbours. The part with
    the segment's highest peak keeps its value.

    Parameters
    ----------
    label_image : (M, N) ndarray of int
        0 for background, ``k + 1`` for label ``k``.
    smoothed, smooth_noise : (M, N) ndarray of float
        The smoothed luminosity and the standard deviation of its noise.
    dip : float
        Least rise of a peak above its saddle, in noise deviations.
    min_area : int
        Least number of pixels of a part.
    first : int, default=0
        The new parts are numbered from ``max(first, label_image.max() + 1)``
        (values that points may carry without holding a pixel are skipped).

    Returns
    -------
    label_image : (M, N) ndarray of int32
        The segments, the new parts numbered from ``first`` on.
    parents : ndarray of int
        The value of the segment each new part was cut from, in the order
        of the new values.
    """
    inside = label_image > 0
    no_parts = np.empty(0, dtype=np.int64)
    if not inside.any():
        return label_image.astype(np.int32, copy=False), no_parts
    with np.errstate(divide="ignore", invalid="ignore"):
        level = np.where(inside & np.isfinite(smoothed), smoothed / smooth_noise, 0.0)
    floor = float(level[inside].min())
    level = np.where(inside, level, min(floor, 0.0))
    peaks, n_peaks = ndimage.label(h_maxima(level, dip) > 0, structure=np.ones((3, 3)))
    if n_peaks < 2:
        return label_image.astype(np.int32, copy=False), no_parts
    # The segment of every peak, and the segments that hold more than one.
    where = ndimage.minimum_position(label_image, peaks, np.arange(1, n_peaks + 1))
    owner = np.array([label_image[p] for p in where], dtype=np.int64)
    per_segment = np.bincount(owner, minlength=int(label_image.max()) + 1)
    per_segment[0] = 0
    out = label_image.astype(np.int32, copy=True)
    next_value = max(int(first), int(label_image.max()) + 1)
    parents = []
    boxes = ndimage.find_objects(label_image)
    for value in np.flatnonzero(per_segment >= 2):
        box = boxes[value - 1]
        mask = label_image[box] == value
        markers = np.where(mask, peaks[box], 0)
        while True:  # each round drops at least one marker
            parts = watershed(-level[box], markers, mask=mask)
            ids, area = np.unique(parts[parts > 0], return_counts=True)
            small = ids[area < min_area]
            if small.size == 0 or small.size == ids.size:
                break
            markers[np.isin(markers, small)] = 0
        if ids.size < 2:
            continue
        top = parts[np.unravel_index(np.argmax(np.where(mask, level[box], -np.inf)), mask.shape)]
        region = out[box]
        for part in ids:
            if part != top:
                region[parts == part] = next_value
                parents.append(value)
                next_value += 1
    return out, np.array(parents, dtype=np.int64)
