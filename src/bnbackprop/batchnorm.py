"""Batch normalisation: forward pass, exact backward pass, and a layer with running statistics.

Conventions (the book's notation page states them once):

* ``X`` holds samples in rows (``axis=0``, shape N × p) by default; ``axis=1`` takes the
  features × batch layout (p × N) of the course notes. Statistics are taken along ``axis``.
* ``ddof=0`` normalises with the population variance, ``ddof=1`` with the sample variance.
* ``eps_placement="inside"`` divides by √(σ² + ε) (Ioffe & Szegedy, PyTorch);
  ``"outside"`` divides by σ + ε, as the course notes do.

The backward pass is exact for every combination of these options::

    dX = inv_std * (g - mean(g) - κ · x̂ · Σ(g ⊙ x̂) / (N - ddof)),   g = dY ⊙ γ

with κ = 1 for ε inside and κ = (σ + ε)/σ for ε outside; the book derives it in the
chapter on the batch-norm backward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from bnbackprop._validation import (
    as_float_array,
    require_choice,
    require_finite,
    require_int,
    require_nonnegative_float,
    require_shape,
)

EpsPlacement = Literal["inside", "outside"]
EPS_PLACEMENTS = ("inside", "outside")
AXES = (0, 1)


@dataclass(frozen=True)
class BatchNormCache:
    """What the forward pass keeps for the backward pass.

    ``xhat`` and ``xc`` have the layout of ``X``; ``mean``, ``var``, ``inv_std`` and ``gamma``
    are vectors with one entry per feature. ``batch_stats`` is True when the statistics were
    computed from this batch (training) and False when they were constants (inference).
    """

    xhat: np.ndarray
    xc: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    inv_std: np.ndarray
    gamma: np.ndarray
    eps: float
    ddof: int
    axis: int
    eps_placement: str
    batch_stats: bool

    @property
    def batch_size(self) -> int:
        """Number of samples N along the batch axis."""
        return self.xhat.shape[self.axis]


def _feature_axis(axis: int) -> int:
    return 1 - axis


def _per_feature(vector: np.ndarray, axis: int) -> np.ndarray:
    """View a length-p vector so that it broadcasts against X in the given layout."""
    return vector[np.newaxis, :] if axis == 0 else vector[:, np.newaxis]


def _check_options(eps: object, ddof: object, axis: object, eps_placement: object) -> tuple:
    eps = require_nonnegative_float(eps, "eps")
    ddof = require_int(ddof, "ddof", minimum=0)
    require_choice(axis, "axis", AXES)
    require_choice(eps_placement, "eps_placement", EPS_PLACEMENTS)
    return eps, ddof, int(axis), eps_placement


def _check_input(X: object, axis: int) -> np.ndarray:
    X = as_float_array(X, "X", ndim=2)
    require_finite(X, "X")
    return X


def _check_vector(value: object, name: str, X: np.ndarray, axis: int) -> np.ndarray:
    vector = as_float_array(value, name)
    p = X.shape[_feature_axis(axis)]
    layout = "N × p" if axis == 0 else "p × N"
    require_shape(vector, (p,), name, f"one entry per feature of X, whose shape {X.shape} is {layout}")
    require_finite(vector, name)
    return vector


def _denominator(var: np.ndarray, eps: float, eps_placement: str) -> np.ndarray:
    if eps_placement == "inside":
        return np.sqrt(var + eps)
    return np.sqrt(var) + eps


def batch_statistics(X: np.ndarray, *, ddof: int = 0, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of each feature over the batch axis (variance divides by N - ddof)."""
    _, ddof, axis, _ = _check_options(0.0, ddof, axis, "inside")
    X = _check_input(X, axis)
    n = X.shape[axis]
    if n - ddof < 1:
        raise ValueError(f"a batch of {n} along axis {axis} of X {X.shape} has no variance with ddof={ddof}")
    return X.mean(axis=axis), X.var(axis=axis, ddof=ddof)


def _normalise(X, gamma, beta, mean, var, eps, ddof, axis, eps_placement, batch_stats):
    denominator = _denominator(var, eps, eps_placement)
    if np.any(denominator == 0):
        zero = np.flatnonzero(denominator == 0).tolist()
        raise ValueError(
            f"feature(s) {zero} of X {X.shape} have zero variance and eps=0: "
            "the normalisation divides by zero; use eps > 0"
        )
    inv_std = 1.0 / denominator
    xc = X - _per_feature(mean, axis)
    xhat = xc * _per_feature(inv_std, axis)
    Y = _per_feature(gamma, axis) * xhat + _per_feature(beta, axis)
    require_finite(Y, "the output Y (overflow?)")
    cache = BatchNormCache(
        xhat=xhat, xc=xc, mean=mean, var=var, inv_std=inv_std, gamma=gamma,
        eps=eps, ddof=ddof, axis=axis, eps_placement=eps_placement, batch_stats=batch_stats,
    )
    return Y, cache


def forward(
    X: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    *,
    eps: float = 1e-5,
    ddof: int = 0,
    axis: int = 0,
    eps_placement: EpsPlacement = "inside",
) -> tuple[np.ndarray, BatchNormCache]:
    """Batch norm in training mode: normalise each feature with this batch's statistics.

    Returns ``Y = γ ⊙ x̂ + β`` in the layout of ``X`` and the cache for :func:`backward`.
    Raises ``ValueError`` for a batch of one (N must exceed ``ddof`` and be at least 2),
    zero variance with ``eps=0``, non-finite input, mismatched shapes or unknown options.
    """
    eps, ddof, axis, eps_placement = _check_options(eps, ddof, axis, eps_placement)
    X = _check_input(X, axis)
    gamma = _check_vector(gamma, "gamma", X, axis)
    beta = _check_vector(beta, "beta", X, axis)
    n = X.shape[axis]
    if n < 2 or n <= ddof:
        raise ValueError(
            f"training-mode batch norm needs a batch of at least 2 samples (and more than "
            f"ddof={ddof}) along axis {axis}; X has shape {X.shape}, a batch of {n}"
        )
    dtype = np.result_type(X, gamma, beta)
    X, gamma, beta = X.astype(dtype, copy=False), gamma.astype(dtype), beta.astype(dtype)
    mean = X.mean(axis=axis)
    var = X.var(axis=axis, ddof=ddof)
    return _normalise(X, gamma, beta, mean, var, eps, ddof, axis, eps_placement, True)


def forward_inference(
    X: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    *,
    eps: float = 1e-5,
    axis: int = 0,
    eps_placement: EpsPlacement = "inside",
) -> tuple[np.ndarray, BatchNormCache]:
    """Batch norm in inference mode: normalise with fixed statistics ``mean`` and ``var``.

    The statistics are constants here, so the layer is affine in ``X`` and any batch size,
    one included, is allowed.
    """
    eps, _, axis, eps_placement = _check_options(eps, 0, axis, eps_placement)
    X = _check_input(X, axis)
    gamma = _check_vector(gamma, "gamma", X, axis)
    beta = _check_vector(beta, "beta", X, axis)
    mean = _check_vector(mean, "mean", X, axis)
    var = _check_vector(var, "var", X, axis)
    if np.any(var < 0):
        raise ValueError(f"var must be >= 0, got minimum {var.min()}")
    dtype = np.result_type(X, gamma, beta, mean, var)
    arrays = (a.astype(dtype, copy=False) for a in (X, gamma, beta, mean, var))
    X, gamma, beta, mean, var = arrays
    return _normalise(X, gamma, beta, mean, var, eps, 0, axis, eps_placement, False)


def backward(dY: np.ndarray, cache: BatchNormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact gradients ``(dX, dgamma, dbeta)`` of a loss, given ``dY = ∂L/∂Y``.

    ``dX`` has the shape of ``X``; ``dgamma`` and ``dbeta`` have one entry per feature.
    With batch statistics the gradient flows through the mean and the variance; with fixed
    statistics (inference) it is ``dY ⊙ γ / denominator``.
    """
    if not isinstance(cache, BatchNormCache):
        raise TypeError(f"cache must be the BatchNormCache from forward(), got {type(cache).__name__}")
    dY = as_float_array(dY, "dY", ndim=2)
    require_shape(dY, cache.xhat.shape, "dY", "the shape of X in the forward pass")
    require_finite(dY, "dY")
    axis = cache.axis
    dY = dY.astype(np.result_type(dY, cache.xhat), copy=False)
    dbeta = dY.sum(axis=axis)
    dgamma = (dY * cache.xhat).sum(axis=axis)
    g = dY * _per_feature(cache.gamma, axis)
    inv_std = _per_feature(cache.inv_std, axis)
    if not cache.batch_stats:
        return g * inv_std, dgamma, dbeta
    n_minus_ddof = cache.batch_size - cache.ddof
    projection = (g * cache.xhat).sum(axis=axis) / n_minus_ddof
    if cache.eps_placement == "outside":
        sigma = np.sqrt(cache.var)
        kappa = np.divide(sigma + cache.eps, sigma, out=np.zeros_like(sigma), where=sigma > 0)
        projection = projection * kappa
    dX = inv_std * (g - g.mean(axis=axis, keepdims=True) - cache.xhat * _per_feature(projection, axis))
    return dX, dgamma, dbeta


class BatchNorm:
    """A batch-norm layer with learnable ``gamma``, ``beta`` and running statistics.

    Momentum follows PyTorch: after each training batch,
    ``running = (1 - momentum) * running + momentum * batch_statistic``, so ``momentum=0.1``
    keeps 90 % of the old value. Sources written in the Keras style, such as the blog post's
    ``BatchNorm(momentum=0.99)`` that keeps 99 % of the old value, correspond to
    ``momentum = 1 - 0.99``. As in PyTorch, the running variance is updated with the
    sample variance (``running_var_ddof=1``) while the batch is normalised with
    ``ddof``; set ``running_var_ddof=0`` to follow sources that store the population
    variance. Running statistics start at mean 0 and variance 1.

    In training mode :meth:`forward` uses batch statistics; after :meth:`eval` it uses the
    running statistics, and :meth:`backward` then treats them as constants.
    """

    def __init__(
        self,
        num_features: int,
        *,
        momentum: float = 0.1,
        eps: float = 1e-5,
        ddof: int = 0,
        axis: int = 0,
        eps_placement: EpsPlacement = "inside",
        running_var_ddof: int = 1,
    ) -> None:
        self.num_features = require_int(num_features, "num_features", minimum=1)
        momentum = require_nonnegative_float(momentum, "momentum")
        if momentum > 1:
            raise ValueError(f"momentum must lie in [0, 1], got {momentum}")
        self.momentum = momentum
        self.eps, self.ddof, self.axis, self.eps_placement = _check_options(eps, ddof, axis, eps_placement)
        self.running_var_ddof = require_int(running_var_ddof, "running_var_ddof", minimum=0)
        self.gamma = np.ones(num_features)
        self.beta = np.zeros(num_features)
        self.running_mean = np.zeros(num_features)
        self.running_var = np.ones(num_features)
        self.training = True
        self.dgamma: np.ndarray | None = None
        self.dbeta: np.ndarray | None = None
        self._cache: BatchNormCache | None = None

    def train(self, mode: bool = True) -> BatchNorm:
        """Switch to training mode (batch statistics), or to inference with ``mode=False``."""
        self.training = bool(mode)
        return self

    def eval(self) -> BatchNorm:
        """Switch to inference mode (running statistics)."""
        return self.train(False)

    def forward(self, X: np.ndarray) -> np.ndarray:
        """Normalise ``X``; in training mode also update the running statistics."""
        options = {"eps": self.eps, "axis": self.axis, "eps_placement": self.eps_placement}
        if self.training:
            Y, cache = forward(X, self.gamma, self.beta, ddof=self.ddof, **options)
            n = cache.batch_size
            if n <= self.running_var_ddof:
                raise ValueError(f"a batch of {n} cannot update the running variance with ddof={self.running_var_ddof}")
            batch_var = cache.xc.var(axis=self.axis, ddof=self.running_var_ddof)
            keep = 1.0 - self.momentum
            self.running_mean = keep * self.running_mean + self.momentum * cache.mean
            self.running_var = keep * self.running_var + self.momentum * batch_var
        else:
            Y, cache = forward_inference(
                X, self.gamma, self.beta, self.running_mean, self.running_var, **options
            )
        self._cache = cache
        return Y

    __call__ = forward

    def backward(self, dY: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(dX, dgamma, dbeta)``, as :func:`backward` does, and store ``dgamma`` and ``dbeta`` on the layer."""
        if self._cache is None:
            raise RuntimeError("BatchNorm.backward called before forward")
        dX, self.dgamma, self.dbeta = backward(dY, self._cache)
        return dX, self.dgamma, self.dbeta
