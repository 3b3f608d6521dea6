"""The sources' formulas as printed: the verdicts the book states, as tests."""

import numpy as np
import pytest

from bnbackprop import batchnorm
from bnbackprop import batchnorm_as_published as published
from bnbackprop.gradcheck import numerical_jacobian, relative_error

rng = np.random.default_rng(21)


@pytest.mark.parametrize("shape", [(2, 1), (4, 3), (9, 5)])
def test_blog_C_A_B_are_exact(shape):
    X, dY = rng.normal(size=shape), rng.normal(size=shape)
    gamma, beta = rng.normal(size=shape[1]), rng.normal(size=shape[1])
    _, cache = batchnorm.forward(X, gamma, beta, eps=0.01)
    dX, dgamma, dbeta = batchnorm.backward(dY, cache)
    assert relative_error(published.blog_dX(dY, cache.xc, cache.inv_denom, gamma), dX) < 1e-12
    blog_dgamma, blog_dbeta = published.blog_dgamma_dbeta(dY, cache.xhat)
    assert relative_error(blog_dgamma, dgamma) < 1e-14
    assert relative_error(blog_dbeta, dbeta) < 1e-14


def test_blog_eq5_is_not_the_gradient_wrt_xhat():
    dY, gamma = rng.normal(size=(4, 3)), rng.normal(size=3)
    printed = published.blog_dxhat_eq5(dY, gamma)
    true = dY * gamma  # ∂L/∂x̂ for L = Σ dY ⊙ (γ x̂ + β)
    assert printed.shape == (3,) and true.shape == (4, 3)
    assert relative_error(np.broadcast_to(printed, true.shape), true) > 0.1


def test_course_notes_formula_exact_only_without_eps():
    Z, G, dZhat = rng.normal(size=(3, 6)), rng.normal(size=3), rng.normal(size=(3, 6))
    printed = published.course_notes_dZ(dZhat, Z, G)
    options = {"axis": 1, "eps_placement": "outside"}
    exact0 = batchnorm.backward(dZhat, batchnorm.forward(Z, G, np.zeros(3), eps=0.0, **options)[1])[0]
    assert relative_error(printed, exact0) < 1e-12
    sigma = Z.std(axis=1)
    errors = []
    for ratio in (1e-3, 1e-2, 1e-1):
        eps = ratio * sigma.min()
        exact = batchnorm.backward(dZhat, batchnorm.forward(Z, G, np.zeros(3), eps=eps, **options)[1])[0]
        errors.append(relative_error(printed, exact))
    assert errors[0] > 1e-4 and errors[0] < errors[1] < errors[2]


def test_course_notes_local_derivative_exact_only_without_eps():
    Z = rng.normal(size=(2, 5))
    for eps, agrees in ((0.0, True), (0.05, False)):
        def zbar_row0(row, eps=eps):
            full = Z.copy()
            full[0] = row
            mu, sigma = full[0].mean(), full[0].std()
            return (full[0] - mu) / (sigma + eps)

        J = numerical_jacobian(zbar_row0, Z[0].copy())  # J[k, j] = ∂Z̄_0k / ∂Z_0j
        printed = np.array([[published.course_notes_dZbar_dZ(Z, 0, j, k) for j in range(5)] for k in range(5)])
        assert (relative_error(printed, J) < 1e-7) == agrees
