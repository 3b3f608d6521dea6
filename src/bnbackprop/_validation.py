"""Argument checks shared by the library: clear errors instead of broadcasting surprises."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np


def as_float_array(value: object, name: str, *, ndim: int | None = None) -> np.ndarray:
    """Return ``value`` as a real floating NumPy array, or raise naming ``name``.

    Integer and boolean input is promoted to float64; float32 and float64 are kept. A NumPy
    masked array is refused: ``np.asarray`` would drop its mask and the masked entries, whatever
    they hold, would count as data.
    """
    if isinstance(value, np.ma.MaskedArray):
        masked = int(np.ma.count_masked(value))
        raise TypeError(
            f"{name} is a numpy.ma.MaskedArray ({masked} of {value.size} entries masked), which is not supported: "
            f"its mask would be silently ignored. Pass a plain array: {name}.filled(value) to choose the masked "
            f"entries' values, or drop the masked rows first"
        )
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


def require_finite_output(array: object, operation: str, cause: str) -> None:
    """Raise ``ValueError`` if the result of ``operation`` holds NaN or inf; ``cause`` says why it might."""
    values = np.asarray(array)
    if not np.all(np.isfinite(values)):
        bad = int(values.size - np.count_nonzero(np.isfinite(values)))
        raise ValueError(f"{operation} produced {bad} non-finite value(s) (NaN or inf): {cause}")


def require_real_number(value: object, name: str) -> float:
    """Return ``value`` as a finite float (any sign), or raise naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def require_bool(value: object, name: str) -> bool:
    """Return ``value`` if it is True or False, or raise ``TypeError`` naming it."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def require_batch(n: int, ddof: int, shape: tuple[int, ...], axis: int) -> None:
    """Raise ``ValueError`` unless a batch of ``n`` samples has a variance with ``ddof`` (n ≥ 2, n > ddof)."""
    if n < 2 or n <= ddof:
        raise ValueError(
            f"X: training-mode batch norm needs a batch of at least 2 samples (and more than "
            f"ddof={ddof}) along axis {axis}; X has shape {tuple(shape)}, a batch of {n}"
        )


def require_separate_memory(arrays: Mapping[object, np.ndarray], name: str) -> None:
    """Raise ``ValueError`` if two entries of ``arrays`` share memory (the same array twice,
    or overlapping views): an in-place update of one would change the other."""
    items = list(arrays.items())
    for i, (key_a, a) in enumerate(items):
        for key_b, b in items[i + 1 :]:
            if np.may_share_memory(a, b) and np.shares_memory(a, b):
                raise ValueError(
                    f"{name}[{key_a!r}] and {name}[{key_b!r}] share memory (the same array, or "
                    "overlapping views): an in-place update of one would change the other; pass copies"
                )
