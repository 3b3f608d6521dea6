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

from bnbackprop._validation import as_float_array, require_choice


def _check(X: np.ndarray, axis: int, eps_placement: str) -> np.ndarray:
    require_choice(axis, "axis", (0, 1))
    require_choice(eps_placement, "eps_placement", ("inside", "outside"))
    return as_float_array(X, "X", ndim=2)


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
    mean = 0.0
    for x in column:
        mean += x
    mean /= n
    var = 0.0
    for x in column:
        var += (x - mean) ** 2
    var /= n - ddof
    denominator = math.sqrt(var + eps) if eps_placement == "inside" else math.sqrt(var) + eps
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
    """Training-mode batch norm, one activation at a time; returns Y in the layout of X."""
    X = _check(X, axis, eps_placement)
    out = []
    for j, column in enumerate(_columns(X, axis)):
        mean, _, denominator = _statistics(column, eps, ddof, eps_placement)
        out.append([float(gamma[j]) * (x - mean) / denominator + float(beta[j]) for x in column])
    return _from_columns(out, axis)


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
    """``(dX, dgamma, dbeta)`` by the scalar chain rule over every pair of samples."""
    X = _check(X, axis, eps_placement)
    dY = as_float_array(dY, "dY", ndim=2)
    upstream = _columns(dY, axis)
    dX_columns, dgamma, dbeta = [], [], []
    for j, column in enumerate(_columns(X, axis)):
        n = len(column)
        mean, var, denominator = _statistics(column, eps, ddof, eps_placement)
        if eps_placement == "inside":
            d_denominator_d_var = 0.5 / math.sqrt(var + eps)
        else:
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
    return _from_columns(dX_columns, axis), np.array(dgamma), np.array(dbeta)
