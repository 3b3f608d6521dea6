"""The canonical published backward passes (bnbackprop.canon) against the library, finite
differences and PyTorch autograd."""

import numpy as np
import pytest

from bnbackprop import batchnorm, canon
from bnbackprop.gradcheck import check_vjp, relative_error

SHAPES = [(2, 1), (3, 2), (6, 4), (16, 3)]


def batch(shape, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(loc=3.0, scale=2.0, size=shape)
    gamma, beta = rng.normal(size=shape[1]), rng.normal(size=shape[1])
    return X, gamma, beta, rng.normal(size=shape)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("eps", (0.0, 1e-3, 0.5))
def test_ioffe_szegedy_equals_library_and_finite_differences(shape, eps):
    X, gamma, beta, dY = batch(shape, seed=sum(shape))
    paper = canon.ioffe_szegedy_backward(dY, X, gamma, eps=eps)
    dX, dgamma, dbeta = batchnorm.backward(dY, batchnorm.forward(X, gamma, beta, eps=eps)[1])
    scale = np.abs(dY).max() * np.abs(gamma).max() / np.sqrt(X.var(axis=0).min() + eps)
    np.testing.assert_allclose(paper.dX, dX, rtol=1e-10, atol=1e-13 * scale)
    assert relative_error(paper.dgamma, dgamma) < 1e-12
    assert relative_error(paper.dbeta, dbeta) < 1e-12
    if shape[0] > 2:
        check_vjp("paper dX", lambda Z: batchnorm.forward(Z, gamma, beta, eps=eps)[0], X, dY, paper.dX)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_the_variance_mean_term_is_rounding_only(shape):
    """Σ(x − μ) = 0, so ∂ℓ/∂σ² · Σ −2(x − μ)/m is zero up to rounding and dropping it changes
    dX by rounding only; but it is a real summand of the paper's equation."""
    X, gamma, _, dY = batch(shape, seed=3 * sum(shape))
    full = canon.ioffe_szegedy_backward(dY, X, gamma, eps=1e-3)
    dropped = canon.ioffe_szegedy_backward(dY, X, gamma, eps=1e-3, include_variance_mean_term=False)
    assert np.abs(full.dmu_through_var).max() < 1e-12 * np.abs(full.dvar).max() * np.abs(X).max()
    assert relative_error(full.dX, dropped.dX) < 1e-12
    # dropping a different, non-vanishing term is caught: the mean's direct term matters
    wrong = full.dX - full.dmu / X.shape[0]
    if np.abs(full.dmu).max() > 1e-6:
        assert relative_error(wrong, full.dX) > 1e-3


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_cs231n_alt_equals_library(shape):
    X, gamma, beta, dY = batch(shape, seed=5 * sum(shape))
    dx, dgamma, dbeta = canon.cs231n_backward_alt(dY, X, gamma, eps=1e-5)
    ours = batchnorm.backward(dY, batchnorm.forward(X, gamma, beta, eps=1e-5)[1])
    scale = np.abs(dY).max() * np.abs(gamma).max() / np.sqrt(X.var(axis=0).min() + 1e-5)
    np.testing.assert_allclose(dx, ours[0], rtol=1e-10, atol=1e-13 * scale)
    assert relative_error(dgamma, ours[1]) < 1e-12 and relative_error(dbeta, ours[2]) < 1e-12


@pytest.mark.parametrize("shape", [s for s in SHAPES if s[0] > 2], ids=str)
def test_makemore_equals_library_with_ddof_1_and_not_with_ddof_0(shape):
    X, gamma, beta, dY = batch(shape, seed=7 * sum(shape))
    hpreact, cache = canon.makemore_forward(X, gamma, beta)
    dhprebn, dbngain, dbnbias = canon.makemore_backward(dY, cache)
    Y1, cache1 = batchnorm.forward(X, gamma, beta, eps=1e-5, ddof=1)
    assert relative_error(hpreact, Y1) < 1e-13
    dX1, dgamma1, dbeta1 = batchnorm.backward(dY, cache1)
    assert relative_error(dhprebn, dX1) < 1e-12
    assert relative_error(dbngain, dgamma1) < 1e-12 and relative_error(dbnbias, dbeta1) < 1e-12
    dX0 = batchnorm.backward(dY, batchnorm.forward(X, gamma, beta, eps=1e-5, ddof=0)[1])[0]
    assert relative_error(dhprebn, dX0) > 1e-3
    check_vjp("makemore dhprebn", lambda Z: canon.makemore_forward(Z, gamma, beta)[0], X, dY, dhprebn)


@pytest.mark.parametrize("ddof", (0, 1))
@pytest.mark.parametrize("placement", ("inside", "outside"))
def test_torch_autograd_reference_equals_library(ddof, placement):
    X, gamma, beta, dY = batch((7, 3), seed=ddof + 10)
    options = {"eps": 1e-2, "ddof": ddof, "eps_placement": placement}
    Y_t, dX_t, dgamma_t, dbeta_t = canon.torch_autograd_backward(dY, X, gamma, beta, **options)
    Y, cache = batchnorm.forward(X, gamma, beta, **options)
    for ours, theirs in zip((Y, *batchnorm.backward(dY, cache)), (Y_t, dX_t, dgamma_t, dbeta_t), strict=True):
        assert relative_error(ours, theirs) < 1e-12


def test_bad_input_is_named():
    X, gamma, beta, dY = batch((4, 3), seed=1)
    with pytest.raises(ValueError, match="dY must have shape"):
        canon.ioffe_szegedy_backward(dY[:3], X, gamma)
    with pytest.raises(ValueError, match="gamma must have shape"):
        canon.cs231n_backward_alt(dY, X, gamma[:2])
    with pytest.raises(ValueError, match="at least 2 rows"):
        canon.makemore_forward(X[:1], gamma, beta)
    with pytest.raises(ValueError, match="non-finite"):
        canon.ioffe_szegedy_backward(dY, np.where(X > 0, np.nan, X), gamma)
    with pytest.raises(TypeError, match="MakemoreCache"):
        canon.makemore_backward(dY, None)
    with pytest.raises(ValueError, match="eps_placement"):
        canon.torch_autograd_backward(dY, X, gamma, beta, eps_placement="around")
