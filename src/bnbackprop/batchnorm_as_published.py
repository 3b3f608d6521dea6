"""The sources' batch-norm formulas exactly as they print them, kept to be judged.

Nothing here is meant for use: each function reproduces one source's formula or code so
that the book can compare it with the exact gradient and say where it holds. The book's
errata page lists the verdicts.
"""

from __future__ import annotations

import numpy as np


def course_notes_dZ(dZhat: np.ndarray, Z: np.ndarray, G: np.ndarray) -> np.ndarray:
    """The course notes' final ∂L/∂Z (features × batch, Z of shape n × K).

    ``∂L/∂Z_ij = Σ_k ∂L/∂Ẑ_ik · G_i/(K σ_i) · (δ_jk K − 1 − (Z_ik − μ_i)(Z_ij − μ_i)/σ_i²)``

    The notes' forward pass divides by ``σ + ε``, but this formula contains no ε.
    """
    n, K = Z.shape
    mu = Z.mean(axis=1, keepdims=True)
    sigma = np.sqrt(((Z - mu) ** 2).mean(axis=1, keepdims=True))
    G = np.asarray(G).reshape(n, 1)
    dZ = np.zeros_like(Z, dtype=np.float64)
    for i in range(n):
        for j in range(K):
            total = 0.0
            for k in range(K):
                delta = 1.0 if j == k else 0.0
                bracket = delta * K - 1 - (Z[i, k] - mu[i, 0]) * (Z[i, j] - mu[i, 0]) / sigma[i, 0] ** 2
                total += dZhat[i, k] * G[i, 0] / (K * sigma[i, 0]) * bracket
            dZ[i, j] = total
    return dZ


def course_notes_dZbar_dZ(Z: np.ndarray, i: int, j: int, k: int) -> float:
    """The notes' ∂Z̄_ik/∂Z_ij = (δ_jk − 1/K)/σ_i − (Z_ik − μ_i)/σ_i² · (Z_ij − μ_i)/(K σ_i)."""
    K = Z.shape[1]
    mu = Z[i].mean()
    sigma = np.sqrt(((Z[i] - mu) ** 2).mean())
    delta = 1.0 if j == k else 0.0
    return (delta - 1 / K) / sigma - (Z[i, k] - mu) / sigma**2 * (Z[i, j] - mu) / (K * sigma)


def blog_dX(accum_grad: np.ndarray, X_centered: np.ndarray, stddev_inv: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """The blog post's ``backward_pass`` line for [C], verbatim (samples in rows)."""
    batch_size = accum_grad.shape[0]
    return (1 / batch_size) * gamma * stddev_inv * (
        batch_size * accum_grad
        - np.sum(accum_grad, axis=0)
        - X_centered * stddev_inv**2 * np.sum(accum_grad * X_centered, axis=0)
    )


def blog_dgamma_dbeta(accum_grad: np.ndarray, X_norm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The blog post's [A] and [B]: ``Σ_i dY_i x̂_i`` and ``Σ_i dY_i``."""
    return np.sum(accum_grad * X_norm, axis=0), np.sum(accum_grad, axis=0)


def blog_dxhat_eq5(accum_grad: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """The blog post's (5) as printed: ``∂f/∂x̂_i = Σ_i ∂f/∂x̂*_i · γ``, a sum over the batch."""
    return np.sum(accum_grad, axis=0) * gamma


def blog_mean_term(accum_grad: np.ndarray, var: np.ndarray, eps: float) -> np.ndarray:
    """The blog post's printed mean term ``∂f/∂μ · ∂μ/∂x_i = −1/√(σ²+ε) · Σ_j ∂f/∂x̂*_j``."""
    return -np.sum(accum_grad, axis=0) / np.sqrt(var + eps)
