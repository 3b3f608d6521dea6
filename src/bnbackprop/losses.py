"""Squared-error loss, summed or averaged, and its gradient with respect to the prediction.

``reduction="sum"``:  ``L = Σ (y - ŷ)²``,       ``∂L/∂ŷ = -2 (y - ŷ)``;
``reduction="mean"``: ``L = Σ (y - ŷ)² / n``,   ``∂L/∂ŷ = -2 (y - ŷ) / n``,

where n is the number of entries of ``y``. The two differ by the constant factor n, which
matters when a source states one and computes the other (the question of seed 000 states
the mean and codes the sum).
"""

from __future__ import annotations

import numpy as np

from bnbackprop._validation import (
    as_float_array,
    require_choice,
    require_finite,
    require_finite_output,
    require_shape,
)

REDUCTIONS = ("sum", "mean")


def _pair(y: object, y_hat: object, reduction: object) -> tuple[np.ndarray, np.ndarray]:
    require_choice(reduction, "reduction", REDUCTIONS)
    y = as_float_array(y, "y")
    y_hat = as_float_array(y_hat, "y_hat")
    require_shape(y_hat, y.shape, "y_hat", "the shape of the targets y")
    if y.size == 0:
        raise ValueError("y is empty: the squared error of no samples is undefined")
    require_finite(y, "y")
    require_finite(y_hat, "y_hat")
    return y, y_hat


def squared_error(y: np.ndarray, y_hat: np.ndarray, *, reduction: str = "sum") -> float:
    """``Σ (y - ŷ)²`` (``reduction="sum"``) or its mean over the entries (``"mean"``)."""
    y, y_hat = _pair(y, y_hat, reduction)
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(np.sum((y - y_hat) ** 2))
    require_finite_output(total, "squared_error", "the squared residuals overflow float64; y or y_hat too large")
    return total if reduction == "sum" else total / y.size


def squared_error_gradient(y: np.ndarray, y_hat: np.ndarray, *, reduction: str = "sum") -> np.ndarray:
    """``∂L/∂ŷ`` with the shape of ``y_hat``: ``-2 (y - ŷ)``, divided by n for ``"mean"``."""
    y, y_hat = _pair(y, y_hat, reduction)
    with np.errstate(over="ignore", invalid="ignore"):
        gradient = -2.0 * (y - y_hat)
    require_finite_output(gradient, "squared_error_gradient", "the residuals overflow; y or y_hat too large")
    return gradient if reduction == "sum" else gradient / y.size
