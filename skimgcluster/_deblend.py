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
features of the points are for. Two objects of different colours on one
peak have no dip between them: :func:`colour_split_segments` cuts a
segment whose light is two spectra that each peak in their own place.
A faint object on the wing of a brighter one may have neither a dip nor a
colour of its own; but a single source is point-symmetric about its centre
(a Sersic profile, inclined or not, seen through a symmetric PSF) and the
pair is not: :func:`symmetry_split_segments` cuts out the light that the
mirror image of the segment about its centre does not explain, as the SDSS
deblender builds its templates.
"""

from typing import NamedTuple

import numpy as np
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from skimage.segmentation import watershed

from ._kernels.deblend import colour_scatter, group_bounds, h_maxima
from ._threads import in_background, threaded

__all__ = ["colour_split_segments", "merge_segments", "split_segments", "symmetry_split_segments"]


def _touching_pairs(label_image, smoothed, where):
    """Pairs of touching labels and the level at which they join.

    Returns ``(a, b, saddle)``: for every pair of distinct non-zero values
    ``a < b`` of 4-connected neighbouring pixels, the highest value over
    their common boundary of the lower of the two smoothed pixel values
    (``-inf`` where not finite). ``where`` holds the flat indices of the
    non-zero pixels: the pairs are found from them and their right and
    lower neighbours, not from every pixel of the image.
    """
    height, width = label_image.shape
    flat = label_image.ravel()
    level = smoothed.ravel()
    a_parts, b_parts, v_parts = [], [], []
    for step, has_next in ((1, where % width < width - 1), (width, where < (height - 1) * width)):
        first = where[has_next]
        second = first + step
        a, b = flat[first], flat[second]
        edge = (a != b) & (b > 0)
        a, b, first, second = a[edge], b[edge], first[edge], second[edge]
        a_parts.append(np.minimum(a, b))
        b_parts.append(np.maximum(a, b))
        v_parts.append(np.minimum(_finite_or_low(level[first]), _finite_or_low(level[second])))
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


def _segment_pixels(label_image):
    """``np.flatnonzero(label_image)``, searched in a boolean image.

    NumPy finds the non-zero entries of an array of bool about three times
    as fast as those of an array of integers, which pays for the comparison.
    """
    return np.flatnonzero(label_image != 0)


def _finite_or_low(values):
    """``values`` with ``-inf`` where they are not finite."""
    return np.where(np.isfinite(values), values, -np.inf)


def _label_colours(labels, points, n_values):
    """Mean colour features, their variance and pixel count per label value."""
    n_colour = points.shape[1] - 2
    # Noise (label -1) falls in value 0, which holds no label: its sums are
    # dropped rather than its points, whose copy cost more than the sums.
    value = labels + 1
    count = np.bincount(value, minlength=n_values).astype(np.float64)
    count[0] = 0.0
    mean = np.zeros((n_values, n_colour))
    var = np.zeros((n_values, n_colour))
    for c in range(n_colour):
        colour = points[:, 2 + c]
        s = np.bincount(value, colour, minlength=n_values)
        s2 = np.bincount(value, colour**2, minlength=n_values)
        s[0] = s2[0] = 0.0
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
    apart=None,
    apart_colour_z=None,
):
    """Merge touching segments that neither a dip nor a colour separates.

    Two touching segments stay apart when each one's peak rises at least
    ``dip`` standard deviations of the smoothed noise above their saddle
    (the highest level along their common boundary), or when their mean
    colours differ by at least ``colour_z`` standard errors (``apart_colour_z``
    when they hold two segments of a pair of ``apart``). Pairs are examined
    from the highest saddle down, on the segments merged so far, as a merge
    tree is built.

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
    apart : array-like of shape (n_pairs, 2) of int, default=None
        Pairs of values of ``label_image`` whose segments, or the segments
        merged from them, face ``apart_colour_z`` instead of ``colour_z``:
        the parts that :func:`colour_split_segments` cut apart, whose
        colours already differ in the dipole test.
    apart_colour_z : float, default=None
        Least colour difference, in standard errors, that keeps the
        segments of a pair of ``apart`` apart; ``None`` is ``colour_z``.
        Ignored when ``colour_z`` is ``None``.

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
    # Only the segments' pixels: the background (value 0) has no peak and
    # touches nothing.
    where = _segment_pixels(label_image)
    a, b, saddle = _touching_pairs(label_image, smoothed, where)
    if a.size == 0:
        return new_value
    flat = label_image.ravel()[where]
    values = _finite_or_low(smoothed.ravel()[where])
    peak = np.full(n_values, -np.inf)
    # In float64, the dtype of ``peak``: ufunc.at takes its fast loop.
    np.maximum.at(peak, flat, values.astype(np.float64))
    peak[0] = -np.inf
    noise_at_peak = np.zeros(n_values)
    # The noise where each segment peaks (the noise map varies slowly): at
    # its last pixel in raster order holding the peak value.
    at_peak = np.flatnonzero(values == peak[flat])
    last = np.full(n_values, -1)
    np.maximum.at(last, flat[at_peak], at_peak)
    held = last >= 0
    noise_at_peak[held] = smooth_noise.ravel()[where[last[held]]]
    use_colour = colour_z is not None and points.shape[1] > 2
    if use_colour:
        mean, var, count = _label_colours(labels, points, n_values)
        # Sums, so that merged segments add up.
        s1 = mean * count[:, None]
        s2 = (var + mean**2) * count[:, None]
    parent = np.arange(n_values)
    # The values each root was cut apart from (kept by root, and resolved
    # to the current roots when a pair is examined).
    cut_from = {}
    if apart is not None:
        for x, y in np.asarray(apart, dtype=np.int64).reshape(-1, 2).tolist():
            if x != y:
                cut_from.setdefault(x, set()).add(y)
                cut_from.setdefault(y, set()).add(x)
    if apart_colour_z is None:
        apart_colour_z = colour_z

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
            least = colour_z
            if any(root(e) == rb for e in cut_from.get(ra, ())):
                least = apart_colour_z
            if np.any(z >= least):
                continue
        keep, gone = (ra, rb) if ra < rb else (rb, ra)
        parent[gone] = keep
        if gone in cut_from:
            cut_from.setdefault(keep, set()).update(cut_from.pop(gone))
        if peak[gone] > peak[keep]:
            peak[keep] = peak[gone]
            noise_at_peak[keep] = noise_at_peak[gone]
        if use_colour:
            s1[keep] += s1[gone]
            s2[keep] += s2[gone]
            count[keep] += count[gone]
    return np.array([root(i) for i in range(n_values)])


def split_segments(label_image, smoothed, smooth_noise, *, dip, min_area, first=0, copy=True):
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
    copy : bool, default=True
        If False and ``label_image`` is an int32 array, it is cut in place
        and returned: a large image's copy costs more than its cuts.

    Returns
    -------
    label_image : (M, N) ndarray of int32
        The segments, the new parts numbered from ``first`` on.
    parents : ndarray of int
        The value of the segment each new part was cut from, in the order
        of the new values.
    """
    inside = _segment_pixels(label_image)
    no_parts = np.empty(0, dtype=np.int64)
    if inside.size == 0:
        return label_image.astype(np.int32, copy=False), no_parts
    # The segments' pixels only: they are a few percent of a large field.
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = smoothed.ravel()[inside] / smooth_noise.ravel()[inside]
    # No peak where the luminosity or its noise is not finite (or the noise
    # is 0): the h-maxima need finite levels.
    inner = np.where(np.isfinite(inner), inner, 0.0)
    floor = float(inner.min())
    lowest = inner.dtype.type(min(floor, 0.0))
    on_peak, peak_id = _segment_peaks(label_image, inside, inner, lowest, dip)
    n_peaks = int(peak_id.max(initial=0))
    if n_peaks < 2:
        return label_image.astype(np.int32, copy=False), no_parts
    # The peak under every segment pixel (0 for none), as ``inside``.
    peak = np.zeros(inside.size, dtype=np.int32)
    peak[np.searchsorted(inside, on_peak)] = peak_id
    # The segment of every peak (the lowest value under it, as a peak may
    # straddle two touching segments), and the segments that hold more than one.
    flat = label_image.reshape(-1)[inside]
    n_values = int(flat.max()) + 1
    owner = np.full(n_peaks + 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(owner, peak_id, label_image.reshape(-1)[on_peak].astype(np.int64))
    owner = owner[1:]
    per_segment = np.bincount(owner, minlength=n_values)
    per_segment[0] = 0
    out = label_image.astype(np.int32, copy=copy)
    next_value = max(int(first), n_values)
    parents = []
    boxes = _boxes(label_image, inside)
    values = np.flatnonzero(per_segment >= 2)
    flooded = _flood_segments(inner, label_image, inside, peak, values, boxes, min_area)
    # Each segment's highest pixel, the first in raster order.
    highest = np.full(n_values, -np.inf)
    np.maximum.at(highest, flat, inner.astype(np.float64))
    top_pixel = np.full(n_values, np.iinfo(np.intp).max, dtype=np.intp)
    at_top = np.flatnonzero(inner == highest[flat])
    np.minimum.at(top_pixel, flat[at_top], inside[at_top])
    width = label_image.shape[1]
    for value, (parts, ids) in zip(values.tolist(), flooded, strict=True):
        if ids.size < 2:
            continue
        box = boxes[value - 1]
        row, col = divmod(int(top_pixel[value]), width)
        top = parts[row - box[0].start, col - box[1].start]
        region = out[box]
        for part in ids:
            if part != top:
                region[parts == part] = next_value
                parents.append(value)
                next_value += 1
    return out, np.array(parents, dtype=np.int64)


# A pixel belongs to the residual blob of a companion when the residual rises
# this many deviations of its noise: the blob's extent, which its significance
# (``z`` of symmetry_split_segments, chosen on the tuning seeds) then judges.
_SYMMETRY_PIXEL_Z = 2.0
# The centre of symmetry is the centroid of the light above this fraction of
# the segment's peak: many pixels, so that the noise moves it little, and
# high enough that a companion's wing barely reaches them.
_SYMMETRY_CORE_LEVEL = 0.8
# Pixels this close to the centre of symmetry are not searched: there a
# centre off by a fraction of a pixel leaves a residual of the core's slope.
_SYMMETRY_CORE = 1.5


def symmetry_split_segments(
    label_image, smoothed, smooth_noise, *, z, min_share, min_area, correlation_area, first=0
):
    """Cut out of each segment the light its point symmetry does not explain.

    A single source is point-symmetric about its centre. The segment's
    smoothed luminosity ``S`` is compared with its mirror image ``M(x) =
    S(2c - x)`` about its centre ``c``, the centroid of the light above
    :data:`_SYMMETRY_CORE_LEVEL` of its peak, read from the whole image:
    the residual ``R = S - M`` is the light of a companion. A companion is
    a blob of 8-connected pixels of the segment, beyond
    :data:`_SYMMETRY_CORE` pixels of ``c``, where ``R`` rises
    :data:`_SYMMETRY_PIXEL_Z` deviations of its noise (``sqrt(2)`` times
    ``smooth_noise``), whose highest pixel rises ``z`` deviations inside the
    segment (none of its 4 neighbours outside it, none of its 8 in another
    segment) and whose part rises ``z`` in sum. Its part is the
    8-connected region about the blob where the residual is brighter than
    the mirror image (where the companion holds more of the light than the
    symmetric source); it is cut when it holds ``min_area`` pixels, leaves
    as many to the segment, not the peak, and the residual is at least
    ``min_share`` of its light.

    Parameters
    ----------
    label_image : (M, N) ndarray of int
        0 for background, ``k + 1`` for label ``k``.
    smoothed, smooth_noise : (M, N) ndarray of float
        The smoothed luminosity and the standard deviation of its noise.
    z : float
        Least significance of a companion, in noise deviations, at its
        highest pixel and summed over its part.
    min_share : float
        Least share of the residual in the light of the part.
    min_area : int
        Least number of pixels of a part and of what it leaves.
    correlation_area : float
        Area in pixels over which the noise of ``smoothed`` is correlated
        (``4 pi sigma**2`` for a Gaussian smoothing of ``sigma`` pixels): the
        sum over a part of ``n`` pixels has the variance of ``n * min(n,
        correlation_area)`` pixels.
    first : int, default=0
        The parts are numbered from ``max(first, label_image.max() + 1)``.

    Returns
    -------
    label_image : (M, N) ndarray of int32
        The segments, the parts numbered from ``first`` on.
    parents : ndarray of int
        The value of the segment each part was cut from, in the order of
        the new values.
    """
    out = label_image.astype(np.int32, copy=True)
    inside = _segment_pixels(label_image)
    parents = []
    if inside.size == 0:
        return out, np.array(parents, dtype=np.int64)
    # The light as given (float32 or float64: the interpolation reads either
    # into float64), copied only to zero its NaN.
    level = np.asarray(smoothed)
    if level.dtype.kind != "f":
        level = level.astype(np.float64)
    if np.isnan(level).any():
        level = np.nan_to_num(level, nan=0.0)
    flat = label_image.ravel()[inside]
    area = np.bincount(flat)
    # The pixels of each segment side by side, in the image's order within it.
    by_segment = np.argsort(flat, kind="stable")
    inside, flat = inside[by_segment], flat[by_segment]
    start = np.searchsorted(flat, np.arange(area.size + 1))
    noise = np.sqrt(2.0) * np.asarray(smooth_noise).ravel()[inside].astype(np.float64)
    residual, dominant, signif, far = _mirror_residuals(level, noise, inside, flat, start)
    lit = far & (signif >= _SYMMETRY_PIXEL_Z)
    # What any cut needs, checked on all segments at once; the others need no
    # closer look. A blob whose highest pixel rises z inside the segment, and
    # a part of at least min_area pixels where the residual outshines the
    # mirror image, about a blob.
    hit = np.flatnonzero(far & (signif >= z))
    hit = hit[_interior(label_image, inside[hit], flat[hit])]
    candidate = np.zeros(area.size, dtype=bool)
    candidate[flat[hit]] = True
    about_blob = np.zeros(area.size, dtype=bool)
    about_blob[flat[lit & dominant]] = True
    candidate &= about_blob & (np.bincount(flat[dominant], minlength=area.size) >= min_area)
    candidate &= area >= 2 * min_area
    next_value = max(int(first), int(label_image.max()) + 1)
    eight = np.ones((3, 3), dtype=bool)
    width = label_image.shape[1]
    boxes = _boxes(label_image, inside)
    for value in np.flatnonzero(candidate).tolist():
        box = boxes[value - 1]
        mask = label_image[box] == value
        own_pixels = slice(start[value], start[value + 1])
        rows, cols = np.divmod(inside[own_pixels], width)
        rows -= box[0].start
        cols -= box[1].start
        own = level[box][rows, cols].astype(np.float64)
        res = residual[own_pixels]
        z_own = signif[own_pixels]
        lit_own = lit[own_pixels]
        shape = mask.shape
        blob_image = np.zeros(shape, dtype=bool)
        blob_image[rows[lit_own], cols[lit_own]] = True
        blobs, n_blobs = ndimage.label(blob_image, structure=eight)
        z_image = np.full(shape, -np.inf)
        z_image[rows, cols] = z_own
        res_image = np.zeros(shape)
        res_image[rows, cols] = res
        light = np.zeros(shape)
        light[rows, cols] = own
        # Where the companion holds more of the light than the symmetric source.
        brighter = np.zeros(shape, dtype=bool)
        brighter[rows, cols] = dominant[own_pixels]
        regions, _ = ndimage.label(brighter, structure=eight)
        # A residual that rises to the segment's edge is the noise of the edge
        # or light from beyond it (a neighbour reaching in): its highest pixel
        # must lie inside the segment, with no other segment around it.
        interior = np.zeros(shape, dtype=bool)
        interior[rows, cols] = _interior(label_image, inside[own_pixels], flat[own_pixels])
        sigma = np.sqrt(2.0) * np.asarray(smooth_noise)[box].astype(np.float64)
        top = int(np.argmax(own))
        peak = (rows[top], cols[top])
        taken = np.zeros(shape, dtype=bool)
        for blob in range(1, n_blobs + 1):
            in_blob = blobs == blob
            at = np.unravel_index(np.argmax(np.where(in_blob, z_image, -np.inf)), shape)
            if z_image[at] < z or not interior[at]:
                continue
            ids = np.unique(regions[in_blob])
            part = np.isin(regions, ids[ids > 0]) & mask & ~taken
            n = int(np.count_nonzero(part))
            if n < min_area or int(np.count_nonzero(mask & ~part & ~taken)) < min_area:
                continue
            if part[peak]:
                continue
            flux = float(res_image[part].sum())
            spread = float(np.mean(sigma[part])) / np.sqrt(2.0)
            if flux < z * np.sqrt(2.0 * n * min(n, correlation_area)) * spread:
                continue
            if flux < min_share * float(light[part].sum()):
                continue
            out[box][part] = next_value
            taken |= part
            parents.append(value)
            next_value += 1
    return out, np.array(parents, dtype=np.int64)


def _mirror_residuals(level, noise, inside, flat, start):
    """Each segment pixel's light less its mirror image about the segment's centre.

    ``inside`` holds the flat indices of the segments' pixels, grouped by
    segment (``flat``, their values) from ``start[value]`` on. The centre of
    a segment is the centroid of the light of its core, the pixels above
    :data:`_SYMMETRY_CORE_LEVEL` of its peak: on a flat-topped profile the
    brightest pixel strays with the noise, and a centre off by ``d`` leaves a
    residual of ``2 d`` times the profile's slope on each flank, while a
    faint companion on the wing barely reaches the core. The mirror image
    ``level(2c - x)`` is read from the whole image, and beyond it equals the
    light (no residual). Returns the residual, whether it is brighter than
    the mirror image, its significance against ``noise`` (0 where not
    finite) and whether each pixel lies beyond :data:`_SYMMETRY_CORE` pixels
    of the centre.
    """
    height, width = level.shape
    own = level.ravel()[inside].astype(np.float64)
    present = np.flatnonzero(start[1:] > start[:-1])
    highest = np.zeros(start.size - 1)
    highest[present] = np.maximum.reduceat(own, start[present])
    rows, cols = np.divmod(inside, width)
    core = own >= _SYMMETRY_CORE_LEVEL * highest[flat]
    weight = np.where(core, own, 0.0)
    total = np.bincount(flat, weights=weight, minlength=highest.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        centre_row = np.bincount(flat, weights=weight * rows, minlength=highest.size) / total
        centre_col = np.bincount(flat, weights=weight * cols, minlength=highest.size) / total
    # A segment with no light above zero has no core: its first pixel stands in.
    dark = ~(total > 0)
    if dark.any():
        first_row, first_col = np.divmod(inside[np.minimum(start[:-1], inside.size - 1)], width)
        centre_row[dark] = first_row[dark]
        centre_col[dark] = first_col[dark]
    r0, c0 = centre_row[flat], centre_col[flat]
    mirror_r, mirror_c = 2 * r0 - rows, 2 * c0 - cols
    seen = (mirror_r >= 0) & (mirror_r <= height - 1) & (mirror_c >= 0) & (mirror_c <= width - 1)
    mirror = own.copy()
    mirror[seen] = ndimage.map_coordinates(
        level, [mirror_r[seen], mirror_c[seen]], order=1, mode="nearest", output=np.float64
    )
    residual = own - mirror
    with np.errstate(divide="ignore", invalid="ignore"):
        signif = residual / noise
    signif = np.where(np.isfinite(signif), signif, 0.0)
    far = np.hypot(rows - r0, cols - c0) > _SYMMETRY_CORE
    return residual, residual > mirror, signif, far


def _interior(label_image, pixels, values):
    """Whether each pixel is inside its segment, away from any other.

    ``pixels`` are flat indices of pixels of the segments ``values``: a
    pixel is inside when its 4 neighbours belong to its segment (not off the
    image) and none of its 8 to another segment.
    """
    height, width = label_image.shape
    rows, cols = np.divmod(pixels, width)
    result = np.ones(pixels.size, dtype=bool)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr == 0 and dc == 0:
                continue
            r, c = rows + dr, cols + dc
            on_image = (r >= 0) & (r < height) & (c >= 0) & (c < width)
            neighbour = np.zeros(pixels.size, dtype=label_image.dtype)
            neighbour[on_image] = label_image[r[on_image], c[on_image]]
            if dr == 0 or dc == 0:
                result &= neighbour == values
            else:
                result &= (neighbour == values) | (neighbour == 0)
    return result


def _boxes(label_image, where):
    """``scipy.ndimage.find_objects(label_image)`` from the non-zero pixels.

    ``where`` holds the flat indices of the non-zero pixels of
    ``label_image``: their bounds per value, instead of a pass over every
    pixel of the image.
    """
    flat = label_image.ravel()[where]
    rows, cols = np.divmod(where, label_image.shape[1])
    n_values = int(flat.max(initial=0)) + 1
    return _group_boxes(flat, rows, cols, n_values, label_image.shape)[1:]


def _group_boxes(group, rows, cols, n_groups, shape):
    """The box (a pair of slices) of the pixels of each group ``0 .. n_groups - 1``.

    ``group``, ``rows`` and ``cols`` give each pixel's group and place in an
    image of ``shape``; a group without a pixel has ``None``.
    """
    top, left, bottom, right = group_bounds(
        *(np.asarray(a, dtype=np.intp) for a in (group, rows, cols)), n_groups, *shape
    )
    return [
        (slice(t, b + 1), slice(le, r + 1)) if b >= 0 else None
        for t, b, le, r in zip(
            top.tolist(), bottom.tolist(), left.tolist(), right.tolist(), strict=True
        )
    ]


# Fewest segments a thread floods in a mosaic of its own (:func:`_flood_segments`).
_FLOOD_PER_THREAD = 256


def _flood_segments(levels, label_image, inside, peak, values, boxes, min_area):
    """The watershed parts of each segment of ``values`` about its peaks.

    ``inside`` holds the flat indices of the pixels of all segments (the
    non-zero pixels of ``label_image``) in increasing order, ``levels`` and
    ``peak`` their levels and the id of the peak under each (0 for none).
    For each segment, the watershed of ``-levels`` in its box from the
    markers of its peaks, dropping the markers of parts smaller than
    ``min_area`` and flooding again until none is (or all are). Returns,
    per segment, the parts in its box and their marker ids.

    Segments whose levels are all distinct flood side by side in one mosaic
    (:func:`_shelf_pack`), each in its box with a margin outside the mask:
    one call instead of thousands, whose fixed cost was most of the time. The
    flood pops pixels by level, breaking ties by the order they were
    reached; with distinct levels ties never arise, so a segment's pixels
    are flooded in the same order among others as alone, and get the same
    parts. Segments with equal levels flood alone.
    """
    done = {}
    position = np.zeros(int(label_image.max()) + 1, dtype=np.intp)
    position[values] = np.arange(1, values.size + 1)
    chosen = position[label_image.ravel()[inside]] > 0
    where = inside[chosen]
    seg, lev, peak = label_image.ravel()[where], levels[chosen], peak[chosen]
    rows, cols = np.divmod(where, label_image.shape[1])
    # In the mosaic each segment's markers get ids of their own (a peak may
    # straddle two segments): the pairs of segment and peak, in increasing
    # order, so that one count of the flooded mosaic gives every part's area.
    n_ids = int(peak.max(initial=0)) + 1
    key = seg.astype(np.int64) * n_ids + peak
    pairs = np.unique(key[peak > 0])
    mark = np.where(peak > 0, np.searchsorted(pairs, key) + 1, 0)
    pair_peak = np.concatenate([[0], pairs % n_ids])
    pair_owner = np.concatenate([[-1], position[pairs // n_ids] - 1])
    bounds = np.searchsorted(pair_owner, np.arange(values.size + 1))
    k_of = position[seg] - 1  # each pixel's index into values
    # Segments with two equal levels: ``np.lexsort((lev, seg))``, as a stable
    # sort by level then one by segment (by radix in 8 or 16 bits).
    order = np.argsort(lev, kind="stable")
    order = order[np.argsort(k_of[order].astype(np.min_scalar_type(values.size)), kind="stable")]
    by_seg, by_lev = seg[order], lev[order]
    tied = set(by_seg[1:][(by_seg[1:] == by_seg[:-1]) & (by_lev[1:] == by_lev[:-1])].tolist())
    pending = [v for v in values.tolist() if v not in tied]
    if tied:
        # Each tied segment's pixels, from one sort of them all by segment.
        by_value = np.argsort(seg, kind="stable")
        tied_values = np.array(sorted(tied))
        lo = np.searchsorted(seg[by_value], tied_values, side="left").tolist()
        hi = np.searchsorted(seg[by_value], tied_values, side="right").tolist()
        pixels_of = {v: slice(a, b) for v, a, b in zip(tied_values.tolist(), lo, hi, strict=True)}
    for value in tied:
        box = boxes[value - 1]
        own = by_value[pixels_of[value]]
        r, c = rows[own] - box[0].start, cols[own] - box[1].start
        shape = (box[0].stop - box[0].start, box[1].stop - box[1].start)
        mask = np.zeros(shape, dtype=bool)
        mask[r, c] = True
        image = np.zeros(shape, dtype=lev.dtype)
        image[r, c] = -lev[own]
        markers = np.zeros(shape, dtype=np.int32)
        markers[r, c] = peak[own]
        done[value] = _flood_alone(image, markers, mask, min_area)
    active = np.ones(pair_peak.size, dtype=bool)
    active[0] = False

    def flood(start, stop, pending):
        # The pending segments start to stop, side by side in one mosaic.
        part = pending[start:stop]
        dy, dx, shape = _pack_boxes([boxes[v - 1] for v in part])
        # Every segment's pixels into its place, at once.
        shift_y = np.zeros(values.size, dtype=np.intp)
        shift_x = np.zeros(values.size, dtype=np.intp)
        is_pending = np.zeros(values.size, dtype=bool)
        k_pending = position[part] - 1
        shift_y[k_pending], shift_x[k_pending], is_pending[k_pending] = dy, dx, True
        now = np.flatnonzero(is_pending[k_of])
        m_rows, m_cols = rows[now] + shift_y[k_of[now]], cols[now] + shift_x[k_of[now]]
        mosaic = np.zeros(shape)
        mosaic[m_rows, m_cols] = -lev[now]
        mask = np.zeros(shape, dtype=bool)
        mask[m_rows, m_cols] = True
        seeds = np.zeros(shape, dtype=np.int32)
        seeds[m_rows, m_cols] = np.where(active[mark[now]], mark[now], 0)
        return part, dy, dx, watershed(mosaic, seeds, mask=mask)

    while pending:
        # skimage's watershed releases the GIL: a mosaic per thread.
        floods = threaded(flood, len(pending), pending, min_per_thread=_FLOOD_PER_THREAD)
        area = np.zeros(pair_peak.size, dtype=np.intp)
        for _, _, _, flooded in floods:
            area += np.bincount(flooded.ravel(), minlength=pair_peak.size)
        # Each round drops at least one marker of a segment that goes again:
        # those of its parts smaller than min_area, unless none or all are.
        small = active & (area < min_area)
        n_active = np.bincount(pair_owner[active], minlength=values.size)
        n_small = np.bincount(pair_owner[small], minlength=values.size)
        again = (n_small > 0) & (n_small < n_active)
        active[small & again[pair_owner]] = False
        for part, dy, dx, flooded in floods:
            for value, y, x in zip(part, dy.tolist(), dx.tolist(), strict=True):
                k = position[value] - 1
                if not again[k]:
                    box = boxes[value - 1]
                    place = (slice(box[0].start + y, box[0].stop + y),
                             slice(box[1].start + x, box[1].stop + x))  # fmt: skip
                    ids = bounds[k] + np.flatnonzero(active[bounds[k] : bounds[k + 1]])
                    done[value] = (pair_peak[flooded[place]], pair_peak[ids])
        pending = [v for v in pending if again[position[v] - 1]]
    return [done[value] for value in values.tolist()]


def _flood_boxes(boxes, images, markers, masks):
    """``watershed(image, markers, mask=mask)`` of each box (its image, markers and mask).

    Those whose image holds no two equal values inside the mask flood side
    by side in one mosaic (:func:`_pack_boxes`), for the reason
    :func:`_flood_segments` gives; the others flood alone.
    """
    floods = [None] * len(boxes)
    shared = []
    for j, (image, mask) in enumerate(zip(images, masks, strict=True)):
        inner = image[mask]
        if np.unique(inner).size == inner.size:
            shared.append(j)
        else:
            floods[j] = watershed(image, markers[j], mask=masks[j])
    if shared:
        dy, dx, shape = _pack_boxes([boxes[j] for j in shared])
        mosaic = np.zeros(shape)
        seeds = np.zeros(shape, dtype=np.int32)
        inside = np.zeros(shape, dtype=bool)
        places = []
        for j, y, x in zip(shared, dy.tolist(), dx.tolist(), strict=True):
            box = boxes[j]
            place = (slice(box[0].start + y, box[0].stop + y),
                     slice(box[1].start + x, box[1].stop + x))  # fmt: skip
            mosaic[place], seeds[place], inside[place] = images[j], markers[j], masks[j]
            places.append(place)
        flooded = watershed(mosaic, seeds, mask=inside)
        for j, place in zip(shared, places, strict=True):
            floods[j] = flooded[place]
    return floods


def _flood_alone(image, markers, mask, min_area):
    """The parts of one segment, as :func:`_flood_segments` finds them."""
    while True:  # each round drops at least one marker
        parts = watershed(image, markers, mask=mask)
        ids, small = _small_parts(parts, min_area)
        if small is None:
            return parts, ids
        markers[np.isin(markers, small)] = 0


def _small_parts(parts, min_area):
    """The part ids and those to give up (None when none or all are small)."""
    ids, area = np.unique(parts[parts > 0], return_counts=True)
    small = ids[area < min_area]
    return ids, (small if 0 < small.size < ids.size else None)


def _segment_peaks(label_image, inside, levels, lowest, h):
    """The h-maxima of a level image that is ``lowest`` outside the segments.

    ``inside`` holds the flat indices of the segments' pixels (the non-zero
    pixels of ``label_image``), in increasing order, and ``levels`` their
    levels, none below ``lowest``. Returns the flat indices of the pixels of
    ``_h_maxima(level, h)``, in increasing order, and the id of each one's
    peak: its 8-connected region of maxima, numbered as
    ``ndimage.label(maxima, np.ones((3, 3)))`` numbers them (by their first
    pixel in raster order).

    Groups of segments that no 8-connected path joins are separated by
    pixels at ``lowest``, below which no reconstruction falls: each group's
    maxima are those of its own box. The boxes are reconstructed side by side in
    one mosaic (:func:`_pack_boxes`), each framed at ``lowest``, so that the
    reconstruction covers the segments' pixels and not the whole image, a
    few percent of a large field.
    """
    height, width = label_image.shape
    flat = label_image.reshape(-1)
    lowest_of_image = lowest if inside.size < flat.size else levels.min()
    empty = np.empty(0, dtype=np.intp)
    # _h_maxima's test of the range, on the image's range.
    if h > levels.max() - min(lowest_of_image, levels.min()):
        return empty, empty
    values = flat[inside]
    rows, cols = np.divmod(inside, width)
    # Segments touching along one of 8 directions are one group.
    a_parts, b_parts = [], []
    for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1)):
        on_image = (rows + dr < height) & (cols + dc >= 0) & (cols + dc < width)
        other = flat[inside[on_image] + dr * width + dc]
        touch = (other > 0) & (other != values[on_image])
        a_parts.append(values[on_image][touch])
        b_parts.append(other[touch])
    n_values = int(values.max()) + 1
    a, b = np.concatenate(a_parts), np.concatenate(b_parts)
    graph = coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(n_values, n_values))
    _, group_of_value = connected_components(graph, directed=False)
    group = group_of_value[values]
    n_groups = int(group.max()) + 1
    boxes = _group_boxes(group, rows, cols, n_groups, label_image.shape)
    held = np.array([i for i, box in enumerate(boxes) if box is not None], dtype=np.intp)
    boxes = [boxes[i] for i in held.tolist()]
    dy, dx, shape = _pack_boxes(boxes)
    shift_y = np.zeros(n_groups, dtype=np.intp)
    shift_x = np.zeros(n_groups, dtype=np.intp)
    shift_y[held], shift_x[held] = dy, dx
    m_rows, m_cols = rows + shift_y[group], cols + shift_x[group]
    mosaic = np.full(shape, lowest, dtype=levels.dtype)
    mosaic[m_rows, m_cols] = levels
    maxima = _h_maxima(mosaic, h)
    at = np.flatnonzero(maxima[m_rows, m_cols])  # into inside, increasing
    if at.size == 0:
        return empty, empty
    regions, _ = ndimage.label(maxima, structure=np.ones((3, 3)))
    region = regions[m_rows[at], m_cols[at]]
    # Number the regions by their first pixel in the image's raster order.
    first = np.full(int(region.max()) + 1, np.iinfo(np.intp).max, dtype=np.intp)
    np.minimum.at(first, region, inside[at])
    used = np.flatnonzero(first < np.iinfo(np.intp).max)
    rank = np.zeros(first.size, dtype=np.int32)
    rank[used[np.argsort(first[used])]] = np.arange(1, used.size + 1, dtype=np.int32)
    return inside[at], rank[region]


def _h_maxima(level, h):
    """``skimage.morphology.h_maxima(level, h) > 0`` for a finite float image.

    With the kernel :func:`._kernels.deblend.h_maxima`: skimage's grey
    reconstruction sorts every pixel of the image, which on a large field
    took most of the deblending's time (and it crashes on an infinite value).
    """
    lowest, highest = level.min(), level.max()
    if h > highest - lowest:  # np.ptp(level), as skimage tests it
        return np.zeros(level.shape, dtype=bool)
    dtype = level.dtype.type
    index = np.int32 if level.size < 2**31 else np.int64
    return h_maxima(
        level, dtype(h), dtype(2 * np.finfo(dtype).resolution), lowest, highest,
        np.empty_like(level),
        np.empty(level.size, dtype=index), np.zeros(level.shape, dtype=bool),
        np.empty(level.shape, dtype=bool),
    )  # fmt: skip


def _pack_boxes(boxes):
    """Places of boxes (slices of an image) side by side in one mosaic.

    Each box gets a margin of one pixel, so that no two boxes touch. Returns
    ``(dy, dx, shape)``: pixel ``(r, c)`` of the image in box ``i`` goes to
    ``(r + dy[i], c + dx[i])`` of a mosaic of that shape.
    """
    top = np.array([b[0].start for b in boxes])
    left = np.array([b[1].start for b in boxes])
    heights = np.array([b[0].stop for b in boxes]) - top + 2
    widths = np.array([b[1].stop for b in boxes]) - left + 2
    row0, col0, shape = _shelf_pack(heights, widths)
    return row0 + 1 - top, col0 + 1 - left, shape


def _shelf_pack(heights, widths):
    """Places of boxes in a mosaic: rows of boxes, the tallest first.

    Returns the top row and left column of every box and the mosaic's
    shape, about as wide as it is tall (at least the widest box).
    """
    order = np.argsort(-heights, kind="stable")
    width = max(int(widths.max()), int(np.ceil(np.sqrt(np.sum(heights * widths)))))
    row0 = np.empty(heights.size, dtype=np.intp)
    col0 = np.empty(heights.size, dtype=np.intp)
    y = x = shelf = 0
    for i in order.tolist():
        if x + widths[i] > width:
            y, x, shelf = y + shelf, 0, 0
        shelf = max(shelf, int(heights[i]))
        row0[i], col0[i] = y, x
        x += int(widths[i])
    return row0, col0, (y + shelf, width)


# Rows of the image per block of :func:`band_noise_ratios`' search of sky pixels.
_SKY_ROWS = 256


def band_noise_ratios(maps, n_sky=20_000):
    """Relative noise of the smoothed bands, measured on sky pixels.

    Returns ``r`` of shape ``(C,)``, scaled so that bands with independent
    noise ``smooth_noise * r * C / sqrt(sum(r**2))`` have a mean with the
    noise ``smooth_noise`` of the smoothed luminosity (the band mean). The
    absolute level is taken from ``smooth_noise`` because the pixels outside
    the footprint are those whose smoothed mean fell below the threshold:
    their spread is cut, but alike in every band.
    """
    is_sky = ~maps.footprint & np.isfinite(maps.luminosity)
    n_bands = maps.image.shape[2]
    n_pixels = np.count_nonzero(is_sky)
    if n_pixels < 16:
        return np.ones(n_bands)
    # An even stride, so that the result does not depend on a random stream:
    # ``np.flatnonzero(is_sky)[::step]``, found by blocks of rows without
    # the indices of every sky pixel.
    step = max(1, n_pixels // n_sky)
    width = is_sky.shape[1]
    sky, seen = [], 0
    for top in range(0, is_sky.shape[0], _SKY_ROWS):
        found = np.flatnonzero(is_sky[top : top + _SKY_ROWS])
        sky.append(found[-seen % step :: step] + top * width)
        seen += found.size
    sky = np.concatenate(sky)
    rows, cols = np.divmod(sky, maps.luminosity.shape[1])
    values = maps.band_values(rows, cols)
    mad = np.median(np.abs(values - np.median(values, axis=0)), axis=0)
    if not np.all(np.isfinite(mad)) or np.any(mad <= 0):
        return np.ones(n_bands)
    return mad / np.sqrt(np.mean(mad**2))


def colour_split_segments(label_image, maps, *, z, min_area, first=0, copy=True):
    """Split segments whose light is two objects of different colours.

    Inside a segment the smoothed bands ``B`` are written per pixel as
    ``a1 * s1 + a2 * s2``: two spectra ``s1`` and ``s2`` (band fractions)
    taken from the two ends of the segment's bright pixels along the main
    axis of their colour scatter, and ``a1``, ``a2`` the fluxes of each,
    by least squares weighted by the band noise. The segment is two objects
    when ``a1`` and ``a2`` peak in different places and its colour has a
    significant dipole: the colour contrast of every pixel (its bands
    projected on the main axis of the colour scatter, made orthogonal to
    the segment's mean spectrum; zero in expectation wherever the light is
    of one spectrum) has a first moment about the light's centroid at least
    ``z`` standard deviations from zero (a chi of 2 degrees of freedom, from
    the pixel noise of the unsmoothed bands, so that pixels are
    independent). Two objects of different colours side by side make the
    contrast positive on one side and negative on the other. A colour
    gradient centred on one object (a red bulge in a blue disk, inclined or
    not) makes it point-symmetric, with no first moment, even where the
    fitted fluxes peak apart; one colour throughout gives noise only. The
    cut follows the colour boundary: each part is the connected region
    about its peak where its own component is the brighter one, and the
    other pixels go to the part they are reached from first, flooding down
    the smoothed luminosity (a watershed from the two colour seeds).

    Parameters
    ----------
    label_image : (M, N) ndarray of int
        0 for background, ``k + 1`` for label ``k``.
    maps : SampledImage
        The sampler's maps of a multi-band image (``smoothed_luminosity``,
        ``smooth_noise`` and the smoothed bands).
    z : float
        Least significance, in standard deviations, of the colour dipole.
    min_area : int
        Least number of pixels of each part.
    first : int, default=0
        The new parts are numbered from ``max(first, label_image.max() + 1)``.
    copy : bool, default=True
        If False and ``label_image`` is an int32 array, it is cut in place
        and returned.

    Returns
    -------
    label_image, parents
        As :func:`split_segments` returns them: the segments with the parts
        cut by colour, and the segment each part was cut from.
    """
    out = label_image.astype(np.int32, copy=copy)
    no_parts = np.empty(0, dtype=np.int64)
    n_bands = maps.image.shape[2]
    if n_bands < 2 or not (label_image > 0).any():
        return out, no_parts
    smoothed = maps.smoothed_luminosity
    smooth_noise = maps.smooth_noise
    next_value = max(int(first), int(label_image.max()) + 1)
    parents = []
    # The pixels of every segment large enough, in raster order, with their
    # band values, luminosity and noise, gathered at once: per segment,
    # these calls cost more than the arithmetic on a few hundred pixels.
    flat = label_image.ravel()
    where = _segment_pixels(label_image)
    boxes = _boxes(label_image, where)
    n_pixels = np.bincount(flat[where], minlength=len(boxes) + 1)
    where = where[n_pixels[flat[where]] >= 2 * min_area]
    # By segment, in raster order within each (a stable sort, by radix when
    # the values fit in 16 bits).
    key = flat[where].astype(np.min_scalar_type(n_pixels.size))
    where = where[np.argsort(key, kind="stable")]
    stops = np.cumsum(np.where(n_pixels >= 2 * min_area, n_pixels, 0))
    all_rows, all_cols = np.divmod(where, label_image.shape[1])
    # The unsmoothed bands of the dipole test, read from the image on a
    # thread of its own while the rest of the test is prepared: they depend
    # on the pixels alone.
    pixels = in_background(_dipole_pixels, maps, all_rows, all_cols)
    ratio = band_noise_ratios(maps)
    # Per-band noise per unit of the luminosity's smoothed noise.
    band_unit = ratio * n_bands / np.sqrt(np.sum(ratio**2))
    weight = 1.0 / band_unit**2
    all_bands = maps.band_values(all_rows, all_cols)
    all_lum = smoothed.ravel()[where].astype(np.float64)
    all_noise = smooth_noise.ravel()[where].astype(np.float64)
    all_total = all_bands.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        all_snr = all_lum / all_noise
    all_bright = np.isfinite(all_snr) & (all_snr >= 3.0) & (all_total > 0)
    n_bright = np.bincount(flat[where[all_bright]], minlength=n_pixels.size)
    values = np.flatnonzero(n_bright >= 2 * min_area)
    if values.size == 0:
        return out, no_parts
    # Every segment's colour axis and dipole, and the spectra and peaks of
    # those whose dipole reaches z, at once: on a large image thousands of
    # segments are tested and few are cut, and per segment the array calls
    # cost more than their arithmetic.
    stage = _colour_candidates(
        flat[where], values, all_rows, all_cols, all_bands, all_noise, all_total, all_snr,
        all_bright, pixels, weight, band_unit, z,
    )  # fmt: skip
    # The cuts are made one after the other (a part may go to a touching
    # segment that an earlier cut changed), but their floods depend on the
    # input alone: first the seeds of every cut, then their floods side by
    # side in one mosaic.
    cuts, to_flood = [], []
    for i in np.flatnonzero(stage.dipole >= z).tolist():
        value = int(values[i])
        box = boxes[value - 1]
        part = slice(stops[value - 1], stops[value])
        rows, cols = all_rows[part] - box[0].start, all_cols[part] - box[1].start
        bands, total = all_bands[part], all_total[part]
        snr, bright = all_snr[part], all_bright[part]
        spectra = stage.spectra[i]
        peak = stage.peaks[i].tolist()
        flux = bands @ stage.unmixing[i].T
        # The spectra again, from the pixels beyond each peak, away from the
        # other: there the other object's light is least.
        d = np.array([rows[peak[1]] - rows[peak[0]], cols[peak[1]] - cols[peak[0]]], float)
        pos = np.stack([rows, cols], axis=1).astype(float)
        own = flux[:, 1] > flux[:, 0]
        ends = []
        for k, sign in ((0, -1.0), (1, 1.0)):
            beyond = sign * ((pos - pos[peak[k]]) @ d) >= 0
            side = bright & beyond & (own == bool(k))
            if np.count_nonzero(side) < 3:
                ends.append(spectra[:, k])
                continue
            sp = _average(bands[side] / total[side, None], snr[side] ** 2)
            ends.append(sp / sp.sum())
        unmix = _unmixing(np.stack(ends, axis=1), weight)
        if unmix is None:
            continue
        flux = bands @ unmix.T
        # The colour boundary: where each component is the brighter one.
        mask = label_image[box] == value
        dominant = np.zeros(mask.shape, dtype=np.int32)
        dominant[rows, cols] = np.where(flux[:, 1] > flux[:, 0], 2, 1)
        markers = np.zeros(mask.shape, dtype=np.int32)
        for k in (0, 1):
            region, _ = ndimage.label(dominant == k + 1)
            seed = region[rows[peak[k]], cols[peak[k]]]
            markers[region == seed] = k + 1
        level = np.where(mask, np.nan_to_num(smoothed[box], nan=0.0), -np.inf)
        cuts.append((value, box, rows, cols, peak, unmix, mask, level))
        to_flood.append((-np.where(mask, level, 0.0), markers))
    floods = _flood_boxes(
        [cut[1] for cut in cuts], [image for image, _ in to_flood],
        [markers for _, markers in to_flood], [cut[6] for cut in cuts],
    )  # fmt: skip
    for (value, box, rows, cols, peak, unmix, mask, level), parts in zip(cuts, floods, strict=True):
        area = np.bincount(parts.ravel(), minlength=3)[1:3]
        if area.min() < min_area:
            continue
        # A part enclosed by the other (a core of another colour inside a
        # disk) is one object with a colour gradient: both must reach the
        # segment's edge.
        edge = mask & ~ndimage.binary_erosion(mask, border_value=0)
        if np.bincount(parts[edge], minlength=3)[1:3].min() == 0:
            continue
        top = parts[np.unravel_index(np.argmax(level), mask.shape)]
        new = 2 if top == 1 else 1
        # The part may be the light of a touching segment of its colour
        # reaching in (the segments' boundary cut one object): it then goes
        # to that segment.
        k = new - 1
        r0, c0 = rows[peak[k]] + box[0].start, cols[peak[k]] + box[1].start
        win = (slice(max(r0 - 2, 0), r0 + 3), slice(max(c0 - 2, 0), c0 + 3))
        around = out[win]
        rr, cc = np.nonzero((around > 0) & (around != value))
        target = next_value
        if rr.size:
            theirs = maps.band_values(rr + win[0].start, cc + win[1].start) @ unmix.T
            if np.sum(theirs[:, k]) > np.sum(theirs[:, 1 - k]):
                ids, counts = np.unique(around[rr, cc], return_counts=True)
                target = int(ids[np.argmax(counts)])
        out[box][parts == new] = target
        if target == next_value:
            parents.append(value)
            next_value += 1
    return out, np.array(parents, dtype=np.int64)


# The ends of a segment's colour scatter: the mean colour of the pixels
# beyond this weighted quantile at either end (chosen on the tuning seeds of
# bench_families.py: 0.05 against 0.02, 0.1 and 0.2).
_END_QUANTILE = 0.05


class _ColourStage(NamedTuple):
    """The colour test of many segments (see :func:`_colour_candidates`)."""

    # Where a segment's dipole is below z: NaN spectra and unmixing, peaks 0.
    spectra: np.ndarray  # (S, C, 2): the two end spectra, as columns
    unmixing: np.ndarray  # (S, 2, C): their weighted least-squares solution
    peaks: np.ndarray  # (S, 2): each flux's peak, an index into the segment's pixels
    dipole: np.ndarray  # (S,): the dipole's significance, -inf where not a candidate


def _colour_candidates(
    label, values, rows, cols, bands, noise, total, snr, bright, pixels, weight, band_unit, z
):
    """The first test of :func:`colour_split_segments` for many segments at once.

    ``label`` is the segment of each gathered pixel, in increasing order
    and raster order within a segment; ``rows`` to ``bright`` their
    coordinates, smoothed bands, smoothed-luminosity noise, band sums,
    signal-to-noise ratios and brightness (see the caller); ``pixels`` a
    future of :func:`_dipole_pixels` for the same pixels (see
    :func:`._threads.in_background`); ``values`` the segments to test, each
    with enough bright pixels. For each: the main
    axis of its bright pixels' colour scatter and the significance of the
    colour dipole along it (see :func:`_colour_dipole`); for those whose
    dipole reaches ``z`` (few: the others are never cut), the spectra of the
    scatter's two ends, the fluxes of the two spectra in each pixel and
    where each peaks. The returned dipole is ``-inf`` where a segment is not
    a candidate: its dipole is below ``z``, its two spectra cannot be told
    apart or its two fluxes peak at one pixel. Sums are taken per segment
    with ``np.bincount``, so their last bits may differ from a segment's own
    sums in another order.
    """
    n = values.size
    n_bands = bands.shape[1]
    group = np.full(int(label.max()) + 1, -1, dtype=np.intp)
    group[values] = np.arange(n)
    g_all = group[label]
    tested = np.flatnonzero(g_all >= 0)
    lit = tested[bright[tested]]
    g = g_all[lit]
    w_sum, centre, cov = colour_scatter(lit, g, bands, total, snr, n)
    axis = np.linalg.eigh(cov / w_sum[:, None, None])[1][:, :, -1]
    raw, raw_noise, ok = pixels.result()
    ok = ok[lit]
    raw, raw_noise = raw[lit][ok], raw_noise[lit][ok]
    dipole = _colour_dipole(raw, raw_noise, rows[lit][ok], cols[lit][ok], g[ok], axis, band_unit)
    spectra = np.full((n, n_bands, 2), np.nan)
    unmixing = np.full((n, 2, n_bands), np.nan)
    peaks = np.zeros((n, 2), dtype=np.intp)
    candidate = np.full(n, -np.inf)
    strong = np.flatnonzero(dipole >= z)
    if strong.size == 0:
        return _ColourStage(spectra, unmixing, peaks, candidate)
    # The rest for the segments whose dipole reaches z, numbered 0 to m - 1.
    m = strong.size
    sub = np.full(n, -1, dtype=np.intp)
    sub[strong] = np.arange(m)
    on = sub[g] >= 0
    lit, g = lit[on], sub[g[on]]
    frac = bands[lit] / total[lit, None]
    w = snr[lit] ** 2
    dev = frac - centre[strong][g]
    t = np.einsum("ij,ij->i", dev, axis[strong][g])
    # The two ends of the colour scatter: the pixels beyond the weighted
    # quantiles (by weight, so bright pixels, whose colours are sure, count
    # most), from one sort of all segments' pixels by segment and position:
    # ``np.lexsort((t, g))``, as a stable sort by ``t`` then one by ``g`` in
    # the smallest integer type, which NumPy sorts by radix when it is 8 or
    # 16 bits.
    order = np.argsort(t, kind="stable")
    order = order[np.argsort(g[order].astype(np.min_scalar_type(m)), kind="stable")]
    cum = np.cumsum(w[order])
    start = np.searchsorted(g[order], np.arange(m))
    stop = np.append(start[1:], g.size)
    before = np.where(start > 0, cum[np.maximum(start - 1, 0)], 0.0)
    ordered = t[order]
    ends = []
    for q, side in ((_END_QUANTILE, -1.0), (1 - _END_QUANTILE, 1.0)):
        at = np.searchsorted(cum, before + q * (cum[stop - 1] - before))
        limit = ordered[np.minimum(at, stop - 1)]
        beyond = side * (t - limit[g]) >= 0
        s = _group_sum(frac[beyond] * w[beyond, None], g[beyond], m)
        s /= np.bincount(g[beyond], weights=w[beyond], minlength=m)[:, None]
        ends.append(s / s.sum(axis=1, keepdims=True))
    spectra[strong] = np.stack(ends, axis=2)  # (S, C, 2)
    normal = np.einsum("sck,c,scl->skl", spectra[strong], weight, spectra[strong])
    solvable = ~_ill_conditioned(normal)
    if solvable.any():
        rhs = np.transpose(spectra[strong[solvable]], (0, 2, 1)) * weight
        unmixing[strong[solvable]] = np.linalg.solve(normal[solvable], rhs)
    # Each flux's peak: its first largest valid value in raster order.
    tested = tested[sub[g_all[tested]] >= 0]
    g = sub[g_all[tested]]
    flux = np.einsum("ic,ikc->ik", bands[tested], unmixing[strong][g])
    valid = np.isfinite(flux).all(axis=1) & np.isfinite(noise[tested])
    first = np.searchsorted(g, np.arange(m))
    for k in (0, 1):
        level = np.where(valid, flux[:, k], -np.inf)
        top = np.maximum.reduceat(level, first)
        at = np.flatnonzero(level == top[g])
        seen, where_first = np.unique(g[at], return_index=True)
        peaks[strong[seen], k] = at[where_first] - first[seen]
    has_valid = np.bincount(g[valid], minlength=m) > 0
    test = strong[solvable & has_valid & (peaks[strong, 0] != peaks[strong, 1])]
    candidate[test] = dipole[test]
    return _ColourStage(spectra, unmixing, peaks, candidate)


def _group_sum(values, group, n):
    """Sums of the rows of (m, K) ``values`` by ``group``, as an (n, K) array."""
    return np.stack(
        [np.bincount(group, weights=values[:, k], minlength=n) for k in range(values.shape[1])],
        axis=1,
    )


def _dipole_pixels(maps, rows, cols):
    """The background-subtracted, unsmoothed bands and the noise of pixels, for the dipole.

    Returns ``(raw, noise, ok)``: the (m, C) bands and (m,) noise of every
    pixel, and where all of them are finite.
    """
    flat = rows * maps.image.shape[1] + cols
    bands = np.take(maps.image.reshape(-1, maps.image.shape[2]), flat, axis=0)
    raw = bands.astype(np.float64) - maps.band_sky(rows, cols).T
    noise = np.take(maps.noise.reshape(-1), flat).astype(np.float64)
    # A sum of float64 differences of float32 values cannot overflow: it is
    # finite exactly where every band is.
    ok = np.isfinite(raw.sum(axis=1)) & np.isfinite(noise)
    return raw, noise, ok


def _colour_dipole(raw, noise, rows, cols, group, axis, band_unit):
    """Significance of the colour dipole of segments' pixels, in standard deviations.

    The colour contrast ``c = B @ a`` of every pixel's background-subtracted
    bands ``B`` (not smoothed, so that pixels have independent noise), with
    ``a`` the colour ``axis`` made orthogonal to the mean spectrum of the
    pixels (``a @ s0 = 0``), has a mean of zero wherever the light is of one
    spectrum, and is point-symmetric about the centre of a source whose
    colour changes with radius alone (a red bulge in a blue disk). Two
    objects of different colours side by side make it positive on one side
    and negative on the other: a first moment ``m = sum(c * (x - x0))``
    about the light's centroid ``x0``. Returns ``sqrt(m @ inv(V) @ m)``,
    ``V`` the covariance of ``m`` from the pixel noise (``noise``, from
    ``maps.noise``, times ``band_unit`` in each band): a chi of 2 degrees of
    freedom; 0 where it cannot be measured. ``raw`` and ``noise`` are the
    pixels' bands and noise from :func:`_dipole_pixels`, ``rows`` and
    ``cols`` their places; ``group`` is each pixel's segment, an index into
    ``axis`` (S, C) and the returned (S,) array.
    """
    n = axis.shape[0]
    pos = np.stack([rows, cols], axis=1).astype(np.float64)
    light = np.clip(raw.sum(axis=1), 0.0, None)
    total = _group_sum(raw, group, n)
    light_sum = np.bincount(group, weights=light, minlength=n)
    count = np.bincount(group, minlength=n)
    usable = (count >= 6) & (light_sum > 0) & (total.sum(axis=1) > 0)
    with np.errstate(all="ignore"):
        pos -= (_group_sum(pos * light[:, None], group, n) / light_sum[:, None])[group]
        mean_spectrum = total / total.sum(axis=1, keepdims=True)
        contrast = axis - np.einsum("sc,sc->s", axis, mean_spectrum)[:, None]
        moment = _group_sum(pos * np.einsum("ic,ic->i", raw, contrast[group])[:, None], group, n)
        var = noise**2 * np.sum(contrast**2 * band_unit**2, axis=1)[group]
        cov = np.empty((n, 2, 2))
        cov[:, 0, 0] = np.bincount(group, weights=var * pos[:, 0] ** 2, minlength=n)
        cov[:, 1, 1] = np.bincount(group, weights=var * pos[:, 1] ** 2, minlength=n)
        cov[:, 0, 1] = cov[:, 1, 0] = np.bincount(
            group, weights=var * pos[:, 0] * pos[:, 1], minlength=n
        )
    usable &= np.isfinite(cov).all(axis=(1, 2))
    usable[usable] &= np.linalg.det(cov[usable]) > 0
    out = np.zeros(n)
    if usable.any():
        m = moment[usable]
        chi2 = np.einsum("sk,sk->s", m, np.linalg.solve(cov[usable], m[:, :, None])[:, :, 0])
        out[usable] = np.sqrt(np.maximum(chi2, 0.0))
    return out


def _unmixing(spectra, weight):
    """The (2, C) weighted least-squares solution for two spectra, or None.

    ``spectra`` (C, 2) holds the two spectra as columns, ``weight`` (C,)
    the inverse variance of each band; ``bands @ unmixing.T`` are then the
    two fluxes of each pixel. None when the two spectra are too alike to
    tell apart (an ill-conditioned normal matrix).
    """
    normal = spectra.T @ (spectra * weight[:, None])
    if _ill_conditioned(normal):
        return None
    return np.linalg.solve(normal, spectra.T * weight[None, :])


def _average(values, weights):
    """``np.average(values, axis=0, weights=weights)`` of (n, C) values, bit for bit.

    The same operations as NumPy's, in the same order, without its checks
    of the arguments, which cost more than the sums on a segment's pixels.
    """
    wgt = weights.reshape(-1, 1)
    scale = wgt.sum(axis=0)
    if np.any(scale == 0.0):
        raise ZeroDivisionError("Weights sum to zero, can't be normalized")
    return np.multiply(values, wgt).sum(axis=0) / scale


def _ill_conditioned(matrix, limit=1e12):
    """``np.linalg.cond(matrix) > limit`` for a square matrix or a stack of them.

    The same test without its checks of the arguments: a bool, or an array
    of them for a stack.
    """
    s = np.linalg.svd(matrix, compute_uv=False)
    with np.errstate(all="ignore"):
        ratio = s[..., 0] / s[..., -1]
    # As np.linalg.cond: singular, unless NaN came in.
    ratio = np.where(np.isnan(ratio) & ~np.isnan(matrix).any(axis=(-2, -1)), np.inf, ratio)
    return ratio > limit if ratio.ndim else bool(ratio > limit)
