"""Which array library an argument comes from, and checks written for any of them.

NumPy arrays (and anything that is not an array-API object: lists, scalars) take the
library's NumPy path. Arrays of other libraries that follow the Python array API standard
(PyTorch tensors, CuPy, ``array-api-strict``) are handled through ``array-api-compat``,
which is imported only when such an array arrives.
"""

from __future__ import annotations

import math

import numpy as np


def foreign_namespace(*arrays: object):
    """The array-API namespace of ``arrays`` when the first is a non-NumPy array, else None."""
    first = arrays[0]
    if isinstance(first, np.ndarray) or not hasattr(first, "shape") or not hasattr(first, "dtype"):
        return None
    try:
        import array_api_compat
    except ImportError:  # pragma: no cover - the extra is not installed: NumPy converts what it can
        return None
    if not array_api_compat.is_array_api_obj(first) or array_api_compat.is_numpy_array(first):
        return None
    return array_api_compat.array_namespace(first)


def device_of(array: object):
    import array_api_compat

    return array_api_compat.device(array)


def as_float(xp, value: object, name: str, *, like=None, dtype=None):
    """``value`` as a real floating array of namespace ``xp`` (integers and booleans become float64)."""
    if like is not None:
        try:
            value = xp.asarray(value, device=device_of(like))
        except Exception as exc:
            library = xp.__name__
            got = type(value).__name__
            raise TypeError(f"{name} must be an array of the same library as X ({library}), got {got}") from exc
    dtype_of = value.dtype
    if xp.isdtype(dtype_of, "real floating"):
        pass
    elif xp.isdtype(dtype_of, ("integral", "bool")):
        value = xp.astype(value, xp.float64)
    else:
        raise TypeError(f"{name} must hold real numbers, got dtype {dtype_of}")
    if dtype is not None and value.dtype != dtype:
        value = xp.astype(value, dtype)
    return value


def all_finite(xp, array) -> bool:
    return bool(xp.all(xp.isfinite(array)))


def require_finite(xp, array, name: str) -> None:
    """Raise ``ValueError`` if ``array`` holds NaN or infinity."""
    finite = xp.isfinite(array)
    if not bool(xp.all(finite)):
        bad = math.prod(array.shape) - int(xp.sum(xp.astype(finite, xp.int64)))
        raise ValueError(f"{name} holds {bad} non-finite value(s) (NaN or inf)")


def true_indices(xp, mask) -> list:
    """Indices where a boolean array ``mask`` holds: ints for 1-D, tuples otherwise."""
    found = xp.nonzero(mask)
    columns = [[int(indices[k]) for k in range(indices.shape[0])] for indices in found]
    if len(columns) == 1:
        return columns[0]
    return list(zip(*columns, strict=True))
