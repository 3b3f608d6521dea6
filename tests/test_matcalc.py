"""vec, the commutation matrix and Jacobians of matrix products against finite differences,
SymPy on explicit matrices of unequal sizes, and PyTorch."""

import numpy as np
import pytest
import sympy as sp
import torch

from bnbackprop import matcalc
from bnbackprop.gradcheck import numerical_jacobian, relative_error
from bnbackprop.symbolic import jacobian, matrix_symbols
from bnbackprop.symbolic import vec as sym_vec


def rng_matrices(seed, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=shape) for shape in shapes]


def test_vec_stacks_columns_and_unvec_inverts_it():
    M = np.arange(6.0).reshape(2, 3)  # [[0, 1, 2], [3, 4, 5]]
    expected = np.concatenate([M[:, j] for j in range(3)])
    np.testing.assert_array_equal(matcalc.vec(M), expected)
    np.testing.assert_array_equal(matcalc.unvec(matcalc.vec(M), 2, 3), M)
    np.testing.assert_array_equal(matcalc.unvec(matcalc.vec(M)[:, None], 2, 3), M)


@pytest.mark.parametrize(("m", "n"), [(1, 1), (2, 3), (4, 2), (3, 5)])
def test_commutation_matrix_transposes_vec(m, n):
    (A,) = rng_matrices(m * 10 + n, (m, n))
    K = matcalc.commutation_matrix(m, n)
    np.testing.assert_array_equal(K @ matcalc.vec(A), matcalc.vec(A.T))
    np.testing.assert_array_equal(K.T, matcalc.commutation_matrix(n, m))
    np.testing.assert_array_equal(K @ K.T, np.eye(m * n))


def test_sandwich_jacobian_matches_vec_identity_and_finite_differences():
    A, X, B = rng_matrices(1, (2, 3), (3, 4), (4, 5))
    J = matcalc.sandwich_jacobian(A, B)
    assert J.shape == (10, 12)
    np.testing.assert_allclose(J @ matcalc.vec(X), matcalc.vec(A @ X @ B), rtol=1e-13, atol=1e-13)
    numeric = numerical_jacobian(lambda Z: A @ Z @ B, X)
    assert relative_error(J, numeric) < 1e-8


def test_one_sided_product_jacobians_match_finite_differences():
    A, X, B = rng_matrices(2, (4, 3), (3, 2), (2, 5))
    assert relative_error(matcalc.left_product_jacobian(A, 2), numerical_jacobian(lambda Z: A @ Z, X)) < 1e-8
    assert relative_error(matcalc.right_product_jacobian(B, 3), numerical_jacobian(lambda Z: Z @ B, X)) < 1e-8


def test_sandwich_jacobian_symbolic_on_unequal_sizes():
    A, X, B = matrix_symbols("a", 2, 3), matrix_symbols("x", 3, 4), matrix_symbols("b", 4, 1)
    exact = jacobian(A * X * B, X)  # differentiated entry by entry
    closed = sp.kronecker_product(B.T, A)
    assert (exact - closed).expand() == sp.zeros(2, 12)


def test_hadamard_jacobian_symbolic_and_numeric():
    A, X = matrix_symbols("a", 3, 2), matrix_symbols("x", 3, 2)
    exact = jacobian(A.multiply_elementwise(X), X)
    closed = sp.diag(*sym_vec(A))
    assert (exact - closed).expand() == sp.zeros(6, 6)
    An, Xn = rng_matrices(3, (3, 2), (3, 2))
    assert relative_error(matcalc.hadamard_jacobian(An), numerical_jacobian(lambda Z: An * Z, Xn)) < 1e-8


def test_hadamard_product_rule_symbolic():
    """d(F ⊙ G) = dF ⊙ G + F ⊙ dG for F, G both functions of X (the question's Update 2)."""
    X = matrix_symbols("x", 2, 3)
    P, Q = matrix_symbols("p", 3, 3), matrix_symbols("q", 2, 2)
    F, G = X * P, Q * X.applyfunc(sp.sin)
    exact = jacobian(F.multiply_elementwise(G), X)
    rule = sp.diag(*sym_vec(G)) * jacobian(F, X) + sp.diag(*sym_vec(F)) * jacobian(G, X)
    assert (exact - rule).expand() == sp.zeros(6, 6)


def test_kronecker_jacobians_symbolic_on_unequal_sizes():
    A, B = matrix_symbols("a", 2, 3), matrix_symbols("b", 3, 2)
    product = sp.kronecker_product(A, B)
    dA_exact, dB_exact = jacobian(product, A), jacobian(product, B)
    # evaluate the closed forms at symbolic A, B: they are linear in the other factor,
    # so compare with numbers substituted at a random rational point and entrywise symbols
    values = {s: sp.Rational(k + 2, 3) for k, s in enumerate(list(A) + list(B))}
    An = np.array(A.xreplace(values), dtype=np.float64)
    Bn = np.array(B.xreplace(values), dtype=np.float64)
    dA, dB = matcalc.kronecker_jacobians(An, Bn)
    assert dA.shape == (36, 6) and dB.shape == (36, 6)
    np.testing.assert_allclose(dA, np.array(dA_exact.xreplace(values), dtype=np.float64), atol=1e-14)
    np.testing.assert_allclose(dB, np.array(dB_exact.xreplace(values), dtype=np.float64), atol=1e-14)


def test_kronecker_permutation_identity_symbolic():
    """vec(A ⊗ B) = (I_n ⊗ K_qm ⊗ I_p)(vec A ⊗ vec B), proved on symbols."""
    A, B = matrix_symbols("a", 2, 3), matrix_symbols("b", 4, 2)
    P = sp.Matrix(matcalc.kronecker_permutation((2, 3), (4, 2)).astype(int))
    lhs = sym_vec(sp.kronecker_product(A, B))
    rhs = P * sp.kronecker_product(sym_vec(A), sym_vec(B))
    assert (lhs - rhs).expand() == sp.zeros(48, 1)


def test_kronecker_jacobians_match_finite_differences():
    A, B = rng_matrices(4, (3, 1), (2, 4))
    dA, dB = matcalc.kronecker_jacobians(A, B)
    assert relative_error(dA, numerical_jacobian(lambda Z: np.kron(Z, B), A)) < 1e-8
    assert relative_error(dB, numerical_jacobian(lambda Z: np.kron(A, Z), B)) < 1e-8


@pytest.mark.parametrize(("A_shape", "B_shape"), [((2, 3), (4, 2)), ((3, 2), (2, 5)), ((1, 4), (10, 1))])
def test_questions_quoted_kronecker_rule_is_the_jacobian(A_shape, B_shape):
    """Update 1 of seed 000 quotes d vec(A ⊗ B)/d vec(A) = (I_nq ⊗ T_mp)(I_n ⊗ vec B ⊗ I_m)."""
    (m, n), (p, q) = A_shape, B_shape
    A, B = rng_matrices(7, A_shape, B_shape)
    quoted = np.kron(np.eye(n * q), matcalc.commutation_matrix(m, p)) @ np.kron(
        np.kron(np.eye(n), matcalc.vec(B)[:, np.newaxis]), np.eye(m))
    assert relative_error(quoted, matcalc.kronecker_jacobians(A, B)[0]) < 1e-15
    assert relative_error(quoted, numerical_jacobian(lambda Z: np.kron(Z, B), A)) < 1e-8


def test_row_broadcast_jacobian_is_kronecker_derivative_of_beta_times_ones():
    beta = np.array([[-2.0, -3.0, -4.0]])  # 1 × p
    J = matcalc.row_broadcast_jacobian(5, 3)
    assert relative_error(J, numerical_jacobian(lambda b: np.kron(b, np.ones((5, 1))), beta)) < 1e-8
    dA, _ = matcalc.kronecker_jacobians(beta, np.ones((5, 1)))
    np.testing.assert_array_equal(J, dA)


def test_selection_matrices():
    v = np.array([10.0, 11.0, 12.0, 13.0])
    np.testing.assert_array_equal(matcalc.selection_matrix([3, 0], 4) @ v, [13.0, 10.0])
    g = np.array([2.0, 3.0, 5.0])
    D = matcalc.diagonal_selection_matrix(3)
    np.testing.assert_array_equal(D @ g, matcalc.vec(np.diag(g)))
    (M,) = rng_matrices(5, (3, 3))
    np.testing.assert_array_equal(D.T @ matcalc.vec(M), np.diag(M))


def test_gradient_from_jacobian_is_the_chain_rule():
    A, X, B, upstream = rng_matrices(6, (2, 3), (3, 4), (4, 2), (2, 2))
    gradient = matcalc.gradient_from_jacobian(upstream, matcalc.sandwich_jacobian(A, B), X.shape)
    np.testing.assert_allclose(gradient, A.T @ upstream @ B.T, rtol=1e-12)


def test_sandwich_jacobian_matches_torch_autograd():
    A, X, B = rng_matrices(7, (2, 3), (3, 4), (4, 5))
    At, Bt = torch.tensor(A), torch.tensor(B)
    J = torch.autograd.functional.jacobian(lambda Z: At @ Z @ Bt, torch.tensor(X)).numpy()
    # torch indexes J[out_i, out_j, in_k, in_l]; reorder both sides to column-major vec
    J_vec = J.transpose(1, 0, 3, 2).reshape(10, 12)
    np.testing.assert_allclose(J_vec, matcalc.sandwich_jacobian(A, B), rtol=1e-14, atol=1e-14)


def test_float32_sandwich_identity_with_looser_tolerance():
    A, X, B = (M.astype(np.float32) for M in rng_matrices(8, (5, 6), (6, 7), (7, 3)))
    lhs = matcalc.sandwich_jacobian(A, B) @ matcalc.vec(X)
    assert lhs.dtype == np.float32
    # float32 carries about 7 digits; a 6-term dot product loses at most one more
    np.testing.assert_allclose(lhs, matcalc.vec(A @ X @ B), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: matcalc.vec(np.ones(3)), ValueError, "2-D matrix"),
        (lambda: matcalc.vec([[1.0, np.nan]]), ValueError, "non-finite"),
        (lambda: matcalc.vec([["a"]]), TypeError, "real numbers"),
        (lambda: matcalc.unvec(np.ones(5), 2, 3), ValueError, "rows \\* cols = 6"),
        (lambda: matcalc.unvec(np.ones((2, 3)), 2, 3), ValueError, "must be a vector"),
        (lambda: matcalc.commutation_matrix(0, 2), ValueError, "m must be >= 1"),
        (lambda: matcalc.commutation_matrix(2.0, 2), TypeError, "m must be an integer"),
        (lambda: matcalc.sandwich_product(np.ones((2, 3)), np.ones((4, 2)), np.ones((2, 2))), ValueError,
         "A.shape\\[1\\] == X.shape\\[0\\]"),
        (lambda: matcalc.selection_matrix([0, 4], 4), ValueError, "lie in \\[0, 3\\]"),
        (lambda: matcalc.selection_matrix([0.5], 4), TypeError, "integers"),
        (lambda: matcalc.kronecker_permutation((2,), (1, 1)), TypeError, "pair"),
        (lambda: matcalc.gradient_from_jacobian(np.ones((2, 2)), np.ones((4, 5)), (2, 3)), ValueError,
         "jacobian must have shape \\(4, 6\\)"),
    ],
)
def test_bad_input_raises_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
