"""Squared error, summed and averaged, against loops, finite differences and PyTorch."""

import numpy as np
import pytest
import torch

from bnbackprop import losses
from bnbackprop.gradcheck import check_gradient, relative_error


@pytest.fixture
def targets():
    rng = np.random.default_rng(0)
    return rng.normal(size=(7, 1)), rng.normal(size=(7, 1))


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_value_matches_loop_and_torch(targets, reduction):
    y, y_hat = targets
    total = 0.0
    for a, b in zip(y.ravel(), y_hat.ravel(), strict=True):
        total += (a - b) ** 2
    expected = total if reduction == "sum" else total / y.size
    assert losses.squared_error(y, y_hat, reduction=reduction) == pytest.approx(expected, rel=1e-14)
    value = torch.nn.functional.mse_loss(torch.tensor(y_hat), torch.tensor(y), reduction=reduction)
    assert losses.squared_error(y, y_hat, reduction=reduction) == pytest.approx(value.item(), rel=1e-14)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_gradient_matches_finite_differences_and_torch(targets, reduction):
    y, y_hat = targets
    gradient = losses.squared_error_gradient(y, y_hat, reduction=reduction)
    check_gradient(f"dyhat ({reduction})", lambda z: losses.squared_error(y, z, reduction=reduction), y_hat, gradient)
    y_hat_t = torch.tensor(y_hat, requires_grad=True)
    torch.nn.functional.mse_loss(y_hat_t, torch.tensor(y), reduction=reduction).backward()
    assert relative_error(gradient, y_hat_t.grad.numpy()) < 1e-14


def test_mean_is_sum_over_n_for_value_and_gradient(targets):
    y, y_hat = targets
    n = y.size
    assert losses.squared_error(y, y_hat, reduction="mean") * n == pytest.approx(losses.squared_error(y, y_hat))
    np.testing.assert_allclose(
        losses.squared_error_gradient(y, y_hat, reduction="mean") * n, losses.squared_error_gradient(y, y_hat)
    )


def test_float32_gradient_with_looser_tolerance(targets):
    y, y_hat = (a.astype(np.float32) for a in targets)
    gradient = losses.squared_error_gradient(y, y_hat)
    assert gradient.dtype == np.float32
    np.testing.assert_allclose(gradient, losses.squared_error_gradient(*targets), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: losses.squared_error(np.ones(3), np.ones((3, 1))), ValueError, "y_hat must have shape \\(3,\\)"),
        (lambda: losses.squared_error(np.ones(3), np.ones(3), reduction="median"), ValueError, "reduction"),
        (lambda: losses.squared_error_gradient(np.ones(2), [1.0, np.nan]), ValueError, "y_hat holds 1 non-finite"),
        (lambda: losses.squared_error(np.ones(0), np.ones(0)), ValueError, "empty"),
        (lambda: losses.squared_error(["a"], ["b"]), TypeError, "real numbers"),
    ],
)
def test_bad_input_raises_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
