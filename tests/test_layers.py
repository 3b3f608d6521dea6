"""Linear layers and activations against finite differences and PyTorch."""

import numpy as np
import pytest
import torch

from bnbackprop import layers
from bnbackprop.gradcheck import check_vjp, numerical_gradient, relative_error

ACTIVATION_CASES = [
    ("relu", {}, torch.relu),
    ("leaky_relu", {"negative_slope": 0.2}, lambda t: torch.nn.functional.leaky_relu(t, 0.2)),
    ("elu", {"alpha": 1.5}, lambda t: torch.nn.functional.elu(t, 1.5)),
    ("sigmoid", {}, torch.sigmoid),
    ("tanh", {}, torch.tanh),
    ("identity", {}, lambda t: t * 1.0),
]


def away_from_zero(shape, seed):
    """Samples bounded away from 0, where ReLU-type kinks would spoil finite differences."""
    rng = np.random.default_rng(seed)
    Z = rng.uniform(0.1, 3.0, size=shape)
    return Z * rng.choice([-1.0, 1.0], size=shape)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_backward_matches_finite_differences(bias):
    rng = np.random.default_rng(0)
    X, W, b, dY = rng.normal(size=(5, 3)), rng.normal(size=(3, 2)), rng.normal(size=2), rng.normal(size=(5, 2))
    b = b if bias else None
    dX, dW, db = layers.linear_backward(dY, X, W, bias=bias)
    check_vjp("dX", lambda Z: layers.linear_forward(Z, W, b), X, dY, dX)
    check_vjp("dW", lambda V: layers.linear_forward(X, V, b), W, dY, dW)
    if bias:
        check_vjp("db", lambda c: layers.linear_forward(X, W, c), b, dY, db)
    else:
        assert db is None
        np.testing.assert_array_equal(layers.linear_forward(X, W), X @ W)


def test_linear_layer_matches_torch():
    rng = np.random.default_rng(1)
    X, W, b, dY = rng.normal(size=(6, 4)), rng.normal(size=(4, 3)), rng.normal(size=3), rng.normal(size=(6, 3))
    layer = layers.Linear(W, b)
    Y = layer(X)
    dX = layer.backward(dY)
    Xt, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (X, W, b))
    Yt = torch.nn.functional.linear(Xt, Wt.T, bt)
    Yt.backward(torch.tensor(dY))
    assert relative_error(Y, Yt.detach().numpy()) < 1e-14
    assert relative_error(dX, Xt.grad.numpy()) < 1e-14
    assert relative_error(layer.dW, Wt.grad.numpy()) < 1e-14
    assert relative_error(layer.db, bt.grad.numpy()) < 1e-14


@pytest.mark.parametrize(("name", "params", "reference"), ACTIVATION_CASES, ids=[c[0] for c in ACTIVATION_CASES])
def test_activation_forward_and_backward_match_torch_and_finite_differences(name, params, reference):
    act = layers.activation(name, **params)
    Z = away_from_zero((4, 3), seed=len(name))
    dA = np.random.default_rng(2).normal(size=Z.shape)
    Zt = torch.tensor(Z, requires_grad=True)
    At = reference(Zt)
    At.backward(torch.tensor(dA))
    assert relative_error(act(Z), At.detach().numpy()) < 1e-14
    dZ = act.backward(dA, Z)
    assert relative_error(dZ, Zt.grad.numpy()) < 1e-14
    check_vjp(f"{name} dZ", act.forward, Z, dA, dZ)


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_kink_uses_derivative_at_zero(name):
    Z = np.array([-1.0, 0.0, 2.0])
    assert layers.activation(name).derivative(Z)[1] == 0.0
    assert layers.activation(name, derivative_at_zero=1.0).derivative(Z)[1] == 1.0
    # one-sided differences at 0 bracket the chosen value
    act = layers.activation(name, negative_slope=0.1)
    right = (act(np.array(1e-7)) - act(np.array(0.0))) / 1e-7
    left = (act(np.array(0.0)) - act(np.array(-1e-7))) / 1e-7
    assert (left, right) == pytest.approx((0.0 if name == "relu" else 0.1, 1.0))


def test_shortcut_functions_and_sigmoid_stability():
    Z = np.array([-1000.0, -2.0, 0.0, 3.0, 1000.0])
    np.testing.assert_array_equal(layers.relu(Z), np.maximum(Z, 0))
    np.testing.assert_allclose(layers.leaky_relu(Z, 0.5), np.where(Z > 0, Z, 0.5 * Z))
    np.testing.assert_allclose(layers.elu(Z[1:4]), np.where(Z[1:4] > 0, Z[1:4], np.expm1(Z[1:4])))
    np.testing.assert_allclose(layers.tanh(Z), np.tanh(Z))
    with np.errstate(over="raise"):
        s = layers.sigmoid(Z)
    np.testing.assert_allclose(s, [0.0, 1 / (1 + np.exp(2.0)), 0.5, 1 / (1 + np.exp(-3.0)), 1.0])


def test_elu_derivative_is_continuous_at_zero_for_alpha_one():
    act = layers.activation("elu", alpha=1.0)
    gradient = numerical_gradient(lambda z: float(act(z).sum()), np.array([1e-3, -1e-3]))
    np.testing.assert_allclose(act.derivative(np.array([1e-3, -1e-3])), gradient, rtol=1e-6)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "elu", "leaky_relu"])
def test_float32_keeps_dtype_and_agrees_with_float64(name):
    act = layers.activation(name)
    Z = away_from_zero((5, 4), seed=3)
    dA = np.random.default_rng(4).normal(size=Z.shape)
    out32 = act.backward(dA.astype(np.float32), Z.astype(np.float32))
    assert act(Z.astype(np.float32)).dtype == np.float32 and out32.dtype == np.float32
    # float32 carries about 7 significant digits; exp and tanh add a few ulps
    np.testing.assert_allclose(out32, act.backward(dA, Z), rtol=1e-5, atol=1e-6)


def test_linear_backward_before_forward_raises():
    with pytest.raises(RuntimeError, match="before forward"):
        layers.Linear(np.ones((2, 2))).backward(np.ones((1, 2)))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: layers.linear_forward(np.ones((3, 2)), np.ones((3, 4))), ValueError, "X.shape\\[1\\] = 2 rows"),
        (lambda: layers.linear_forward(np.ones((3, 2)), np.ones((2, 4)), np.ones(3)), ValueError,
         "b must have shape \\(4,\\)"),
        (lambda: layers.linear_forward(np.ones(3), np.ones((3, 4))), ValueError, "X must be 2-D"),
        (lambda: layers.linear_forward([[np.inf, 1.0]], np.ones((2, 1))), ValueError, "non-finite"),
        (lambda: layers.linear_backward(np.ones((3, 3)), np.ones((3, 2)), np.ones((2, 4))), ValueError,
         "dY must have shape \\(3, 4\\)"),
        (lambda: layers.activation("softsign"), ValueError, "name must be one of"),
        (lambda: layers.activation("leaky_relu", negative_slope=-0.1), ValueError, "negative_slope"),
        (lambda: layers.activation("relu", derivative_at_zero=np.nan), ValueError, "derivative_at_zero"),
        (lambda: layers.activation("relu", derivative_at_zero="half"), TypeError, "derivative_at_zero"),
        (lambda: layers.relu(np.array([np.nan])), ValueError, "Z holds 1 non-finite"),
        (lambda: layers.activation("tanh").backward(np.ones(3), np.ones(4)), ValueError, "dA must have shape"),
    ],
)
def test_bad_input_raises_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
