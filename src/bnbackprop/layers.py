"""Linear layers and element-wise activations, each with its backward pass.

Samples are in rows: a linear layer maps ``X`` (N × p_in) to ``X W + 1_N bᵀ`` (N × p_out).
Its backward pass, given ``dY = ∂L/∂Y``, is ``dX = dY Wᵀ``, ``dW = Xᵀ dY`` and
``db = 1_Nᵀ dY``. A layer without bias (the usual choice just before batch norm, whose β
plays the bias's part) returns ``None`` for ``db``.

An activation ``a`` acts element by element, so its Jacobian is diagonal and its backward
pass is ``dZ = dA ⊙ a'(Z)``. ReLU and leaky ReLU have no derivative at 0; the value used
there is the parameter ``derivative_at_zero`` (0 by default, as in PyTorch; the question's
R code uses 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bnbackprop._validation import (
    as_float_array,
    require_choice,
    require_finite,
    require_finite_output,
    require_nonnegative_float,
    require_shape,
)

ACTIVATIONS = ("relu", "leaky_relu", "elu", "sigmoid", "tanh", "identity")


def _matrix(value: object, name: str) -> np.ndarray:
    array = as_float_array(value, name, ndim=2)
    require_finite(array, name)
    return array


def _linear_inputs(X: object, W: object, b: object | None) -> tuple:
    X = _matrix(X, "X")
    W = _matrix(W, "W")
    if W.shape[0] != X.shape[1]:
        raise ValueError(
            f"W must have X.shape[1] = {X.shape[1]} rows (one per input feature), "
            f"got W {W.shape} for X {X.shape}"
        )
    if b is not None:
        b = as_float_array(b, "b")
        require_shape(b, (W.shape[1],), "b", f"one entry per output feature of W {W.shape}")
        require_finite(b, "b")
    return X, W, b


def linear_forward(X: np.ndarray, W: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """``X W + 1_N bᵀ`` (or ``X W`` when ``b`` is None) for X of shape N × p_in."""
    X, W, b = _linear_inputs(X, W, b)
    with np.errstate(over="ignore", invalid="ignore"):
        Y = X @ W if b is None else X @ W + b[np.newaxis, :]
    require_finite_output(Y, "linear_forward (X W + b)", "overflow; X, W or b too large for their dtype")
    return Y


def linear_backward(
    dY: np.ndarray, X: np.ndarray, W: np.ndarray, *, bias: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(dX, dW, db)`` = ``(dY Wᵀ, Xᵀ dY, 1ᵀ dY)``; ``db`` is None when ``bias`` is False."""
    X, W, _ = _linear_inputs(X, W, None)
    dY = _matrix(dY, "dY")
    require_shape(dY, (X.shape[0], W.shape[1]), "dY", f"the output X W of X {X.shape}, W {W.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        dX = dY @ W.T
        dW = X.T @ dY
        db = dY.sum(axis=0) if bias else None
    for name, value in (("dX", dX), ("dW", dW), ("db", db)):
        if value is not None:
            require_finite_output(value, f"linear_backward ({name})", "overflow; dY, X or W too large for their dtype")
    return dX, dW, db


@dataclass
class Linear:
    """A linear layer ``X W (+ b)`` that keeps its input for the backward pass.

    ``W`` and ``b`` are the layer's parameters (an optimizer may update them in place). The
    forward pass keeps copies of ``X`` and ``W``, so the backward pass differentiates the
    forward pass that ran, even if the caller changes its ``X`` or ``W`` in between.
    """

    W: np.ndarray
    b: np.ndarray | None = None
    dW: np.ndarray | None = field(default=None, init=False)
    db: np.ndarray | None = field(default=None, init=False)
    _X: np.ndarray | None = field(default=None, init=False, repr=False)
    _W: np.ndarray | None = field(default=None, init=False, repr=False)

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Apply the layer and remember (copies of) ``X`` and ``W``."""
        Y = linear_forward(X, self.W, self.b)
        self._X = np.array(X, dtype=Y.dtype, copy=True)
        self._W = as_float_array(self.W, "W").copy()
        return Y

    __call__ = forward

    def backward(self, dY: np.ndarray) -> np.ndarray:
        """Return ``dX``; store ``dW`` (and ``db`` if the layer has a bias)."""
        if self._X is None:
            raise RuntimeError("Linear.backward called before forward")
        dX, self.dW, self.db = linear_backward(dY, self._X, self._W, bias=self.b is not None)
        return dX


@dataclass(frozen=True)
class Activation:
    """An element-wise activation: ``forward(Z)``, ``derivative(Z)`` and ``backward(dA, Z)``."""

    name: str
    function: Callable[[np.ndarray], np.ndarray]
    slope: Callable[[np.ndarray], np.ndarray]

    def forward(self, Z: np.ndarray) -> np.ndarray:
        """``a(Z)`` element by element."""
        Z = as_float_array(Z, "Z")
        require_finite(Z, "Z")
        with np.errstate(over="ignore", invalid="ignore"):
            A = self.function(Z)
        require_finite_output(A, f"{self.name} forward", "overflow for Z this large in its dtype")
        return A

    __call__ = forward

    def derivative(self, Z: np.ndarray) -> np.ndarray:
        """``a'(Z)`` element by element: the diagonal of the Jacobian."""
        Z = as_float_array(Z, "Z")
        require_finite(Z, "Z")
        return self.slope(Z)

    def backward(self, dA: np.ndarray, Z: np.ndarray) -> np.ndarray:
        """``dZ = dA ⊙ a'(Z)`` given ``dA = ∂L/∂a(Z)``."""
        dA = as_float_array(dA, "dA")
        Z = as_float_array(Z, "Z")
        require_shape(dA, Z.shape, "dA", "the shape of the activation's input Z")
        require_finite(dA, "dA")
        slope = self.derivative(Z)
        with np.errstate(over="ignore", invalid="ignore"):
            dZ = dA * slope
        require_finite_output(dZ, f"{self.name} backward (dA ⊙ a'(Z))", "overflow; dA too large for its dtype")
        return dZ


def _sigmoid(Z: np.ndarray) -> np.ndarray:
    # Two branches so that exp never overflows.
    out = np.empty_like(Z)
    positive = Z >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-Z[positive]))
    exp_z = np.exp(Z[~positive])
    out[~positive] = exp_z / (1.0 + exp_z)
    return out


def activation(
    name: str, *, negative_slope: float = 0.01, alpha: float = 1.0, derivative_at_zero: float = 0.0
) -> Activation:
    """The activation called ``name``, one of ``relu``, ``leaky_relu``, ``elu``, ``sigmoid``,
    ``tanh``, ``identity``.

    ``negative_slope`` is leaky ReLU's slope for Z < 0, ``alpha`` is ELU's
    ``α (exp(Z) - 1)`` for Z < 0, and ``derivative_at_zero`` is the value that ReLU and
    leaky ReLU use for their derivative at exactly 0.
    """
    require_choice(name, "name", ACTIVATIONS)
    negative_slope = require_nonnegative_float(negative_slope, "negative_slope")
    alpha = require_nonnegative_float(alpha, "alpha")
    try:
        at_zero = float(derivative_at_zero)
    except (TypeError, ValueError):
        raise TypeError(f"derivative_at_zero must be a real number, got {derivative_at_zero!r}") from None
    if not np.isfinite(at_zero):
        raise ValueError(f"derivative_at_zero must be finite, got {derivative_at_zero!r}")

    def kink(Z: np.ndarray, low: float, high: float) -> np.ndarray:
        return np.where(Z > 0, high, np.where(Z < 0, low, at_zero)).astype(Z.dtype)

    if name == "relu":
        return Activation(name, lambda Z: np.maximum(Z, 0).astype(Z.dtype), lambda Z: kink(Z, 0.0, 1.0))
    if name == "leaky_relu":
        return Activation(
            name,
            lambda Z: np.where(Z > 0, Z, negative_slope * Z).astype(Z.dtype),
            lambda Z: kink(Z, negative_slope, 1.0),
        )
    if name == "elu":
        return Activation(
            name,
            lambda Z: np.where(Z > 0, Z, alpha * np.expm1(np.minimum(Z, 0))).astype(Z.dtype),
            lambda Z: np.where(Z > 0, 1.0, alpha * np.exp(np.minimum(Z, 0))).astype(Z.dtype),
        )
    if name == "sigmoid":
        return Activation(name, _sigmoid, lambda Z: _sigmoid(Z) * (1 - _sigmoid(Z)))
    if name == "tanh":
        return Activation(name, np.tanh, lambda Z: 1 - np.tanh(Z) ** 2)
    return Activation(name, lambda Z: Z.copy(), np.ones_like)


def relu(Z: np.ndarray) -> np.ndarray:
    """``max(Z, 0)`` element by element."""
    return activation("relu")(Z)


def leaky_relu(Z: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
    """``Z`` where positive, ``negative_slope · Z`` elsewhere."""
    return activation("leaky_relu", negative_slope=negative_slope)(Z)


def elu(Z: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """``Z`` where positive, ``α (exp(Z) - 1)`` elsewhere."""
    return activation("elu", alpha=alpha)(Z)


def sigmoid(Z: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-Z))``, computed without overflow."""
    return activation("sigmoid")(Z)


def tanh(Z: np.ndarray) -> np.ndarray:
    """Hyperbolic tangent element by element."""
    return activation("tanh")(Z)
