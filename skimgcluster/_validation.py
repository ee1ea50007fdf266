"""Shared input checks for images."""

import numpy as np

__all__ = []


def check_image(image, *, name="image"):
    """Validate an image and return it as an (M, N, C) array, without copying.

    Accepts (M, N) and (M, N, C) arrays of a real numeric or boolean dtype,
    and numpy masked arrays (returned as a float64 copy with NaN for masked
    pixels). A plain array keeps its dtype and memory: a 2-D image becomes a
    view of shape (M, N, 1).

    Returns
    -------
    data : ndarray of shape (M, N, C)
    quantum : float
        Step between representable values (1 for integer dtypes, else 0).
    """
    mask = None
    if isinstance(image, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(image)
        image = image.data
    if not isinstance(image, np.ndarray):
        try:
            image = np.asarray(image)
        except Exception as exc:  # ragged lists and other junk
            raise TypeError(
                f"{name} must be an array of shape (M, N) or (M, N, C); could not "
                f"convert {type(image).__name__} to an array: {exc}"
            ) from None
    dtype = image.dtype
    if dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must have a real numeric dtype (bool, integer or float); got dtype={dtype}."
        )
    if image.ndim not in (2, 3):
        raise ValueError(
            f"{name} must have shape (M, N) or (M, N, C); got shape {image.shape} "
            f"with {image.ndim} dimension(s)."
        )
    if image.shape[0] == 0 or image.shape[1] == 0 or (image.ndim == 3 and image.shape[2] == 0):
        raise ValueError(f"{name} must have no zero-sized axis; got shape {image.shape}.")
    quantum = 1.0 if dtype.kind in "biu" else 0.0
    data = image[:, :, None] if image.ndim == 2 else image
    if mask is not None:
        data = data.astype(np.float64)
        data[np.broadcast_to(mask.reshape(mask.shape[:2] + (-1,)), data.shape)] = np.nan
    if dtype.kind == "f" and not np.isfinite(data).all():
        n_inf = int(np.isinf(data).sum())
        if n_inf:
            raise ValueError(
                f"{name} must not contain infinite values; got {n_inf} infinite pixel "
                "value(s). Mask them as NaN instead."
            )
    return data, quantum


def check_mask(mask, shape, *, name="mask"):
    """Validate a boolean pixel mask of shape ``shape`` (True = excluded)."""
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, the image's; got {mask.shape}.")
    if mask.dtype != bool:
        raise TypeError(f"{name} must be a boolean array; got dtype={mask.dtype}.")
    return mask
