"""Shared input checks: images, masks, parameters and memory."""

from numbers import Integral, Real

import numpy as np

# scikit-learn's constraint vocabulary, shared with the estimators'
# ``_parameter_constraints``. The module is private to scikit-learn, so
# tests/test_validation.py::test_sklearn_constraint_classes_keep_their_api fails if
# the parts used here change.
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions

from .exceptions import InsufficientMemoryError

__all__ = []


def _is_number(value, kind):
    # bool is an Integral, but True is never meant as a count or a threshold.
    return isinstance(value, kind) and not isinstance(value, (bool, np.bool_))


def _satisfies(value, constraint):
    if constraint is None:
        return value is None
    if constraint == "boolean":
        return isinstance(value, (bool, np.bool_))
    if constraint == "callable":
        return callable(value)
    if isinstance(constraint, Interval):
        return _is_number(value, constraint.type) and constraint.is_satisfied_by(value)
    if isinstance(constraint, StrOptions):
        return constraint.is_satisfied_by(value)
    if isinstance(constraint, type):
        if issubclass(constraint, (Integral, Real)):
            return _is_number(value, constraint)
        return isinstance(value, constraint)
    raise TypeError(f"unknown parameter constraint {constraint!r}")  # pragma: no cover


def _describe(constraint):
    if constraint is None:
        return "None"
    if constraint == "boolean":
        return "a bool"
    if constraint == "callable":
        return "a callable"
    if isinstance(constraint, type):
        return f"an instance of {constraint.__name__}"
    if isinstance(constraint, Interval) and constraint.left is None and constraint.right is None:
        return "a finite number"  # rather than "a float in the range (-inf, inf)"
    return str(constraint)


# tile_size of ImageSegmenter and of the tiling it hands images to: here, so
# that _segment needs no import of _tiling to declare it.
TILE_SIZE_CONSTRAINTS = {
    "tile_size": [Interval(Integral, 32, None, closed="left"), StrOptions({"auto"}), None]
}


def check_params(constraints, params, caller):
    """Check parameters against constraints; the one parameter check of the package.

    Parameters
    ----------
    constraints : dict
        For every parameter name, the list of the constraints it may satisfy
        (one is enough): an ``Interval`` or ``StrOptions`` of scikit-learn's
        vocabulary (``bool`` satisfies no number interval), a type, ``None``,
        ``'boolean'`` or ``'callable'``.
    params : dict
        The values, by parameter name; every name must have constraints.
    caller : str
        The estimator or function, as named in the message, e.g.
        ``'labels_to_image'``.

    Raises
    ------
    InvalidParameterError
        A :class:`ValueError` and a :class:`TypeError` (as scikit-learn's
        estimators raise), naming the first parameter that satisfies none of
        its constraints, the constraints and the value.
    """
    for name, value in params.items():
        options = constraints[name]
        if any(_satisfies(value, option) for option in options):
            continue
        described = [_describe(option) for option in options]
        if len(described) > 1:
            described = [", ".join(described[:-1]) + " or " + described[-1]]
        raise InvalidParameterError(
            f"The {name!r} parameter of {caller} must be {described[0]}; got {name}={value!r}."
        )


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
    if dtype.kind == "f" and data.size:
        _check_float_range(data, name)
    return data, quantum


# The sampler computes in float32 and subtracts sky levels, so values must
# stay well inside float32's range: differences of two of them must not
# overflow. float64 images whose largest value is below float32's smallest
# normal number would lose their precision (or vanish) in float32.
MAX_ABS_VALUE = float(np.finfo(np.float32).max) / 4
_MIN_MAX_ABS_VALUE = float(np.finfo(np.float32).tiny)


def _check_float_range(data, name):
    """Refuse infinite values and values float32 arithmetic cannot carry."""
    # fmax and fmin skip NaN and allocate nothing; NaN only if all is NaN.
    hi = np.fmax.reduce(data, axis=None)
    lo = np.fmin.reduce(data, axis=None)
    if np.isinf(hi) or np.isinf(lo):
        n_inf = int(np.isinf(data).sum())
        raise ValueError(
            f"{name} must not contain infinite values; got {n_inf} infinite pixel "
            "value(s). Mask them as NaN instead."
        )
    if np.isnan(hi):
        return  # all NaN: nothing to sample, the sampler says so
    top = max(abs(hi), abs(lo))
    if float(top) > MAX_ABS_VALUE:  # float(): no cast of the bound to float16
        raise ValueError(
            f"{name} values must satisfy |value| <= {MAX_ABS_VALUE:.4g} (a quarter of the "
            f"float32 range the sampler computes in); got |value| up to "
            f"{np.format_float_scientific(top, precision=4)}. Rescale the image."
        )
    if data.dtype.itemsize > 4 and 0 < float(top) < _MIN_MAX_ABS_VALUE:
        raise ValueError(
            f"{name} values are too small for the float32 arithmetic of the sampler: "
            f"|value| up to {np.format_float_scientific(top, precision=4)}, below "
            f"{_MIN_MAX_ABS_VALUE:.4g}. Rescale the image."
        )


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


def available_memory():
    """Bytes of memory available to a new allocation, or None if unknown.

    A function of its own so that tests can replace it.
    """
    import psutil  # imported here: ``import skimgcluster`` stays light

    try:
        available = int(psutil.virtual_memory().available)
    except Exception:  # pragma: no cover - exotic platforms
        return None
    # A limit on the address space (ulimit -v, a batch system's) makes
    # allocations fail long before physical memory runs out.
    left = _address_space_left(psutil)
    return available if left is None else min(available, left)


def _address_space_left(psutil):
    """Bytes of address space the process may still map, or None if unlimited."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft == resource.RLIM_INFINITY:
            return None
        return max(int(soft) - int(psutil.Process().memory_info().vms), 0)
    except Exception:  # pragma: no cover - exotic platforms
        return None


def format_bytes(n):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover - unreachable


def check_memory(n_bytes, *, what, advice, mapped=False):
    """Refuse a run whose estimated working memory exceeds the available memory.

    Parameters
    ----------
    n_bytes : float
        Estimated peak working memory of the run, in bytes.
    what : str
        The run, with the parameters and sizes the estimate comes from, e.g.
        ``"AstroLinkClusterer.fit of X of shape (10, 2) with k_den=20"``.
    advice : str
        What to change to need less memory.
    mapped : bool, default=False
        ``n_bytes`` are mapped from a file rather than allocated: they need
        address space only, which a limit on it (``ulimit -v``) bounds, and
        not physical memory.

    Raises
    ------
    InsufficientMemoryError
        If ``n_bytes`` is more than the available memory (or address space).
    """
    if mapped:
        import psutil

        available, kind = _address_space_left(psutil), "address space"
    else:
        available, kind = available_memory(), "memory"
    if available is None or n_bytes <= available:
        return
    raise InsufficientMemoryError(
        f"{what} needs about {format_bytes(n_bytes)} of {kind}, but only "
        f"{format_bytes(available)} is available. {advice}"
    )
