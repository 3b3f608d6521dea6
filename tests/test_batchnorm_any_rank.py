"""Batch norm on arrays of any rank: ``axis`` names the batch axes, every other index is a feature.

Checked against PyTorch's BatchNorm2d and BatchNorm1d on sequences, layer normalisation
(statistics per sample) against ``torch.nn.functional.layer_norm``, the 2-D computation on
the reshaped matrix, and finite differences.
"""

import itertools

import numpy as np
import pytest
import torch

from bnbackprop import batchnorm
from bnbackprop.gradcheck import check_vjp, relative_error


def rng_arrays(seed, shape, features):
    rng = np.random.default_rng(seed)
    X = rng.normal(loc=0.5, scale=2.0, size=shape)
    gamma, beta = rng.normal(size=features), rng.normal(size=features)
    dY = rng.normal(size=shape)
    return X, gamma, beta, dY


def as_matrix(A, axes):
    """The 2-D N × p matrix of A: reduced axes first (flattened into rows), features in columns."""
    rest = [i for i in range(A.ndim) if i not in axes]
    moved = np.transpose(A, list(axes) + rest)
    n = int(np.prod([A.shape[a] for a in axes]))
    return moved.reshape(n, -1)


def from_matrix(M, axes, shape):
    rest = [i for i in range(len(shape)) if i not in axes]
    order = list(axes) + rest
    moved = M.reshape([shape[i] for i in order])
    return np.transpose(moved, np.argsort(order))


@pytest.mark.parametrize(
    ("shape", "axis"),
    [((4, 3, 5, 2), (0, 2, 3)), ((4, 3, 5), (0, 2)), ((3, 4, 5), (1,)), ((2, 3, 4, 5), (0, 3)), ((6, 2, 3), (0,))],
)
@pytest.mark.parametrize(
    "options",
    [
        {"ddof": ddof, "eps_placement": placement, "eps": eps}
        for ddof, placement, eps in itertools.product((0, 1), ("inside", "outside"), (0.0, 0.1))
    ],
    ids=lambda o: "ddof{ddof}-{eps_placement}-eps{eps}".format(**o),
)
def test_any_rank_equals_the_2d_computation_on_the_reshaped_matrix(shape, axis, options):
    """Nothing changes but what "the batch" is: the N-D result is the N × p result, rearranged."""
    features = tuple(s for i, s in enumerate(shape) if i not in axis)
    X, gamma, beta, dY = rng_arrays(sum(shape), shape, features)
    Y, cache = batchnorm.forward(X, gamma, beta, axis=axis, **options)
    dX, dgamma, dbeta = batchnorm.backward(dY, cache)
    Y2, cache2 = batchnorm.forward(as_matrix(X, axis), gamma.ravel(), beta.ravel(), **options)
    dX2, dgamma2, dbeta2 = batchnorm.backward(as_matrix(dY, axis), cache2)
    assert Y.shape == dX.shape == shape and dgamma.shape == dbeta.shape == features
    assert cache.mean.shape == cache.var.shape == cache.inv_denom.shape == features
    assert cache.batch_size == X.size // gamma.size
    assert relative_error(Y, from_matrix(Y2, axis, shape)) < 1e-14
    assert relative_error(dX, from_matrix(dX2, axis, shape)) < 1e-13
    assert relative_error(dgamma.ravel(), dgamma2) < 1e-13
    assert relative_error(dbeta.ravel(), dbeta2) < 1e-13
    mean, var = batchnorm.batch_statistics(X, axis=axis, ddof=options["ddof"])
    assert relative_error(mean.ravel(), as_matrix(X, axis).mean(axis=0)) < 1e-14
    assert relative_error(var.ravel(), as_matrix(X, axis).var(axis=0, ddof=options["ddof"])) < 1e-14


@pytest.mark.parametrize(
    ("shape", "axis"), [((3, 2, 4), (0, 2)), ((2, 2, 3, 2), (0, 2, 3)), ((3, 2, 2, 2), (1, 2, 3))]
)
@pytest.mark.parametrize("placement", ("inside", "outside"))
def test_any_rank_backward_matches_finite_differences(shape, axis, placement):
    features = tuple(s for i, s in enumerate(shape) if i not in axis)
    X, gamma, beta, dY = rng_arrays(3, shape, features)
    options = {"axis": axis, "eps": 0.01, "eps_placement": placement, "ddof": 1}
    _, cache = batchnorm.forward(X, gamma, beta, **options)
    dX, dgamma, dbeta = batchnorm.backward(dY, cache)
    check_vjp("dX", lambda Z: batchnorm.forward(Z, gamma, beta, **options)[0], X, dY, dX)
    check_vjp("dgamma", lambda g: batchnorm.forward(X, g, beta, **options)[0], gamma, dY, dgamma)
    check_vjp("dbeta", lambda b: batchnorm.forward(X, gamma, b, **options)[0], beta, dY, dbeta)
    mean, var = cache.mean, cache.var
    fixed = {"axis": axis, "eps": 0.01, "eps_placement": placement}
    _, inference = batchnorm.forward_inference(X, gamma, beta, mean, var, **fixed)
    dX_inf = batchnorm.backward(dY, inference)[0]
    inference_output = lambda Z: batchnorm.forward_inference(Z, gamma, beta, mean, var, **fixed)[0]  # noqa: E731
    check_vjp("dX (inference)", inference_output, X, dY, dX_inf)


def _torch_step(reference, X, dY):
    X_torch = torch.tensor(X, requires_grad=True)
    Y_torch = reference(X_torch)
    Y_torch.backward(torch.tensor(dY))
    return Y_torch.detach().numpy(), X_torch.grad.numpy()


@pytest.mark.parametrize(
    ("shape", "axis", "torch_layer"),
    [
        ((6, 3, 4, 5), (0, 2, 3), torch.nn.BatchNorm2d),
        ((5, 3, 7), (0, 2), torch.nn.BatchNorm1d),
        ((5, 3, 2, 3, 2), (0, 2, 3, 4), torch.nn.BatchNorm3d),
    ],
    ids=["BatchNorm2d", "BatchNorm1d-sequences", "BatchNorm3d"],
)
def test_layer_matches_torch_over_several_steps(shape, axis, torch_layer):
    """Outputs, dX, dγ, dβ and the running statistics, in training and in eval mode."""
    rng = np.random.default_rng(8)
    channels = shape[1]
    layer = batchnorm.BatchNorm(channels, axis=axis, momentum=0.3, eps=1e-4)
    layer.gamma, layer.beta = rng.normal(size=channels), rng.normal(size=channels)
    reference = torch_layer(channels, momentum=0.3, eps=1e-4, dtype=torch.float64)
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(layer.gamma))
        reference.bias.copy_(torch.tensor(layer.beta))
    for mode in ("train", "train", "train", "eval", "train", "eval"):
        getattr(layer, mode)()
        getattr(reference, mode)()
        X, dY = rng.normal(loc=2.0, scale=3.0, size=shape), rng.normal(size=shape)
        Y_torch, dX_torch = _torch_step(reference, X, dY)
        assert relative_error(layer.forward(X), Y_torch) < 1e-12
        dX, dgamma, dbeta = layer.backward(dY)
        assert relative_error(dX, dX_torch) < 1e-12
        assert relative_error(dgamma, reference.weight.grad.numpy()) < 1e-12
        assert relative_error(dbeta, reference.bias.grad.numpy()) < 1e-12
        assert relative_error(layer.running_mean, reference.running_mean.numpy()) < 1e-12
        assert relative_error(layer.running_var, reference.running_var.numpy()) < 1e-12
        reference.zero_grad()


def test_function_matches_torch_batch_norm_on_4d():
    X, gamma, beta, dY = rng_arrays(5, (8, 4, 3, 3), (4,))
    Y, cache = batchnorm.forward(X, gamma, beta, axis=(0, 2, 3), eps=1e-3)
    grads = batchnorm.backward(dY, cache)
    tensors = [torch.tensor(a, requires_grad=True) for a in (X, gamma, beta)]
    Y_torch = torch.nn.functional.batch_norm(tensors[0], None, None, tensors[1], tensors[2], training=True, eps=1e-3)
    Y_torch.backward(torch.tensor(dY))
    assert relative_error(Y, Y_torch.detach().numpy()) < 1e-13
    for ours, theirs in zip(grads, tensors, strict=True):
        assert relative_error(ours, theirs.grad.numpy()) < 1e-12


@pytest.mark.parametrize(("shape", "axis"), [((5, 3, 4, 2), (1, 2, 3)), ((6, 7, 4), (2,)), ((6, 7, 4), (-2, -1))])
def test_layer_normalisation_is_statistics_per_sample(shape, axis):
    """Layer norm = x̂ over the non-batch axes, with an elementwise weight and bias shaped like
    the normalised axes; its gradients follow from batchnorm.backward with γ = 1, β = 0."""
    rng = np.random.default_rng(21)
    X, dY = rng.normal(loc=-1.0, scale=2.5, size=shape), rng.normal(size=shape)
    ndim = len(shape)
    normalised = sorted(a % ndim for a in axis)
    normalised_shape = tuple(shape[a] for a in normalised)
    weight, bias = rng.normal(size=normalised_shape), rng.normal(size=normalised_shape)
    per_sample = tuple(s for i, s in enumerate(shape) if i not in normalised)
    eps = 1e-5
    xhat, cache = batchnorm.forward(X, np.ones(per_sample), np.zeros(per_sample), axis=axis, eps=eps)
    Y = weight * xhat + bias
    dX = batchnorm.backward(dY * weight, cache)[0]
    batch_axes = tuple(range(ndim - len(normalised_shape)))
    dweight, dbias = (dY * xhat).sum(axis=batch_axes), dY.sum(axis=batch_axes)

    tensors = [torch.tensor(a, requires_grad=True) for a in (X, weight, bias)]
    Y_torch = torch.nn.functional.layer_norm(tensors[0], normalised_shape, tensors[1], tensors[2], eps=eps)
    Y_torch.backward(torch.tensor(dY))
    assert relative_error(Y, Y_torch.detach().numpy()) < 1e-13
    for ours, theirs in zip((dX, dweight, dbias), tensors, strict=True):
        assert relative_error(ours, theirs.grad.numpy()) < 1e-12


def test_negative_and_listed_axes_mean_the_same_axes():
    X, gamma, beta, dY = rng_arrays(4, (3, 2, 4), (2,))
    reference, cache = batchnorm.forward(X, gamma, beta, axis=(0, 2))
    for axis in ((-3, -1), (2, 0), [0, -1], (np.int64(0), np.int64(2))):
        Y, other = batchnorm.forward(X, gamma, beta, axis=axis)
        assert np.array_equal(Y, reference)
        assert other.axis == (0, 2)
        for a, b in zip(batchnorm.backward(dY, other), batchnorm.backward(dY, cache), strict=True):
            assert np.array_equal(a, b)
    Y_rows, _ = batchnorm.forward(X[:, :, 0], gamma, beta, axis=-2)
    Y_zero, _ = batchnorm.forward(X[:, :, 0], gamma, beta, axis=0)
    assert np.array_equal(Y_rows, Y_zero)


@pytest.mark.parametrize(
    ("axis", "error", "words"),
    [
        ((0, 0), ValueError, ["axis", "more than once"]),
        ((0, -3), ValueError, ["axis", "more than once"]),
        ((0, 3), ValueError, ["axis 3", "out of range", "(3, 2, 4)"]),
        (-4, ValueError, ["axis -4", "out of range"]),
        ((0, 1, 2), ValueError, ["axis", "every axis"]),
        ((), ValueError, ["axis", "at least one"]),
        (0.0, TypeError, ["axis", "int"]),
        ((0, 1.5), TypeError, ["axis", "int"]),
        (True, TypeError, ["axis"]),
        ("0", TypeError, ["axis"]),
    ],
)
def test_bad_axes_are_refused_by_every_entry_point(axis, error, words):
    X, gamma, beta, _ = rng_arrays(1, (3, 2, 4), (2,))
    calls = [
        lambda: batchnorm.forward(X, gamma, beta, axis=axis),
        lambda: batchnorm.forward_inference(X, gamma, beta, beta, np.ones(2), axis=axis),
        lambda: batchnorm.batch_statistics(X, axis=axis),
        lambda: batchnorm.BatchNorm(2, axis=axis).forward(X),
    ]
    for call in calls:
        with pytest.raises(error) as info:
            call()
        for word in words:
            assert word in str(info.value)


def test_per_feature_arrays_must_have_the_shape_of_the_remaining_axes():
    X, _, _, _ = rng_arrays(1, (3, 2, 4), (2,))
    with pytest.raises(ValueError, match=r"gamma must have shape \(2, 4\).*got \(2,\)"):
        batchnorm.forward(X, np.ones(2), np.zeros(2), axis=0)
    with pytest.raises(ValueError, match=r"\(1, 2, 1\), a batch of 1"):
        batchnorm.forward(X[:1, :, :1], np.ones(2), np.zeros(2), axis=(0, 2))
    Y, _ = batchnorm.forward(X[:1], np.ones(2), np.zeros(2), axis=(0, 2))  # N = 1 · 4 entries per feature
    assert Y.shape == (1, 2, 4)
    layer = batchnorm.BatchNorm((2, 4), axis=0)
    assert layer.gamma.shape == (2, 4) and layer.forward(X).shape == X.shape
