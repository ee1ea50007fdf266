"""Robust estimates of the sky background and its noise."""

from numbers import Integral, Real

import numpy as np
from scipy import ndimage

__all__ = ["estimate_background"]

_MAD_TO_STD = 1.4826


def _clipped_stats(values, n_sigma, max_iters):
    """Sigma-clipped median and MAD-based standard deviation along axis 1.

    ``values`` is (n_boxes, n_pixels) with NaN for masked pixels; returns two
    arrays of shape (n_boxes,), NaN where a box has no valid pixel.
    """
    values = values.copy()
    with np.errstate(invalid="ignore"), _nan_warnings_off():
        for _ in range(max_iters):
            med = np.nanmedian(values, axis=1, keepdims=True)
            std = _MAD_TO_STD * np.nanmedian(np.abs(values - med), axis=1, keepdims=True)
            # Where over half the pixels share one value the MAD is 0: clip on
            # the standard deviation instead, so that sources are still removed.
            std = np.where(std > 0, std, np.nanstd(values, axis=1, keepdims=True))
            out = np.abs(values - med) > n_sigma * std
            out &= std > 0
            if not out.any():
                break
            values[out] = np.nan
        med = np.nanmedian(values, axis=1)
        std = _MAD_TO_STD * np.nanmedian(np.abs(values - med[:, None]), axis=1)
        # Fall back on the clipped standard deviation where the MAD is 0
        # (quantised data with most pixels on one value).
        std = np.where(std > 0, std, np.nanstd(values, axis=1))
    return med, std


class _nan_warnings_off:
    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.filterwarnings("ignore", r"All-NaN slice", RuntimeWarning)
        warnings.filterwarnings("ignore", r"Mean of empty slice", RuntimeWarning)
        warnings.filterwarnings("ignore", r"Degrees of freedom", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def estimate_background(image, *, box_size=64, filter_size=3, n_sigma=3.0, max_iters=5):
    """Estimate the sky level and noise of a single-band image.

    The image is divided into boxes of ``box_size`` pixels; in every box the
    sky level is the sigma-clipped median and the noise the sigma-clipped
    median absolute deviation scaled to a standard deviation. The mesh of box
    values is median-filtered over ``filter_size`` boxes and interpolated
    bilinearly back to the image, as SExtractor and photutils do.

    Parameters
    ----------
    image : (M, N) ndarray
        Single-band image; NaN pixels are masked.
    box_size : int, default=64
        Side of a box in pixels. An image smaller than two boxes on a side
        gets one global estimate on that axis.
    filter_size : int, default=3
        Size of the median filter over the mesh of boxes.
    n_sigma : float, default=3.0
        Clipping threshold in standard deviations.
    max_iters : int, default=5
        Largest number of clipping iterations.

    Returns
    -------
    background : (M, N) ndarray
        Sky level of every pixel.
    noise : (M, N) ndarray
        Standard deviation of the sky noise at every pixel.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"image must be a single-band (M, N) array; got shape {image.shape}.")
    if image.dtype.kind not in "biuf":
        raise TypeError(f"image must have a real numeric dtype; got dtype={image.dtype}.")
    if image.size == 0:
        raise ValueError(f"image must not be empty; got shape {image.shape}.")
    for name, value, low in (
        ("box_size", box_size, 1),
        ("filter_size", filter_size, 1),
        ("max_iters", max_iters, 1),
    ):
        if not isinstance(value, Integral) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}; got {value!r}.")
    if not isinstance(n_sigma, Real) or not n_sigma > 0:
        raise ValueError(f"n_sigma must be a positive number; got {n_sigma!r}.")
    image = image.astype(np.float64, copy=False)
    h, w = image.shape
    by = box_size if h >= 2 * box_size else h
    bx = box_size if w >= 2 * box_size else w
    ny, nx = h // by, w // bx
    core = image[: ny * by, : nx * bx]
    boxes = core.reshape(ny, by, nx, bx).transpose(0, 2, 1, 3).reshape(ny * nx, by * bx)
    med, std = _clipped_stats(boxes, n_sigma, max_iters)
    med = med.reshape(ny, nx)
    std = std.reshape(ny, nx)
    # Boxes with no valid pixel take the median of the others.
    for mesh in (med, std):
        bad = ~np.isfinite(mesh)
        if bad.all():
            mesh[...] = 0.0
        elif bad.any():
            mesh[bad] = np.median(mesh[~bad])
    if filter_size > 1 and (ny > 1 or nx > 1):
        size = (min(filter_size, ny), min(filter_size, nx))
        med = ndimage.median_filter(med, size=size, mode="nearest")
        std = ndimage.median_filter(std, size=size, mode="nearest")
    return _expand(med, (h, w), (by, bx)), _expand(std, (h, w), (by, bx))


def _expand(mesh, shape, box):
    """Bilinear interpolation of box-centre values onto every pixel."""
    ny, nx = mesh.shape
    if ny == 1 and nx == 1:
        return np.full(shape, mesh[0, 0])
    # Box centres in pixel coordinates; pixels beyond the outer centres take
    # the edge values.
    yc = (np.arange(ny) + 0.5) * box[0] - 0.5
    xc = (np.arange(nx) + 0.5) * box[1] - 0.5
    yi = np.interp(np.arange(shape[0]), yc, np.arange(ny)) if ny > 1 else np.zeros(shape[0])
    xi = np.interp(np.arange(shape[1]), xc, np.arange(nx)) if nx > 1 else np.zeros(shape[1])
    coords = np.meshgrid(yi, xi, indexing="ij")
    return ndimage.map_coordinates(mesh, coords, order=1, mode="nearest")
