"""Welford's one-pass algorithm for the mean and variance of each feature.

A one-pass variance need not be the textbook E[x²] − E[x]², which cancels catastrophically
when the mean is large against the spread. Welford's update (1962; Chan, Golub and LeVeque
1983) reads each sample once and keeps the running mean and the running sum of squared
deviations from it, so it never subtracts two large numbers: its error stays of the order
of the two-pass algorithm's. Fused one-pass kernels use it (or its parallel form) for that
reason. This is the plain sequential form, vectorised across features, in the input's own
precision, so that its accuracy can be measured against :func:`bnbackprop.batchnorm.batch_statistics`.
"""

from __future__ import annotations

import numpy as np

from bnbackprop._validation import as_float_array, require_finite, require_int


def _reduced_axes(axis: object, ndim: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    axes = (axis,) if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) else axis
    if not isinstance(axes, tuple) or not axes or not all(
        isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axes
    ):
        raise TypeError(f"axis must be an int or a non-empty tuple of ints, got {axis!r}")
    normalised = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for X of shape {shape}")
        normalised.append(int(a) % ndim)
    if len(set(normalised)) != len(normalised):
        raise ValueError(f"axis {axis!r} names the same axis of X {shape} more than once")
    return tuple(sorted(normalised))


def welford_update(count: int, mean: np.ndarray, m2: np.ndarray, x: np.ndarray):
    """One step of Welford's algorithm: fold the sample ``x`` into (count, mean, M2).

    ``M2`` is the sum of squared deviations from the running mean; the variance of the
    samples seen so far is ``M2 / (count - ddof)``. Returns the new (count, mean, M2).
    """
    count = require_int(count, "count", minimum=0) + 1
    delta = x - mean
    mean = mean + delta / np.asarray(count, dtype=mean.dtype)
    m2 = m2 + delta * (x - mean)
    return count, mean, m2


def welford(X, *, ddof: int = 0, axis: int | tuple[int, ...] = 0):
    """Mean and variance of each feature over the axes ``axis``, in one pass (Welford).

    The samples are folded in one at a time with :func:`welford_update`, in X's own floating
    dtype (float32 stays float32); the variance divides by N − ddof. Returns ``(mean, var)``
    with the shape of the axes not reduced.
    """
    X = as_float_array(X, "X")
    if X.ndim < 1:
        raise ValueError(f"X must have at least one axis, got shape {X.shape}")
    ddof = require_int(ddof, "ddof", minimum=0)
    axes = _reduced_axes(axis, X.ndim, X.shape)
    require_finite(X, "X")
    kept = [a for a in range(X.ndim) if a not in axes]
    rows = np.transpose(X, axes + tuple(kept)).reshape((-1, *(X.shape[a] for a in kept)))
    n = rows.shape[0]
    if n - ddof < 1:
        raise ValueError(f"X {X.shape}: a batch of {n} over axis {axes} has no variance with ddof={ddof}")
    count, mean, m2 = 0, np.zeros(rows.shape[1:], dtype=X.dtype), np.zeros(rows.shape[1:], dtype=X.dtype)
    for x in rows:
        count, mean, m2 = welford_update(count, mean, m2, x)
    return mean, m2 / np.asarray(n - ddof, dtype=X.dtype)
