"""Argument checks shared by the library: clear errors instead of broadcasting surprises."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def as_float_array(value: object, name: str, *, ndim: int | None = None) -> np.ndarray:
    """Return ``value`` as a real floating NumPy array, or raise naming ``name``.

    Integer and boolean input is promoted to float64; float32 and float64 are kept.
    """
    try:
        array = np.asarray(value)
    except Exception as exc:  # pragma: no cover - numpy raises many kinds here
        raise TypeError(f"{name} must be array-like, got {type(value).__name__}") from exc
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.floating)
        or np.issubdtype(array.dtype, np.integer)
        or np.issubdtype(array.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {array.shape}")
    return array


def require_finite(array: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` if ``array`` holds NaN or infinity."""
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name} holds {bad} non-finite value(s) (NaN or inf)")


def require_shape(array: np.ndarray, shape: tuple[int, ...], name: str, why: str) -> None:
    """Raise ``ValueError`` unless ``array.shape == shape``; ``why`` says where the shape comes from."""
    if array.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} ({why}), got {array.shape}")


def require_choice(value: object, name: str, choices: Iterable[object]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    options = tuple(choices)
    if value not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")


def require_int(value: object, name: str, *, minimum: int | None = None) -> int:
    """Return ``value`` as an int, or raise ``TypeError``/``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def require_nonnegative_float(value: object, name: str) -> float:
    """Return ``value`` as a finite float >= 0, or raise naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    number = float(value)
    if not np.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return number
