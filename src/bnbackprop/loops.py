"""Batch norm written activation by activation, with explicit loops and scalar arithmetic.

An independent reference for :mod:`bnbackprop.batchnorm`: no closed-form backward formula,
only the chain rule applied to each scalar, ``∂L/∂x_i = Σ_k ∂L/∂y_k · ∂y_k/∂x_i``, with the
local derivatives of mean, variance, denominator and quotient written out one at a time.
It is O(N² p) and slow on purpose; the book also uses it as the baseline of its speed
comparison.
"""

from __future__ import annotations

import math

import numpy as np

from bnbackprop._validation import (
    as_float_array,
    require_batch,
    require_choice,
    require_finite,
    require_finite_output,
    require_int,
    require_nonnegative_float,
    require_shape,
)


def _check(X, gamma, eps, ddof, axis, eps_placement) -> tuple:
    """The arguments checked as :func:`bnbackprop.batchnorm.forward` checks them."""
    eps = require_nonnegative_float(eps, "eps")
    ddof = require_int(ddof, "ddof", minimum=0)
    require_choice(axis, "axis", (0, 1))
    require_choice(eps_placement, "eps_placement", ("inside", "outside"))
    X = as_float_array(X, "X", ndim=2)
    require_finite(X, "X")
    require_batch(X.shape[axis], ddof, X.shape, axis)
    gamma = _vector(gamma, "gamma", X, axis)
    return X, gamma, eps, ddof, int(axis)


def _vector(value: object, name: str, X: np.ndarray, axis: int) -> np.ndarray:
    vector = as_float_array(value, name)
    p = X.shape[1 - axis]
    require_shape(vector, (p,), name, f"one entry per feature of X {X.shape} with axis={axis}")
    require_finite(vector, name)
    return vector


def _columns(X: np.ndarray, axis: int) -> list[list[float]]:
    """The features of X as lists of samples, whatever the layout."""
    rows = X if axis == 0 else X.T
    n, p = rows.shape
    return [[float(rows[i, j]) for i in range(n)] for j in range(p)]


def _from_columns(columns: list[list[float]], axis: int) -> np.ndarray:
    rows = np.array(columns, dtype=np.float64).T
    return rows if axis == 0 else rows.T


def _statistics(column: list[float], eps: float, ddof: int, eps_placement: str):
    n = len(column)
    if min(column) == max(column):
        # constant in floating point: zero variance, even where the summed mean is inexact
        mean, var = column[0], 0.0
    else:
        mean = 0.0
        for x in column:
            mean += x
        mean /= n
        var = 0.0
        for x in column:
            var += (x - mean) ** 2
        var /= n - ddof
    denominator = math.sqrt(var + eps) if eps_placement == "inside" else math.sqrt(var) + eps
    if denominator == 0:
        raise ValueError(
            "X: a feature has zero variance and eps=0: the normalisation divides by zero; use eps > 0"
        )
    return mean, var, denominator


def forward(
    X: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    *,
    eps: float = 1e-5,
    ddof: int = 0,
    axis: int = 0,
    eps_placement: str = "inside",
) -> np.ndarray:
    """Training-mode batch norm, one activation at a time; returns Y in the layout of X.

    Arguments are checked as in :func:`bnbackprop.batchnorm.forward` (a batch of at least 2
    and more than ``ddof``, zero variance only with ``eps > 0``, finite values, one ``gamma``
    and ``beta`` per feature); a non-finite result raises instead of being returned.
    """
    X, gamma, eps, ddof, axis = _check(X, gamma, eps, ddof, axis, eps_placement)
    beta = _vector(beta, "beta", X, axis)
    out = []
    for j, column in enumerate(_columns(X, axis)):
        mean, _, denominator = _statistics(column, eps, ddof, eps_placement)
        out.append([float(gamma[j]) * (x - mean) / denominator + float(beta[j]) for x in column])
    Y = _from_columns(out, axis)
    require_finite_output(Y, "loops.forward", "overflow of the scalar statistics; values near the float limits?")
    return Y


def backward(
    dY: np.ndarray,
    X: np.ndarray,
    gamma: np.ndarray,
    *,
    eps: float = 1e-5,
    ddof: int = 0,
    axis: int = 0,
    eps_placement: str = "inside",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(dX, dgamma, dbeta)`` by the scalar chain rule over every pair of samples.

    Arguments are checked as in :func:`forward`, ``dY`` has the shape of ``X``; a
    non-finite result raises.
    """
    X, gamma, eps, ddof, axis = _check(X, gamma, eps, ddof, axis, eps_placement)
    dY = as_float_array(dY, "dY", ndim=2)
    require_shape(dY, X.shape, "dY", "the shape of X")
    require_finite(dY, "dY")
    upstream = _columns(dY, axis)
    dX_columns, dgamma, dbeta = [], [], []
    for j, column in enumerate(_columns(X, axis)):
        n = len(column)
        mean, var, denominator = _statistics(column, eps, ddof, eps_placement)
        if eps_placement == "inside":
            d_denominator_d_var = 0.5 / math.sqrt(var + eps)
        else:
            # at zero variance x - μ = 0, so the σ term contributes nothing (as in batchnorm)
            d_denominator_d_var = 0.5 / math.sqrt(var) if var > 0 else 0.0
        g = [upstream[j][k] * float(gamma[j]) for k in range(n)]
        dgamma.append(sum(upstream[j][k] * (column[k] - mean) / denominator for k in range(n)))
        dbeta.append(sum(upstream[j]))
        dX_column = []
        for i in range(n):
            d_mean = 1.0 / n
            d_var = 0.0
            for k in range(n):
                delta = 1.0 if k == i else 0.0
                d_var += 2.0 * (column[k] - mean) * (delta - d_mean) / (n - ddof)
            d_denominator = d_denominator_d_var * d_var
            total = 0.0
            for k in range(n):
                delta = 1.0 if k == i else 0.0
                d_centred = delta - d_mean
                d_xhat = (d_centred * denominator - (column[k] - mean) * d_denominator) / denominator**2
                total += g[k] * d_xhat
            dX_column.append(total)
        dX_columns.append(dX_column)
    dX, dgamma, dbeta = _from_columns(dX_columns, axis), np.array(dgamma), np.array(dbeta)
    for name, value in (("dX", dX), ("dgamma", dgamma), ("dbeta", dbeta)):
        require_finite_output(value, f"loops.backward ({name})", "overflow; values near the float limits?")
    return dX, dgamma, dbeta
