"""The canonical published backward passes of batch norm, transcribed to be checked.

Three forms that readers meet first, each written as its source writes it (same
intermediate quantities, same names where the source names them), samples in rows
(``X`` is N × p), so that the book can check each against finite differences and
against :mod:`bnbackprop.batchnorm`:

* :func:`ioffe_szegedy_backward` — the chain rule of section 3 of Ioffe & Szegedy (2015),
  through ∂ℓ/∂x̂, ∂ℓ/∂σ², ∂ℓ/∂μ, including the ∂σ²/∂μ term that is zero in exact
  arithmetic (``include_variance_mean_term=False`` drops it, as some implementations do).
* :func:`cs231n_backward_alt` — the one-expression form written for CS231n's
  ``batchnorm_backward_alt``.
* :func:`makemore_forward` / :func:`makemore_backward` — Karpathy's makemore part 4, whose
  batch variance has Bessel's correction (divides by n - 1) and whose ``dhprebn`` line
  carries the matching ``n/(n-1)``.

:func:`torch_autograd_backward` is the independent reference: the forward pass written in
PyTorch operations and differentiated by autograd.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bnbackprop._validation import (
    as_float_array,
    require_bool,
    require_finite,
    require_finite_output,
    require_int,
    require_nonnegative_float,
    require_shape,
)


def _check(
    X: object, dY: object, gamma: object, eps: object, *, min_rows: int = 2, names: tuple = ("X", "dY", "gamma")
) -> tuple:
    """Validate the inputs (named as the caller's arguments are) and refuse a zero variance with ε = 0."""
    x_name, dy_name, gamma_name = names
    X = as_float_array(X, x_name, ndim=2)
    require_finite(X, x_name)
    if X.shape[0] < min_rows:
        raise ValueError(f"{x_name} {X.shape} needs a batch of at least {min_rows} rows (samples in rows)")
    if dY is None:
        dY = np.zeros(X.shape)
    dY = as_float_array(dY, dy_name, ndim=2)
    require_shape(dY, X.shape, dy_name, f"the shape of {x_name}")
    require_finite(dY, dy_name)
    gamma = as_float_array(gamma, gamma_name).reshape(-1)
    require_shape(gamma, (X.shape[1],), gamma_name, f"one entry per column of {x_name} {X.shape}")
    require_finite(gamma, gamma_name)
    eps = require_nonnegative_float(eps, "eps")
    X = X.astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        var = X.var(axis=0)
    if not np.all(np.isfinite(var)):
        raise ValueError(
            f"{x_name}: the variance of columns {np.flatnonzero(~np.isfinite(var)).tolist()} overflows float64 "
            f"(values up to {np.max(np.abs(X)):.3g}); the transcribed formulas square X - mu directly: rescale {x_name}"
        )
    if eps == 0:
        constant = np.flatnonzero(np.all(X == X[0], axis=0))
        if constant.size:
            raise ValueError(
                f"eps = 0 with a constant feature of {x_name} (columns {constant.tolist()}): its variance is 0 "
                "and 1/sqrt(var + eps) is infinite; use eps > 0"
            )
    return X, dY.astype(np.float64), gamma.astype(np.float64), eps


def _finite_outputs(operation: str, *arrays: np.ndarray) -> None:
    for array in arrays:
        require_finite_output(
            array, operation, "the inputs are too large (their squares or products overflow float64) "
            "or the variance is too small for eps"
        )


@dataclass(frozen=True)
class IoffeSzegedyGradients:
    """Every quantity of the paper's backward equations, by the paper's names.

    ``dxhat`` = ∂ℓ/∂x̂ (N × p); ``dvar`` = ∂ℓ/∂σ²_B, ``dmu`` = ∂ℓ/∂μ_B and
    ``dmu_through_var`` = the term ∂ℓ/∂σ²_B · Σᵢ −2(xᵢ − μ_B)/m inside ``dmu`` (all p);
    ``dX``, ``dgamma``, ``dbeta`` as in :func:`bnbackprop.batchnorm.backward`.
    """

    dxhat: np.ndarray
    dvar: np.ndarray
    dmu: np.ndarray
    dmu_through_var: np.ndarray
    dX: np.ndarray
    dgamma: np.ndarray
    dbeta: np.ndarray


def ioffe_szegedy_backward(
    dY: np.ndarray, X: np.ndarray, gamma: np.ndarray, *, eps: float = 1e-5, include_variance_mean_term: bool = True
) -> IoffeSzegedyGradients:
    """The backward equations of section 3 of Ioffe & Szegedy (2015), one line each.

    With m the batch size, μ_B and σ²_B the batch mean and (population) variance::

        ∂ℓ/∂x̂ᵢ  = ∂ℓ/∂yᵢ · γ
        ∂ℓ/∂σ²_B = Σᵢ ∂ℓ/∂x̂ᵢ · (xᵢ − μ_B) · (−1/2)(σ²_B + ε)^(−3/2)
        ∂ℓ/∂μ_B  = (Σᵢ ∂ℓ/∂x̂ᵢ · −1/√(σ²_B + ε)) + ∂ℓ/∂σ²_B · Σᵢ −2(xᵢ − μ_B)/m
        ∂ℓ/∂xᵢ   = ∂ℓ/∂x̂ᵢ · 1/√(σ²_B + ε) + ∂ℓ/∂σ²_B · 2(xᵢ − μ_B)/m + ∂ℓ/∂μ_B · 1/m
        ∂ℓ/∂γ    = Σᵢ ∂ℓ/∂yᵢ · x̂ᵢ,     ∂ℓ/∂β = Σᵢ ∂ℓ/∂yᵢ

    ``include_variance_mean_term=False`` leaves out the second term of ∂ℓ/∂μ_B, which is a
    multiple of Σᵢ (xᵢ − μ_B) = 0.
    """
    X, dY, gamma, eps = _check(X, dY, gamma, eps)
    include_variance_mean_term = require_bool(include_variance_mean_term, "include_variance_mean_term")
    m = X.shape[0]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        gradients = _ioffe_szegedy(dY, X, gamma, eps, m, include_variance_mean_term)
    _finite_outputs("ioffe_szegedy_backward", gradients.dX, gradients.dgamma, gradients.dbeta)
    return gradients


def _ioffe_szegedy(dY, X, gamma, eps, m, include_variance_mean_term) -> IoffeSzegedyGradients:
    mu = X.mean(axis=0)
    var = ((X - mu) ** 2).mean(axis=0)
    xhat = (X - mu) / np.sqrt(var + eps)
    dxhat = dY * gamma
    dvar = (dxhat * (X - mu) * -0.5 * (var + eps) ** -1.5).sum(axis=0)
    dmu_through_var = dvar * (-2 * (X - mu)).sum(axis=0) / m
    dmu = (dxhat * -1 / np.sqrt(var + eps)).sum(axis=0)
    if include_variance_mean_term:
        dmu = dmu + dmu_through_var
    dX = dxhat / np.sqrt(var + eps) + dvar * 2 * (X - mu) / m + dmu / m
    return IoffeSzegedyGradients(
        dxhat=dxhat, dvar=dvar, dmu=dmu, dmu_through_var=dmu_through_var,
        dX=dX, dgamma=(dY * xhat).sum(axis=0), dbeta=dY.sum(axis=0),
    )


def cs231n_backward_alt(
    dout: np.ndarray, x: np.ndarray, gamma: np.ndarray, *, eps: float = 1e-5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The simplified backward pass written for CS231n's ``batchnorm_backward_alt``.

    With ``mu``, ``var`` the batch mean and population variance (the assignment's
    ``sample_mean``, ``sample_var``)::

        dx = (1. / N) * gamma * (var + eps)**(-1. / 2.) * (N * dout - np.sum(dout, axis=0)
             - (x - mu) * (var + eps)**(-1.0) * np.sum(dout * (x - mu), axis=0))

    Returns ``(dx, dgamma, dbeta)``.
    """
    x, dout, gamma, eps = _check(x, dout, gamma, eps, names=("x", "dout", "gamma"))
    N = x.shape[0]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        mu = x.mean(axis=0)
        var = x.var(axis=0)
        x_hat = (x - mu) / np.sqrt(var + eps)
        dbeta = np.sum(dout, axis=0)
        dgamma = np.sum(dout * x_hat, axis=0)
        dx = (1. / N) * gamma * (var + eps)**(-1. / 2.) * (N * dout - np.sum(dout, axis=0)
             - (x - mu) * (var + eps)**(-1.0) * np.sum(dout * (x - mu), axis=0))
    _finite_outputs("cs231n_backward_alt", dx, dgamma, dbeta)
    return dx, dgamma, dbeta


@dataclass(frozen=True)
class MakemoreCache:
    """makemore part 4's forward quantities: ``bnraw`` (x̂, n × p) and ``bnvar_inv`` (1 × p)."""

    bnraw: np.ndarray
    bnvar_inv: np.ndarray
    bngain: np.ndarray


def makemore_forward(
    hprebn: np.ndarray, bngain: np.ndarray, bnbias: np.ndarray, *, eps: float = 1e-5
) -> tuple[np.ndarray, MakemoreCache]:
    """makemore part 4's batch-norm forward pass, with Bessel's correction.

    Line by line, in NumPy for PyTorch::

        bnmeani = 1/n*hprebn.sum(0, keepdim=True)
        bndiff = hprebn - bnmeani
        bndiff2 = bndiff**2
        bnvar = 1/(n-1)*(bndiff2).sum(0, keepdim=True)   # Bessel's correction
        bnvar_inv = (bnvar + 1e-5)**-0.5
        bnraw = bndiff * bnvar_inv
        hpreact = bngain * bnraw + bnbias
    """
    hprebn, _, bngain, eps = _check(hprebn, None, bngain, eps, names=("hprebn", "dhpreact", "bngain"))
    bnbias = as_float_array(bnbias, "bnbias").reshape(-1).astype(np.float64)
    require_shape(bnbias, bngain.shape, "bnbias", "the shape of bngain")
    require_finite(bnbias, "bnbias")
    n = hprebn.shape[0]
    bngain, bnbias = bngain[None, :], bnbias[None, :]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        bnmeani = 1 / n * hprebn.sum(0, keepdims=True)
        bndiff = hprebn - bnmeani
        bndiff2 = bndiff**2
        bnvar = 1 / (n - 1) * (bndiff2).sum(0, keepdims=True)
        bnvar_inv = (bnvar + eps) ** -0.5
        bnraw = bndiff * bnvar_inv
        hpreact = bngain * bnraw + bnbias
    _finite_outputs("makemore_forward", hpreact, bnvar_inv)
    return hpreact, MakemoreCache(bnraw=bnraw, bnvar_inv=bnvar_inv, bngain=bngain)


def makemore_backward(dhpreact: np.ndarray, cache: MakemoreCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """makemore part 4's one-line batch-norm backward pass, with its gain and bias gradients.

    Line by line::

        dbngain = (bnraw * dhpreact).sum(0, keepdim=True)
        dbnbias = dhpreact.sum(0, keepdim=True)
        dhprebn = bngain*bnvar_inv/n * (n*dhpreact - dhpreact.sum(0)
                  - n/(n-1)*bnraw*(dhpreact*bnraw).sum(0))

    Returns ``(dhprebn, dbngain, dbnbias)``, the last two flattened to one entry per feature.
    """
    if not isinstance(cache, MakemoreCache):
        raise TypeError(f"cache must be the MakemoreCache from makemore_forward(), got {type(cache).__name__}")
    dhpreact = as_float_array(dhpreact, "dhpreact", ndim=2).astype(np.float64)
    require_shape(dhpreact, cache.bnraw.shape, "dhpreact", "the shape of hprebn")
    require_finite(dhpreact, "dhpreact")
    bnraw, bnvar_inv, bngain = cache.bnraw, cache.bnvar_inv, cache.bngain
    n = bnraw.shape[0]
    dbngain = (bnraw * dhpreact).sum(0, keepdims=True)
    dbnbias = dhpreact.sum(0, keepdims=True)
    with np.errstate(over="ignore", invalid="ignore"):
        dhprebn = bngain*bnvar_inv/n * (n*dhpreact - dhpreact.sum(0) - n/(n-1)*bnraw*(dhpreact*bnraw).sum(0))
    _finite_outputs("makemore_backward", dhprebn, dbngain)
    return dhprebn, dbngain.reshape(-1), dbnbias.reshape(-1)


def torch_autograd_backward(
    dY: np.ndarray,
    X: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    *,
    eps: float = 1e-5,
    ddof: int = 0,
    eps_placement: str = "inside",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(Y, dX, dgamma, dbeta)`` from PyTorch autograd, in float64, samples in rows.

    The forward pass is written in PyTorch operations (``torch.var`` with ``correction=ddof``;
    ε inside the square root or added to σ) so that autograd differentiates it independently
    of this library.
    """
    X, dY, gamma, eps = _check(X, dY, gamma, eps)
    beta = as_float_array(beta, "beta").reshape(-1).astype(np.float64)
    require_shape(beta, gamma.shape, "beta", "the shape of gamma")
    require_finite(beta, "beta")
    if eps_placement not in ("inside", "outside"):
        raise ValueError(f"eps_placement must be one of ('inside', 'outside'), got {eps_placement!r}")
    ddof = require_int(ddof, "ddof", minimum=0)
    if ddof >= X.shape[0]:
        raise ValueError(f"ddof must be smaller than the batch size {X.shape[0]} of X {X.shape}, got {ddof}")
    import torch

    tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (X, gamma, beta)]
    Xt, gt, bt = tensors
    mean = Xt.mean(dim=0)
    var = Xt.var(dim=0, correction=ddof)
    denominator = torch.sqrt(var + eps) if eps_placement == "inside" else torch.sqrt(var) + eps
    Yt = gt * (Xt - mean) / denominator + bt
    Yt.backward(torch.tensor(dY, dtype=torch.float64))
    results = (Yt.detach().numpy(), *(t.grad.numpy() for t in tensors))
    _finite_outputs("torch_autograd_backward", *results)
    return results
