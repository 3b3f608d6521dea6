"""SymPy helpers: proofs that succeed on identities, fail on non-identities, and derivatives
that agree with NumPy on explicit numbers."""

import itertools

import numpy as np
import pytest
import sympy as sp

from bnbackprop import batchnorm, symbolic

x, y, a = sp.symbols("x y a", positive=True)


@pytest.mark.parametrize(
    "identity",
    [
        sp.sqrt(x**2 + y) ** 2 - x**2 - y,
        1 / sp.sqrt(a) - sp.sqrt(a) / a,
        (x - y) / sp.sqrt(4 * x + 4 * y) - (x - y) / (2 * sp.sqrt(x + y)),
        sp.sqrt((x + y) / 8) - sp.sqrt(x / 8 + y / 8),
        (x + y) ** 3 - x**3 - 3 * x**2 * y - 3 * x * y**2 - y**3,
    ],
)
def test_prove_zero_proves_identities(identity):
    assert symbolic.prove_zero(identity)


@pytest.mark.parametrize(
    "non_identity",
    [sp.sqrt(x) - x, sp.sqrt(x**2 + y) - x - sp.sqrt(y), 1 / (x + a) - 1 / x - 1 / a],
)
def test_prove_zero_rejects_non_identities_and_a_witness_exists(non_identity):
    assert not symbolic.prove_zero(non_identity)
    point = symbolic.nonzero_witness(non_identity, sorted(non_identity.free_symbols, key=str))
    assert point is not None
    assert abs(sp.N(non_identity.xreplace(point), 30)) > 1e-10


def test_nonzero_witness_finds_none_for_an_identity():
    assert symbolic.nonzero_witness(1 / sp.sqrt(a) - sp.sqrt(a) / a, [a]) is None


def test_jacobian_and_gradient_follow_the_vec_convention():
    rng = np.random.default_rng(0)
    X = symbolic.matrix_symbols("x", 3, 4)
    A, B = rng.integers(-3, 4, size=(2, 3)), rng.integers(-3, 4, size=(4, 5))
    J = symbolic.jacobian(sp.Matrix(A) * X * sp.Matrix(B), X)
    assert np.array_equal(np.array(J, dtype=float), np.kron(B.T, A))
    # d tr(C X) / dX = Cᵀ
    C = sp.Matrix(rng.integers(-3, 4, size=(4, 3)))
    assert symbolic.gradient((C * X).trace(), X) == C.T
    assert symbolic.vec(sp.Matrix([[1, 2], [3, 4]])) == sp.Matrix([1, 3, 2, 4])


@pytest.mark.parametrize(
    ("axis", "ddof", "placement"), list(itertools.product((0, 1), (0, 1), ("inside", "outside")))
)
def test_symbolic_forward_matches_numpy(axis, ddof, placement):
    n, p = 4, 2
    X = symbolic.matrix_symbols("x", n, p) if axis == 0 else symbolic.matrix_symbols("x", p, n)
    gamma, beta = symbolic.vector_symbols("gamma", p), symbolic.vector_symbols("beta", p)
    eps = sp.Rational(1, 10)
    Y = symbolic.batchnorm_forward(X, gamma, beta, eps=eps, ddof=ddof, axis=axis, eps_placement=placement)
    symbols = [*X, *gamma, *beta]
    rng = np.random.default_rng(1)
    values = rng.normal(size=len(symbols))
    evaluated = symbolic.to_numpy(Y, symbols)(*values)
    Xv = values[: n * p].reshape(X.shape)
    expected, _ = batchnorm.forward(
        Xv, values[n * p : n * p + p], values[n * p + p :], eps=0.1, ddof=ddof, axis=axis, eps_placement=placement
    )
    assert np.allclose(evaluated, expected, rtol=1e-12, atol=1e-12)


def test_symbolic_helpers_reject_bad_arguments():
    with pytest.raises(ValueError, match="rows must be >= 1"):
        symbolic.matrix_symbols("x", 0, 2)
    with pytest.raises(ValueError, match="eps_placement"):
        symbolic.batchnorm_forward(sp.ones(2, 1), [1], [0], eps_placement="beside")
    with pytest.raises(ValueError, match="gamma and beta need 1 entries"):
        symbolic.batchnorm_forward(sp.ones(2, 1), [1, 2], [0])


def test_prove_zero_with_symbolic_exponents():
    gamma, t, eta = sp.symbols("gamma t eta", positive=True)
    geometric = eta * (gamma**t - 1) / (gamma - 1) - eta * (1 - gamma**t) / (1 - gamma)
    assert symbolic.prove_zero(geometric)
    assert not symbolic.prove_zero(eta * (gamma**t - 1) / (gamma - 1) - eta * gamma**t)
