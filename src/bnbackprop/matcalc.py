"""Matrix calculus in vec form: vec, commutation matrix, and Jacobians of matrix products.

Conventions (those of Magnus & Neudecker and of the book):

* ``vec`` stacks the columns of a matrix (column-major), ``vec(X) = X.reshape(-1, order="F")``.
* A Jacobian is ``J[i, j] = ∂ vec(F)_i / ∂ vec(X)_j``: rows follow the output, columns the
  input. For a scalar loss ``R`` the chain rule reads
  ``∂R/∂vec(X)ᵀ = ∂R/∂vec(F)ᵀ · J``, and the gradient matrix is ``unvec`` of that row.

The identities implemented here, each tested against finite differences and SymPy:

* ``vec(A X B) = (Bᵀ ⊗ A) vec(X)``;
* ``vec(A ⊙ X) = diag(vec A) vec(X)``;
* ``K_{mn} vec(A) = vec(Aᵀ)`` for ``A`` of shape m × n (the commutation matrix);
* ``vec(A ⊗ B) = (I_n ⊗ K_{qm} ⊗ I_p)(vec A ⊗ vec B)`` for ``A`` m × n and ``B`` p × q,
  hence ``∂vec(A ⊗ B)/∂vec(A) = (I_n ⊗ K_{qm} ⊗ I_p)(I_{mn} ⊗ vec B)`` and
  ``∂vec(A ⊗ B)/∂vec(B) = (I_n ⊗ K_{qm} ⊗ I_p)(vec A ⊗ I_{pq})``.

These matrices have (rows × columns) entries that grow as the product of the sizes of
input and output; the book uses them to derive and check, and computes gradients in
matrix form.
"""

from __future__ import annotations

import numpy as np

from bnbackprop._validation import (
    as_float_array,
    require_finite,
    require_finite_output,
    require_int,
    require_shape,
)

_OVERFLOW = "products of the entries overflow; entries near the float limits?"


def _matrix(value: object, name: str) -> np.ndarray:
    """A finite 2-D float array, or a clear error naming ``name``."""
    array = as_float_array(value, name)
    if array.ndim == 1:
        raise ValueError(
            f"{name} must be a 2-D matrix, got a 1-D array of shape {array.shape}; "
            "reshape a column vector to (n, 1) and a row vector to (1, n)"
        )
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {array.shape}")
    require_finite(array, name)
    return array


def vec(M: np.ndarray) -> np.ndarray:
    """Stack the columns of the matrix ``M`` into one 1-D vector (column-major order)."""
    M = _matrix(M, "M")
    return M.reshape(-1, order="F")


def unvec(v: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Inverse of :func:`vec`: the ``rows × cols`` matrix whose columns are stacked in ``v``."""
    rows = require_int(rows, "rows", minimum=1)
    cols = require_int(cols, "cols", minimum=1)
    v = as_float_array(v, "v")
    require_finite(v, "v")
    if v.size != rows * cols or v.ndim > 2 or (v.ndim == 2 and 1 not in v.shape):
        raise ValueError(
            f"v must be a vector of rows * cols = {rows * cols} entries to unvec into "
            f"{rows} × {cols}, got shape {v.shape}"
        )
    return v.reshape(rows, cols, order="F")


def commutation_matrix(m: int, n: int) -> np.ndarray:
    """The mn × mn permutation ``K_{mn}`` with ``K_{mn} vec(A) = vec(Aᵀ)`` for A of shape m × n."""
    m = require_int(m, "m", minimum=1)
    n = require_int(n, "n", minimum=1)
    K = np.zeros((m * n, m * n))
    for i in range(m):
        for j in range(n):
            # A[i, j] sits at i + j*m in vec(A) and at j + i*n in vec(Aᵀ).
            K[j + i * n, i + j * m] = 1.0
    return K


def left_product_jacobian(A: np.ndarray, cols: int) -> np.ndarray:
    """``∂vec(A X)/∂vec(X) = I_cols ⊗ A`` for X with ``cols`` columns."""
    A = _matrix(A, "A")
    cols = require_int(cols, "cols", minimum=1)
    return np.kron(np.eye(cols), A)


def right_product_jacobian(B: np.ndarray, rows: int) -> np.ndarray:
    """``∂vec(X B)/∂vec(X) = Bᵀ ⊗ I_rows`` for X with ``rows`` rows."""
    B = _matrix(B, "B")
    rows = require_int(rows, "rows", minimum=1)
    return np.kron(B.T, np.eye(rows))


def sandwich_jacobian(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``∂vec(A X B)/∂vec(X) = Bᵀ ⊗ A``; X has shape ``A.shape[1] × B.shape[0]``."""
    A = _matrix(A, "A")
    B = _matrix(B, "B")
    with np.errstate(over="ignore"):
        J = np.kron(B.T, A)
    require_finite_output(J, "sandwich_jacobian (Bᵀ ⊗ A)", _OVERFLOW)
    return J


def sandwich_product(A: np.ndarray, X: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A X B`` with the shapes checked, for comparison with ``(Bᵀ ⊗ A) vec(X)``."""
    A, X, B = _matrix(A, "A"), _matrix(X, "X"), _matrix(B, "B")
    if A.shape[1] != X.shape[0] or X.shape[1] != B.shape[0]:
        raise ValueError(
            f"A X B needs A.shape[1] == X.shape[0] and X.shape[1] == B.shape[0]; "
            f"got A {A.shape}, X {X.shape}, B {B.shape}"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        product = A @ X @ B
    require_finite_output(product, "sandwich_product (A X B)", _OVERFLOW)
    return product


def hadamard_jacobian(A: np.ndarray) -> np.ndarray:
    """``∂vec(A ⊙ X)/∂vec(X) = diag(vec A)``: the element-wise product is a diagonal map."""
    return np.diag(vec(A))


def kronecker_permutation(A_shape: tuple[int, int], B_shape: tuple[int, int]) -> np.ndarray:
    """``P = I_n ⊗ K_{qm} ⊗ I_p`` with ``vec(A ⊗ B) = P (vec A ⊗ vec B)`` (Magnus & Neudecker).

    ``A`` is m × n and ``B`` is p × q.
    """
    (m, n), (p, q) = _shape_pair(A_shape, "A_shape"), _shape_pair(B_shape, "B_shape")
    return np.kron(np.kron(np.eye(n), commutation_matrix(q, m)), np.eye(p))


def _shape_pair(shape: object, name: str) -> tuple[int, int]:
    if not isinstance(shape, (tuple, list)) or len(shape) != 2:
        raise TypeError(f"{name} must be a pair (rows, cols), got {shape!r}")
    return require_int(shape[0], f"{name}[0]", minimum=1), require_int(shape[1], f"{name}[1]", minimum=1)


def kronecker_jacobians(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Jacobians of ``vec(A ⊗ B)`` with respect to ``vec(A)`` and to ``vec(B)``.

    ``(I_n ⊗ K_{qm} ⊗ I_p)(I_{mn} ⊗ vec B)`` and ``(I_n ⊗ K_{qm} ⊗ I_p)(vec A ⊗ I_{pq})``
    for ``A`` m × n and ``B`` p × q; both have mnpq rows.
    """
    A = _matrix(A, "A")
    B = _matrix(B, "B")
    (m, n), (p, q) = A.shape, B.shape
    P = kronecker_permutation((m, n), (p, q))
    dA = P @ np.kron(np.eye(m * n), vec(B)[:, np.newaxis])
    dB = P @ np.kron(vec(A)[:, np.newaxis], np.eye(p * q))
    return dA, dB


def selection_matrix(indices: list[int] | np.ndarray, size: int) -> np.ndarray:
    """The ``len(indices) × size`` matrix of rows of ``I_size``: ``S v = v[indices]``."""
    size = require_int(size, "size", minimum=1)
    idx = np.asarray(indices)
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"indices must be a 1-D sequence of integers, got {indices!r}")
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        raise ValueError(f"indices must lie in [0, {size - 1}], got {idx.tolist()}")
    return np.eye(size)[idx]


def diagonal_selection_matrix(p: int) -> np.ndarray:
    """The p² × p matrix ``D`` with ``vec(diag(g)) = D g``; ``Dᵀ vec(M)`` is the diagonal of M.

    This is the answer's ``K`` for ∂R/∂γ: it picks the columns of a Kronecker product that
    multiply the diagonal entries of ``Γ = diag(γ)``.
    """
    p = require_int(p, "p", minimum=1)
    D = np.zeros((p * p, p))
    for j in range(p):
        D[j + j * p, j] = 1.0
    return D


def row_broadcast_jacobian(N: int, p: int) -> np.ndarray:
    """``∂vec(1_N βᵀ)/∂β = I_p ⊗ 1_N`` (Np × p): the Jacobian of repeating a row N times.

    ``1_N βᵀ`` is the question's ``β ⊗ 1_N`` for a row vector β.
    """
    N = require_int(N, "N", minimum=1)
    p = require_int(p, "p", minimum=1)
    return np.kron(np.eye(p), np.ones((N, 1)))


def gradient_from_jacobian(upstream: np.ndarray, jacobian: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Chain rule in vec form: ``unvec(Jᵀ vec(upstream))`` with the shape of the input.

    ``upstream`` is ∂R/∂F (shape of F), ``jacobian`` is ∂vec F/∂vec X; the result is ∂R/∂X.
    """
    upstream = _matrix(upstream, "upstream")
    jacobian = _matrix(jacobian, "jacobian")
    rows, cols = _shape_pair(shape, "shape")
    require_shape(jacobian, (upstream.size, rows * cols), "jacobian",
                  f"vec of upstream {upstream.shape} by vec of the input {rows} × {cols}")
    with np.errstate(over="ignore", invalid="ignore"):
        product = jacobian.T @ vec(upstream)
    require_finite_output(product, "gradient_from_jacobian (Jᵀ vec(upstream))", _OVERFLOW)
    return unvec(product, rows, cols)
