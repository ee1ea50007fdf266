"""segment: image -> label image and hierarchy in one call."""

import inspect
from numbers import Integral, Real

import numpy as np
from scipy import ndimage
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.utils.validation import check_is_fitted

from ._background import gaussian_kernel, smooth_nan_as_zero
from ._clusterer import AstroLinkClusterer
from ._compiling import LABELLING, wait_for_compilation
from ._deblend import (
    colour_split_segments,
    merge_segments,
    split_segments,
    symmetry_split_segments,
)
from ._kernels.deblend import colour_scatter
from ._labels import labels_to_image
from ._sampler import LuminositySampler
from ._segmentation import Segmentation
from ._validation import TILE_SIZE_CONSTRAINTS, Interval, check_image, check_mask, check_params

__all__ = ["segment", "Segmentation", "ImageSegmenter"]


# Image defaults of the clusterer, chosen on synthetic fields with known truth
# (see benchmarks/README.md); AstroLinkClusterer's own defaults are AstroLink's.
# segment()'s signature repeats them (tests/test_segment.py checks that it does).
# The grid search of neighbours on all cores: the same neighbours as the KD-tree
# (so the same labels), in less time on points sampled from an image.
DEFAULT_CLUSTERER = {
    "k_den": 15,
    "min_significance": 2.25,
    "label_level": "leaf",
    "algorithm": "grid",
    "n_jobs": -1,
}


def segment(image, **params):
    """Find the sources of an image: sample, cluster and map back to pixels.

    Runs :class:`LuminositySampler`, :class:`AstroLinkClusterer` and
    :func:`labels_to_image` (filling each source's footprint, the pixels
    above the detection threshold) with sensible defaults for images.

    Parameters
    ----------
    image : (M, N[, C]) array-like
        The image: grayscale or any number of bands, any real dtype; NaN
        pixels are masked.
    mask : (M, N) ndarray of bool, default=None
        Pixels to exclude (True).
    random_state : int, RandomState instance or None, default=None
        Seed of the sampling; the same int gives the same segmentation.
    n_samples : int or 'auto', default='auto'
        Number of points to draw (see :class:`LuminositySampler`, as the
        sampler's parameters below).
    samples_per_pixel : float, default=3.0
        Mean number of points per footprint pixel when ``n_samples='auto'``.
    max_samples : int, default=5_000_000
        Upper bound on the number of points when ``n_samples='auto'``.
    background : 'auto', float or None, default='auto'
        Sky level to subtract: estimated, a constant, or none.
    background_box_size : int, default=64
        Side in pixels of the boxes of the automatic background.
    detection_threshold : float, default=3.5
        Noise standard deviations of the smoothed luminosity that a pixel
        needs to be sampled.
    analysis_threshold : float or None, default=1.5
        Pixel-noise standard deviations at which segments end.
    smoothing : float, default=1.0
        Standard deviation in pixels of the Gaussian filter.
    stretch : {'linear', 'sqrt', 'asinh'}, default='linear'
        How sampling weight follows luminosity.
    color_scale : float, default=20.0
        Pixels that a unit of colour fraction is worth; 0 for positions only.
    jitter : {'triangular', 'uniform', 'none'}, default='triangular'
        Sub-pixel placement of points.
    sampling : {'systematic', 'random'}, default='systematic'
        How pixels are drawn.
    k_den : int or 'auto', default=15
        Neighbours of the density estimate (see :class:`AstroLinkClusterer`,
        as the clusterer's parameters below). The image defaults of
        ``k_den``, ``min_significance`` and ``label_level`` differ from the
        clusterer's own, which are AstroLink's: they were chosen on
        synthetic fields with known truth (see ``benchmarks/README.md``);
        so do ``algorithm`` and ``n_jobs``, for speed.
    k_link : int or 'auto', default='auto'
        Neighbours that link groups.
    min_significance : float or 'auto', default=2.25
        Lowest significance of a cluster, in standard deviations.
    adaptive : bool, default=False
        Rescale every feature to unit variance before clustering.
    h_style : {0, 1}, default=1
        AstroLink's hierarchy style: 0 keeps only groups that are outliers
        themselves, 1 also adds the significant complementary groups.
    d_intrinsic : int or None, default=None
        Intrinsic dimension of the density estimate.
    label_level : {'deepest', 'leaf', 'top'}, default='leaf'
        Which clusters of the hierarchy label the points; ``'leaf'`` shares
        the envelopes of nested structures among the leaf clusters, as a
        deblender does.
    min_cluster_size : int, default=1
        Fewest points of a cluster.
    working_memory : float or None, default=None
        Memory, in MiB, that the neighbour query may use at once.
    algorithm : {'kd_tree', 'grid'}, default='grid'
        Neighbour search; both find the same neighbours, the grid in less
        time on an image's points.
    n_jobs : int or None, default=-1
        Number of threads for AstroLink's parallel kernels and the grid
        search; ``-1`` for all, ``None`` for one. The result does not
        depend on it.
    verbose : int, default=0
        Log AstroLink's progress to the ``skimgcluster`` logger.
    isolated_snr : float or None, default=5.0
        Footprint regions in which AstroLink finds no cluster become sources
        when their signal-to-noise ratio reaches this (see
        :class:`ImageSegmenter`); ``None`` keeps only AstroLink's clusters.
    deblend_dip : float or None, default=1.5
        A segment with several peaks that each rise this many noise
        deviations above the level that joins them is cut between them, and
        touching segments without such a dip are merged unless their colours
        differ (see :class:`ImageSegmenter`); ``None`` keeps AstroLink's
        segments.
    deblend_color_z : float or None, default=3.0
        Colour difference, in standard errors, that keeps touching segments
        apart without a dip (see :class:`ImageSegmenter`).
    deblend_color_split : float or None, default=4.0
        Significance, in noise deviations, at which a segment whose light is
        two objects of different colours is cut along the colour boundary
        (see :class:`ImageSegmenter`); ``None`` never cuts by colour.
    deblend_symmetry : float or None, default=5.0
        Significance, in noise deviations, at which the light that breaks a
        segment's point symmetry about its centre is cut out as a source of
        its own: a faint object on a brighter one's wing (see
        :class:`ImageSegmenter`); ``None`` never cuts by symmetry.
    min_area : int, default=7
        Fewest pixels above the analysis threshold that make a source (see
        :class:`ImageSegmenter`).
    max_edge_ratio : float or None, default=1.75
        A segment with more than this many pixels within one noise deviation
        of the analysis isophote per pixel above it is cleared: its edge is
        decided by the noise (see :class:`ImageSegmenter`); ``None`` keeps it.
    tile_size : int, 'auto' or None, default='auto'
        Segment the image in tiles of this many pixels a side, with a halo,
        on the active Dask scheduler, and stitch them (see
        :func:`skimgcluster._tiling.segment_tiled` and the user guide's
        "Large images and many images"). ``'auto'`` tiles images of more than
        2**25 pixels (about 5800 x 5800) in tiles of 2048; ``None`` never
        tiles. A tiled run returns a :class:`TiledSegmentation`.
    halo : int or None, default=None
        Margin in pixels around each tile; ``None`` is the larger of 3
        background boxes and ``tile_size // 8``.
    callback : callable or None, default=None
        Called as ``callback(stage, detail)`` as each stage starts
        (``'sampling'``, ``'clustering'``, ``'labelling'``), e.g. to show
        progress; a tiled run calls ``callback('tiles', '<done> of <n> tiles')``
        as tiles finish.
    colour_scale : float or 'deprecated', default='deprecated'
        The former name of ``color_scale``; a float given here is used, with
        a :class:`FutureWarning`.

    Returns
    -------
    result : Segmentation or TiledSegmentation
        The label image, the hierarchy with significances and what led to it
        (a :class:`TiledSegmentation` when the image was tiled).

    Raises
    ------
    ValueError, TypeError
        For invalid images and parameters, with a message that names them.
        An image that is valid but holds nothing (all zero, all NaN,
        constant) gives an empty result and a
        :class:`~skimgcluster.DegenerateDataWarning` instead.
    InsufficientMemoryError
        If the run would need more memory than is available.

    Examples
    --------
    >>> import numpy as np
    >>> from skimgcluster import segment
    >>> rng = np.random.default_rng(0)
    >>> image = rng.normal(0, 1, (96, 96))
    >>> yy, xx = np.mgrid[:96, :96]
    >>> for y0, x0 in [(25, 25), (70, 60)]:
    ...     image += 40 * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / 18)
    >>> result = segment(image, random_state=0)
    >>> result.n_sources
    2
    """
    # Bound to the signature generated below (every parameter of the segmenter
    # and its steps, so that help(segment) lists them): an unknown keyword is
    # a TypeError, as with a written signature.
    try:
        chosen = segment.__signature__.bind(image, **params)
    except TypeError as error:
        raise TypeError(f"segment() {error}") from None
    chosen.apply_defaults()
    chosen = chosen.arguments
    sampler = LuminositySampler(**{name: chosen[name] for name in LuminositySampler().get_params()})
    clusterer = AstroLinkClusterer(
        **{name: chosen[name] for name in AstroLinkClusterer().get_params()}
    )
    own = ImageSegmenter().get_params(deep=False).keys() - {"sampler", "clusterer"}
    segmenter = ImageSegmenter(
        sampler=sampler, clusterer=clusterer, **{name: chosen[name] for name in own}
    )
    mask, callback = chosen["mask"], chosen["callback"]
    return segmenter.segment_image(image, mask=mask, callback=callback)


def _check_images(X):
    """A sequence of images: a list/tuple of arrays or an array of shape (n, M, N[, C])."""
    if isinstance(X, np.ndarray):
        if X.ndim not in (3, 4):
            raise ValueError(
                "X must be a sequence of images: a list of (M, N[, C]) arrays or an "
                f"array of shape (n_images, M, N[, C]); got an array of shape {X.shape}."
            )
        return list(X)
    if isinstance(X, (list, tuple)):
        return list(X)
    raise TypeError(
        "X must be a sequence of images (a list of arrays or an array of shape "
        f"(n_images, M, N[, C])); got {type(X).__name__}."
    )


def _pixel_of(points, shape):
    """Flat index of the pixel of every point (points clipped to the image)."""
    h, w = shape
    col = np.clip(np.floor(points[:, 0] + 0.5), 0, w - 1).astype(np.intp)
    row = np.clip(np.floor(points[:, 1] + 0.5), 0, h - 1).astype(np.intp)
    return row * w + col


def _footprint_values(label_image, maps):
    """The value of every footprint pixel (``maps.candidates``) in a label image.

    Segments lie within the footprint (the flood of the points runs through
    it, and the sources without a cluster are regions of it), a few percent
    of a large image: the bookkeeping reads and writes these pixels only.
    """
    return label_image.reshape(-1)[maps.candidates]


def _set_footprint_values(label_image, values, maps):
    """``label_image`` with ``values`` at the footprint's pixels, written in place.

    For the label images that this module makes and owns: their segments
    lie within the footprint, so every other pixel is 0 already, and
    writing the footprint's pixels costs a fraction of a new image of a
    large field (whose memory the system must first hand over).
    """
    np.put(label_image, maps.candidates, values)
    return label_image


def _snr(values, n_values, maps):
    """Signal-to-noise ratio of the footprint pixels of each value.

    ``values`` holds the value of every footprint pixel
    (:func:`_footprint_values`). Returns ``sum(L) / sqrt(sum(noise**2))`` of
    the background-subtracted luminosity over the pixels of each value (0
    included) that lie above the analysis isophote, and the number of those
    pixels.
    """
    inside = maps.analysis_footprint.reshape(-1)[maps.candidates] & (values > 0)
    area = np.bincount(values[inside], minlength=n_values)
    pixels = maps.candidates[inside]
    lum = maps.luminosity.reshape(-1)[pixels].astype(np.float64)
    noise = maps.noise.reshape(-1)[pixels].astype(np.float64)
    valid = np.isfinite(lum) & np.isfinite(noise)
    flux = np.bincount(values[inside][valid], weights=lum[valid], minlength=n_values)
    var = np.bincount(values[inside][valid], weights=noise[valid] ** 2, minlength=n_values)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(var > 0, flux / np.sqrt(var), 0.0), area


def _parts_as_sources(cut, parents, first, isolated, pixel, maps, *, n_clustered):
    """Parts cut out of segments, as sources without a cluster of their own.

    ``cut`` is the label image with the parts numbered from ``first`` on,
    part ``j`` cut from the segment of value ``parents[j]``; ``isolated`` is
    ``(labels, snr)``, the points' labels and the signal-to-noise ratio of
    every label after the ``n_clustered`` labels of clusters; ``pixel`` is
    the flat index of every point's pixel (:func:`_pixel_of`). A part that
    holds no point goes back to its segment, so that every value of the
    label image is the label of some points; the others are renumbered in
    order. A part labels every point in its pixels, as a source without a
    cluster does: also those AstroLink left as noise, as it leaves the wing
    of a source whose cluster is its core. Returns the label image and
    ``isolated`` with the parts.
    """
    labels, snr = isolated
    value = cut.reshape(-1)[pixel]
    held = np.bincount(value[value >= first] - first, minlength=parents.size) > 0
    back = np.arange(first + parents.size)
    back[first:] = np.where(held, first + np.cumsum(held) - 1, parents)
    values = back[_footprint_values(cut, maps)]
    value = back[value]
    labels = labels.copy()
    moved = value >= first
    labels[moved] = value[moved] - 1
    n_values = max(int(values.max()), first - 1) + 1
    snr = _snr(values, n_values, maps)[0][n_clustered + 1 :]
    return _set_footprint_values(cut, values, maps), (labels, snr)


def _edge_ratio(label_image, maps, threshold):
    """How far the noise decides each segment's edge at the analysis isophote.

    The ratio, per value of ``label_image`` (0 included), of its pixels
    whose smoothed luminosity lies within one standard deviation of its
    noise of the isophote (``threshold`` times the pixel noise), on either
    side, to its pixels at or above the isophote. Those pixels are in or out
    of the segment by the noise: the isophote of a segment is uncertain by
    about half their number. A shallow edge (a broad or faint profile) has
    many, a steep one few, whatever the image's resolution, so that the
    ratio judges a footprint against the image's own scale. ``label_image``
    holds the segments over the whole footprint, before the cut at the
    isophote; a value without a pixel above the isophote has an infinite
    ratio.

    Parameters
    ----------
    label_image : (M, N) ndarray of int
        0 for background, ``k + 1`` for label ``k``.
    maps : SampledImage
        The sampler's maps (``smoothed_luminosity``, ``noise``,
        ``smooth_noise``).
    threshold : float
        The analysis threshold, in standard deviations of the pixel noise.

    Returns
    -------
    ratio : ndarray of float of shape (label_image.max() + 1,)
    """
    values = _footprint_values(label_image, maps)
    n_values = int(values.max(initial=0)) + 1
    where = maps.candidates[values > 0]
    values = values[values > 0]
    smoothed = maps.smoothed_luminosity.ravel()[where].astype(np.float64)
    edge = threshold * maps.noise.ravel()[where].astype(np.float64)
    spread = maps.smooth_noise.ravel()[where].astype(np.float64)
    valid = np.isfinite(smoothed) & np.isfinite(edge) & np.isfinite(spread)
    above = valid & (smoothed >= edge)
    near = valid & (np.abs(smoothed - edge) < spread)
    n_above = np.bincount(values[above], minlength=n_values).astype(np.float64)
    n_near = np.bincount(values[near], minlength=n_values).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_above > 0, n_near / n_above, np.inf)


def _add_isolated_sources(label_image, labels, pixel, maps, *, min_snr, min_area, first):
    """Footprint regions without a cluster, as sources of their own.

    ``pixel`` is the flat index of every point's pixel (:func:`_pixel_of`).
    Returns the label image with the new sources numbered from ``first``,
    and ``(labels, snr)``: the points' labels with those of the new
    sources, and each new source's signal-to-noise ratio.
    """
    regions, n_regions = ndimage.label(maps.footprint)  # 4-connected, as the flood
    if n_regions == 0:
        return label_image, (labels, np.empty(0))
    # The region of every footprint pixel (every other pixel is in none).
    flat = _footprint_values(regions, maps)
    values = _footprint_values(label_image, maps)
    has_cluster = np.zeros(n_regions + 1, dtype=bool)
    has_cluster[flat[values > 0]] = True
    region_of_point = regions.reshape(-1)[pixel]
    n_points = np.bincount(region_of_point, minlength=n_regions + 1)
    # A source's pixels are those of its region above the analysis isophote.
    snr, area = _snr(flat, n_regions + 1, maps)
    inside = maps.analysis_footprint.reshape(-1)[maps.candidates]
    keep = ~has_cluster & (area >= min_area) & (n_points > 0) & (snr >= min_snr)
    keep[0] = False
    chosen = np.flatnonzero(keep)
    if chosen.size == 0:
        return label_image, (labels, np.empty(0))
    new_label = np.full(n_regions + 1, -1, dtype=np.intp)
    new_label[chosen] = first + np.arange(chosen.size)
    pixel_label = np.where(inside, new_label[flat], -1)
    values = np.where(pixel_label >= 0, pixel_label + 1, values)
    label_image = _set_footprint_values(label_image, values, maps)
    labels = labels.copy()
    point_label = new_label[region_of_point]
    labels[point_label >= 0] = point_label[point_label >= 0]
    return label_image, (labels, snr[chosen])


# The colour difference, in standard errors, that keeps the two parts of a
# colour split apart in the merge (their dipole has already tested their
# colours). Chosen on the tuning seeds of bench_families.py: close pairs 176,
# 176, 176, 172 of 272 (families psf5, psf8, dense, wide, pairs, pairsvivid)
# at 1, 1.5, 2, 2.5, and 170 at 3 (the merge's ``deblend_color_z``); below 2
# a part cut from one source of `wide` stays apart (and of `psf8` when the
# parts are never merged).
_COLOUR_SPLIT_MERGE_Z = 2.0

# The least share of a part's light that the residual of its segment's mirror
# image must make for ``deblend_symmetry`` to cut it out. Chosen on the tuning
# seeds of bench_families.py (see docs/tuning.md): below it the parts are
# mostly the uneven edges of single sources.
_SYMMETRY_MIN_SHARE = 0.65


class ImageSegmenter(BaseEstimator):
    """Segment images with a sampler and a clusterer, as one estimator.

    The scikit-learn face of :func:`segment` for model selection: its samples
    are whole images, so :class:`~sklearn.model_selection.GridSearchCV` can
    split a set of images into folds and score parameter choices on held-out
    images against their true label images (see
    :func:`skimgcluster.metrics.make_detection_scorer`).

    Parameters
    ----------
    sampler : LuminositySampler or None, default=None
        Turns each image into points; ``None`` means ``LuminositySampler()``.
    clusterer : AstroLinkClusterer or None, default=None
        Clusters the points; ``None`` means ``AstroLinkClusterer(k_den=15,
        min_significance=2.25, label_level='leaf', algorithm='grid',
        n_jobs=-1)``, the image defaults of
        :func:`segment`. Pass
        estimators explicitly to search their parameters as
        ``sampler__<name>`` and ``clusterer__<name>``.
    isolated_snr : float or None, default=5.0
        A region of the footprint (4-connected pixels above the detection
        threshold) in which AstroLink finds no cluster becomes a source of
        its own when its signal-to-noise ratio is at least this, it covers
        at least ``min_area`` pixels and holds sampled points; ``None`` keeps only
        AstroLink's clusters. AstroLink judges a cluster against the other
        groups of the same point cloud, so a source that is alone in its
        image (a cut-out of one galaxy) or alone in its part of the
        footprint cannot stand out from anything; this is how a detection
        threshold (photutils, SEP) would count it. Its significance is the
        signal-to-noise ratio ``sum(L) / sqrt(sum(noise**2))`` of the
        background-subtracted luminosity ``L`` over its pixels. Not applied
        when ``k_den`` is too large for the number of points (the clusterer
        then warns and labels nothing).
    deblend_dip : float or None, default=1.5
        A segment holding several peaks of the smoothed luminosity that each
        rise at least this many standard deviations of its noise above the
        highest saddle joining them to a higher peak (h-maxima; parts of at
        least ``min_area`` pixels) is cut along the watershed between them;
        the parts without a cluster of their own are numbered after the
        clusters and flagged in ``Segmentation.isolated``, with their
        signal-to-noise ratio as significance. Then two touching segments
        stay apart only if the peak of each, in the
        smoothed luminosity, rises at least this many standard deviations of
        its noise above their saddle (the highest level along their common
        boundary), or if their colours differ (``deblend_color_z``);
        otherwise they are merged into one source. Pairs are examined from
        the highest saddle down, as a deblender's merge tree is built. This
        is how SExtractor and photutils decide that two peaks are two
        objects; it stops noise bumps on broad, smooth sources from
        splitting them. ``None`` keeps every segment AstroLink gives. The
        default was chosen on the tuning seeds of
        ``benchmarks/bench_families.py`` (1.5 against 1, 1.25, 1.75 and 2;
        see ``docs/tuning.md``): the faint member of a close pair whose peak
        rises 1.5-2 deviations above the saddle is its own source, and no
        family's purity drops; a lower dip splits noise bumps on the flat
        tops of faint sources.
    deblend_color_z : float or None, default=3.0
        Touching segments whose mean colours (the points' colour features)
        differ by at least this many standard errors in some band stay
        apart even without a dip: two blended objects of different colours.
        ``None`` ignores colour when merging.
    deblend_color_split : float or None, default=4.0
        A segment of a multi-band image whose light is two objects of
        different colours on one peak is cut along the colour boundary,
        when ``deblend_dip`` is not ``None``. In the segment the smoothed
        bands are written per pixel as the sum of two spectra (the two ends
        of the colour scatter of its bright pixels) with fluxes fitted by
        least squares; it is cut when the two fluxes peak in different
        places and the colour has a dipole of at least this many noise
        deviations (propagated from each band's noise, measured on the
        sky): one colour on one side of the light's centroid, the other on
        the other side. Each part is the region about its peak where its
        own spectrum dominates, and the remaining pixels go to the part they
        are reached from first, flooding down the smoothed luminosity. A
        colour gradient centred on one object (a red bulge in a blue disk,
        inclined or not) is point-symmetric, has no dipole and is not cut.
        The two parts then face the merge's colour test with a threshold
        of 2 standard errors (or ``deblend_color_z`` if lower), since the
        dipole has already found their colours different; with other
        touching segments, that of ``deblend_color_z``. ``None`` never cuts
        by colour; single-band images are never cut.
    deblend_symmetry : float or None, default=5.0
        A faint object on the wing of a brighter one may rise to no peak of
        its own and share its colour; but a single source is point-symmetric
        about its centre (a Sersic profile, inclined or not, through a
        symmetric PSF) and the pair is not. After the cut at the analysis
        isophote, each segment's smoothed luminosity is compared with its
        mirror image about its centre (the centroid of its light above 0.8
        of its peak), read from the whole image, when
        ``deblend_dip`` is not ``None``: a region of the segment where the
        residual (luminosity minus mirror image) is brighter than the
        mirror image, whose residual rises this many noise deviations at
        its highest pixel and summed over the region, and makes at least
        0.65 of its light, becomes a source of its own if it holds
        ``min_area`` pixels and leaves as many with the peak. A residual
        that peaks on the segment's edge (its noise, or a neighbour's light
        reaching in) is left alone. The parts are numbered after the other labels and
        flagged in ``Segmentation.isolated``. Chosen on the tuning seeds of
        ``benchmarks/bench_families.py`` (see ``docs/tuning.md``). ``None``
        never cuts by symmetry; set it for sources that are not symmetric
        (resolved spirals, irregular galaxies), whose knots it would cut.
    min_area : int, default=7
        A source has at least this many pixels above the analysis threshold
        (SEP's ``minarea``, photutils' ``n_pixels``): smaller segments are
        cleared from the label image (their points keep their label), peaks
        with fewer pixels do not split a segment, and smaller footprint
        regions do not become isolated sources.
    max_edge_ratio : float or None, default=1.75
        A segment whose edge the noise decides is cleared: one with more than
        this many pixels within one standard deviation of the smoothed noise
        of the analysis isophote (on either side: pixels the noise puts in
        or out) per pixel above it. The isophote of a faint source with a
        shallow profile (a broad PSF) is mostly such pixels, and its
        footprint is then more noise than source; a bright or a steep one
        has a thin band of them. The ratio follows the image's own scale: a
        faint source of a broad PSF covers more pixels than one of a sharp
        PSF at the same significance, so a fixed ``min_area`` alone keeps
        it. Not applied when the sampler's ``analysis_threshold`` is
        ``None``; ``None`` keeps every segment of ``min_area`` pixels.
    tile_size : int, 'auto' or None, default='auto'
        Images larger than this are segmented in tiles on the active Dask
        scheduler and stitched (see :func:`segment`); ``'auto'`` tiles images
        of more than 2**25 pixels in tiles of 2048, ``None`` never tiles.
    halo : int or None, default=None
        Margin in pixels around each tile (see :func:`segment`).

    Attributes
    ----------
    n_images_ : int
        Number of images seen by :term:`fit`.

    Notes
    -----
    Nothing is learnt from the training images: every image is segmented
    on its own, from its own background, noise and point cloud. ``fit`` only
    checks its input. Cross-validation therefore measures how well a
    parameter choice generalises to images it was not chosen on.

    Examples
    --------
    >>> from skimgcluster import AstroLinkClusterer, ImageSegmenter, LuminositySampler
    >>> from skimgcluster.datasets import make_field
    >>> image, truth, _ = make_field((64, 64), 4, random_state=0)
    >>> segmenter = ImageSegmenter(LuminositySampler(random_state=0),
    ...                            AstroLinkClusterer(k_den=10, min_significance=3))
    >>> [label_image] = segmenter.fit([image]).predict([image])
    >>> label_image.shape
    (64, 64)
    """

    _parameter_constraints: dict = {
        "sampler": [LuminositySampler, None],
        "clusterer": [AstroLinkClusterer, None],
        "isolated_snr": [Interval(Real, None, None, closed="neither"), None],
        "deblend_dip": [Interval(Real, None, None, closed="neither"), None],
        "deblend_color_z": [Interval(Real, None, None, closed="neither"), None],
        "deblend_color_split": [Interval(Real, None, None, closed="neither"), None],
        "deblend_symmetry": [Interval(Real, 0, None, closed="neither"), None],
        "min_area": [Interval(Integral, 1, None, closed="left")],
        "max_edge_ratio": [Interval(Real, 0, None, closed="neither"), None],
        **TILE_SIZE_CONSTRAINTS,
        "halo": [Interval(Integral, 0, None, closed="left"), None],
    }

    def __init__(
        self,
        sampler=None,
        clusterer=None,
        *,
        isolated_snr=5.0,
        deblend_dip=1.5,
        deblend_color_z=3.0,
        deblend_color_split=4.0,
        deblend_symmetry=5.0,
        min_area=7,
        max_edge_ratio=1.75,
        tile_size="auto",
        halo=None,
    ):
        self.sampler = sampler
        self.clusterer = clusterer
        self.isolated_snr = isolated_snr
        self.deblend_dip = deblend_dip
        self.deblend_color_z = deblend_color_z
        self.deblend_color_split = deblend_color_split
        self.deblend_symmetry = deblend_symmetry
        self.min_area = min_area
        self.max_edge_ratio = max_edge_ratio
        self.tile_size = tile_size
        self.halo = halo

    def _steps(self):
        # Instances of these two classes only (see _parameter_constraints):
        # segment_image uses the sampler's maps and the clusterer's hierarchy.
        sampler = LuminositySampler() if self.sampler is None else clone(self.sampler)
        clusterer = (
            AstroLinkClusterer(**DEFAULT_CLUSTERER)
            if self.clusterer is None
            else clone(self.clusterer)
        )
        return sampler, clusterer

    def checked_steps(self):
        """Check every parameter, of the segmenter and of its steps; return the steps.

        Returns
        -------
        sampler : LuminositySampler
            An unfitted clone of ``sampler`` (or the default sampler).
        clusterer : AstroLinkClusterer
            An unfitted clone of ``clusterer`` (or the image defaults).

        Raises
        ------
        ValueError, TypeError
            If a parameter is invalid, with a message that names it.
        """
        sampler, clusterer = self._steps()
        self._validate_params()
        sampler._validate_params()
        clusterer._validate_params()
        return sampler, clusterer

    def _validate_params(self):
        # The package's own check (it refuses bool as a number, which
        # scikit-learn's accepts) over the same declared constraints.
        check_params(self._parameter_constraints, self.get_params(deep=False), "ImageSegmenter")

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Check the images; nothing is learnt (see Notes).

        Parameters
        ----------
        X : sequence of (M, N[, C]) arrays
            The images.
        y : sequence of (M, N) label images or None
            Ignored; true label images are used only by scorers.

        Returns
        -------
        self : ImageSegmenter
            The fitted segmenter.
        """
        images = _check_images(X)
        for image in images:
            check_image(image, name="each image of X")
        sampler, clusterer = self._steps()
        sampler._validate_params()
        clusterer._validate_params()
        self.n_images_ = len(images)
        return self

    def segment_image(self, image, mask=None, *, callback=None):
        """Segment one image.

        Parameters
        ----------
        image : (M, N[, C]) array-like
            The image.
        mask : (M, N) ndarray of bool, default=None
            Pixels to exclude (True).
        callback : callable or None, default=None
            Called as ``callback(stage, detail)`` when each stage starts:
            ``'sampling'`` (detail: the image's shape), ``'clustering'``
            (detail: the number of points) and ``'labelling'``, e.g. to
            show progress.

        Returns
        -------
        result : Segmentation or TiledSegmentation
            A :class:`TiledSegmentation` when ``tile_size`` tiles the image.
        """
        from ._tiling import check_tiled_image, resolve_tile_size, segment_tiled

        self._validate_params()
        shape = check_tiled_image(image)
        if shape is not None:
            tile_size = resolve_tile_size(self.tile_size, shape)
            halo = self.halo
            if tile_size is not None and max(shape[0], shape[1]) > tile_size:
                return segment_tiled(
                    self, image, mask=mask, tile_size=tile_size, halo=halo, callback=callback
                )
        check_params({"callback": ["callable", None]}, {"callback": callback}, "segment_image")

        def report(stage, detail=""):
            if callback is not None:
                callback(stage, detail)

        sampler, clusterer = self._steps()
        data, _ = check_image(image)
        mask = check_mask(mask, data.shape[:2])
        report("sampling", f"image of shape {data.shape}")
        maps, points = sampler.sample(data, mask)
        if points.shape[0] == 0:  # the sampler has warned that nothing is above threshold
            label_image = np.zeros(data.shape[:2], dtype=np.int32)
            return Segmentation(label_image, points, sampler, clusterer, maps)
        report("clustering", f"{points.shape[0]:,} points")
        clusterer.fit(points)
        report("labelling")
        wait_for_compilation(LABELLING)
        labels = clusterer.labels_
        label_image = labels_to_image(labels, points, data.shape[:2], footprint=maps.footprint)
        pixel = _pixel_of(points, label_image.shape)
        merged = None
        n_clustered = int(labels.max(initial=-1)) + 1
        extra_snr = np.empty(0)
        if self.deblend_dip is not None and hasattr(clusterer, "cluster_labels_"):
            label_image, labels, cluster_labels, n_clustered = self._deblend(
                label_image, labels, clusterer.cluster_labels_, points, pixel, maps,
                sampler.smoothing,
            )  # fmt: skip
            merged = (labels, cluster_labels)
            values = _footprint_values(label_image, maps)
            n_values = int(values.max(initial=0)) + 1
            extra_snr = _snr(values, n_values, maps)[0][n_clustered + 1 :]
        isolated = None
        # Not when the clusterer could not run (k_den too large for the points:
        # it has warned, and the user's parameters are what to change).
        if self.isolated_snr is not None and points.shape[0] > clusterer.k_den_:
            label_image, isolated = _add_isolated_sources(
                label_image, labels, pixel, maps, min_snr=self.isolated_snr,
                min_area=self.min_area, first=n_clustered + extra_snr.size,
            )  # fmt: skip
            isolated = (isolated[0], np.append(extra_snr, isolated[1]))
            if self.deblend_dip is not None and self.deblend_color_split is not None:
                label_image, isolated = self._colour_split_isolated(
                    label_image, isolated, pixel, maps, first=n_clustered + extra_snr.size
                )
        elif extra_snr.size:
            isolated = (labels, extra_snr)
        noisy_edge = None
        if self.max_edge_ratio is not None and sampler.analysis_threshold is not None:
            # Measured on the whole flood, before the cut removes the pixels
            # just below the isophote.
            ratio = _edge_ratio(label_image, maps, sampler.analysis_threshold)
            noisy_edge = ratio > self.max_edge_ratio
        # Segments end at the analysis isophote. The flood runs through the
        # whole footprint so that the pixels kept are those nearest to their
        # segment's points along it, wherever the cut leaves them.
        values = _footprint_values(label_image, maps)
        values[~maps.analysis_footprint.reshape(-1)[maps.candidates]] = 0
        # As a detection threshold with a minimum area (SEP's minarea,
        # photutils' n_pixels): fewer pixels above the isophote are no source.
        area = np.bincount(values)
        small = area < self.min_area
        if noisy_edge is not None:
            small[: noisy_edge.size] |= noisy_edge[: small.size]
        small[0] = False
        if small.any():
            values[small[values]] = 0
        label_image = _set_footprint_values(label_image, values, maps)
        if self.deblend_dip is not None and self.deblend_symmetry is not None and merged:
            label_image, isolated = self._symmetry_split(
                label_image, isolated if isolated is not None else (merged[0], np.empty(0)),
                pixel, maps, n_clustered=n_clustered, smoothing=sampler.smoothing,
            )  # fmt: skip
        return Segmentation(
            label_image, points, sampler, clusterer, maps, isolated=isolated, merged=merged
        )

    def _colour_split_isolated(self, label_image, isolated, pixel, maps, *, first):
        """The colour split of ``_deblend`` on the isolated sources.

        An isolated source is a footprint region without a cluster: two
        objects of different colours alone in their region (no dip between
        them) would otherwise stay one. ``isolated`` is ``(labels, snr)``,
        ``snr`` holding the signal-to-noise ratio of every label from
        ``n_clustered`` on; the isolated sources are the labels from
        ``first`` on. Parts that hold no point stay with their source
        (:func:`_parts_as_sources`).
        """
        labels, snr = isolated
        lowest = first + 1  # the first isolated source's value in the label image
        if int(label_image.max()) < lowest:
            return label_image, isolated
        own = np.where(label_image >= lowest, label_image, 0)
        next_value = int(label_image.max()) + 1
        cut, parents = colour_split_segments(
            own, maps, z=self.deblend_color_split, min_area=self.min_area, first=next_value
        )
        if parents.size == 0:
            return label_image, isolated
        cut = np.where(cut != own, cut, label_image)
        return _parts_as_sources(
            cut, parents, next_value, isolated, pixel, maps, n_clustered=next_value - 1 - snr.size
        )

    def _symmetry_split(self, label_image, isolated, pixel, maps, *, n_clustered, smoothing):
        """Cut out the light that breaks each segment's point symmetry.

        ``isolated`` is ``(labels, snr)``: the points' labels and the
        signal-to-noise ratio of every label after the ``n_clustered`` labels
        of clusters. The parts are numbered after every label and become
        sources of their own (:func:`_parts_as_sources`). Returns the label
        image and ``isolated`` with the parts.
        """
        labels, snr = isolated
        next_value = n_clustered + snr.size + 1
        cut, parents = symmetry_split_segments(
            label_image, maps.smoothed_luminosity, maps.smooth_noise,
            z=self.deblend_symmetry, min_share=_SYMMETRY_MIN_SHARE, min_area=self.min_area,
            correlation_area=max(4 * np.pi * smoothing**2, 1.0), first=next_value,
        )  # fmt: skip
        if parents.size == 0:
            return label_image, isolated
        return _parts_as_sources(
            cut, parents, next_value, isolated, pixel, maps, n_clustered=n_clustered
        )

    def _deblend(self, label_image, labels, cluster_labels, points, pixel, maps, smoothing):
        """Segments split at significant peaks and merged where nothing separates them.

        ``pixel`` is the flat index of every point's pixel
        (:func:`_pixel_of`). Returns the label image, the labels of the
        points and of the clusters, renumbered from 0, and the number of
        labels behind clusters (the parts split off without a cluster come
        after them).
        """
        smoothed = maps.smoothed_luminosity
        smooth_noise = maps.smooth_noise
        n_clustered = int(labels.max(initial=-1)) + 1
        first_new = max(int(label_image.max()), n_clustered) + 1
        colour_pairs = None
        # The label image is this call's own (labels_to_image's): cut in place.
        label_image, parents = split_segments(
            label_image, smoothed, smooth_noise, dip=self.deblend_dip, min_area=self.min_area,
            first=first_new, copy=False,
        )  # fmt: skip
        if self.deblend_color_split is not None:
            before = label_image.ravel()[pixel]
            label_image, colour_parents = colour_split_segments(
                label_image, maps, z=self.deblend_color_split, min_area=self.min_area,
                first=first_new + parents.size, copy=False,
            )  # fmt: skip
            # Each part cut by colour and its segment: the merge tests their
            # colours at _COLOUR_SPLIT_MERGE_Z.
            colour_pairs = np.stack(
                [first_new + parents.size + np.arange(colour_parents.size), colour_parents], axis=1
            )
            parents = np.concatenate([parents, colour_parents])
            # Points in pixels given to a touching segment take its label.
            value = label_image.ravel()[pixel]
            given = value != before
            given &= (value > 0) & (value < first_new) & (labels >= 0)
            if given.any():
                labels = labels.copy()
                labels[given] = value[given] - 1
        if parents.size:
            # The points of a part split off take its label; a part that holds
            # no point goes back to its segment, so every value of the label
            # image is the label of some points.
            value = label_image.ravel()[pixel]
            moved = (value >= first_new) & (labels >= 0)
            held = np.bincount(value[moved] - first_new, minlength=parents.size) > 0
            if not held.all():
                back = np.arange(first_new + parents.size)
                renumbered = first_new + np.cumsum(held) - 1
                # A part cut from a part goes back to where its parent went;
                # parents come before their parts.
                for j, parent in enumerate(parents):
                    back[first_new + j] = renumbered[j] if held[j] else back[parent]
                label_image = _set_footprint_values(
                    label_image, back[_footprint_values(label_image, maps)], maps
                )
                value = back[value]
                if colour_pairs is not None:
                    colour_pairs = back[colour_pairs]
            labels = labels.copy()
            labels[moved] = value[moved] - 1
        apart_colour_z = None
        if self.deblend_color_z is not None:
            apart_colour_z = min(self.deblend_color_z, _COLOUR_SPLIT_MERGE_Z)
        new_value = merge_segments(
            label_image,
            smoothed,
            smooth_noise,
            labels=labels,
            points=points,
            dip=self.deblend_dip,
            colour_z=self.deblend_color_z,
            samples_per_pixel=max(points.shape[0] / max(maps.candidates.size, 1), 1.0),
            correlation_area=max(4 * np.pi * smoothing**2, 1.0),
            apart=colour_pairs,
            apart_colour_z=apart_colour_z,
        )
        # Consecutive values again: the kept values in increasing order.
        kept = np.unique(new_value[1:])
        final = np.zeros(new_value.size, dtype=np.int64)
        final[kept] = np.arange(1, kept.size + 1)
        final = final[new_value]
        label_image = _set_footprint_values(
            label_image, final[_footprint_values(label_image, maps)], maps
        )
        labels = final[labels + 1] - 1
        cluster_labels = np.where(cluster_labels >= 0, final[cluster_labels + 1] - 1, -1)
        return label_image, labels, cluster_labels, int(final[: n_clustered + 1].max())

    def predict(self, X):
        """Label image of every image.

        Parameters
        ----------
        X : sequence of (M, N[, C]) arrays
            The images.

        Returns
        -------
        label_images : list of (M, N) ndarray of int32
            One label image per image, 0 = background.
        """
        check_is_fitted(self)
        return [self.segment_image(image).label_image for image in _check_images(X)]

    def score(self, X, y):
        """Mean detection F1 of the label images of ``X`` against ``y``.

        Parameters
        ----------
        X : sequence of (M, N[, C]) arrays
            The images.
        y : sequence of (M, N) int arrays
            Their true label images.

        Returns
        -------
        score : float
            Mean detection F1 over the images (see
            :func:`skimgcluster.metrics.detection_f1_score`).
        """
        from .metrics import detection_f1_score

        return detection_f1_score(self.predict(X), list(y))


def compile_kernels():
    """Compile and cache the kernels a segmentation runs after its clustering.

    The labelling's flood, the smoothing the deblending reads, its h-maxima
    and the colour split's sums, in the order a segmentation needs them, on
    small inputs of the dtypes it passes them. The process started by
    :func:`._compiling.compile_in_background` runs it once the clustering's
    kernels are cached, while a first segmentation in a new environment
    clusters; that segmentation waits for it before its labelling.
    """
    footprint = np.zeros((8, 8), dtype=bool)
    footprint[2:6, 2:6] = True
    points = np.array([[3.0, 3.0, 1.0], [4.0, 4.0, 1.0]])
    labels_to_image(np.array([0, 0]), points, footprint.shape, footprint=footprint)
    smooth_nan_as_zero(np.zeros(footprint.shape, dtype=np.float32), gaussian_kernel(1.0))
    yy, xx = np.mgrid[:8, :8]
    level = 50 * (
        np.exp(-((yy - 3) ** 2 + (xx - 2) ** 2) / 2) + np.exp(-((yy - 4) ** 2 + (xx - 5) ** 2) / 2)
    )
    split_segments(
        footprint.astype(np.int32), level.astype(np.float32), np.ones(level.shape, np.float32),
        dip=ImageSegmenter().deblend_dip, min_area=1,
    )  # fmt: skip
    # The colour split's sums, with the dtypes of its pixels' arrays.
    one = np.zeros(1, dtype=np.intp)
    colour_scatter(one, one, np.ones((1, 3)), np.ones(1), np.ones(1), 1)


def compile_small_segmentation():
    """Segment a small image: compiles and caches any kernel of a segmentation not cached yet.

    The compiling process of :func:`._compiling.compile_in_background` runs
    it after :func:`compile_kernels`, once nothing waits for it any more, for
    the kernels its earlier steps do not compile.
    """
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    image = rng.normal(10, 1, (64, 64, 3))
    for y, x in ((20, 22), (24, 27), (44, 40)):
        image += 40 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 8)[..., None]
    segment(image, random_state=0)


def _segment_signature():
    """The image, then every parameter of ImageSegmenter and of its two steps.

    In the order of their constructors, with the clusterer's image defaults
    (``DEFAULT_CLUSTERER``); ``mask``, ``random_state`` and ``callback`` are
    those of the call.
    """
    keyword = inspect.Parameter.KEYWORD_ONLY
    defaults = {"mask": None, "random_state": None}
    for cls, overrides in ((LuminositySampler, {}), (AstroLinkClusterer, DEFAULT_CLUSTERER)):
        for name, p in inspect.signature(cls.__init__).parameters.items():
            if name != "self" and name not in defaults:
                defaults[name] = overrides.get(name, p.default)
    for name, p in inspect.signature(ImageSegmenter.__init__).parameters.items():
        if name not in ("self", "sampler", "clusterer"):
            defaults[name] = p.default
    defaults["callback"] = None
    # The former name last, as the docstring lists it.
    defaults["colour_scale"] = defaults.pop("colour_scale")
    return inspect.Signature(
        [inspect.Parameter("image", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [inspect.Parameter(name, keyword, default=value) for name, value in defaults.items()]
    )


segment.__signature__ = _segment_signature()
