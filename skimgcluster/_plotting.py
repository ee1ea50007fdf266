"""Figures of a segmentation, as matplotlib Figures (no pyplot state)."""

from numbers import Integral, Real

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.colors import ListedColormap, Normalize, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.patheffects import withStroke
from sklearn.utils.validation import check_is_fitted

from ._hierarchy import cluster_depths
from ._validation import Interval, check_params

__all__ = [
    "plot_overview",
    "plot_segmentation",
    "plot_ordered_density",
    "plot_hierarchy",
    "plot_tiled",
    "downsampled_view",
    "display_image",
    "label_colormap",
]


def display_image(image, *, percentiles=(0.5, 99.5)):
    """An image scaled to [0, 1] for display.

    uint8 images are divided by 255; others get a robust linear stretch
    between the given percentiles of their finite values (NaN shown as 0).
    """
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image / 255.0
    data = image.astype(np.float64)
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return np.zeros_like(data)
    lo, hi = np.percentile(finite, percentiles)
    if hi <= lo:
        hi = lo + 1.0
    return np.nan_to_num(np.clip((data - lo) / (hi - lo), 0.0, 1.0))


def label_colormap(n_labels, *, seed=0):
    """A colormap for labels 0..n_labels: black background, shuffled bright colours."""
    rng = np.random.default_rng(seed)
    colours = rng.uniform(0.25, 1.0, (max(n_labels, 1) + 1, 3))
    colours[0] = 0.0
    return ListedColormap(colours)


def plot_overview(image, result, *, figsize=(10, 9), max_points=50_000, seed=0):
    """The 2x2 overview of a segmentation, as in the original notebook.

    Panels: the image, its background-subtracted luminosity, the sampled
    points in the image's colours, and the sources in distinct colours.

    Parameters
    ----------
    image : (M, N[, C]) ndarray
        The image that was segmented.
    result : Segmentation
        What :func:`skimgcluster.segment` returned for it.
    figsize : (float, float), default=(10, 9)
        Size of the figure in inches.
    max_points : int, default=50_000
        At most this many sampled points are drawn (a random subset).
    seed : int, default=0
        Seed of the subset and of the label colours.

    Returns
    -------
    figure : matplotlib.figure.Figure
        The figure of the four panels.

    Raises
    ------
    TypeError
        If ``result`` is not a Segmentation.
    ValueError
        If ``result`` is the segmentation of an image of another shape.
    """
    from ._segmentation import Segmentation
    from ._validation import check_image

    if not isinstance(result, Segmentation):
        raise TypeError(
            "result must be the Segmentation that skimgcluster.segment returned for "
            f"image; got {type(result).__name__}."
        )
    data, _ = check_image(image)
    h, w = data.shape[:2]
    if result.label_image.shape != (h, w):
        raise ValueError(
            f"result must be the segmentation of image: its label image has shape "
            f"{result.label_image.shape}, the image {(h, w)}."
        )
    image = np.asarray(image)
    shown = display_image(image)
    if shown.ndim == 3 and shown.shape[2] not in (3, 4):
        shown = shown.mean(axis=2)
    if shown.ndim == 3 and shown.shape[2] == 4:
        shown = shown[:, :, :3]
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(2, 2, sharex=True, sharey=True)
    gray = {"cmap": "gray"} if shown.ndim == 2 else {}
    axes[0, 0].imshow(shown, interpolation="nearest", **gray)
    axes[0, 0].set_title("Image")
    lum = result.maps.luminosity
    finite = lum[np.isfinite(lum)]
    scale = np.percentile(finite, 99.5) if finite.size else 1.0
    stretched = np.arcsinh(np.clip(np.nan_to_num(lum), 0, None) / max(scale / 10.0, 1e-12))
    axes[0, 1].imshow(stretched, cmap="gray", interpolation="nearest")
    axes[0, 1].set_title("Luminosity (background subtracted, asinh)")
    points = result.points
    rng = np.random.default_rng(seed)
    if len(points) > max_points:
        points = points[rng.choice(len(points), max_points, replace=False)]
    axes[1, 0].set_facecolor("black")
    if len(points):
        rows = np.clip(np.round(points[:, 1]).astype(int), 0, h - 1)
        cols = np.clip(np.round(points[:, 0]).astype(int), 0, w - 1)
        colours = shown[rows, cols]
        if colours.ndim == 1:
            colours = np.repeat(colours[:, None], 3, axis=1)
        axes[1, 0].scatter(points[:, 0], points[:, 1], c=colours, s=0.2, linewidths=0)
    axes[1, 0].set_title(f"{len(result.points):,} samples in their colours")
    n = int(result.label_image.max())
    axes[1, 1].imshow(
        result.label_image, cmap=label_colormap(n, seed=seed), vmin=0, vmax=max(n, 1),
        interpolation="nearest",
    )  # fmt: skip
    axes[1, 1].set_title(f"{result.n_sources:,} sources")
    for ax in axes.ravel():
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        ax.set_aspect("equal")
    return fig


# ---------------------------------------------------------------------------
# Shared helpers of the figures below.


def _figure_and_axes(ax, figsize):
    """A new constrained-layout Figure with one Axes, or the figure of ``ax``."""
    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        return fig, fig.add_subplot()
    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None; got {type(ax).__name__}.")
    fig = ax.figure
    while not isinstance(fig, Figure):  # an Axes of a SubFigure: return the whole figure
        fig = fig.figure
    return fig, ax


def _rgb_or_gray(shown):
    """A display image (from :func:`display_image`) reduced to gray or RGB."""
    if shown.ndim == 3 and shown.shape[2] == 4:
        return shown[:, :, :3]
    if shown.ndim == 3 and shown.shape[2] != 3:
        return shown.mean(axis=2)
    return shown


def _fitted_clusterer(clusterer_or_result):
    """The fitted clusterer behind the argument, or None for an empty result."""
    from ._clusterer import AstroLinkClusterer
    from ._segmentation import Segmentation

    if isinstance(clusterer_or_result, Segmentation):
        clusterer = clusterer_or_result.clusterer
        if not hasattr(clusterer, "ordering_"):
            return None  # nothing was above the detection threshold: nothing was clustered
        return clusterer
    if isinstance(clusterer_or_result, AstroLinkClusterer):
        check_is_fitted(
            clusterer_or_result,
            msg=(
                "clusterer_or_result must be a fitted AstroLinkClusterer; this "
                "%(name)s is not fitted yet. Call fit first."
            ),
        )
        return clusterer_or_result
    raise TypeError(
        "clusterer_or_result must be a fitted AstroLinkClusterer or the Segmentation "
        f"returned by segment(); got {type(clusterer_or_result).__name__}."
    )


def _say_empty(ax, message):
    """Write ``message`` in the middle of an otherwise empty Axes."""
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def _at_least(minimum):
    """The constraint of an integer parameter of at least ``minimum``."""
    return [Interval(Integral, minimum, None, closed="left")]


def _label_colours(n_labels, seed):
    """RGB colour of pixel value 0..n_labels, as in :func:`label_colormap`."""
    return np.asarray(label_colormap(n_labels, seed=seed).colors, dtype=np.float64)


def _cluster_colours(clusterer, seed):
    """Colour of every cluster: its label's colour, grey if it labels no point.

    Label ``k`` of the clusterer is pixel value ``k + 1`` of the label image,
    so these are the colours of :func:`plot_segmentation` with the same seed.
    """
    n_labels = int(clusterer.labels_.max()) + 1 if clusterer.labels_.size else 0
    table = _label_colours(n_labels, seed)
    depth = cluster_depths(clusterer.cluster_ids_)
    grey = np.clip(0.55 + 0.1 * (depth - 1), 0.0, 0.85)
    colours = np.repeat(grey[:, None], 3, axis=1)
    used = clusterer.cluster_labels_ >= 0
    colours[used] = table[clusterer.cluster_labels_[used] + 1]
    return colours


# ---------------------------------------------------------------------------
# plot_segmentation


def _block_reduce(array, factor, reducer, *, dtype, band_rows=None):
    """Reduce ``array`` over ``factor`` x ``factor`` blocks, a band of rows at a time.

    The edges are padded by repetition so that every block is whole; the
    work memory is a band of blocks, not a copy of the array. ``band_rows``,
    if given, is about how many input rows to read at once (a dask array's
    chunk rows, so that each chunk is read once, not once per band).
    """
    m, n = array.shape[:2]
    out_m, out_n = -(-m // factor), -(-n // factor)
    out = np.empty((out_m, out_n) + array.shape[2:], dtype=dtype)
    band = max(1, (1 << 22) // max(n * factor, 1))  # output rows per band, ~4M input values
    if band_rows is not None:
        band = max(1, -(-band_rows // factor))
    for r0 in range(0, out_m, band):
        r1 = min(r0 + band, out_m)
        chunk = np.asarray(array[r0 * factor : r1 * factor])
        pad_rows, pad_cols = (r1 - r0) * factor - chunk.shape[0], out_n * factor - n
        if pad_rows or pad_cols:
            widths = [(0, pad_rows), (0, pad_cols)] + [(0, 0)] * (array.ndim - 2)
            chunk = np.pad(chunk, widths, mode="edge")
        chunk = chunk.reshape((r1 - r0, factor, out_n, factor) + array.shape[2:])
        out[r0:r1] = reducer(chunk, axis=(1, 3))
    return out


def _source_flux(image, label_image, n_labels):
    """Summed intensity (over bands) above the sky of every label 0..n_labels.

    The sky is the median band sum of the background pixels (label 0), taken
    on a regular subsample of about a million pixels; NaN pixels count 0.
    The image is read a band of rows at a time, so no float copy of it is made.
    """
    m, n = label_image.shape
    step = max(1, int(np.sqrt(label_image.size / 1e6)))

    def band_sum(block):
        block = np.asarray(block, dtype=np.float32)
        if block.ndim == 3:
            block = block[:, :, :3].sum(axis=2) if block.shape[2] == 4 else block.sum(axis=2)
        return block

    sub = band_sum(image[::step, ::step])
    sky = sub[(label_image[::step, ::step] == 0) & np.isfinite(sub)]
    sky = float(np.median(sky)) if sky.size else 0.0
    flux = np.zeros(n_labels + 1)
    rows = max(1, (1 << 21) // max(n, 1))
    for r0 in range(0, m, rows):
        values = np.nan_to_num(band_sum(image[r0 : r0 + rows]) - sky, nan=0.0)
        flux += np.bincount(
            label_image[r0 : r0 + rows].ravel(), weights=values.ravel(), minlength=n_labels + 1
        )
    return flux


def _check_label_image(label_image, shape):
    label_image = np.asarray(label_image)
    if label_image.ndim != 2 or label_image.shape != tuple(shape):
        raise ValueError(
            f"label_image must have the shape of the image, {tuple(shape)}; "
            f"got shape {label_image.shape}."
        )
    if not np.issubdtype(label_image.dtype, np.integer):
        raise TypeError(
            f"label_image must hold integers (0 = background); got dtype {label_image.dtype}."
        )
    if label_image.size and label_image.min() < 0:
        raise ValueError(
            f"label_image must be non-negative (0 = background); got {label_image.min()}."
        )
    return label_image


def plot_segmentation(
    image,
    label_image,
    *,
    ax=None,
    fill=True,
    alpha=0.35,
    boundaries=True,
    boundary_color=None,
    n_annotated=10,
    significance=None,
    max_display_size=2000,
    figsize=(9, 8),
    seed=0,
):
    """The sources of a segmentation drawn over the image.

    Every source gets its boundary (its pixels next to another label or
    the background, ``skimage.segmentation.find_boundaries`` with
    ``mode='inner'``) and, optionally, a semi-transparent fill, both in its
    colour of :func:`label_colormap`, the colours of :func:`plot_overview`
    and :func:`plot_ordered_density` for the same ``seed``. The most
    significant (or brightest) sources are numbered with their value in
    ``label_image``, just above them (below those at the top edge).

    Parameters
    ----------
    image : (M, N[, C]) ndarray
        The image, shown with :func:`display_image` (RGB as colour, other
        numbers of bands as their mean).
    label_image : (M, N) ndarray of int or Segmentation
        0 for background, ``k + 1`` for source ``k``; or the result of
        :func:`skimgcluster.segment`, whose ``label_image`` and
        ``source_significance`` are then used.
    ax : matplotlib.axes.Axes, default=None
        Draw into this Axes (its figure is returned); ``None`` makes a new
        figure.
    fill : bool, default=True
        Fill every source with its colour.
    alpha : float, default=0.35
        Opacity of the fill, in [0, 1].
    boundaries : bool, default=True
        Draw the boundary of every source, opaque.
    boundary_color : color or None, default=None
        One matplotlib colour for all boundaries; ``None`` draws each in
        its source's colour.
    n_annotated : int, default=10
        Number this many sources: the most significant if significances
        are known (``significance`` or a ``Segmentation``), else the
        brightest: the largest sum over their pixels (and bands) of the image
        minus the median of the background pixels. 0 numbers none. For a
        ``Segmentation``, AstroLink's clusters rank before its isolated
        sources, whose significance is a signal-to-noise ratio.
    significance : ndarray of shape (n_labels,), default=None
        Significance of the source behind pixel value ``k + 1`` at index
        ``k`` (as ``Segmentation.source_significance``); NaN ranks last.
    max_display_size : int, default=2000
        Images whose longer side exceeds this are shown downsampled by the
        smallest integer factor ``f`` that brings it within the limit: the
        image by the mean of ``f`` x ``f`` blocks, the label image by their
        largest label (so sources smaller than a block stay visible), and
        boundaries are those of the downsampled label image. Axes keep the
        coordinates of the full-resolution pixels; the title gives ``f``.
    figsize : (float, float), default=(9, 8)
        Size of a new figure in inches.
    seed : int, default=0
        Seed of the label colours (see :func:`label_colormap`).

    Returns
    -------
    figure : matplotlib.figure.Figure
        The figure, built without pyplot. The image is ``ax.images[0]``;
        the fill and the boundaries are RGBA images labelled ``'fill'`` and
        ``'boundaries'``, transparent elsewhere.

    Notes
    -----
    A label image with no source gives the image alone, titled
    ``0 sources``.

    Examples
    --------
    >>> import numpy as np
    >>> from skimgcluster import plot_segmentation
    >>> image = np.zeros((32, 32))
    >>> labels = np.zeros((32, 32), dtype=int)
    >>> labels[4:10, 4:10] = 1
    >>> labels[20:28, 15:25] = 2
    >>> fig = plot_segmentation(image, labels)
    >>> fig.axes[0].get_title()
    '2 sources, the 2 brightest numbered'
    """
    image, label_image, significance, isolated = _segmentation_inputs(
        image, label_image, significance
    )
    check_params(
        {
            "alpha": [Interval(Real, 0, 1, closed="both")],
            "n_annotated": _at_least(0),
            "max_display_size": _at_least(1),
        },
        {"alpha": alpha, "n_annotated": n_annotated, "max_display_size": max_display_size},
        "plot_segmentation",
    )
    n_annotated, max_display_size = int(n_annotated), int(max_display_size)
    n_labels = int(label_image.max()) if label_image.size else 0
    if significance is not None:
        significance = np.asarray(significance, dtype=np.float64).ravel()
        if significance.size < n_labels:
            raise ValueError(
                f"significance must have one value per label (at least {n_labels}, the "
                f"largest value of label_image); got {significance.size} values."
            )

    shown, labels_shown, factor = _display_resolution(image, label_image, max_display_size)
    fig, ax = _figure_and_axes(ax, figsize)
    colours = _label_colours(n_labels, seed)
    _draw_segments(ax, shown, labels_shown, factor, colours, fill=fill, alpha=alpha,
                   boundaries=boundaries, boundary_color=boundary_color)  # fmt: skip
    present = np.flatnonzero(np.bincount(label_image.ravel(), minlength=n_labels + 1)[1:]) + 1
    n_numbered = 0
    if n_annotated and present.size:
        chosen = _most_notable(image, label_image, present, significance, isolated, n_annotated)
        _number_sources(ax, label_image, chosen)
        n_numbered = chosen.size
    title = f"{present.size:,} source{'s' if present.size != 1 else ''}"
    if n_numbered:
        ranked_by = "most significant" if significance is not None else "brightest"
        title += f", the {n_numbered:,} {ranked_by} numbered"
    if factor > 1:
        title += f" (shown at 1/{factor} resolution)"
    ax.set_title(title)
    m, n = label_image.shape
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylim(m - 0.5, -0.5)
    ax.set_aspect("equal")
    return fig


def _segmentation_inputs(image, label_image, significance):
    """The image and label image as arrays, and what a Segmentation adds to them."""
    from ._segmentation import Segmentation

    isolated = None
    if isinstance(label_image, Segmentation):
        if significance is None:
            significance = label_image.source_significance
            isolated = label_image.isolated
        label_image = label_image.label_image
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"image must have shape (M, N) or (M, N, C); got shape {image.shape}.")
    label_image = _check_label_image(label_image, image.shape[:2])
    return image, label_image, significance, isolated


def _display_resolution(image, label_image, max_display_size):
    """Display image and label image, reduced by ``factor`` to at most ``max_display_size``."""
    m, n = label_image.shape
    factor = max(1, -(-max(m, n) // max_display_size))
    if factor > 1:
        if image.dtype == np.uint8:
            shown = _block_reduce(image, factor, np.mean, dtype=np.float32) / 255.0
        else:
            shown = display_image(_block_reduce(image, factor, np.mean, dtype=np.float32))
        labels_shown = _block_reduce(label_image, factor, np.max, dtype=label_image.dtype)
    else:
        shown, labels_shown = display_image(image), label_image
    return _rgb_or_gray(shown), labels_shown, factor


def _draw_segments(ax, shown, labels_shown, factor, colours, *, fill, alpha, boundaries,
                   boundary_color):  # fmt: skip
    """The image, with the sources filled and their boundaries drawn over it."""
    from skimage.segmentation import find_boundaries

    extent = (
        -0.5,
        labels_shown.shape[1] * factor - 0.5,
        labels_shown.shape[0] * factor - 0.5,
        -0.5,
    )
    gray = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0} if shown.ndim == 2 else {}
    ax.imshow(shown, extent=extent, interpolation="nearest", **gray)
    inside = labels_shown > 0
    if fill:
        layer = np.zeros(labels_shown.shape + (4,), dtype=np.float32)
        layer[inside, :3] = colours[labels_shown[inside]]
        layer[inside, 3] = alpha
        ax.imshow(layer, extent=extent, interpolation="nearest", label="fill")
    if boundaries:
        edge = find_boundaries(labels_shown, mode="inner") & inside
        layer = np.zeros(labels_shown.shape + (4,), dtype=np.float32)
        if boundary_color is None:
            layer[edge, :3] = colours[labels_shown[edge]]
        else:
            layer[edge, :3] = to_rgb(boundary_color)
        layer[edge, 3] = 1.0
        ax.imshow(layer, extent=extent, interpolation="nearest", label="boundaries")


def _most_notable(image, label_image, present, significance, isolated, n_annotated):
    """The ``n_annotated`` labels of ``present`` to number: most significant, or brightest."""
    n_labels = int(label_image.max())
    if significance is not None:
        score = np.nan_to_num(significance[present - 1], nan=-np.inf)
    else:
        score = _source_flux(image, label_image, n_labels)[present]
    if isolated is not None:
        # AstroLink's clusters first: an isolated source's significance
        # is a signal-to-noise ratio, on another scale than their sigmas.
        # (isolated has one entry per label, as source_significance.)
        order = np.lexsort((-score, isolated[present - 1]))
    else:
        order = np.argsort(-score, kind="stable")
    return present[order[:n_annotated]]


def _number_sources(ax, label_image, chosen):
    """Each chosen label's number just above its source (centred on its columns), not over it."""
    from scipy.ndimage import find_objects

    m = label_image.shape[0]
    boxes = find_objects(label_image, max_label=int(label_image.max()))
    for value in chosen:
        row_slice, col_slice = boxes[value - 1]
        above = row_slice.start >= 0.04 * m  # else below, to stay inside the axes
        ax.annotate(
            str(value),
            xy=(
                (col_slice.start + col_slice.stop - 1) / 2,
                row_slice.start - 0.5 if above else row_slice.stop - 0.5,
            ),
            xytext=(0, 1.5 if above else -1.5),
            textcoords="offset points",
            color="white",
            fontsize=9,
            ha="center",
            va="bottom" if above else "top",
            path_effects=[withStroke(linewidth=2.0, foreground="black")],
            annotation_clip=True,
        )


# ---------------------------------------------------------------------------
# Figures of tiled segmentations, from a downsampled view


class _LabelRows:
    """Row bands of a TiledSegmentation's label image, as ``_block_reduce`` reads them."""

    def __init__(self, result):
        self.result = result
        self.shape = tuple(result.shape)
        self.ndim = 2

    def __getitem__(self, rows):
        return self.result.label_rows(rows.start or 0, min(rows.stop, self.shape[0]))


def _band_rows(image):
    """Rows of ``image`` read together: a dask array's chunk rows, so each chunk is read once."""
    chunks = getattr(image, "chunks", None)
    if not chunks:  # NumPy
        return None
    first = chunks[0]
    return int(max(first)) if isinstance(first, tuple) else int(first)  # dask, or zarr


def downsampled_view(image, result, *, max_display_size=2000):
    """The image and the label image of a tiled segmentation, reduced to draw them.

    Each ``f`` x ``f`` block becomes one pixel, ``f`` the smallest integer
    that brings the longer side within ``max_display_size``: the image by the
    mean of the block (per band), the label image by the block's largest
    label (so sources smaller than a block stay visible). Both are read a
    band of rows at a time, the label image from disk if kept there, so the
    cost is one pass over the pixels and the memory that of the view.

    Parameters
    ----------
    image : (M, N[, C]) ndarray, numpy.memmap or dask.array.Array
        The image that was segmented.
    result : TiledSegmentation
        What :func:`skimgcluster.segment` returned for it.
    max_display_size : int, default=2000
        Longest side of the view.

    Returns
    -------
    image_view : (m, n[, C]) ndarray of float32
    label_view : (m, n) ndarray of int32
    factor : int
        ``f``: a pixel of the view is ``f`` x ``f`` pixels of the image.
    """
    check_params(
        {"max_display_size": _at_least(1)}, {"max_display_size": max_display_size},
        "downsampled_view",
    )
    max_display_size = int(max_display_size)
    shape = tuple(result.shape)
    if tuple(image.shape[:2]) != shape:
        raise ValueError(
            f"result must be the segmentation of image: its label image has shape {shape}, "
            f"the image {tuple(image.shape[:2])}."
        )
    factor = max(1, -(-max(shape) // max_display_size))
    band = _band_rows(image)
    image_view = _block_reduce(image, factor, np.mean, dtype=np.float32, band_rows=band)
    label_view = _block_reduce(_LabelRows(result), factor, np.max, dtype=np.int32)
    return image_view, label_view, factor


def plot_tiled(image, result, *, kind="overview", max_display_size=2000, figsize=None, seed=0):
    """A figure of a tiled segmentation, drawn from its :func:`downsampled_view`.

    Parameters
    ----------
    image, result
        The image and its :class:`TiledSegmentation`, as for
        :func:`downsampled_view`.
    kind : {'overview', 'segmentation'}, default='overview'
        ``'overview'``: the image beside its sources in distinct colours (a
        tiled result keeps no whole-image luminosity or samples, the other two
        panels of :func:`plot_overview`); ``'segmentation'``: the sources over
        the image, the ten most significant numbered
        (:func:`plot_segmentation`).
    max_display_size : int, default=2000
        Longest side of the view drawn.
    figsize : (float, float) or None, default=None
        Size in inches; None is (12, 6) for the overview, (9, 8) otherwise.
    seed : int, default=0
        Seed of the label colours.

    Returns
    -------
    figure : matplotlib.figure.Figure
        Axes in the coordinates of the full-resolution pixels for the
        overview, of the view for the segmentation; titles give ``f``.
    """
    if kind not in ("overview", "segmentation"):
        raise ValueError(f"kind must be 'overview' or 'segmentation'; got kind={kind!r}.")
    image_view, label_view, factor = downsampled_view(
        image, result, max_display_size=max_display_size
    )
    scale = "" if factor == 1 else f" (shown at 1/{factor} resolution)"
    if kind == "segmentation":
        fig = plot_segmentation(
            image_view, label_view, significance=result.source_significance,
            max_display_size=max(label_view.shape), figsize=figsize or (9, 8), seed=seed,
        )  # fmt: skip
        ax = fig.axes[0]
        ax.set_title(f"{result.n_sources:,} sources, the most significant numbered{scale}")
        return fig
    shown = _rgb_or_gray(display_image(image_view))
    h, w = result.shape
    extent = (-0.5, label_view.shape[1] * factor - 0.5, label_view.shape[0] * factor - 0.5, -0.5)
    fig = Figure(figsize=figsize or (12, 6), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    gray = {"cmap": "gray"} if shown.ndim == 2 else {}
    axes[0].imshow(shown, extent=extent, interpolation="nearest", **gray)
    axes[0].set_title(f"Image{scale}")
    n = result.n_sources
    axes[1].imshow(
        label_view, extent=extent, cmap=label_colormap(n, seed=seed), vmin=0, vmax=max(n, 1),
        interpolation="nearest",
    )  # fmt: skip
    axes[1].set_title(f"{n:,} sources in {result.n_tiles} tiles{scale}")
    for ax in axes:
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        ax.set_aspect("equal")
    return fig


# ---------------------------------------------------------------------------
# plot_ordered_density


def _decimate(y, max_points):
    """Indices of at most ``max_points`` points that keep the curve's look.

    The curve is cut into ``max_points // 2`` runs of consecutive points
    and each run keeps its lowest and highest point (in their order), so
    every peak and trough survives; the first and last points are kept.
    """
    n = y.size
    if n <= max_points:
        return np.arange(n)
    n_runs = max(max_points // 2 - 1, 1)
    width = -(-n // n_runs)
    padded = np.concatenate([y, np.full(n_runs * width - n, y[-1])]).reshape(n_runs, width)
    offsets = np.arange(n_runs) * width
    keep = np.concatenate(
        [[0, n - 1], offsets + padded.argmin(axis=1), offsets + padded.argmax(axis=1)]
    )
    return np.unique(np.clip(keep, 0, n - 1))


def plot_ordered_density(
    clusterer_or_result,
    *,
    ax=None,
    max_points=20_000,
    depth_bars=True,
    n_legend=12,
    figsize=(10, 4),
    seed=0,
):
    """AstroLink's ordered-density plot, clusters highlighted.

    The normalised log-density of every point, in the order in which
    AstroLink aggregated them (``log_density_[ordering_]``): every cluster
    is a contiguous range of that order and is filled under the curve, as
    in ``astrolink.visualize.orderedDensity``. Clusters are drawn parents
    first, so a nested cluster shows on top of its parent; below the curve
    a bar per cluster at its depth in the hierarchy shows the nesting.

    Parameters
    ----------
    clusterer_or_result : AstroLinkClusterer or Segmentation
        A fitted clusterer, or the result of :func:`skimgcluster.segment`
        (its ``clusterer`` is used).
    ax : matplotlib.axes.Axes, default=None
        Draw into this Axes (its figure is returned); ``None`` makes a new
        figure.
    max_points : int, default=20_000
        Curves of more points are decimated for drawing: they are cut into
        ``max_points // 2`` runs of consecutive points and each run keeps
        its lowest and highest point, so the drawn curve looks the same at
        any screen resolution below that. Each cluster's fill also keeps its
        own first, last and highest point, so small clusters stay visible.
    depth_bars : bool, default=True
        Draw, below the curve, a bar per cluster spanning its range at its
        depth (the first row for top-level clusters).
    n_legend : int, default=12
        Name clusters by their AstroLink id in a legend when there are at
        most this many.
    figsize : (float, float), default=(10, 4)
        Size of a new figure in inches.
    seed : int, default=0
        Seed of the colours: a cluster that names label ``k`` has the colour
        of pixel value ``k + 1`` in :func:`plot_segmentation` (and
        :func:`plot_overview`) with the same seed; clusters that name no
        label (parents whose points went to their leaves) are grey.

    Returns
    -------
    figure : matplotlib.figure.Figure
        The figure, built without pyplot. The fills are one
        ``PolyCollection`` labelled ``'clusters'`` with a polygon per
        cluster, in the order of ``cluster_ids_`` sorted by depth; the bars
        a ``LineCollection`` labelled ``'depth bars'``.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If ``clusterer_or_result`` is an unfitted clusterer.
    TypeError
        If it is neither a clusterer nor a Segmentation.

    Notes
    -----
    A :class:`Segmentation` of an image with nothing above the detection
    threshold (no point was sampled) gives a figure that says so; a
    clusterer with no cluster gives the curve alone, titled ``0 clusters``.

    Examples
    --------
    >>> import numpy as np
    >>> from skimgcluster import AstroLinkClusterer
    >>> from skimgcluster import plot_ordered_density
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(0, 1, (300, 2)), rng.normal(8, 1, (300, 2))])
    >>> clusterer = AstroLinkClusterer(min_significance=2).fit(X)
    >>> fig = plot_ordered_density(clusterer)
    >>> fig.axes[0].get_xlabel()
    "Position in AstroLink's ordering"
    """
    clusterer = _fitted_clusterer(clusterer_or_result)
    check_params(
        {"max_points": _at_least(4), "n_legend": _at_least(0)},
        {"max_points": max_points, "n_legend": n_legend},
        "plot_ordered_density",
    )
    max_points, n_legend = int(max_points), int(n_legend)
    fig, ax = _figure_and_axes(ax, figsize)
    if clusterer is None:
        _say_empty(
            ax,
            "Empty segmentation: no pixel was above the detection threshold,\n"
            "so nothing was clustered.",
        )
        ax.set_title("Ordered density")
        return fig
    y = np.asarray(clusterer.log_density_)[clusterer.ordering_]
    n = y.size
    keep = _decimate(y, max_points)
    # Under the fills: inside clusters their edges trace the curve, and between
    # clusters the curve of the unclustered points stays visible.
    ax.plot(keep, y[keep], color="0.2", linewidth=0.5, zorder=1, label="log-density")

    bounds = np.asarray(clusterer.cluster_bounds_, dtype=np.intp).reshape(-1, 2)
    depth = cluster_depths(clusterer.cluster_ids_)
    order = np.argsort(depth, kind="stable")  # parents first: children drawn on top
    colours = _cluster_colours(clusterer, seed)
    _fill_clusters(ax, y, keep, bounds, order, colours)
    max_depth = int(depth.max()) if depth.size else 0
    step = 0.06  # height of a row of depth bars, in normalised log-density
    if depth_bars and depth.size:
        _draw_depth_bars(ax, bounds, depth, order, colours, step)
    if 0 < depth.size <= n_legend:
        handles = [Patch(facecolor=colours[j], label=clusterer.cluster_ids_[j]) for j in order]
        ax.legend(handles=handles, title="cluster", fontsize="small", loc="upper right")
    ax.set_xlim(0, max(n - 1, 1))
    bottom = -step * max_depth if depth_bars and max_depth else 0.0
    ax.set_ylim(bottom, 1.02)
    ax.set_xlabel("Position in AstroLink's ordering")
    ax.set_ylabel(r"Normalised $\log\hat\rho$")
    n_clusters = depth.size
    ax.set_title(
        f"Ordered density: {n:,} points, {n_clusters:,} cluster{'s' if n_clusters != 1 else ''}"
        + (f" (curve drawn through {keep.size:,} points)" if keep.size < n else "")
    )
    return fig


def _fill_clusters(ax, y, keep, bounds, order, colours):
    """Each cluster's range of the ordering filled under the curve, in ``order``."""
    polygons = []
    for j in order:
        start, stop = bounds[j]
        last = stop - 1
        peak = start + int(np.argmax(y[start:stop]))
        inner = keep[np.searchsorted(keep, start) : np.searchsorted(keep, last, side="right")]
        xs = np.unique(np.concatenate([[start, peak, last], inner]))
        polygons.append(
            np.concatenate([[[start, 0.0]], np.column_stack([xs, y[xs]]), [[last, 0.0]]])
        )
    fills = PolyCollection(
        polygons,
        facecolors=colours[order],
        edgecolors=colours[order],
        linewidths=0.3,
        zorder=2,
        label="clusters",
    )
    ax.add_collection(fills)


def _draw_depth_bars(ax, bounds, depth, order, colours, step):
    """A bar under the curve for every cluster, one row per depth, labelled on the y axis."""
    rows = -step * (depth[order] - 0.5)
    segments = np.stack(
        [
            np.column_stack([bounds[order, 0], rows]),
            np.column_stack([bounds[order, 1] - 1, rows]),
        ],
        axis=1,
    )
    ax.add_collection(
        LineCollection(
            segments,
            colors=colours[order],
            linewidths=3.0,
            capstyle="butt",
            label="depth bars",
        )
    )
    ax.axhline(0.0, color="0.3", linewidth=0.5)
    levels = np.arange(1, int(depth.max()) + 1)
    ax.set_yticks(
        np.concatenate([[0.0, 0.25, 0.5, 0.75, 1.0], -step * (levels - 0.5)]),
        ["0.00", "0.25", "0.50", "0.75", "1.00"] + [f"depth {d}" for d in levels],
    )
    for tick in ax.get_yticklabels()[5:]:
        tick.set_fontsize("x-small")


# ---------------------------------------------------------------------------
# plot_hierarchy


def plot_hierarchy(
    clusterer_or_result,
    *,
    ax=None,
    cmap="viridis",
    max_annotated=40,
    figsize=(10, 4),
):
    """The hierarchy of nested clusters as an icicle chart.

    Every cluster is a box on the row of its depth (top-level clusters on
    the first row below the root, which spans all points), spanning its
    range in AstroLink's ordering: a child lies under its parent, and a
    box's width is its number of points. Boxes are coloured by
    significance.

    Parameters
    ----------
    clusterer_or_result : AstroLinkClusterer or Segmentation
        A fitted clusterer, or the result of :func:`skimgcluster.segment`
        (its ``clusterer`` is used).
    ax : matplotlib.axes.Axes, default=None
        Draw into this Axes (its figure is returned, the colourbar taking
        room from it); ``None`` makes a new figure.
    cmap : str or Colormap, default='viridis'
        Colour map of the significance.
    max_annotated : int, default=40
        Write every cluster's AstroLink id in its box when there are at most
        this many clusters.
    figsize : (float, float), default=(10, 4)
        Size of a new figure in inches.

    Returns
    -------
    figure : matplotlib.figure.Figure
        The figure, built without pyplot. The boxes are one
        ``PolyCollection`` labelled ``'clusters'``, a rectangle per cluster in
        the order of ``cluster_ids_``, whose colour array is
        ``significances_``.

    Raises
    ------
    sklearn.exceptions.NotFittedError, TypeError
        As :func:`plot_ordered_density`.

    Notes
    -----
    With no cluster (a clusterer that found none, or a Segmentation of an
    image where nothing was above the detection threshold) the figure
    says so. With more than 200 clusters, boxes have no white outline and
    those narrower than a screen pixel are drawn as hairlines in their
    colour. Infinite significances are shown at the top of the
    colour scale.

    Examples
    --------
    >>> import numpy as np
    >>> from skimgcluster import AstroLinkClusterer, plot_hierarchy
    >>> X = np.random.default_rng(0).normal(0, 1, (600, 2))
    >>> X[300:] += 8  # two clusters
    >>> clusterer = AstroLinkClusterer(min_significance=2).fit(X)
    >>> fig = plot_hierarchy(clusterer)
    >>> fig.axes[1].get_ylabel()  # the colourbar
    'Significance (sigma)'
    """
    clusterer = _fitted_clusterer(clusterer_or_result)
    check_params(
        {"max_annotated": _at_least(0)}, {"max_annotated": max_annotated}, "plot_hierarchy"
    )
    max_annotated = int(max_annotated)
    fig, ax = _figure_and_axes(ax, figsize)
    if clusterer is None or clusterer.n_clusters_ == 0:
        why = (
            "Empty segmentation: no pixel was above the detection threshold."
            if clusterer is None
            else "No cluster was found."
        )
        _say_empty(ax, why)
        ax.set_title("Hierarchy of clusters")
        return fig
    n = clusterer.ordering_.size
    bounds = np.asarray(clusterer.cluster_bounds_, dtype=np.float64).reshape(-1, 2)
    depth = cluster_depths(clusterer.cluster_ids_)
    collection = _hierarchy_boxes(clusterer, bounds, depth, cmap)
    ax.add_collection(collection)
    ax.add_patch(Rectangle((0, -0.45), n, 0.9, facecolor="0.85", edgecolor="0.5", linewidth=0.5))
    ax.text(n / 2, 0, f"all {n:,} points", ha="center", va="center", fontsize=9)
    if depth.size <= max_annotated:
        _name_boxes(ax, clusterer.cluster_ids_, bounds, depth, n)
    colourbar = fig.colorbar(collection, ax=ax, pad=0.01)
    colourbar.set_label("Significance (sigma)")
    max_depth = int(depth.max())
    ax.set_xlim(0, n)
    ax.set_ylim(max_depth + 0.5, -0.5)
    ax.set_yticks(np.arange(max_depth + 1), ["root"] + [str(d) for d in range(1, max_depth + 1)])
    ax.set_ylabel("Depth")
    ax.set_xlabel("Position in AstroLink's ordering (box width = number of points)")
    ax.set_title(f"Hierarchy of {depth.size:,} cluster{'s' if depth.size != 1 else ''}")
    return fig


def _hierarchy_boxes(clusterer, bounds, depth, cmap):
    """One box per cluster on the row of its depth, coloured by its significance."""
    sig = np.asarray(clusterer.significances_, dtype=np.float64)
    finite = sig[np.isfinite(sig)]
    hi = float(finite.max()) if finite.size else 1.0
    lo = float(finite.min()) if finite.size else 0.0
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    shown_sig = np.where(np.isposinf(sig), hi, sig)
    top, bottom = depth - 0.45, depth + 0.45
    boxes = np.stack(
        [
            np.column_stack([bounds[:, 0], top]),
            np.column_stack([bounds[:, 1], top]),
            np.column_stack([bounds[:, 1], bottom]),
            np.column_stack([bounds[:, 0], bottom]),
        ],
        axis=1,
    )
    return PolyCollection(
        boxes,
        array=shown_sig,
        cmap=cmap,
        norm=Normalize(lo, hi),
        # White gaps tell neighbouring boxes apart while they are wide enough;
        # with many clusters most boxes are narrower than a pixel and show as
        # hairlines of their own colour.
        edgecolors="white" if depth.size <= 200 else "face",
        linewidths=0.5 if depth.size <= 200 else 0.4,
        label="clusters",
    )


def _name_boxes(ax, cluster_ids, bounds, depth, n):
    """Each box's cluster id in its middle, turned upright in a narrow box."""
    for cid, (start, stop), d in zip(cluster_ids, bounds, depth, strict=True):
        ax.text(
            (start + stop) / 2,
            d,
            cid,
            ha="center",
            va="center",
            fontsize=8,
            rotation=90 if stop - start < 0.06 * n else 0,
            clip_on=True,
            path_effects=[withStroke(linewidth=2.0, foreground="white")],
        )
