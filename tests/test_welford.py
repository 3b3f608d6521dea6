"""Welford's one-pass mean and variance: equal to the two-pass result, and stable where
E[x²] − E[x]² is not."""

import numpy as np
import pytest

from bnbackprop import batchnorm
from bnbackprop.welford import welford, welford_update


@pytest.mark.parametrize("ddof", [0, 1])
def test_matches_numpy_in_float64(ddof):
    X = np.random.default_rng(0).normal(loc=3.0, scale=2.0, size=(50, 4))
    mean, var = welford(X, ddof=ddof)
    assert np.abs(mean - X.mean(axis=0)).max() < 1e-13
    assert np.abs(var - X.var(axis=0, ddof=ddof)).max() < 1e-13


def test_axis_tuple_and_shape():
    X = np.random.default_rng(1).normal(size=(3, 4, 5, 2))
    mean, var = welford(X, axis=(0, 2, 3))
    assert mean.shape == var.shape == (4,)
    assert np.abs(var - X.var(axis=(0, 2, 3))).max() < 1e-13
    mean1, var1 = welford(X.reshape(3, -1), axis=1)
    assert np.abs(var1 - X.reshape(3, -1).var(axis=1)).max() < 1e-13 and mean1.shape == (3,)


def test_stays_in_float32_and_is_stable_far_from_zero():
    Z = np.random.default_rng(2).normal(size=(256, 16))
    X32 = (1e3 + Z).astype(np.float32)
    reference = X32.astype(np.float64).var(axis=0)
    mean, var = welford(X32)
    assert var.dtype == np.float32 and mean.dtype == np.float32
    error = np.abs(var - reference).max() / reference.max()
    naive = (X32**2).mean(axis=0) - X32.mean(axis=0) ** 2
    naive_error = np.abs(naive - reference).max() / reference.max()
    assert error < 1e-4 and naive_error > 0.1  # the textbook one-pass formula has lost most digits
    two_pass = batchnorm.batch_statistics(X32)[1]
    assert np.abs(two_pass - reference).max() / reference.max() < 1e-5


def test_update_folds_in_one_sample():
    count, mean, m2 = welford_update(0, np.zeros(2), np.zeros(2), np.array([1.0, 2.0]))
    count, mean, m2 = welford_update(count, mean, m2, np.array([3.0, 6.0]))
    assert count == 2 and np.array_equal(mean, [2.0, 4.0]) and np.array_equal(m2, [2.0, 8.0])


@pytest.mark.parametrize(
    ("call", "error", "name"),
    [
        (lambda: welford(np.ones((1, 3)), ddof=1), ValueError, "ddof"),
        (lambda: welford(np.array([[np.nan, 1.0], [1.0, 2.0]])), ValueError, "X"),
        (lambda: welford(np.ones((3, 2)), axis=2), ValueError, "axis"),
        (lambda: welford(np.ones((3, 2)), axis=1.0), TypeError, "axis"),
        (lambda: welford(np.ones((3, 2)), ddof=-1), ValueError, "ddof"),
        (lambda: welford(np.array(["a", "b"])), TypeError, "X"),
        (lambda: welford_update(-1, np.zeros(1), np.zeros(1), np.ones(1)), ValueError, "count"),
    ],
)
def test_bad_input(call, error, name):
    with pytest.raises(error, match=name):
        call()
