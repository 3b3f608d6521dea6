"""The question's R code and formulas (seed 000) translated line by line, kept to be judged.

Nothing here is meant for use. Each function reproduces one listing or displayed formula
of the question or of its answer, with R's semantics, so that the book can rerun it on
the question's data, reproduce the printed numbers and compare them with the exact
gradients of :mod:`bnbackprop.question_network`. The defects are kept on purpose; the
parameters that switch them off (``ap``, ``fix_index``, ``w``) exist so that the book can
show which defect causes which difference.

R's ``scale()`` centres each column and divides it by its sample standard deviation
(``ddof=1``). The question's ``ap`` is::

    ap <- function (v) { v[v < 0] <- 0; v[v >= 0] <- 1; v }

Its second line runs after the first has set every negative entry to 0, so it sets every
entry to 1: :func:`r_ap` returns a matrix of ones whatever its input.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bnbackprop.matcalc import diagonal_selection_matrix, vec
from bnbackprop.question_network import QuestionData


def r_scale(M: np.ndarray) -> np.ndarray:
    """R's ``scale(M)``: centre each column, divide by its sample standard deviation."""
    return (M - M.mean(axis=0)) / M.std(axis=0, ddof=1)


def r_a(v: np.ndarray) -> np.ndarray:
    """The question's ``a``: ReLU."""
    v = np.array(v, dtype=np.float64)
    v[v < 0] = 0
    return v


def r_ap(v: np.ndarray) -> np.ndarray:
    """The question's ``ap``, verbatim: both assignments in order (it returns all ones)."""
    v = np.array(v, dtype=np.float64)
    v[v < 0] = 0
    v[v >= 0] = 1
    return v


def relu_derivative(v: np.ndarray) -> np.ndarray:
    """What ``ap`` was meant to compute: 1 where ``v >= 0``, 0 elsewhere."""
    return (np.asarray(v) >= 0).astype(np.float64)


def r_b(x: np.ndarray, beta: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """The question's matrix batch norm ``b``: ``(γ ⊗ 1_N) * scale(x) + (β ⊗ 1_N)``."""
    N = x.shape[0]
    gk = np.kron(gamma[np.newaxis, :], np.ones((N, 1)))
    bk = np.kron(beta[np.newaxis, :], np.ones((N, 1)))
    return gk * r_scale(x) + bk


def r_bi(x: np.ndarray, i: int, beta: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """The question's activation-wise ``bi(x, i)``: column ``i`` of ``b(x)`` (0-based here)."""
    return gamma[i] * r_scale(x)[:, i] + beta[i]


def _stub(data: QuestionData, ap: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    B = r_b(data.X @ data.G1, data.beta, data.gamma)
    return (-2 * data.u @ data.G2.T) * ap(B)


def stub(data: QuestionData, *, ap: Callable[[np.ndarray], np.ndarray] = r_ap) -> np.ndarray:
    """``stub <- (-2*u %*% t(G2) * ap(b(X%*%G1)))`` (N × p2)."""
    return _stub(data, ap)


def drdb_matrix(data: QuestionData, *, ap: Callable[[np.ndarray], np.ndarray] = r_ap) -> np.ndarray:
    """Update 1's ``drdb <- 1_Nᵀ %*% (-2*u %*% t(G2) * ap(b(X%*%G1)))`` (length p2)."""
    N = data.X.shape[0]
    return (np.ones((1, N)) @ _stub(data, ap)).ravel()


def drdb_loop(
    data: QuestionData, *, ap: Callable[[np.ndarray], np.ndarray] = r_ap, fix_index: bool = False
) -> np.ndarray:
    """Update 1's loop ``sum(-2*u*matrix(ap(bi(X[,i, drop=FALSE] %*% G1[i,], i)))*G2[i])``.

    As written, the pre-activation is the outer product ``X[,i] G1[i,]`` of input column i
    and row i of G1, not hidden unit i's ``X G1[,i]``; ``fix_index=True`` uses the latter.
    """
    p2 = data.G1.shape[1]
    out = np.zeros(p2)
    for i in range(p2):
        if fix_index:
            x = data.X @ data.G1
        else:
            x = data.X[:, [i]] @ data.G1[[i], :]
        activation_slope = ap(r_bi(x, i, data.beta, data.gamma))
        out[i] = np.sum(-2 * data.u.ravel() * activation_slope * data.G2[i, 0])
    return out


def w_as_coded(data: QuestionData) -> np.ndarray:
    """Update 3's code: ``w <- (γ ⊗ 1_N) * (sd(X G1) ⊗ 1_N)``, a product with σ."""
    N = data.X.shape[0]
    sd = (data.X @ data.G1).std(axis=0, ddof=1)
    return np.kron(data.gamma[np.newaxis, :], np.ones((N, 1))) * np.kron(sd[np.newaxis, :], np.ones((N, 1)))


def w_as_written(data: QuestionData) -> np.ndarray:
    """Update 3's text: ``w = (γ ⊗ 1_N) ⊙ σ⁻¹``, a quotient by σ."""
    N = data.X.shape[0]
    sd = (data.X @ data.G1).std(axis=0, ddof=1)
    return np.kron((data.gamma / sd)[np.newaxis, :], np.ones((N, 1)))


def drdG1_matrix(
    data: QuestionData, *, ap: Callable[[np.ndarray], np.ndarray] = r_ap, w: np.ndarray | None = None
) -> np.ndarray:
    """Update 3's ``drdG1 <- t(X) %*% (stub*w)`` (p1 × p2); ``w`` defaults to the coded one."""
    w = w_as_coded(data) if w is None else w
    return data.X.T @ (_stub(data, ap) * w)


def drdG1_loop(
    data: QuestionData, *, ap: Callable[[np.ndarray], np.ndarray] = r_ap, w: np.ndarray | None = None
) -> np.ndarray:
    """Update 3's loop ``t(X[,i]) %*% diag(w[,j]) %*% stub[,j]`` over i and j."""
    w = w_as_coded(data) if w is None else w
    s = _stub(data, ap)
    p1, p2 = data.G1.shape
    out = np.zeros((p1, p2))
    for i in range(p1):
        for j in range(p2):
            out[i, j] = data.X[:, i] @ np.diag(w[:, j]) @ s[:, j]
    return out


def drdg_matrix(data: QuestionData, *, ap: Callable[[np.ndarray], np.ndarray] = r_ap) -> np.ndarray:
    """Update 4's ``drdg <- t(scale(X G1)) %*% (stub * γ ⊗ 1_N)`` (p2 × p2)."""
    N = data.X.shape[0]
    gk = np.kron(data.gamma[np.newaxis, :], np.ones((N, 1)))
    return r_scale(data.X @ data.G1).T @ (_stub(data, ap) * gk)


def drdg_loop(data: QuestionData, *, ap: Callable[[np.ndarray], np.ndarray] = r_ap) -> np.ndarray:
    """Update 4's loop ``t(scale(X G1)[,i]) %*% (stub[,i] * gamma[i])`` (length p2)."""
    xs = r_scale(data.X @ data.G1)
    s = _stub(data, ap)
    return np.array([xs[:, i] @ (s[:, i] * data.gamma[i]) for i in range(s.shape[1])])


def update1_kronecker_matrix(beta: np.ndarray, N: int) -> np.ndarray:
    """Update 1's ``diag(rep(1, ncol(A)*ncol(B))) %*% diag(rep(1, ncol(A))) %x% B %x% diag(nrow(A))``.

    With ``A = t(matrix(beta))`` (1 × p) and ``B = matrix(rep(1, N))`` (N × 1). R's
    ``%*%`` and ``%x%`` share one precedence and group from the left.
    """
    A = np.asarray(beta, dtype=np.float64)[np.newaxis, :]
    B = np.ones((N, 1))
    left = np.eye(A.shape[1] * B.shape[1]) @ np.eye(A.shape[1])
    return np.kron(np.kron(left, B), np.eye(A.shape[0]))


def stated_gradients_without_batch_norm(
    X: np.ndarray,
    G1: np.ndarray,
    G2: np.ndarray,
    residual: np.ndarray,
    *,
    ap: Callable[[np.ndarray], np.ndarray] = relu_derivative,
) -> tuple[np.ndarray, np.ndarray]:
    """The question's two displayed gradients, with the labels it gives them.

    Returns ``(labelled ∂R/∂Γ1, labelled ∂R/∂Γ2)`` =
    ``(-2 Vᵀ ε̂, Xᵀ (a'(X Γ1) ⊙ -2 ε̂ Γ2ᵀ))`` with ``V = a(X Γ1)`` and ``ε̂ = y - ŷ``.
    """
    V = r_a(X @ G1)
    return -2 * V.T @ residual, X.T @ (ap(X @ G1) * (-2 * residual @ G2.T))


def answer_dbeta(W: np.ndarray) -> np.ndarray:
    """The answer's ``∇_β R = e_Nᵀ W`` with ``W`` the stub."""
    return (np.ones((1, W.shape[0])) @ W).ravel()


def answer_dgamma(Z: np.ndarray, W: np.ndarray) -> np.ndarray:
    r"""The answer's :math:`\nabla_\gamma R = \operatorname{diag}\bigl((Z - e_N\mu^\top)^\top W\Sigma^{-1/2}\bigr)`.

    Here :math:`\Sigma^{-1/2} = \operatorname{diag}(1/\sigma_1, \dots, 1/\sigma_p)` (standard deviations
    with ``ddof=1``), :math:`Z = X\Gamma_1` and :math:`W` is the stub.
    """
    centred = Z - Z.mean(axis=0)
    inv_sd = np.diag(1.0 / Z.std(axis=0, ddof=1))
    return np.diag(centred.T @ W @ inv_sd).copy()


def answer_dgamma_selection(Z: np.ndarray, W: np.ndarray) -> np.ndarray:
    r"""The answer's middle form :math:`K^\top\operatorname{vec}\bigl((Z - e_N\mu^\top)^\top W\Sigma^{-1/2}\bigr)`.

    :math:`K` selects the diagonal of a square matrix from its vec.
    """
    centred = Z - Z.mean(axis=0)
    inv_sd = np.diag(1.0 / Z.std(axis=0, ddof=1))
    K = diagonal_selection_matrix(Z.shape[1])
    return K.T @ vec(centred.T @ W @ inv_sd)
