"""Figures of a segmentation, as matplotlib Figures (no pyplot state)."""

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

__all__ = ["plot_overview", "display_image", "label_colormap"]


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
    """
    image = np.asarray(image)
    h, w = image.shape[:2]
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
