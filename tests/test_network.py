"""Sequential networks: construction checks, forward/backward, gradients, train/eval, dtypes."""

import copy

import numpy as np
import pytest
import torch

from bnbackprop.batchnorm import BatchNorm
from bnbackprop.layers import Linear
from bnbackprop.losses import softmax_cross_entropy
from bnbackprop.network import ActivationLayer, Sequential, check_network_gradients, mlp
from bnbackprop.optim import SGD


def batch(seed=0, N=8, p=6, C=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N, p)), rng.integers(0, C, N)


@pytest.mark.parametrize("batchnorm", [True, False])
@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "elu"])
def test_whole_network_gradient_matches_finite_differences(batchnorm, activation):
    X, y = batch()
    net = mlp([6, 5, 4, 3], batchnorm=batchnorm, activation=activation, seed=1)
    errors = check_network_gradients(net, X, y)
    assert set(errors) == set(net.parameters())
    assert max(errors.values()) < 1e-6


def test_gradient_check_fails_for_a_wrong_gradient():
    X, y = batch()
    net = mlp([6, 5, 3], batchnorm=True, seed=1)

    def wrong_loss(Z, labels):
        value, dZ = softmax_cross_entropy(Z, labels)
        return value, 2 * dZ

    with pytest.raises(AssertionError, match="relative error"):
        check_network_gradients(net, X, y, loss=wrong_loss)


def test_matches_torch_forward_backward_with_batchnorm():
    X, y = batch(3, N=10, p=6, C=4)
    net = mlp([6, 5, 4], batchnorm=True, seed=2, bias=[False, True])
    W1, W2, b2 = (torch.tensor(a, requires_grad=True) for a in (net.layers[0].W, net.layers[3].W, net.layers[3].b))
    bn = torch.nn.BatchNorm1d(5, eps=1e-5, momentum=0.1, dtype=torch.float64)
    Xt = torch.tensor(X)
    out = torch.relu(bn(Xt @ W1)) @ W2 + b2
    loss = torch.nn.functional.cross_entropy(out, torch.tensor(y))
    loss.backward()
    value, dZ = softmax_cross_entropy(net.forward(X), y)
    net.backward(dZ)
    grads = net.gradients()
    assert abs(value - loss.item()) < 1e-12
    np.testing.assert_allclose(grads["0.W"], W1.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["1.gamma"], bn.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads["3.b"], b2.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(net.layers[1].running_var, bn.running_var.numpy(), rtol=1e-12)
    # Inference mode uses the running statistics, as torch's eval() does.
    net.eval()
    bn.eval()
    np.testing.assert_allclose(net.forward(X), (torch.relu(bn(Xt @ W1)) @ W2 + b2).detach().numpy(), rtol=1e-10)


def test_parameters_are_the_layers_arrays_and_optimizers_update_them():
    X, y = batch()
    net = mlp([6, 5, 3], batchnorm=True, seed=0)
    assert sorted(net.parameters()) == ["0.W", "1.beta", "1.gamma", "3.W", "3.b"]
    assert net.num_parameters() == 6 * 5 + 5 + 5 + 5 * 3 + 3
    before = copy.deepcopy(net.parameters())
    _, dZ = softmax_cross_entropy(net.forward(X), y)
    net.backward(dZ)
    grads = net.gradients()
    SGD(lr=0.1).step(net.parameters(), grads)
    for key, value in net.parameters().items():
        np.testing.assert_allclose(value, before[key] - 0.1 * grads[key])
    assert net.layers[0].W is net.parameters()["0.W"]


def test_train_and_eval_switch_batchnorm():
    X, _ = batch()
    net = mlp([6, 4, 3], batchnorm=True, seed=0)
    net.forward(X)
    running = net.layers[1].running_mean.copy()
    net.eval()
    assert not net.layers[1].training
    net.forward(X)
    np.testing.assert_array_equal(net.layers[1].running_mean, running)  # eval does not update
    one = net.forward(X[:1])  # a batch of one is fine in inference mode
    np.testing.assert_allclose(one, net.forward(X)[:1])
    net.train()
    with pytest.raises(ValueError, match="batch of 1 sample in training mode"):
        net.forward(X[:1])


def test_float32_network_stays_float32():
    X, y = batch()
    net = mlp([6, 5, 3], batchnorm=True, seed=0, dtype=np.float32)
    out = net.forward(X.astype(np.float32))
    assert out.dtype == np.float32
    net.backward(softmax_cross_entropy(out, y)[1])
    assert all(g.dtype == np.float32 for g in net.gradients().values())
    with pytest.raises(ValueError, match="float64"):
        check_network_gradients(net, X, y)


def test_mlp_defaults_and_determinism():
    a, b = mlp([6, 5, 4, 3], batchnorm=True, seed=4), mlp([6, 5, 4, 3], batchnorm=True, seed=4)
    kinds = [type(layer).__name__ for layer in a.layers]
    assert kinds == ["Linear", "BatchNorm", "ActivationLayer", "Linear", "BatchNorm", "ActivationLayer", "Linear"]
    assert a.layers[0].b is None and a.layers[3].b is None and a.layers[6].b is not None
    for key, value in a.parameters().items():
        np.testing.assert_array_equal(value, b.parameters()[key])
    W = mlp([400, 300], seed=0).layers[0].W
    assert abs(W.std() * np.sqrt(400) - 1) < 0.01  # N(0, 1/fan_in)
    U = mlp([400, 300], seed=0, init="uniform").layers[0].W
    assert np.abs(U).max() <= 1 / 20


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ([Linear(np.ones((6, 5))), BatchNorm(4)], r"layer 1 \(BatchNorm, gamma \(4,\)\) normalises 4 features, but "
         r"layer 0 \(Linear \(no bias\), W \(6, 5\)\) outputs 5"),
        ([Linear(np.ones((6, 5))), ActivationLayer("relu"), Linear(np.ones((4, 3)))],
         r"layer 2 \(Linear \(no bias\), W \(4, 3\)\) expects 4 input features, but layer 0 .* outputs 5"),
        ([Linear(np.ones((6, 5)), np.ones(4))], r"bias b must have shape \(5,\)"),
        ([], "at least one layer"),
        ([ActivationLayer("relu")], "at least one Linear or BatchNorm"),
        ([Linear(np.ones((2, 2))), "relu"], "layer 1 must be a Linear, BatchNorm or ActivationLayer"),
    ],
)
def test_bad_construction_raises_naming_layers_and_shapes(layers, message):
    with pytest.raises((ValueError, TypeError), match=message):
        Sequential(layers)


def test_bad_calls():
    net = mlp([6, 5, 3], seed=0)
    with pytest.raises(ValueError, match="6 columns"):
        net.forward(np.zeros((4, 5)))
    with pytest.raises(ValueError, match="non-finite"):
        net.forward(np.full((4, 6), np.nan))
    with pytest.raises(RuntimeError, match="before backward"):
        net.gradients()
    with pytest.raises(ValueError, match="sizes"):
        mlp([3])
    with pytest.raises(ValueError, match="activation"):
        mlp([3, 2], activation="swish")
    with pytest.raises(ValueError, match="one flag per linear layer"):
        mlp([3, 2, 2], bias=[True])
    with pytest.raises(ValueError, match="dtype"):
        net.astype(np.int32)
    with pytest.raises(ValueError, match="dY"):
        net.forward(np.zeros((4, 6)))
        net.backward(np.full((4, 3), np.inf))


def test_the_chapters_networks_have_the_sources_layouts():
    from bnbackprop.experiments import digits_network_corrected, mnist_network

    with_bn = mnist_network(0, batchnorm=True)
    kinds = [type(layer).__name__ for layer in with_bn.layers]
    assert kinds == ["Linear", "BatchNorm", "ActivationLayer"] * 2 + ["Linear"]
    assert all(layer.b is None for layer in with_bn.layers if isinstance(layer, Linear))  # the series' Linear'
    assert mnist_network(0, batchnorm=True, last_bias=True).layers[-1].b is not None
    plain = mnist_network(0, batchnorm=False)
    assert all(layer.b is not None for layer in plain.layers if isinstance(layer, Linear))
    assert with_bn.parameters()["0.W"].dtype == np.float32
    digits = digits_network_corrected(0)
    assert [type(layer).__name__ for layer in digits.layers].count("BatchNorm") == 3  # also after the last layer
    assert digits.layers[1].momentum == pytest.approx(0.01) and digits.layers[1].eps == 0.01
