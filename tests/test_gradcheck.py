"""The finite-difference tools: right answers on functions with known derivatives, and failures
on wrong ones."""

import numpy as np
import pytest

from bnbackprop import gradcheck


def test_numerical_gradient_of_cubic_sum():
    x = np.array([[0.5, -1.0], [2.0, 0.25], [1.5, -0.75]])
    numerical = gradcheck.numerical_gradient(lambda z: np.sum(z**3), x)
    assert numerical.shape == x.shape
    assert gradcheck.relative_error(numerical, 3 * x**2) < 1e-9


def test_numerical_jacobian_uses_column_major_vec():
    """vec(A X B) = (Bᵀ ⊗ A) vec(X), so the Jacobian of X ↦ A X B is Bᵀ ⊗ A exactly when the
    Jacobian stacks columns."""
    rng = np.random.default_rng(0)
    A, X, B = rng.normal(size=(2, 3)), rng.normal(size=(3, 4)), rng.normal(size=(4, 5))
    J = gradcheck.numerical_jacobian(lambda Z: A @ Z @ B, X)
    assert J.shape == (10, 12)
    assert gradcheck.relative_error(J, np.kron(B.T, A)) < 1e-9
    row_major = np.kron(A, B.T)
    assert gradcheck.relative_error(J, row_major) > 0.5


def test_relative_error_properties():
    a = np.array([1.0, -2.0, 3.0])
    assert gradcheck.relative_error(a, a) == 0.0
    assert gradcheck.relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert gradcheck.relative_error(a, 2 * a) == pytest.approx(0.5)
    assert gradcheck.relative_error(a, 2 * a) == gradcheck.relative_error(2 * a, a)
    assert gradcheck.relative_error(1e-9 * a, 2e-9 * a) == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"b must have shape \(3,\)"):
        gradcheck.relative_error(a, np.ones(2))


def test_compare_prints_and_raises(capsys):
    result = gradcheck.compare("thing", np.ones(3), np.ones(3) * (1 + 1e-9))
    assert result.passed
    assert capsys.readouterr().out.startswith("thing: relative error: 1.0e-09 (bound 1e-06) ok")
    with pytest.raises(AssertionError, match=r"thing: relative error: 5.0e-01 .*FAILED"):
        gradcheck.compare("thing", np.ones(3), 2 * np.ones(3))


def test_check_vjp_catches_a_wrong_gradient():
    """The VJP of softmax-like f(x) = x / Σx: dropping the coupling term must fail."""
    x, upstream = np.array([1.0, 2.0, 3.5]), np.array([0.3, -1.0, 2.0])
    total = x.sum()
    right = upstream / total - np.dot(upstream, x) / total**2
    wrong = upstream / total
    gradcheck.check_vjp("right", lambda z: z / z.sum(), x, upstream, right)
    with pytest.raises(AssertionError, match="wrong"):
        gradcheck.check_vjp("wrong", lambda z: z / z.sum(), x, upstream, wrong)


def test_bad_input():
    with pytest.raises(ValueError, match="step must be a finite number > 0"):
        gradcheck.numerical_gradient(np.sum, np.ones(2), step=0)
    with pytest.raises(ValueError, match="f must return a scalar"):
        gradcheck.numerical_gradient(lambda z: z, np.ones(2))
    with pytest.raises(ValueError, match="x holds 1 non-finite"):
        gradcheck.numerical_gradient(np.sum, np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="upstream must have shape"):
        gradcheck.check_vjp("v", lambda z: z, np.ones(3), np.ones(2), np.ones(3))
