"""The matrix-form functions on NumPy, PyTorch (CPU) and array-api-strict arrays.

array-api-strict allows nothing outside the standard, so its run exercises the
array-API code path (the book's formula written with standard functions only) that
PyTorch and CuPy arrays take; the NumPy run is the library's fast path. Each run is
compared with the NumPy float64 result, and results must come back in the input's library.
"""

import itertools

import array_api_strict
import numpy as np
import pytest
import torch

from bnbackprop import batchnorm
from bnbackprop.gradcheck import relative_error

LIBRARIES = {
    "numpy": (np.asarray, np.ndarray),
    "torch": (torch.from_numpy, torch.Tensor),
    "array-api-strict": (array_api_strict.asarray, type(array_api_strict.asarray(0.0))),
}
CASES = [
    ((8, 5), 0),
    ((5, 8), 1),
    ((4, 3, 5), (0, 2)),
    ((3, 2, 4, 2), (0, 2, 3)),
]
OPTIONS = [
    {"ddof": ddof, "eps_placement": placement, "eps": eps}
    for ddof, placement, eps in itertools.product((0, 1), ("inside", "outside"), (0.0, 1e-3))
]


def to_numpy(array):
    if isinstance(array, torch.Tensor):
        return array.numpy()
    return np.from_dlpack(array)


def make(shape, axis, seed):
    rng = np.random.default_rng(seed)
    axes = (axis,) if isinstance(axis, int) else axis
    features = tuple(s for i, s in enumerate(shape) if i not in axes)
    X = rng.normal(loc=1.5, scale=2.0, size=shape)
    return X, rng.normal(size=features), rng.normal(size=features), rng.normal(size=shape)


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("dtype", ("float64", "float32"))
@pytest.mark.parametrize(("shape", "axis"), CASES, ids=str)
@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "ddof{ddof}-{eps_placement}-eps{eps}".format(**o))
def test_training_forward_and_backward_in_every_library(library, dtype, shape, axis, options):
    convert, array_type = LIBRARIES[library]
    X, gamma, beta, dY = make(shape, axis, seed=len(shape))
    Y, cache = batchnorm.forward(X, gamma, beta, axis=axis, **options)
    expected = (Y, *batchnorm.backward(dY, cache))

    inputs = [convert(a.astype(dtype)) for a in (X, gamma, beta, dY)]
    Y_lib, cache_lib = batchnorm.forward(*inputs[:3], axis=axis, **options)
    results = (Y_lib, *batchnorm.backward(inputs[3], cache_lib))
    # float32 carries 6e-8 relative rounding; the backward pass loses up to three digits to cancellation
    bound = 1e-13 if dtype == "float64" else 1e-4
    for result, reference in zip(results, expected, strict=True):
        assert isinstance(result, array_type)
        assert str(result.dtype).endswith(dtype)
        assert relative_error(to_numpy(result), reference) < bound


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize(("shape", "axis"), CASES, ids=str)
def test_inference_and_statistics_in_every_library(library, shape, axis):
    convert, array_type = LIBRARIES[library]
    X, gamma, beta, dY = make(shape, axis, seed=3)
    mean, var = batchnorm.batch_statistics(X, axis=axis, ddof=1)
    Y, cache = batchnorm.forward_inference(X, gamma, beta, mean, var, axis=axis, eps=0.01)
    expected = (mean, var, Y, *batchnorm.backward(dY, cache))

    mean_lib, var_lib = batchnorm.batch_statistics(convert(X), axis=axis, ddof=1)
    inputs = [convert(a) for a in (X, gamma, beta)]
    Y_lib, cache_lib = batchnorm.forward_inference(*inputs, mean_lib, var_lib, axis=axis, eps=0.01)
    results = (mean_lib, var_lib, Y_lib, *batchnorm.backward(convert(dY), cache_lib))
    for result, reference in zip(results, expected, strict=True):
        assert isinstance(result, array_type)
        assert relative_error(to_numpy(result), reference) < 1e-13


@pytest.mark.parametrize(
    ("shape", "axis"),
    # the last two are large enough (2**16 entries) for the path that sums squares without a temporary
    [((300, 40), 0), ((40, 300), 1), ((512, 160), 0), ((32, 8, 16, 16), (0, 2, 3))],
    ids=str,
)
def test_the_fast_numpy_path_equals_the_array_api_formula(shape, axis):
    """The NumPy path (in-place, factored) against the book's formula run on array-api-strict."""
    rng = np.random.default_rng(17)
    X, gamma, beta, dY = make(shape, axis, seed=17)
    X = X * np.expand_dims(rng.uniform(0.01, 100.0, size=gamma.shape), axis)  # features of very different scales
    for options in OPTIONS:
        Y, cache = batchnorm.forward(X, gamma, beta, axis=axis, **options)
        fast = (Y, *batchnorm.backward(dY, cache))
        strict = [array_api_strict.asarray(a) for a in (X, gamma, beta, dY)]
        Y_ref, cache_ref = batchnorm.forward(*strict[:3], axis=axis, **options)
        reference = (Y_ref, *batchnorm.backward(strict[3], cache_ref))
        for a, b in zip(fast, reference, strict=True):
            assert relative_error(a, to_numpy(b)) < 1e-13


@pytest.mark.parametrize("library", ("torch", "array-api-strict"))
def test_bad_input_is_refused_in_every_library(library):
    convert, _ = LIBRARIES[library]
    X, gamma, beta, dY = make((6, 3), 0, seed=1)
    X_nan = X.copy()
    X_nan[2, 1] = np.nan
    with pytest.raises(ValueError, match="X holds 1 non-finite"):
        batchnorm.forward(convert(X_nan), convert(gamma), convert(beta))
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\)"):
        batchnorm.forward(convert(X), convert(gamma[:2]), convert(beta))
    with pytest.raises(ValueError, match="batch of 1"):
        batchnorm.forward(convert(X[:1]), convert(gamma), convert(beta))
    constant = X.copy()
    constant[:, 2] = 0.1
    with pytest.raises(ValueError, match=r"feature\(s\) \[2\].*zero variance and eps=0"):
        batchnorm.forward(convert(constant), convert(gamma), convert(beta), eps=0.0)
    _, cache = batchnorm.forward(convert(X), convert(gamma), convert(beta))
    dY_inf = dY.copy()
    dY_inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="dY holds 1 non-finite"):
        batchnorm.backward(convert(dY_inf), cache)
    with pytest.raises(ValueError, match="overflows"):
        batchnorm.forward(convert(X), convert(np.full(3, 1e308)), convert(np.full(3, 1e308)))


def test_torch_float16_is_computed_in_float32_and_returned_in_float16():
    X, gamma, beta, dY = make((16, 4), 0, seed=2)
    Y, cache = batchnorm.forward(torch.from_numpy(X).half(), torch.from_numpy(gamma).half(), torch.from_numpy(beta))
    dX, dgamma, dbeta = batchnorm.backward(torch.from_numpy(dY).half(), cache)
    assert Y.dtype == dX.dtype == dgamma.dtype == dbeta.dtype == torch.float16
    assert cache.xhat.dtype == torch.float32
    Y64, cache64 = batchnorm.forward(X, gamma, beta)
    # float16 rounds to 2**-11 = 4.9e-4 relative: once on input, once on output
    assert relative_error(Y.double().numpy(), Y64) < 3e-3
    assert relative_error(dX.double().numpy(), batchnorm.backward(dY, cache64)[0]) < 1e-2
