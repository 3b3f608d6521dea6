"""Tests of bnbackprop.bias_example: the drift, the zero gradient, finite differences, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from bnbackprop.bias_example import gradient_descent, gradients, layer, squared_loss
from bnbackprop.gradcheck import numerical_gradient


@pytest.fixture
def batch():
    rng = np.random.default_rng(4)
    return rng.normal(size=7), rng.normal(size=7) + 1.5


def test_layer_is_mean_subtraction_and_standardisation(batch):
    u, _ = batch
    x = 2.0 * u + 0.5
    np.testing.assert_allclose(layer(u, 2.0, 0.5), x - x.mean(), atol=1e-15)
    np.testing.assert_allclose(layer(u, 2.0, 0.5, scale=True, eps=0.1), (x - x.mean()) / np.sqrt(x.var() + 0.1))


def test_naive_descent_drifts_linearly_while_nothing_else_changes(batch):
    # x̂ = u - mean(u) does not depend on b, so ∂ℓ/∂x̂ = x̂ - t is the same at every step and
    # the naive step is the constant -lr Σ (x̂ - t): b_k = b_0 - k lr Σ (x̂ - t)
    u, target = batch
    history = gradient_descent(u, target, lr=0.05, steps=200, through_statistics=False, b0=0.3)
    constant = np.sum((u - u.mean()) - target)
    np.testing.assert_allclose(history.b, 0.3 - 0.05 * constant * np.arange(201), rtol=1e-10)
    assert abs(history.b[-1] - history.b[0]) > 5
    np.testing.assert_allclose(history.xhat, np.broadcast_to(u - u.mean(), history.xhat.shape), atol=1e-12)
    np.testing.assert_allclose(history.loss, history.loss[0], rtol=1e-12)


def test_exact_descent_leaves_b_where_it_is(batch):
    u, target = batch
    for scale in (False, True):
        history = gradient_descent(u, target, lr=0.05, steps=50, through_statistics=True, scale=scale, eps=1e-3)
        assert np.abs(history.grad_b).max() < 1e-12
        assert np.abs(history.b).max() < 1e-12


@pytest.mark.parametrize(("scale", "eps"), [(False, 0.0), (True, 0.0), (True, 0.5)])
def test_exact_gradients_against_finite_differences(batch, scale, eps):
    u, target = batch

    def loss(params):
        return squared_loss(layer(u, params[0], params[1], scale=scale, eps=eps), target)

    point = np.array([1.3, -0.4])
    dw, db = gradients(u, target, *point, through_statistics=True, scale=scale, eps=eps)
    numeric = numerical_gradient(loss, point)
    np.testing.assert_allclose([dw, db], numeric, atol=1e-8)


@pytest.mark.parametrize("scale", [False, True])
def test_naive_gradients_are_the_derivatives_with_frozen_statistics(batch, scale):
    u, target = batch
    w, b, eps = 1.3, -0.4, 0.2
    x = w * u + b
    mean, divisor = x.mean(), (np.sqrt(x.var() + eps) if scale else 1.0)

    def frozen_loss(params):
        return 0.5 * np.sum(((params[0] * u + params[1] - mean) / divisor - target) ** 2)

    dw, db = gradients(u, target, w, b, through_statistics=False, scale=scale, eps=eps)
    np.testing.assert_allclose([dw, db], numerical_gradient(frozen_loss, np.array([w, b])), atol=1e-8)
    assert abs(db) > 0.1


def test_scale_invariance_in_w_only_without_eps(batch):
    u, target = batch
    dw0, _ = gradients(u, target, 1.3, 0.2, through_statistics=True, scale=True, eps=0.0)
    dw1, _ = gradients(u, target, 1.3, 0.2, through_statistics=True, scale=True, eps=0.5)
    assert abs(dw0) < 1e-12
    assert abs(dw1) > 1e-3


def test_history_lengths(batch):
    u, target = batch
    history = gradient_descent(u, target, lr=0.1, steps=3, through_statistics=False, learn_w=True)
    assert history.w.shape == history.b.shape == history.loss.shape == (4,)
    assert history.xhat.shape == (4, 7) and history.grad_b.shape == (3,)
    empty = gradient_descent(u, target, lr=0.1, steps=0, through_statistics=False)
    assert empty.b.shape == (1,) and empty.grad_b.shape == (0,)


def test_bad_input(batch):
    u, target = batch
    with pytest.raises(ValueError, match="u must be 1-D"):
        layer(np.ones((2, 2)), 1.0, 0.0)
    with pytest.raises(ValueError, match="at least 2 inputs"):
        layer(np.ones(1), 1.0, 0.0)
    with pytest.raises(ValueError, match=r"target must have shape \(7,\)"):
        gradients(u, target[:3], 1.0, 0.0, through_statistics=True)
    with pytest.raises(ValueError, match="u holds 1 non-finite"):
        layer(np.array([1.0, np.nan]), 1.0, 0.0)
    with pytest.raises(ValueError, match="lr must be a finite number >= 0"):
        gradient_descent(u, target, lr=-1.0, steps=3, through_statistics=False)
    with pytest.raises(TypeError, match="steps must be an integer"):
        gradient_descent(u, target, lr=0.1, steps=2.5, through_statistics=False)
    with pytest.raises(ValueError, match="w0 must be finite"):
        gradient_descent(u, target, lr=0.1, steps=2, through_statistics=False, w0=np.inf)
    with pytest.raises(ValueError, match="zero variance and eps=0"):
        layer(u, 0.0, 1.0, scale=True, eps=0.0)
