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


# --- Classification: softmax, cross-entropy and the blog's per-class binary cross-entropy ---
#
# Logits Z are N × C (samples in rows), labels are N integers in [0, C) or an N × C one-hot
# matrix. ``softmax_cross_entropy`` fuses the loss with its gradient ``(S - Y) / N`` (or
# ``S - Y`` for ``reduction="sum"``), computed through log-sum-exp so that no logit overflows.


def _logits(Z: object, name: str = "Z") -> np.ndarray:
    Z = as_float_array(Z, name, ndim=2)
    if Z.shape[0] == 0 or Z.shape[1] < 2:
        raise ValueError(f"{name} must be N × C with N >= 1 samples and C >= 2 classes, got shape {Z.shape}")
    require_finite(Z, name)
    return Z


def one_hot(labels: object, num_classes: int) -> np.ndarray:
    """The N × ``num_classes`` one-hot matrix of integer ``labels`` (float64)."""
    return _one_hot(labels, num_classes, "labels")


def _one_hot(labels: object, num_classes: int, name: str) -> np.ndarray:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of class indices, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.issubdtype(labels.dtype, np.floating) or not np.all(np.isfinite(labels)) or np.any(
            labels != np.round(labels)
        ):
            raise TypeError(f"{name} must hold integer class indices, got dtype {labels.dtype}")
        labels = labels.astype(np.int64)
    bad = (labels < 0) | (labels >= num_classes)
    if np.any(bad):
        raise ValueError(
            f"{name}: class labels must lie in [0, {num_classes}); {int(bad.sum())} do not (e.g. {labels[bad][0]})"
        )
    return np.eye(num_classes)[labels]


def _targets(labels: object, N: int, C: int, name: str = "labels") -> np.ndarray:
    """Labels (N integers) or one-hot rows (N × C) as an N × C float matrix."""
    array = np.asarray(labels)
    if array.ndim == 2:
        Y = as_float_array(array, name)
        require_shape(Y, (N, C), name, f"one one-hot row of width C = {C} per row of the logits")
        if not np.all((Y == 0) | (Y == 1)) or not np.all(Y.sum(axis=1) == 1):
            raise ValueError(f"{name}: one-hot labels must hold a single 1 per row and 0 elsewhere")
        return Y
    if array.ndim != 1 or array.shape[0] != N:
        raise ValueError(f"{name} must be {N} class indices or an {N} × {C} one-hot matrix, got shape {array.shape}")
    return _one_hot(array, C, name)


def log_softmax(Z: np.ndarray) -> np.ndarray:
    """``Z - logsumexp(Z)`` row by row, stable for any finite logits."""
    Z = _logits(Z)
    with np.errstate(over="ignore", invalid="ignore"):
        shifted = Z - Z.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    require_finite_output(
        log_p, "log_softmax", "a row of the logits Z spans more than the float range (max - min overflows)"
    )
    return log_p


def softmax(Z: np.ndarray) -> np.ndarray:
    """Row-wise softmax ``exp(Z - max) / Σ exp(Z - max)``: the shift by the row's max changes nothing
    mathematically and keeps ``exp`` from overflowing."""
    return np.exp(log_softmax(Z))


def softmax_cross_entropy(Z: np.ndarray, labels: object, *, reduction: str = "mean") -> tuple[float, np.ndarray]:
    """Categorical cross-entropy of softmax(Z) and its gradient with respect to the logits, fused.

    ``L = -Σ_n log softmax(Z)_{n, y_n}`` (divided by N for ``"mean"``) and
    ``∂L/∂Z = softmax(Z) - Y`` (divided by N for ``"mean"``). ``labels`` are N class indices or
    an N × C one-hot matrix. Returns ``(loss, dZ)``.
    """
    require_choice(reduction, "reduction", REDUCTIONS)
    Z = _logits(Z)
    N, C = Z.shape
    Y = _targets(labels, N, C)
    log_p = log_softmax(Z)
    loss = -float(np.sum(Y * log_p))
    dZ = np.exp(log_p) - Y
    if reduction == "mean":
        loss, dZ = loss / N, dZ / N
    return loss, dZ.astype(Z.dtype, copy=False)


def softmax_vjp(S: np.ndarray, dS: np.ndarray) -> np.ndarray:
    """The full vector–Jacobian product of the softmax: ``dZ = S ⊙ (dS - (dS ⊙ S) 1 1ᵀ)``.

    Row n of softmax has Jacobian ``diag(s) - s sᵀ``; ``S`` is the softmax output (rows on the
    simplex) and ``dS = ∂L/∂S``. Keeping only ``diag(s(1 - s))`` drops the ``-s_i s_j`` terms.
    """
    S = as_float_array(S, "S", ndim=2)
    dS = as_float_array(dS, "dS", ndim=2)
    require_shape(dS, S.shape, "dS", "the shape of the softmax output S")
    require_finite(S, "S")
    require_finite(dS, "dS")
    if np.any(S < 0) or not np.allclose(S.sum(axis=1), 1.0, rtol=0, atol=1e-6):
        raise ValueError("S must be a softmax output: non-negative rows that sum to 1")
    with np.errstate(over="ignore", invalid="ignore"):
        dZ = S * (dS - np.sum(dS * S, axis=1, keepdims=True))
    require_finite_output(dZ, "softmax_vjp", "dS is too large: dS - (dS ⊙ S) 1 overflows")
    return dZ


_CLIP_CAUSE = (
    "P holds 0 or 1 after clipping: clip is 0, or too small to move P away from 0 and 1 in P's dtype; "
    "raise clip"
)


def _probabilities(Y: object, P: object, clip: float) -> tuple[np.ndarray, np.ndarray]:
    from bnbackprop._validation import require_nonnegative_float

    P = as_float_array(P, "P", ndim=2)
    require_finite(P, "P")
    if np.any((P < 0) | (P > 1)):
        raise ValueError("P must hold probabilities in [0, 1]")
    Y = _targets(Y, *P.shape, name="Y")
    clip = require_nonnegative_float(clip, "clip")
    if clip >= 0.5:
        raise ValueError(f"clip must lie in [0, 0.5), got {clip}")
    return Y, np.clip(P, clip, 1 - clip)


def binary_cross_entropy_per_class(Y: object, P: object, *, clip: float = 1e-15) -> np.ndarray:
    """The blog's loss: ``-y log p - (1 - y) log(1 - p)`` entry by entry (N × C, not summed).

    ``P`` is clipped to ``[clip, 1 - clip]`` first, as the blog does.
    """
    Y, P = _probabilities(Y, P, clip)
    with np.errstate(divide="ignore", invalid="ignore"):
        loss = -Y * np.log(P) - (1 - Y) * np.log(1 - P)
    require_finite_output(loss, "binary_cross_entropy_per_class", _CLIP_CAUSE)
    return loss


def binary_cross_entropy_per_class_gradient(Y: object, P: object, *, clip: float = 1e-15) -> np.ndarray:
    """``∂/∂P`` of the summed per-class binary cross-entropy: ``-y/p + (1 - y)/(1 - p)``."""
    Y, P = _probabilities(Y, P, clip)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        gradient = -Y / P + (1 - Y) / (1 - P)
    require_finite_output(gradient, "binary_cross_entropy_per_class_gradient", _CLIP_CAUSE)
    return gradient
