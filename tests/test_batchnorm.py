"""Batch norm against the loop reference, finite differences, PyTorch, and its own structure."""

import itertools

import numpy as np
import pytest
import torch

from bnbackprop import batchnorm, loops
from bnbackprop.gradcheck import check_vjp, relative_error

OPTIONS = [
    {"axis": axis, "ddof": ddof, "eps_placement": placement, "eps": eps}
    for axis, ddof, placement, eps in itertools.product((0, 1), (0, 1), ("inside", "outside"), (0.0, 0.1))
]
SHAPES = [(2, 1), (3, 2), (5, 4), (8, 3)]  # (N, p): batch size, features


def make_batch(shape, axis, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    n, p = shape
    X = rng.normal(loc=1.0, scale=2.0, size=(n, p) if axis == 0 else (p, n))
    gamma, beta = rng.normal(size=p), rng.normal(size=p)
    dY = rng.normal(size=X.shape)
    return [a.astype(dtype) for a in (X, gamma, beta, dY)]


def option_id(options):
    return "axis{axis}-ddof{ddof}-{eps_placement}-eps{eps}".format(**options)


@pytest.mark.parametrize("options", OPTIONS, ids=option_id)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_forward_and_backward_match_loop_reference(options, shape):
    if shape[0] <= options["ddof"]:
        pytest.skip("batch too small for ddof")
    X, gamma, beta, dY = make_batch(shape, options["axis"], seed=sum(shape))
    Y, cache = batchnorm.forward(X, gamma, beta, **options)
    dX, dgamma, dbeta = batchnorm.backward(dY, cache)
    dX_loop, dgamma_loop, dbeta_loop = loops.backward(dY, X, gamma, **options)
    assert relative_error(Y, loops.forward(X, gamma, beta, **options)) < 1e-12
    assert dX.shape == X.shape and dgamma.shape == gamma.shape and dbeta.shape == beta.shape
    # atol matters for N = 2, ε = 0, where x̂ = ±1 whatever X is and dX vanishes exactly
    scale = np.abs(dY).max() * np.abs(gamma).max() * cache.inv_denom.max()
    np.testing.assert_allclose(dX, dX_loop, rtol=1e-10, atol=1e-13 * scale)
    assert relative_error(dgamma, dgamma_loop) < 1e-12
    assert relative_error(dbeta, dbeta_loop) < 1e-12


@pytest.mark.parametrize("options", OPTIONS, ids=option_id)
@pytest.mark.parametrize("shape", SHAPES[1:], ids=str)
def test_backward_matches_finite_differences(options, shape):
    if shape[0] <= options["ddof"]:
        pytest.skip("batch too small for ddof")
    X, gamma, beta, dY = make_batch(shape, options["axis"], seed=7 * sum(shape))
    _, cache = batchnorm.forward(X, gamma, beta, **options)
    dX, dgamma, dbeta = batchnorm.backward(dY, cache)
    check_vjp("dX", lambda Z: batchnorm.forward(Z, gamma, beta, **options)[0], X, dY, dX)
    check_vjp("dgamma", lambda g: batchnorm.forward(X, g, beta, **options)[0], gamma, dY, dgamma)
    check_vjp("dbeta", lambda b: batchnorm.forward(X, gamma, b, **options)[0], beta, dY, dbeta)


@pytest.mark.parametrize("options", OPTIONS, ids=option_id)
def test_float32_agrees_with_float64(options):
    """float32 keeps its dtype and agrees with float64 to 1e-4 (float32 resolution is 6e-8,
    and the backward pass loses up to three digits to cancellation in g - mean(g) - ...)."""
    X, gamma, beta, dY = make_batch((16, 5), options["axis"], seed=3)
    results = {}
    for dtype in (np.float32, np.float64):
        args = [a.astype(dtype) for a in (X, gamma, beta)]
        Y, cache = batchnorm.forward(*args, **options)
        grads = batchnorm.backward(dY.astype(dtype), cache)
        assert all(a.dtype == dtype for a in (Y, *grads))
        results[dtype] = (Y, *grads)
    for low, high in zip(results[np.float32], results[np.float64], strict=True):
        assert relative_error(low, high) < 1e-4


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_pytorch_autograd(shape):
    X, gamma, beta, dY = make_batch(shape, 0, seed=11)
    eps = 1e-3
    Y, cache = batchnorm.forward(X, gamma, beta, eps=eps)
    dX, dgamma, dbeta = batchnorm.backward(dY, cache)
    tensors = [torch.tensor(a, requires_grad=True) for a in (X, gamma, beta)]
    Y_torch = torch.nn.functional.batch_norm(
        tensors[0], None, None, tensors[1], tensors[2], training=True, eps=eps
    )
    Y_torch.backward(torch.tensor(dY))
    assert relative_error(Y, Y_torch.detach().numpy()) < 1e-12
    for ours, theirs in zip((dX, dgamma, dbeta), tensors, strict=True):
        assert relative_error(ours, theirs.grad.numpy()) < 1e-10


@pytest.mark.parametrize("options", OPTIONS, ids=option_id)
def test_layouts_are_equivalent(options):
    rows_options = {**options, "axis": 0}
    cols_options = {**options, "axis": 1}
    X, gamma, beta, dY = make_batch((6, 3), 0, seed=5)
    Y, cache = batchnorm.forward(X, gamma, beta, **rows_options)
    Yt, cache_t = batchnorm.forward(X.T, gamma, beta, **cols_options)
    assert np.allclose(Y, Yt.T, rtol=0, atol=1e-14)
    for a, b in zip(batchnorm.backward(dY, cache), batchnorm.backward(dY.T, cache_t), strict=True):
        b = b.T if b.ndim == 2 else b
        assert np.allclose(a, b, rtol=0, atol=1e-13)


@pytest.mark.parametrize("options", OPTIONS, ids=option_id)
def test_structure_of_dX(options):
    """Each feature's dX sums to zero, and its projection on x̂ is inv_denom · Σ g x̂ · c with
    c = 1 - κ Σx̂²/(N - ddof): ε/(σ² + ε) for ε inside, ε/(σ + ε) for ε outside, so zero
    exactly when ε = 0 (derived in the chapter)."""
    X, gamma, beta, dY = make_batch((7, 3), options["axis"], seed=9)
    _, cache = batchnorm.forward(X, gamma, beta, **options)
    dX, _, _ = batchnorm.backward(dY, cache)
    axis = options["axis"]
    assert np.allclose(dX.sum(axis=axis), 0, atol=1e-12)
    g = dY * (gamma[None, :] if axis == 0 else gamma[:, None])
    var, eps = cache.var, options["eps"]
    sigma = np.sqrt(var)
    if options["eps_placement"] == "inside":
        leftover = eps / (var + eps)
    else:
        leftover = eps / (sigma + eps)
    expected = cache.inv_denom * (g * cache.xhat).sum(axis=axis) * leftover
    assert np.allclose((dX * cache.xhat).sum(axis=axis), expected, atol=1e-12)


def test_inference_backward_treats_statistics_as_constants():
    X, gamma, beta, dY = make_batch((4, 3), 0, seed=2)
    mean, var = np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.2, 3.0])
    Y, cache = batchnorm.forward_inference(X, gamma, beta, mean, var, eps=1e-3)
    dX, dgamma, dbeta = batchnorm.backward(dY, cache)
    assert np.allclose(Y, gamma * (X - mean) / np.sqrt(var + 1e-3) + beta)
    check_vjp("dX", lambda Z: batchnorm.forward_inference(Z, gamma, beta, mean, var, eps=1e-3)[0], X, dY, dX)
    check_vjp("dgamma", lambda g: batchnorm.forward_inference(X, g, beta, mean, var, eps=1e-3)[0], gamma, dY, dgamma)
    check_vjp("dbeta", lambda b: batchnorm.forward_inference(X, gamma, b, mean, var, eps=1e-3)[0], beta, dY, dbeta)
    one_sample, _ = batchnorm.forward_inference(X[:1], gamma, beta, mean, var)
    assert one_sample.shape == (1, 3)


def test_zero_variance_with_eps_is_finite_in_both_placements():
    X = np.array([[1.0, 2.0], [1.0, 3.0], [1.0, 5.0]])  # the first feature is constant
    dY = np.arange(6.0).reshape(3, 2)
    for placement in ("inside", "outside"):
        Y, cache = batchnorm.forward(X, np.ones(2), np.zeros(2), eps=0.1, eps_placement=placement)
        dX, _, _ = batchnorm.backward(dY, cache)
        assert np.all(np.isfinite(Y)) and np.all(np.isfinite(dX))
        # a constant feature's gradient is the centred upstream divided by the denominator
        assert np.allclose(dX[:, 0], (dY[:, 0] - dY[:, 0].mean()) * cache.inv_denom[0])


@pytest.mark.parametrize("ddof", (0, 1))
def test_layer_matches_torch_batchnorm1d(ddof):
    """Running statistics (PyTorch's momentum convention, unbiased running variance), outputs in
    both modes and gradients in both modes, over several steps."""
    rng = np.random.default_rng(4)
    p = 3
    layer = batchnorm.BatchNorm(p, momentum=0.2, eps=1e-4)
    layer.gamma, layer.beta = rng.normal(size=p), rng.normal(size=p)
    reference = torch.nn.BatchNorm1d(p, momentum=0.2, eps=1e-4, dtype=torch.float64)
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(layer.gamma))
        reference.bias.copy_(torch.tensor(layer.beta))
    for mode in ("train", "train", "train", "eval", "eval"):
        getattr(layer, mode)()
        getattr(reference, mode)()
        X, dY = rng.normal(size=(5, p)) * 3 + 1, rng.normal(size=(5, p))
        X_torch = torch.tensor(X, requires_grad=True)
        Y_torch = reference(X_torch)
        Y_torch.backward(torch.tensor(dY))
        assert relative_error(layer.forward(X), Y_torch.detach().numpy()) < 1e-12
        assert relative_error(layer.backward(dY)[0], X_torch.grad.numpy()) < 1e-10
        assert relative_error(layer.dgamma, reference.weight.grad.numpy()) < 1e-10
        assert relative_error(layer.running_mean, reference.running_mean.numpy()) < 1e-12
        assert relative_error(layer.running_var, reference.running_var.numpy()) < 1e-12
        reference.zero_grad()


def test_layer_keras_style_momentum_maps_to_one_minus():
    """A source's running = 0.99 · running + 0.01 · batch is momentum = 0.01 here."""
    X = np.random.default_rng(0).normal(size=(10, 2))
    layer = batchnorm.BatchNorm(2, momentum=1 - 0.99, running_var_ddof=0)
    layer.forward(X)
    assert np.allclose(layer.running_mean, 0.99 * 0 + 0.01 * X.mean(axis=0))
    assert np.allclose(layer.running_var, 0.99 * 1 + 0.01 * X.var(axis=0))


def test_batch_statistics_follow_layout_and_ddof():
    X = np.arange(12.0).reshape(4, 3) ** 2
    for ddof in (0, 1):
        mean, var = batchnorm.batch_statistics(X, ddof=ddof)
        assert np.allclose(mean, X.sum(axis=0) / 4)
        assert np.allclose(var, ((X - X.sum(axis=0) / 4) ** 2).sum(axis=0) / (4 - ddof))
        mean_t, var_t = batchnorm.batch_statistics(X.T, ddof=ddof, axis=1)
        assert np.allclose(mean_t, mean) and np.allclose(var_t, var)
    with pytest.raises(ValueError, match=r"batch of 1 .* ddof=1"):
        batchnorm.batch_statistics(X[:1], ddof=1)


@pytest.mark.parametrize("placement", ("inside", "outside"))
def test_cache_holds_what_its_names_say(placement):
    """inv_denom is 1/√(σ² + ε) or 1/(σ + ε), not 1/σ; κ is 1 or (σ + ε)/σ; xc is recomputed."""
    X, gamma, beta, _ = make_batch((9, 4), 0, seed=13)
    eps = 0.3
    _, cache = batchnorm.forward(X, gamma, beta, eps=eps, ddof=1, eps_placement=placement)
    sigma = X.std(axis=0, ddof=1)
    denominator = np.sqrt(sigma**2 + eps) if placement == "inside" else sigma + eps
    assert relative_error(cache.inv_denom, 1 / denominator) < 1e-15
    assert relative_error(cache.kappa, np.ones(4) if placement == "inside" else (sigma + eps) / sigma) < 1e-15
    assert relative_error(cache.xhat, (X - X.mean(axis=0)) / denominator) < 1e-14
    assert relative_error(cache.xc, X - X.mean(axis=0)) < 1e-14
    assert relative_error(cache.mean, X.mean(axis=0)) < 1e-15 and relative_error(cache.var, sigma**2) < 1e-14
    assert cache.inv_std is cache.inv_denom  # the former name, kept for old code
