"""Bad input raises a clear error that names the argument, never a NumPy error or a NaN."""

import numpy as np
import pytest

from bnbackprop import batchnorm

X = np.arange(12.0).reshape(4, 3) ** 1.5
GAMMA, BETA = np.ones(3), np.zeros(3)
CONSTANT_FIRST = np.column_stack([np.ones(4), X[:, 1:]])


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"X": np.ones(4)}, ValueError, ["X", "2-D", "(4,)"]),
        ({"X": X.T}, ValueError, ["gamma", "(4,)", "(3,)", "(3, 4)"]),
        ({"gamma": np.ones(4)}, ValueError, ["gamma", "(3,)", "(4,)"]),
        ({"beta": np.ones((3, 1))}, ValueError, ["beta", "(3,)", "(3, 1)"]),
        ({"X": X[:1]}, ValueError, ["batch of 1", "(1, 3)"]),
        ({"X": X[:2], "ddof": 2}, ValueError, ["ddof=2", "(2, 3)"]),
        ({"X": np.where(np.arange(12).reshape(4, 3) == 5, np.nan, X)}, ValueError, ["X", "non-finite"]),
        ({"X": np.where(np.arange(12).reshape(4, 3) == 5, np.inf, X)}, ValueError, ["X", "non-finite"]),
        ({"gamma": np.array([1.0, np.nan, 1.0])}, ValueError, ["gamma", "non-finite"]),
        ({"X": np.array([["a", "b"], ["c", "d"]])}, TypeError, ["X", "real numbers"]),
        ({"X": X + 1j}, TypeError, ["X", "complex"]),
        ({"eps_placement": "around"}, ValueError, ["eps_placement", "around"]),
        ({"axis": 2}, ValueError, ["axis", "2"]),
        ({"ddof": -1}, ValueError, ["ddof", "-1"]),
        ({"ddof": 0.5}, TypeError, ["ddof", "integer"]),
        ({"eps": -1e-5}, ValueError, ["eps", "-1e-05"]),
        ({"eps": float("nan")}, ValueError, ["eps"]),
        ({"eps": "small"}, TypeError, ["eps"]),
        ({"X": CONSTANT_FIRST, "eps": 0.0}, ValueError, ["zero variance", "eps=0", "[0]"]),
        ({"X": CONSTANT_FIRST, "eps": 0.0, "eps_placement": "outside"}, ValueError, ["zero variance"]),
    ],
)
def test_forward_rejects(kwargs, error, words):
    arguments = {"X": X, "gamma": GAMMA, "beta": BETA, **kwargs}
    with pytest.raises(error) as info:
        batchnorm.forward(arguments.pop("X"), arguments.pop("gamma"), arguments.pop("beta"), **arguments)
    for word in words:
        assert word in str(info.value)


def test_backward_rejects_mismatched_and_nonfinite_upstream():
    _, cache = batchnorm.forward(X, GAMMA, BETA)
    with pytest.raises(ValueError, match=r"dY must have shape \(4, 3\).*got \(3, 4\)"):
        batchnorm.backward(X.T, cache)
    with pytest.raises(ValueError, match="dY holds 1 non-finite"):
        batchnorm.backward(np.where(X == X[0, 0], np.nan, X), cache)
    with pytest.raises(TypeError, match="cache must be the BatchNormCache"):
        batchnorm.backward(X, {"xhat": X})


def test_inference_rejects_bad_statistics():
    with pytest.raises(ValueError, match="var must be >= 0"):
        batchnorm.forward_inference(X, GAMMA, BETA, np.zeros(3), -np.ones(3))
    with pytest.raises(ValueError, match=r"mean must have shape \(3,\)"):
        batchnorm.forward_inference(X, GAMMA, BETA, np.zeros(4), np.ones(3))
    with pytest.raises(ValueError, match="zero variance and eps=0"):
        batchnorm.forward_inference(X, GAMMA, BETA, np.zeros(3), np.zeros(3), eps=0)


def test_layer_rejects_bad_configuration_and_order():
    with pytest.raises(ValueError, match="momentum must lie in"):
        batchnorm.BatchNorm(3, momentum=1.5)
    with pytest.raises(ValueError, match="num_features must be >= 1"):
        batchnorm.BatchNorm(0)
    with pytest.raises(ValueError, match="eps_placement"):
        batchnorm.BatchNorm(3, eps_placement="nowhere")
    with pytest.raises(RuntimeError, match="before forward"):
        batchnorm.BatchNorm(3).backward(X)
    with pytest.raises(ValueError, match="gamma must have shape"):
        batchnorm.BatchNorm(2).forward(X)
    with pytest.raises(ValueError, match="batch of 1"):
        batchnorm.BatchNorm(3).forward(X[:1])
    one_sample = batchnorm.BatchNorm(3).eval().forward(X[:1])
    assert np.all(np.isfinite(one_sample))


@pytest.mark.parametrize("mask", [np.ma.nomask, X > 20])
def test_a_masked_array_is_refused_not_stripped_of_its_mask(mask):
    # np.asarray would drop the mask and normalise the masked entries as data
    masked = np.ma.masked_array(X, mask=mask)
    with pytest.raises(TypeError, match=r"X is a numpy\.ma\.MaskedArray .*mask would be silently ignored"):
        batchnorm.forward(masked, GAMMA, BETA)
    with pytest.raises(TypeError, match=r"dY is a numpy\.ma\.MaskedArray"):
        batchnorm.backward(masked, batchnorm.forward(X, GAMMA, BETA)[1])
    with pytest.raises(TypeError, match=r"X is a numpy\.ma\.MaskedArray"):
        batchnorm.forward_inference(masked, GAMMA, BETA, X.mean(axis=0), X.var(axis=0))
    with pytest.raises(TypeError, match=r"X is a numpy\.ma\.MaskedArray"):
        batchnorm.BatchNorm(3).forward(masked)
    # the plain data it wraps is accepted
    assert np.isfinite(batchnorm.forward(np.ma.getdata(masked), GAMMA, BETA)[0]).all()
