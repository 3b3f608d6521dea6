"""Batch normalisation: forward pass, exact backward pass, and a layer with running statistics.

Conventions (the book's notation page states them once):

* Statistics are taken over ``axis``: an int or a tuple of ints naming the axes that form
  the batch; every index of the remaining axes is one feature. For a 2-D ``X`` the default
  ``axis=0`` takes samples in rows (N × p) and ``axis=1`` the features × batch layout
  (p × N) of the course notes. ``axis=(0, 2, 3)`` on an (N, C, H, W) array is PyTorch's
  ``BatchNorm2d``, ``axis=(0, 2)`` on (N, C, L) is ``BatchNorm1d`` on sequences, and the
  non-batch axes (``axis=(1, 2, 3)``) give layer normalisation's statistics per sample.
  ``gamma``, ``beta``, ``mean`` and ``var`` have the shape of the remaining axes (one entry
  per feature: (p,) for 2-D input, (C,) for ``axis=(0, 2, 3)``); N in the formulas is the
  number of entries of one feature, the product of the sizes of the reduced axes.
* ``ddof=0`` normalises with the population variance, ``ddof=1`` with the sample variance.
* ``eps_placement="inside"`` divides by √(σ² + ε) (Ioffe & Szegedy, PyTorch);
  ``"outside"`` divides by σ + ε, as the course notes do.

The backward pass is exact for every combination of these options::

    dX = inv_denom · (g - mean(g) - κ · x̂ · Σ(g ⊙ x̂) / (N - ddof)),   g = dY ⊙ γ

with ``inv_denom`` = 1/√(σ² + ε) (ε inside) or 1/(σ + ε) (ε outside), κ = 1 for ε inside
and κ = (σ + ε)/σ for ε outside; the book derives it in the chapter on the batch-norm
backward pass.

The cache kept between the passes (:class:`BatchNormCache`) holds x̂ (one array the size of
``X``) and per-feature vectors: ``inv_denom``, ``gamma``, κ, ``mean`` and ``var``. The
centred input X - μ is not kept: the backward pass needs only x̂.
"""

from __future__ import annotations

import math
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


@dataclass(frozen=True)
class BatchNormCache:
    """What the forward pass keeps for the backward pass.

    ``xhat`` has the layout of ``X``; ``mean``, ``var``, ``inv_denom``, ``kappa`` and
    ``gamma`` have one entry per feature (the shape of the axes not in ``axis``).
    ``inv_denom`` is 1/√(σ² + ε) for ε inside and 1/(σ + ε) for ε outside; ``kappa`` is
    (σ + ε)/σ for ε outside (0 for a constant feature) and 1 for ε inside. ``axis`` is the
    sorted tuple of reduced axes. ``batch_stats`` is True when the statistics were computed
    from this batch (training) and False when they were constants (inference).
    """

    xhat: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    inv_denom: np.ndarray
    kappa: np.ndarray
    gamma: np.ndarray
    eps: float
    ddof: int
    axis: tuple[int, ...]
    eps_placement: str
    batch_stats: bool

    @property
    def batch_size(self) -> int:
        """Number N of entries per feature: the product of the sizes of the reduced axes."""
        return math.prod(self.xhat.shape[a] for a in self.axis)

    @property
    def inv_std(self) -> np.ndarray:
        """Former name of :attr:`inv_denom` (it is 1/σ only when ε = 0); kept for old code."""
        return self.inv_denom

    @property
    def xc(self) -> np.ndarray:
        """The centred input X - μ, recomputed from x̂ (it is not kept in the cache)."""
        return self.xhat / _broadcast(self.inv_denom, self.xhat.ndim, self.axis)


def _broadcast(vector: np.ndarray, ndim: int, axes: tuple[int, ...]) -> np.ndarray:
    """View a per-feature array so that it broadcasts against X (size-1 reduced axes)."""
    return np.expand_dims(vector, axes) if vector.ndim < ndim else vector


def _check_axis_type(axis: object) -> tuple[int, ...]:
    """``axis`` as a tuple of ints, or ``TypeError``/``ValueError`` naming it."""
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)):
            raise TypeError(f"axis must be an int or a tuple of ints, got {axis!r}")
    if not items:
        raise ValueError("axis must name at least one axis to take the statistics over, got ()")
    return tuple(int(item) for item in items)


def _reduced_axes(axis: object, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The sorted, non-negative axes of an array of ``shape`` that ``axis`` names."""
    ndim = len(shape)
    axes = _check_axis_type(axis)
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for X of shape {shape} ({ndim} dimensions)")
    normalised = tuple(a % ndim for a in axes)
    if len(set(normalised)) != len(normalised):
        raise ValueError(f"axis {axis!r} names the same axis of X {shape} more than once")
    if len(normalised) == ndim:
        raise ValueError(f"axis {axis!r} names every axis of X {shape}: no axis is left for the features")
    return tuple(sorted(normalised))


def _feature_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(size for i, size in enumerate(shape) if i not in axes)


def _check_options(eps: object, ddof: object, eps_placement: object) -> tuple:
    eps = require_nonnegative_float(eps, "eps")
    ddof = require_int(ddof, "ddof", minimum=0)
    require_choice(eps_placement, "eps_placement", EPS_PLACEMENTS)
    return eps, ddof, eps_placement


def _check_input(X: object, axis: object) -> tuple[np.ndarray, tuple[int, ...]]:
    X = as_float_array(X, "X")
    if X.ndim < 2:
        raise ValueError(f"X must be at least 2-D (a batch axis and a feature axis), got shape {X.shape}")
    axes = _reduced_axes(axis, X.shape)
    require_finite(X, "X")
    return X, axes


def _check_vector(value: object, name: str, X: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """A per-feature array of X's dtype, copied so that later changes by the caller do not reach us."""
    vector = as_float_array(value, name)
    features = _feature_shape(X.shape, axes)
    require_shape(
        vector, features, name,
        f"one entry per feature: the axes of X {X.shape} not in axis={axes}",
    )
    require_finite(vector, name)
    return vector.astype(X.dtype, copy=True)


def _batch_size(X: np.ndarray, axes: tuple[int, ...], ddof: int, what: str) -> int:
    n = math.prod(X.shape[a] for a in axes)
    if n < 2 or n <= ddof:
        raise ValueError(
            f"{what} needs a batch of at least 2 samples (and more than ddof={ddof}) over axis {axes}; "
            f"X has shape {X.shape}, a batch of {n}"
        )
    return n


def _denominator(var: np.ndarray, eps: float, eps_placement: str) -> np.ndarray:
    if eps_placement == "inside":
        return np.sqrt(var + eps)
    return np.sqrt(var) + eps


def _features(mask: np.ndarray) -> list:
    """Indices of the features where ``mask`` holds, as ints (one feature axis) or tuples."""
    found = np.argwhere(mask)
    if mask.ndim == 1:
        return found[:, 0].tolist()
    return [tuple(row) for row in found.tolist()]


def _moments(X: np.ndarray, axes: tuple[int, ...], ddof: int) -> tuple[np.ndarray, np.ndarray]:
    mean = X.mean(axis=axes, keepdims=True)
    var = X.var(axis=axes, ddof=ddof, keepdims=True)
    return mean, var


def batch_statistics(X: np.ndarray, *, ddof: int = 0, axis: int | tuple[int, ...] = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of each feature over the axes ``axis`` (variance divides by N - ddof)."""
    _, ddof, _ = _check_options(0.0, ddof, "inside")
    X, axes = _check_input(X, axis)
    n = math.prod(X.shape[a] for a in axes)
    if n - ddof < 1:
        raise ValueError(f"a batch of {n} over axis {axes} of X {X.shape} has no variance with ddof={ddof}")
    features = _feature_shape(X.shape, axes)
    mean, var = _moments(X, axes, ddof)
    return mean.reshape(features), var.reshape(features)


def _normalise(X, axes, gamma, beta, mean, var, eps, ddof, eps_placement, batch_stats):
    """x̂, Y and the cache from per-feature statistics in broadcast shape."""
    denominator = _denominator(var, eps, eps_placement)
    features = _feature_shape(X.shape, axes)
    if np.any(denominator == 0):
        zero = _features((denominator == 0).reshape(features))
        raise ValueError(
            f"feature(s) {zero} of X {X.shape} have zero variance and eps=0: "
            "the normalisation divides by zero; use eps > 0"
        )
    inv_denom = 1.0 / denominator
    xhat = (X - mean) * inv_denom
    Y = xhat * _broadcast(gamma, X.ndim, axes) + _broadcast(beta, X.ndim, axes)
    require_finite(Y, "the output Y (overflow?)")
    if eps_placement == "inside":
        kappa = np.ones_like(var)
    else:
        sigma = np.sqrt(var)
        kappa = np.divide(sigma + eps, sigma, out=np.zeros_like(sigma), where=sigma > 0)
    cache = BatchNormCache(
        xhat=xhat, mean=mean.reshape(features), var=var.reshape(features),
        inv_denom=inv_denom.reshape(features), kappa=kappa.reshape(features), gamma=gamma,
        eps=eps, ddof=ddof, axis=axes, eps_placement=eps_placement, batch_stats=batch_stats,
    )
    return Y, cache


def forward(
    X: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    *,
    eps: float = 1e-5,
    ddof: int = 0,
    axis: int | tuple[int, ...] = 0,
    eps_placement: EpsPlacement = "inside",
) -> tuple[np.ndarray, BatchNormCache]:
    """Batch norm in training mode: normalise each feature with this batch's statistics.

    Returns ``Y = γ ⊙ x̂ + β`` in the layout of ``X`` and the cache for :func:`backward`.
    Raises ``ValueError`` for a batch of one (N must exceed ``ddof`` and be at least 2),
    zero variance with ``eps=0``, non-finite input, mismatched shapes or unknown options.
    """
    eps, ddof, eps_placement = _check_options(eps, ddof, eps_placement)
    X, axes = _check_input(X, axis)
    gamma = _check_vector(gamma, "gamma", X, axes)
    beta = _check_vector(beta, "beta", X, axes)
    _batch_size(X, axes, ddof, "training-mode batch norm")
    mean, var = _moments(X, axes, ddof)
    return _normalise(X, axes, gamma, beta, mean, var, eps, ddof, eps_placement, True)


def forward_inference(
    X: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    *,
    eps: float = 1e-5,
    axis: int | tuple[int, ...] = 0,
    eps_placement: EpsPlacement = "inside",
) -> tuple[np.ndarray, BatchNormCache]:
    """Batch norm in inference mode: normalise with fixed statistics ``mean`` and ``var``.

    The statistics are constants here, so the layer is affine in ``X`` and any batch size,
    one included, is allowed. ``gamma``, ``beta``, ``mean`` and ``var`` are copied.
    """
    eps, _, eps_placement = _check_options(eps, 0, eps_placement)
    X, axes = _check_input(X, axis)
    gamma = _check_vector(gamma, "gamma", X, axes)
    beta = _check_vector(beta, "beta", X, axes)
    mean = _check_vector(mean, "mean", X, axes)
    var = _check_vector(var, "var", X, axes)
    if np.any(var < 0):
        raise ValueError(f"var must be >= 0, got minimum {var.min()}")
    mean, var = _broadcast(mean, X.ndim, axes), _broadcast(var, X.ndim, axes)
    return _normalise(X, axes, gamma, beta, mean, var, eps, 0, eps_placement, False)


def backward(dY: np.ndarray, cache: BatchNormCache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact gradients ``(dX, dgamma, dbeta)`` of a loss, given ``dY = ∂L/∂Y``.

    ``dX`` has the shape of ``X``; ``dgamma`` and ``dbeta`` have one entry per feature.
    With batch statistics the gradient flows through the mean and the variance; with fixed
    statistics (inference) it is ``dY ⊙ γ ⊙ inv_denom``.
    """
    if not isinstance(cache, BatchNormCache):
        raise TypeError(f"cache must be the BatchNormCache from forward(), got {type(cache).__name__}")
    dY = as_float_array(dY, "dY")
    require_shape(dY, cache.xhat.shape, "dY", "the shape of X in the forward pass")
    require_finite(dY, "dY")
    axes, ndim, xhat = cache.axis, cache.xhat.ndim, cache.xhat
    dY = dY.astype(xhat.dtype, copy=False)
    dbeta = dY.sum(axis=axes)
    dgamma = (dY * xhat).sum(axis=axes)
    g = dY * _broadcast(cache.gamma, ndim, axes)
    inv_denom = _broadcast(cache.inv_denom, ndim, axes)
    if not cache.batch_stats:
        return g * inv_denom, dgamma, dbeta
    projection = (g * xhat).sum(axis=axes) * cache.kappa / (cache.batch_size - cache.ddof)
    g_mean = g.mean(axis=axes, keepdims=True)
    dX = inv_denom * (g - g_mean - xhat * _broadcast(projection, ndim, axes))
    return dX, dgamma, dbeta


def _check_num_features(num_features: object) -> tuple[int, ...]:
    items = num_features if isinstance(num_features, (tuple, list)) else (num_features,)
    return tuple(require_int(item, "num_features", minimum=1) for item in items)


class BatchNorm:
    """A batch-norm layer with learnable ``gamma``, ``beta`` and running statistics.

    ``num_features`` is the number of features (an int), or the shape of the axes not in
    ``axis`` (a tuple), e.g. ``BatchNorm(C, axis=(0, 2, 3))`` for (N, C, H, W) input.
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
        num_features: int | tuple[int, ...],
        *,
        momentum: float = 0.1,
        eps: float = 1e-5,
        ddof: int = 0,
        axis: int | tuple[int, ...] = 0,
        eps_placement: EpsPlacement = "inside",
        running_var_ddof: int = 1,
    ) -> None:
        shape = _check_num_features(num_features)
        self.num_features = shape[0] if isinstance(num_features, (int, np.integer)) else shape
        momentum = require_nonnegative_float(momentum, "momentum")
        if momentum > 1:
            raise ValueError(f"momentum must lie in [0, 1], got {momentum}")
        self.momentum = momentum
        self.eps, self.ddof, self.eps_placement = _check_options(eps, ddof, eps_placement)
        _check_axis_type(axis)
        self.axis = axis
        self.running_var_ddof = require_int(running_var_ddof, "running_var_ddof", minimum=0)
        self.gamma = np.ones(shape)
        self.beta = np.zeros(shape)
        self.running_mean = np.zeros(shape)
        self.running_var = np.ones(shape)
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
            batch_var = cache.var * ((n - self.ddof) / (n - self.running_var_ddof))
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
