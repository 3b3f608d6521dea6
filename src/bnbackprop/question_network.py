"""The network of the question in seed 000, with exact gradients in matrix form.

The network maps ``X`` (N × p1) to a prediction ``ŷ`` (N × 1)::

    Z = X Γ1                      (p1 × p2 weights, no bias)
    B = b(Z) = x̂ Γ + 1_N βᵀ       x̂ = (Z - 1_N μᵀ) S⁻¹,  Γ = diag(γ),  S = diag(σ)
    A = a(B)                      element-wise activation (ReLU in the question)
    ŷ = A Γ2                      (p2 × 1 weights)

with ``B = Z`` when batch norm is switched off. The question's R code normalises with
``scale()``, whose σ is the sample standard deviation (``ddof=1``) with no ε; those are the
defaults here. Its data are ``y = ŷ + u`` at the drawn parameters.

Gradients of ``R = Σ (y - ŷ)²`` (``reduction="sum"``, what the question's code computes)
or of ``R / N`` (``"mean"``, what its text states), in matrix form::

    E    = ∂R/∂ŷ = -2 (y - ŷ)  [/ N]
    ∂R/∂Γ2 = Aᵀ E
    W    = ∂R/∂B = a'(B) ⊙ (E Γ2ᵀ)                       the question's "stub"
    ∂R/∂β = 1_Nᵀ W,   ∂R/∂γ = 1_Nᵀ (W ⊙ x̂)
    G    = W Γ
    ∂R/∂Z = (C_N G - x̂ diag(1_Nᵀ (x̂ ⊙ G)) / (N - ddof)) S⁻¹,   C_N = I_N - 1_N 1_Nᵀ / N
    ∂R/∂Γ1 = Xᵀ ∂R/∂Z

The book derives the ∂R/∂Z line in the matrix-backprop chapter. With
``through_statistics=False`` the batch mean and standard deviation are treated as
constants: ``∂R/∂Z = G S⁻¹``, the gradient the question's Update 3 writes down.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from bnbackprop import batchnorm, layers, loops, losses
from bnbackprop._validation import (
    as_float_array,
    require_finite,
    require_int,
    require_nonnegative_float,
    require_shape,
)

DATA_FILE = "question_000.json"


@dataclass(frozen=True)
class QuestionData:
    """The question's draws after ``set.seed(1)`` in R, and its targets ``y``.

    ``X`` is N × p1 (integers from -5 to 5), ``G1`` is p1 × p2, ``G2`` is p2 × 1, ``u`` is
    N × 1, ``gamma = (2, 3, 4, 5)`` and ``beta = -gamma``. ``y`` is the question's
    ``a(b(X G1)) G2 + u``. ``r_results`` holds what R itself computed for each printed
    matrix of the question (full precision), keyed by the R variable names.
    """

    X: np.ndarray
    G1: np.ndarray
    G2: np.ndarray
    u: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    y: np.ndarray
    r_results: dict[str, np.ndarray] = field(repr=False)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(N, p1, p2)``."""
        return self.X.shape[0], self.G1.shape[0], self.G1.shape[1]


def _from_json(entry: dict) -> np.ndarray:
    values = np.asarray(entry["column_major"], dtype=np.float64)
    return values.reshape(entry["nrow"], entry["ncol"], order="F")


def load_question_data() -> QuestionData:
    """Load the question's data (package data written by ``make_question_000.R``)."""
    text = (resources.files("bnbackprop") / "data" / DATA_FILE).read_text(encoding="utf-8")
    raw = json.loads(text)
    r_results = {name: _from_json(entry) for name, entry in raw["r_results"].items()}
    return QuestionData(
        X=_from_json(raw["X"]),
        G1=_from_json(raw["G1"]),
        G2=_from_json(raw["G2"]),
        u=_from_json(raw["u"]),
        gamma=_from_json(raw["gamma"]).ravel(),
        beta=_from_json(raw["beta"]).ravel(),
        y=r_results["y"],
        r_results=r_results,
    )


@dataclass(frozen=True)
class NetworkGradients:
    """Gradients of the loss; ``dgamma`` and ``dbeta`` are None without batch norm."""

    dG1: np.ndarray
    dG2: np.ndarray
    dgamma: np.ndarray | None
    dbeta: np.ndarray | None


@dataclass(frozen=True)
class ForwardCache:
    """Intermediate matrices of one forward pass (names as in the module docstring)."""

    X: np.ndarray
    Z: np.ndarray
    xhat: np.ndarray | None
    inv_denom: np.ndarray | None
    B: np.ndarray
    A: np.ndarray
    y_hat: np.ndarray

    @property
    def inv_std(self) -> np.ndarray | None:
        """Former name of ``inv_denom``, 1/√(σ² + ε) of batch norm; kept for old code."""
        return self.inv_denom


class QuestionNetwork:
    """``ŷ = a(b(X Γ1)) Γ2``, with or without batch norm, and its exact gradients.

    ``ddof=1`` and ``eps=0`` reproduce R's ``scale()``. ReLU's derivative at exactly 0 is
    ``derivative_at_zero`` (0 by default; no entry of the question's data sits there).
    """

    def __init__(
        self,
        *,
        batch_norm: bool = True,
        activation: str = "relu",
        ddof: int = 1,
        eps: float = 0.0,
        derivative_at_zero: float = 0.0,
    ) -> None:
        if not isinstance(batch_norm, bool):
            raise TypeError(f"batch_norm must be True or False, got {batch_norm!r}")
        self.batch_norm = batch_norm
        self.ddof = require_int(ddof, "ddof", minimum=0)
        self.eps = require_nonnegative_float(eps, "eps")
        self.activation = layers.activation(activation, derivative_at_zero=derivative_at_zero)

    def _check(self, X, G1, G2, gamma, beta):
        X = as_float_array(X, "X", ndim=2)
        G1 = as_float_array(G1, "G1", ndim=2)
        G2 = as_float_array(G2, "G2")
        if G2.ndim == 1:
            G2 = G2[:, np.newaxis]
        for name, value in (("X", X), ("G1", G1), ("G2", G2)):
            require_finite(value, name)
        if G1.shape[0] != X.shape[1]:
            raise ValueError(f"G1 must have X.shape[1] = {X.shape[1]} rows, got G1 {G1.shape} for X {X.shape}")
        require_shape(G2, (G1.shape[1], 1), "G2", f"one weight per hidden unit of G1 {G1.shape}")
        if self.batch_norm:
            if gamma is None or beta is None:
                raise ValueError("gamma and beta are required when batch_norm is True")
            # batchnorm.forward checks their shapes and values.
        elif gamma is not None or beta is not None:
            raise ValueError("gamma and beta must be None when batch_norm is False")
        return X, G1, G2

    def forward(self, X, G1, G2, gamma=None, beta=None) -> ForwardCache:
        """The forward pass; returns every intermediate matrix."""
        X, G1, G2 = self._check(X, G1, G2, gamma, beta)
        Z = X @ G1
        if self.batch_norm:
            B, bn = batchnorm.forward(Z, gamma, beta, eps=self.eps, ddof=self.ddof)
            xhat, inv_denom = bn.xhat, bn.inv_denom
        else:
            B, xhat, inv_denom = Z, None, None
        A = self.activation(B)
        return ForwardCache(X=X, Z=Z, xhat=xhat, inv_denom=inv_denom, B=B, A=A, y_hat=A @ G2)

    def predict(self, X, G1, G2, gamma=None, beta=None) -> np.ndarray:
        """``ŷ`` (N × 1)."""
        return self.forward(X, G1, G2, gamma, beta).y_hat

    def loss(self, X, y, G1, G2, gamma=None, beta=None, *, reduction: str = "sum") -> float:
        """``Σ (y - ŷ)²`` or its mean over the N samples."""
        y_hat = self.predict(X, G1, G2, gamma, beta)
        return losses.squared_error(_column(y, "y", y_hat), y_hat, reduction=reduction)

    def stub(self, X, y, G1, G2, gamma=None, beta=None, *, reduction: str = "sum") -> np.ndarray:
        """``W = ∂R/∂B = a'(B) ⊙ (E Γ2ᵀ)``, the question's "stub" (N × p2)."""
        cache = self.forward(X, G1, G2, gamma, beta)
        return self._stub(cache, y, G2, reduction)

    def _stub(self, cache: ForwardCache, y, G2, reduction: str) -> np.ndarray:
        E = losses.squared_error_gradient(_column(y, "y", cache.y_hat), cache.y_hat, reduction=reduction)
        G2 = np.asarray(G2, dtype=np.float64).reshape(-1, 1)
        return self.activation.derivative(cache.B) * (E @ G2.T)

    def gradients(
        self, X, y, G1, G2, gamma=None, beta=None, *, reduction: str = "sum", through_statistics: bool = True
    ) -> NetworkGradients:
        """Exact gradients in closed matrix form (see the module docstring).

        ``through_statistics=False`` holds the batch mean and standard deviation constant,
        which is not the gradient of the network but the one Update 3 of the question uses.
        """
        if not isinstance(through_statistics, bool):
            raise TypeError(f"through_statistics must be True or False, got {through_statistics!r}")
        cache = self.forward(X, G1, G2, gamma, beta)
        E = losses.squared_error_gradient(_column(y, "y", cache.y_hat), cache.y_hat, reduction=reduction)
        G2 = np.asarray(G2, dtype=np.float64).reshape(-1, 1)
        dG2 = cache.A.T @ E
        W = self.activation.derivative(cache.B) * (E @ G2.T)
        if not self.batch_norm:
            return NetworkGradients(dG1=cache.X.T @ W, dG2=dG2, dgamma=None, dbeta=None)
        N = W.shape[0]
        ones = np.ones((N, 1))
        xhat = cache.xhat
        dbeta = (ones.T @ W).ravel()
        dgamma = (ones.T @ (W * xhat)).ravel()
        G = W @ np.diag(np.asarray(gamma, dtype=np.float64))
        S_inv = np.diag(cache.inv_denom)
        if through_statistics:
            centring = np.eye(N) - ones @ ones.T / N
            projection = np.diag((ones.T @ (xhat * G)).ravel()) / (N - self.ddof)
            dZ = (centring @ G - xhat @ projection) @ S_inv
        else:
            dZ = G @ S_inv
        return NetworkGradients(dG1=cache.X.T @ dZ, dG2=dG2, dgamma=dgamma, dbeta=dbeta)

    def gradients_loop(self, X, y, G1, G2, gamma=None, beta=None, *, reduction: str = "sum") -> NetworkGradients:
        """The same gradients by the scalar chain rule with explicit loops (a slow reference).

        Batch norm goes through :mod:`bnbackprop.loops`, which never uses the closed form.
        """
        X, G1, G2 = self._check(X, G1, G2, gamma, beta)
        N, p1 = X.shape
        p2 = G1.shape[1]
        Z = np.zeros((N, p2))
        for n in range(N):
            for j in range(p2):
                for i in range(p1):
                    Z[n, j] += X[n, i] * G1[i, j]
        if self.batch_norm:
            B = loops.forward(Z, gamma, beta, eps=self.eps, ddof=self.ddof)
        else:
            B = Z
        A = np.zeros_like(B)
        slope = np.zeros_like(B)
        for n in range(N):
            for j in range(p2):
                A[n, j] = float(self.activation(np.array(B[n, j])))
                slope[n, j] = float(self.activation.derivative(np.array(B[n, j])))
        y = _column(y, "y", np.zeros((N, 1)))
        scale = 1.0 if reduction == "sum" else 1.0 / N
        losses.squared_error(y, np.zeros((N, 1)), reduction=reduction)  # validates reduction
        dy_hat = np.zeros(N)
        for n in range(N):
            y_hat = 0.0
            for j in range(p2):
                y_hat += A[n, j] * G2[j, 0]
            dy_hat[n] = -2.0 * (y[n, 0] - y_hat) * scale
        dG2 = np.zeros((p2, 1))
        dB = np.zeros((N, p2))
        for j in range(p2):
            for n in range(N):
                dG2[j, 0] += A[n, j] * dy_hat[n]
                dB[n, j] = dy_hat[n] * G2[j, 0] * slope[n, j]
        dgamma = dbeta = None
        if self.batch_norm:
            dZ, dgamma, dbeta = loops.backward(dB, Z, gamma, eps=self.eps, ddof=self.ddof)
        else:
            dZ = dB
        dG1 = np.zeros((p1, p2))
        for i in range(p1):
            for j in range(p2):
                for n in range(N):
                    dG1[i, j] += X[n, i] * dZ[n, j]
        return NetworkGradients(dG1=dG1, dG2=dG2, dgamma=dgamma, dbeta=dbeta)


def _column(y: object, name: str, like: np.ndarray) -> np.ndarray:
    """``y`` as an N × 1 column matching the prediction ``like``."""
    y = as_float_array(y, name)
    if y.ndim == 1:
        y = y[:, np.newaxis]
    require_shape(y, like.shape, name, "one target per sample, as a column N × 1")
    return y
