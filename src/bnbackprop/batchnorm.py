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

The cache kept between the passes (:class:`BatchNormCache`) is one array the size of ``X``,
x̂, and per-feature vectors: ``inv_denom``, ``gamma`` and κ, which the backward pass uses,
and ``mean`` and ``var``, which the layer's running statistics use. X - μ is not kept.

Array libraries and dtypes: NumPy float32/float64 arrays take the fused kernel of
:mod:`bnbackprop.fused` where Numba is installed (``engine="auto"``, the default), else a
fast NumPy path (few passes over memory, in-place updates, no temporaries beyond x̂, Y and
dX); ``engine="numpy"`` or ``"fused"`` forces one of them. Arrays of other libraries that follow the
Python array API standard (PyTorch, CuPy, array-api-strict; needs ``array-api-compat``)
take the same formulas written with standard functions only, and the results come back in
the input's library. float32 stays float32; float16 is computed in float32 and the results
rounded to float16.

Numerics: the statistics are two-pass, corrected by the centred values' own mean. Features
whose squares would overflow or lose digits to underflow (in float64 a spread near 1e154 or
above, or below 1e-146; in float32 near 1e19, or below 3e-16), or whose spread is within
rounding of their mean, are recomputed with each feature divided by a power of 2 before
squaring. They normalise correctly as long as σ² fits the dtype: a larger σ² raises
``ValueError``, a smaller one still gives the right x̂ (only ``var`` rounds). A feature whose
entries are all equal has mean equal to that value, variance 0 and x̂ = 0 (refused when
ε = 0). Outputs that would overflow and non-finite input raise ``ValueError`` too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from bnbackprop import _arrays, fused
from bnbackprop._validation import (
    as_float_array,
    require_bool,
    require_choice,
    require_finite,
    require_int,
    require_nonnegative_float,
    require_shape,
)

EpsPlacement = Literal["inside", "outside"]
EPS_PLACEMENTS = ("inside", "outside")
Engine = Literal["auto", "numpy", "fused"]


def _check_engine(engine: object) -> str:
    require_choice(engine, "engine", fused.ENGINES)
    return engine


@dataclass(frozen=True)
class BatchNormCache:
    """What the forward pass keeps for the backward pass.

    ``xhat`` has the layout of ``X``; ``mean``, ``var``, ``inv_denom``, ``kappa`` and
    ``gamma`` have one entry per feature (the shape of the axes not in ``axis``).
    ``inv_denom`` is 1/√(σ² + ε) for ε inside and 1/(σ + ε) for ε outside; ``kappa`` is
    (σ + ε)/σ for ε outside (0 for a constant feature) and 1 for ε inside. ``axis`` is the
    sorted tuple of reduced axes. ``batch_stats`` is True when the statistics were computed
    from this batch (training) and False when they were constants (inference). ``dtype`` is
    the dtype of X, which the gradients take (x̂ is float32 when X is float16).
    The arrays are read-only (NumPy) and never shared with the caller.
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
    dtype: object = None

    @property
    def batch_size(self) -> int:
        """The number N of entries per feature, the product of the sizes of the reduced axes."""
        return math.prod(self.xhat.shape[a] for a in self.axis)

    @property
    def inv_std(self) -> np.ndarray:
        """Former name of ``inv_denom`` (it is 1/σ only when ε = 0); kept for old code."""
        return self.inv_denom

    @property
    def xc(self):
        """The centred input X - μ, recomputed from x̂ (it is not kept in the cache)."""
        namespace = _arrays.foreign_namespace(self.xhat) or np
        return self.xhat / _expand(namespace, self.inv_denom, self.xhat.ndim, self.axis)


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


def _compute_dtype(xp, dtype):
    """float16 is computed in float32 (its range ends at 65504: squares of 256 overflow)."""
    half = getattr(xp, "float16", None)  # not in the array API standard
    return xp.float32 if half is not None and dtype == half else dtype


def _check_input(xp, X: object, axis: object):
    """X as a real floating array of at least 2 dimensions, and the sorted reduced axes.

    Finiteness is not checked here: the batch mean, computed anyway, is finite exactly when
    the entries are (or their sum overflows, which the callers tell apart).
    """
    X = as_float_array(X, "X") if xp is None else _arrays.as_float(xp, X, "X")
    if X.ndim < 2:
        raise ValueError(f"X must be at least 2-D (a batch axis and a feature axis), got shape {tuple(X.shape)}")
    return X, _reduced_axes(axis, tuple(X.shape))


def _check_vector(xp, value: object, name: str, X, axes: tuple[int, ...], dtype):
    """A per-feature array of ``dtype``, always a copy: later changes by the caller do not reach us."""
    if xp is None:
        vector = as_float_array(value, name)
    else:
        vector = _arrays.as_float(xp, value, name, like=X)
    features = _feature_shape(tuple(X.shape), axes)
    require_shape(
        vector, features, name,
        f"one entry per feature: the axes of X {tuple(X.shape)} not in axis={axes}",
    )
    if xp is None:
        require_finite(vector, name)
        return np.array(vector, dtype=dtype)
    _arrays.require_finite(xp, vector, name)
    return xp.asarray(vector, dtype=dtype, copy=True)


def _batch_size(X, axes: tuple[int, ...], ddof: int, what: str) -> int:
    n = math.prod(X.shape[a] for a in axes)
    if n < 2 or n <= ddof:
        raise ValueError(
            f"{what} needs a batch of at least 2 samples (and more than ddof={ddof}) over axis {axes}; "
            f"X has shape {tuple(X.shape)}, a batch of {n}"
        )
    return n


def _trusted(xp, mean, var, n: int, dtype):
    """Features whose fast statistics are exact to rounding: the rest take :func:`_scaled_fit`.

    Suspect are a variance that overflowed or is so small that its squares underflowed
    (below ``tiny/ε_machine``), and a spread within rounding of the mean, where a constant
    feature with an inexact mean would otherwise be normalised to ±1.
    """
    tiny, rounding = _limits(xp, dtype)
    sigma = xp.sqrt(var)
    ok = xp.isfinite(var) & (var >= tiny / rounding) & (sigma > (2 * n * rounding) * xp.abs(mean))
    return ok, sigma


def _limits(xp, dtype) -> tuple[float, float]:
    """The smallest normal number and the machine epsilon of ``dtype``."""
    info = xp.finfo(dtype)
    return float(info.smallest_normal), float(info.eps)


def _scaled_fit(xp, X, axes: tuple[int, ...], n: int, ddof: int, eps: float, eps_placement: str):
    """Statistics and x̂ that cannot overflow or underflow on the way, for features at the float limits.

    Each feature is divided by ``a``, the power of 2 at or below its largest magnitude, and its
    centred values by their largest magnitude ``s`` before squaring, so every square lies in
    [0, 1]; σ = a·s·√v. The centring is corrected by its own mean, as in :func:`_corrected`. A
    feature whose entries are all equal is constant: mean = that value exactly, σ = 0, x̂ = 0.
    Returns mean, var (σ², inf where it overflows), σ, the denominator and x̂.
    """
    high = xp.max(X, axis=axes, keepdims=True)
    low = xp.min(X, axis=axes, keepdims=True)
    constant = high == low
    one = xp.ones_like(high)
    largest = xp.maximum(xp.abs(high), xp.abs(low))
    largest = xp.where(largest > 0, largest, one)
    a = xp.pow(xp.full_like(largest, 2.0), xp.floor(xp.log2(largest)))  # a power of 2: X / a is exact
    y = X / a
    y_mean = xp.sum(y, axis=axes, keepdims=True) / n
    yc = y - y_mean
    shift = xp.sum(yc, axis=axes, keepdims=True) / n  # the rounding error of y_mean
    yc = yc - shift
    y_mean = y_mean + shift
    s = xp.max(xp.abs(yc), axis=axes, keepdims=True)
    flat = constant | (s == 0)
    s = xp.where(flat, one, s)
    z = yc / s
    v = xp.sum(z * z, axis=axes, keepdims=True) / (n - ddof)
    root_v = xp.where(flat, one, xp.sqrt(v))
    zero = xp.zeros_like(high)
    sigma = xp.where(flat, zero, a * (s * root_v))
    mean = xp.where(constant, high, a * y_mean)
    var = sigma * sigma
    if eps == 0:
        denominator = sigma
        xhat = z / root_v
    else:
        denominator = xp.sqrt(var + eps) if eps_placement == "inside" else sigma + eps
        xhat = yc * (a / denominator)
    xhat = xp.where(flat, xp.zeros_like(xhat), xhat)
    return mean, var, sigma, denominator, xhat


def _refuse_overflowing_variance(xp, var, flat, X, features, where: str) -> None:
    overflow = ~xp.isfinite(var) & ~flat
    if bool(xp.any(overflow)):
        bad = _arrays.true_indices(xp, xp.reshape(overflow, features))
        raise ValueError(
            f"{where}: the variance of feature(s) {bad} of X {tuple(X.shape)} overflows {X.dtype} "
            "(its σ is above the square root of the largest float); rescale X"
        )


def _refuse_zero_denominator(xp, denominator, X, features) -> None:
    zero = denominator == 0
    if bool(xp.any(zero)):
        bad = _arrays.true_indices(xp, xp.reshape(zero, features))
        raise ValueError(
            f"feature(s) {bad} of X {tuple(X.shape)} have zero variance and eps=0: "
            "the normalisation divides by zero (or by a σ below the smallest float); use eps > 0"
        )


def _columns(A: np.ndarray, axes: tuple[int, ...], index: tuple) -> np.ndarray:
    """The entries of the features at ``index`` as an (N, m) matrix (a copy)."""
    moved = np.moveaxis(A, axes, tuple(range(len(axes))))
    selected = moved[(slice(None),) * len(axes) + index]
    return selected.reshape(-1, selected.shape[-1])


def _set_columns(A: np.ndarray, axes: tuple[int, ...], index: tuple, values: np.ndarray) -> None:
    moved = np.moveaxis(A, axes, tuple(range(len(axes))))
    reduced = tuple(A.shape[a] for a in axes)
    moved[(slice(None),) * len(axes) + index] = values.reshape((*reduced, values.shape[-1]))


def _sum_of_products(A: np.ndarray, B: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Σ A ⊙ B over ``axes``, without the temporary product array."""
    letters = "abcdefghijklmnopqrstuvwxyz"[: A.ndim]
    kept = "".join(letter for i, letter in enumerate(letters) if i not in axes)
    return np.einsum(f"{letters},{letters}->{kept}", A, B)


_LARGE = 2**16  # arrays from this size on take the path with fewer passes over memory


def _fit_numpy(X: np.ndarray, axes: tuple[int, ...], ddof: int, eps: float, eps_placement: str, dtype, *, xhat=True):
    """Mean, variance, denominator (broadcast shape) and x̂ of X over ``axes``, NumPy path.

    Corrected two-pass statistics (:func:`_corrected`); the centred array becomes x̂ in place.
    Features at the float limits or constant in floating point are redone by :func:`_scaled_fit`.
    """
    n = math.prod(X.shape[a] for a in axes)
    features = _feature_shape(X.shape, axes)
    with np.errstate(all="ignore"):
        mean = np.add.reduce(X, axis=axes, keepdims=True, dtype=dtype)
        mean /= n
        if not np.isfinite(mean).all():
            require_finite(X, "X")
        centred = np.subtract(X, mean, dtype=dtype)
        shift = np.add.reduce(centred, axis=axes, keepdims=True)
        shift /= n
        if X.size >= _LARGE:  # no temporary for the squares
            scratch = None
            squares = _broadcast(_sum_of_products(centred, centred, axes), X.ndim, axes)
        else:  # summed as np.var does, so that small results match it to the bit
            scratch = np.multiply(centred, centred)  # the squares now, Y later
            squares = np.add.reduce(scratch, axis=axes, keepdims=True)
        mean, var = _corrected(np, mean, shift, squares, n, ddof)
        ok, sigma = _trusted(np, mean, var, n, dtype)
        index = np.nonzero(~ok.reshape(features))
        redo = index[0].size > 0
        if redo:
            columns = _columns(X, axes, index).astype(dtype, copy=False)
            s_mean, s_var, s_sigma, s_denominator, s_xhat = _scaled_fit(
                np, columns, (0,), n, ddof, eps, eps_placement
            )
            for full, part in ((mean, s_mean), (var, s_var), (sigma, s_sigma)):
                full.reshape(features)[index] = part[0]
            _refuse_overflowing_variance(np, var, sigma == 0, X, features, "batch norm")
        if eps_placement == "inside":
            denominator = np.sqrt(var + eps)
        else:
            denominator = sigma + eps
        if redo:
            denominator.reshape(features)[index] = s_denominator[0]
        if not xhat:
            return mean, var, sigma, denominator, None, None
        _refuse_zero_denominator(np, denominator, X, features)
        inv_denom = 1.0 / denominator
        if np.any(np.abs(shift) > _limits(np, dtype)[1] ** 0.75 * sigma):
            centred -= shift  # the mean's rounding error would move x̂ by more than 2e-12 (float64), 6e-6 (float32)
        centred *= inv_denom
        if redo:
            _set_columns(centred, axes, index, s_xhat)
    return mean, var, sigma, inv_denom, centred, scratch


def _corrected(xp, mean, shift, squares, n: int, ddof: int):
    """Mean and variance from the centred values' sum of squares and their own mean ``shift``.

    ``shift`` is the rounding error of the first mean; adding it to the mean and removing
    N·shift² from the sum of squares (Σ(x - μ - δ)² = Σ(x - μ)² - Nδ²) makes the result
    exact to first order in that error: the corrected two-pass algorithm.
    """
    var = (squares - (shift * shift) * n) / (n - ddof)
    return mean + shift, xp.maximum(var, xp.zeros_like(var))


def _kappa(xp, sigma, eps: float, eps_placement: str):
    """κ = (σ + ε)/σ for ε outside (0 for a constant feature, whose x̂ is 0), 1 for ε inside."""
    if eps_placement == "inside":
        return xp.ones_like(sigma)
    positive = sigma > 0
    safe = xp.where(positive, sigma, xp.ones_like(sigma))
    return xp.where(positive, (safe + eps) / safe, xp.zeros_like(sigma))


def _output_numpy(xhat: np.ndarray, gamma: np.ndarray, beta: np.ndarray, out_dtype, what: str, out=None) -> np.ndarray:
    """``Y = γ ⊙ x̂ + β`` in the caller's dtype (into ``out`` if given); overflow raises instead of returning inf."""
    try:
        with np.errstate(over="raise", invalid="raise", under="ignore", divide="ignore"):
            Y = np.multiply(xhat, gamma, out=out)
            if beta.any():
                Y += beta
            return Y.astype(out_dtype, copy=False)
    except FloatingPointError:
        raise ValueError(
            f"{what}: the output Y = γ ⊙ x̂ + β overflows {np.dtype(out_dtype).name} "
            f"(max |γ| = {np.abs(gamma).max():.3g}, max |β| = {np.abs(beta).max():.3g})"
        ) from None


def batch_statistics(X, *, ddof: int = 0, axis: int | tuple[int, ...] = 0):
    """Mean and variance of each feature over the axes ``axis`` (variance divides by N - ddof).

    Computed without overflow or underflow on the way; a variance that itself overflows or
    underflows the dtype (σ² outside its range) raises ``ValueError`` rather than returning
    inf or a rounded 0. Results come back in X's array library; float16 is computed in float32.
    """
    _, ddof, _ = _check_options(0.0, ddof, "inside")
    xp = _arrays.foreign_namespace(X)
    X, axes = _check_input(xp, X, axis)
    n = math.prod(X.shape[a] for a in axes)
    if n - ddof < 1:
        raise ValueError(f"a batch of {n} over axis {axes} of X {tuple(X.shape)} has no variance with ddof={ddof}")
    features = _feature_shape(tuple(X.shape), axes)
    namespace = np if xp is None else xp
    dtype = _compute_dtype(namespace, X.dtype)
    if xp is None:
        mean, var, sigma, _, _, _ = _fit_numpy(X, axes, ddof, 1.0, "inside", dtype, xhat=False)
    else:
        with np.errstate(all="ignore"):
            mean, var, sigma, _, _ = _fit_xp(xp, X, axes, ddof, 1.0, "inside", dtype)
    tiny, _ = _limits(namespace, X.dtype)  # float16 results must fit float16
    underflow = (sigma > 0) & (var < tiny)
    if bool(namespace.any(underflow)):
        bad = _arrays.true_indices(namespace, namespace.reshape(underflow, features))
        raise ValueError(
            f"the variance of feature(s) {bad} of X {tuple(X.shape)} underflows {X.dtype} (σ below the square "
            "root of the smallest normal float); rescale X"
        )
    if X.dtype != dtype:  # float16: computed in float32, returned in float16 if it fits
        with np.errstate(over="ignore"):
            var = namespace.astype(var, X.dtype)
        mean = namespace.astype(mean, X.dtype)
        if not _arrays.all_finite(namespace, var):
            bad = _arrays.true_indices(namespace, namespace.reshape(~namespace.isfinite(var), features))
            raise ValueError(
                f"the variance of feature(s) {bad} of X {tuple(X.shape)} overflows {X.dtype}; "
                "pass X as float32 to get it"
            )
    return namespace.reshape(mean, features), namespace.reshape(var, features)


def _fit_xp(xp, X, axes: tuple[int, ...], ddof: int, eps: float, eps_placement: str, dtype):
    """The reference computation, written with array-API functions only: two-pass statistics,
    x̂ = (X - μ) / denominator, and :func:`_scaled_fit` for the features it cannot trust."""
    n = math.prod(X.shape[a] for a in axes)
    features = _feature_shape(tuple(X.shape), axes)
    if X.dtype != dtype:
        X = xp.astype(X, dtype)
    mean = xp.sum(X, axis=axes, keepdims=True) / n
    if not _arrays.all_finite(xp, mean):
        _arrays.require_finite(xp, X, "X")
    centred = X - mean
    shift = xp.sum(centred, axis=axes, keepdims=True) / n
    centred = centred - shift
    mean = mean + shift
    var = xp.sum(centred * centred, axis=axes, keepdims=True) / (n - ddof)
    ok, sigma = _trusted(xp, mean, var, n, dtype)
    if eps_placement == "inside":
        denominator = xp.sqrt(var + eps)
    else:
        denominator = sigma + eps
    xhat = None
    if not bool(xp.all(ok)):
        s_mean, s_var, s_sigma, s_denominator, s_xhat = _scaled_fit(xp, X, axes, n, ddof, eps, eps_placement)
        mean, var, sigma = xp.where(ok, mean, s_mean), xp.where(ok, var, s_var), xp.where(ok, sigma, s_sigma)
        _refuse_overflowing_variance(xp, var, sigma == 0, X, features, "batch norm")
        denominator = xp.where(ok, denominator, s_denominator)
        xhat = s_xhat
    if eps == 0:
        _refuse_zero_denominator(xp, denominator, X, features)
    safe = xp.where(denominator > 0, denominator, xp.ones_like(denominator))
    plain = centred / safe
    xhat = plain if xhat is None else xp.where(ok, plain, xhat)
    return mean, var, sigma, denominator, xhat


def _finish_cache(namespace, X, xhat, mean, var, sigma, inv_denom, gamma, eps, ddof, axes, eps_placement, batch_stats):
    features = _feature_shape(tuple(xhat.shape), axes)
    kappa = _kappa(namespace, sigma, eps, eps_placement)
    vectors = (mean, var, inv_denom, kappa)
    if namespace is np:  # the ndarray method: a fifth of np.reshape's cost, on every call
        vectors = [a.reshape(features) for a in vectors]
        for array in (xhat, *vectors, gamma):
            array.flags.writeable = False
    else:
        vectors = [namespace.reshape(a, features) for a in vectors]
    mean, var, inv_denom, kappa = vectors
    return BatchNormCache(
        xhat=xhat, mean=mean, var=var, inv_denom=inv_denom, kappa=kappa, gamma=gamma,
        eps=eps, ddof=ddof, axis=axes, eps_placement=eps_placement, batch_stats=batch_stats, dtype=X.dtype,
    )


def _output_xp(xp, xhat, gamma, beta, out_dtype, what: str):
    Y = gamma * xhat + beta
    if out_dtype != Y.dtype:
        Y = xp.astype(Y, out_dtype)
    if not _arrays.all_finite(xp, Y):
        raise ValueError(f"{what}: the output Y = γ ⊙ x̂ + β overflows {out_dtype} (γ or β too large for this dtype)")
    return Y


def _prepare(X, axis, **vectors):
    """Check X and ``axis`` and each per-feature vector, in X's array library and compute dtype.

    Returns ``(xp, namespace, X, axes, dtype, *vectors)``: ``xp`` is None for NumPy input.
    """
    xp = _arrays.foreign_namespace(X)
    X, axes = _check_input(xp, X, axis)
    namespace = np if xp is None else xp
    dtype = _compute_dtype(namespace, X.dtype)
    checked = [_check_vector(xp, value, name, X, axes, dtype) for name, value in vectors.items()]
    return (xp, namespace, X, axes, dtype, *checked)


def forward(
    X,
    gamma,
    beta,
    *,
    eps: float = 1e-5,
    ddof: int = 0,
    axis: int | tuple[int, ...] = 0,
    eps_placement: EpsPlacement = "inside",
    engine: Engine = "auto",
):
    """Batch norm in training mode: normalise each feature with this batch's statistics.

    Returns ``Y = γ ⊙ x̂ + β`` in the layout, dtype and array library of ``X``, and the cache
    for :func:`backward`. ``gamma`` and ``beta`` are copied and cast to X's dtype; float16 is
    computed in float32 and Y rounded to float16 (raising if it overflows). Features near the
    float limits normalise correctly; a feature whose entries are all equal has x̂ = 0.
    Raises ``ValueError`` for a batch of one (N must exceed ``ddof`` and be at least 2),
    zero variance with ``eps=0``, a variance that overflows the dtype, non-finite input or
    output, mismatched shapes or unknown options.

    ``engine``: ``"auto"`` runs the fused kernel of :mod:`bnbackprop.fused` where Numba is
    installed and X is a NumPy float32/float64 array in a layout it takes, else the NumPy
    (or array-API) path; ``"numpy"`` always that path; ``"fused"`` the kernel, raising
    ``ValueError`` when it cannot take X. Cases at the float limits go to the NumPy path's
    handling in every mode. The results agree to a few units in the last place.
    """
    kernel_declined = False
    if type(engine) is str and engine in ("auto", "fused"):
        result = _forward_fast(X, gamma, beta, eps, ddof, axis, eps_placement)
        if result:
            return result
        kernel_declined = result is False
    eps, ddof, eps_placement = _check_options(eps, ddof, eps_placement)
    engine = _check_engine(engine)
    xp, namespace, X, axes, dtype, gamma, beta = _prepare(X, axis, gamma=gamma, beta=beta)
    _batch_size(X, axes, ddof, "training-mode batch norm")
    if not kernel_declined and fused._use_kernel(engine, X, axes):
        result = fused._forward(X, gamma, beta, axes, ddof, eps, eps_placement)
        if result is not None:
            Y, xhat, mean, var, sigma, inv_denom = result
            return Y, _finish_cache(np, X, xhat, mean, var, sigma, inv_denom, gamma, eps, ddof, axes, eps_placement,
                                    True)
    gamma_b, beta_b = (_expand(namespace, v, X.ndim, axes) for v in (gamma, beta))
    if xp is None:
        mean, var, sigma, inv_denom, xhat, scratch = _fit_numpy(X, axes, ddof, eps, eps_placement, dtype)
        Y = _output_numpy(xhat, gamma_b, beta_b, X.dtype, "batch-norm forward", out=scratch)
    else:
        with np.errstate(all="ignore"):  # array-api-strict computes with NumPy: no overflow warnings
            mean, var, sigma, denominator, xhat = _fit_xp(xp, X, axes, ddof, eps, eps_placement, dtype)
            inv_denom = 1.0 / denominator
            Y = _output_xp(xp, xhat, gamma_b, beta_b, X.dtype, "batch-norm forward")
    cache = _finish_cache(namespace, X, xhat, mean, var, sigma, inv_denom, gamma, eps, ddof, axes, eps_placement, True)
    return Y, cache


_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _forward_fast(X, gamma, beta, eps, ddof, axis, eps_placement):
    """The common call, an N × p C-contiguous float32/float64 array with ``axis=0`` and γ, β of
    its dtype, straight to the fused kernel with checks that cost a few microseconds. None for
    anything else, False when the kernel reports a problem: :func:`forward` then takes the
    full path (without running the kernel again after a problem), which checks every argument,
    handles the float limits and raises its clear errors.

    Why it is safe to skip the separate finiteness checks of γ and β: the kernel checks every
    output y = x̂ γ + β, and a non-finite γ or β makes its whole column non-finite.
    """
    if not (type(X) is np.ndarray and X.ndim == 2 and X.dtype in _FAST_DTYPES and X.flags.c_contiguous
            and (axis == 0 if type(axis) is int else (type(axis) is tuple and axis == (0,)))
            and type(gamma) is np.ndarray and type(beta) is np.ndarray
            and type(eps) is float and type(ddof) is int and type(eps_placement) is str
            and eps_placement in EPS_PLACEMENTS):
        return None
    n, p = X.shape
    dtype = X.dtype
    if (gamma.dtype != dtype or beta.dtype != dtype or gamma.shape != (p,) or beta.shape != (p,)
            or not (0.0 <= eps < math.inf) or ddof < 0 or n < 2 or n <= ddof or p == 0 or not fused.available()):
        return None
    result = fused._forward(X, gamma, beta, (0,), ddof, eps, eps_placement)
    if result is None:
        return False
    Y, xhat, mean, var, sigma, inv_denom = result
    # gamma copied: later changes by the caller do not reach the cache
    return Y, _finish_cache(np, X, xhat, mean, var, sigma, inv_denom, gamma.copy(), eps, ddof, (0,), eps_placement,
                            True)


def _expand(namespace, vector, ndim: int, axes: tuple[int, ...]):
    if namespace is np:
        return _broadcast(vector, ndim, axes)
    shape = list(vector.shape)
    for a in axes:
        shape.insert(a, 1)
    return namespace.reshape(vector, tuple(shape))


def forward_inference(
    X,
    gamma,
    beta,
    mean,
    var,
    *,
    eps: float = 1e-5,
    axis: int | tuple[int, ...] = 0,
    eps_placement: EpsPlacement = "inside",
):
    """Batch norm in inference mode: normalise with fixed statistics ``mean`` and ``var``.

    The statistics are constants here, so the layer is affine in ``X`` and any batch size,
    one included, is allowed. ``gamma``, ``beta``, ``mean`` and ``var`` are copied, so that
    changing them afterwards does not change the cache. x̂ or Y that would overflow raises.
    """
    eps, _, eps_placement = _check_options(eps, 0, eps_placement)
    xp, namespace, X, axes, dtype, gamma, beta, mean, var = _prepare(
        X, axis, gamma=gamma, beta=beta, mean=mean, var=var
    )
    if bool(namespace.any(var < 0)):
        raise ValueError(f"var must be >= 0, got minimum {float(namespace.min(var))}")
    features = _feature_shape(tuple(X.shape), axes)
    mean_b, var_b, gamma_b, beta_b = (_expand(namespace, v, X.ndim, axes) for v in (mean, var, gamma, beta))
    if xp is None:
        require_finite(X, "X")
    sigma = namespace.sqrt(var_b)
    denominator = namespace.sqrt(var_b + eps) if eps_placement == "inside" else sigma + eps
    _refuse_zero_denominator(namespace, denominator, X, features)
    inv_denom = 1.0 / denominator
    what = "batch-norm forward_inference"
    if xp is None:
        try:
            with np.errstate(over="raise", invalid="raise", under="ignore", divide="ignore"):
                if not np.isfinite(inv_denom).all():
                    raise FloatingPointError
                xhat = np.subtract(X, mean_b, dtype=dtype)
                xhat *= inv_denom
        except FloatingPointError:
            require_finite(X, "X")
            raise ValueError(
                f"{what}: x̂ = (X - mean) / denominator overflows {np.dtype(dtype).name} "
                "(X far from mean, or var + eps too small)"
            ) from None
        Y = _output_numpy(xhat, gamma_b, beta_b, X.dtype, what)
    else:
        X = X if X.dtype == dtype else xp.astype(X, dtype)
        _arrays.require_finite(xp, X, "X")
        with np.errstate(all="ignore"):
            xhat = (X - mean_b) * inv_denom
        if not _arrays.all_finite(xp, xhat):
            raise ValueError(
                f"{what}: x̂ = (X - mean) / denominator overflows {dtype} (X far from mean, or var + eps too small)"
            )
        with np.errstate(all="ignore"):
            Y = _output_xp(xp, xhat, gamma_b, beta_b, X.dtype, what)
    cache = _finish_cache(
        namespace, X, xhat, mean_b, var_b, sigma, inv_denom, gamma, eps, 0, axes, eps_placement, False
    )
    return Y, cache


def backward(dY, cache: BatchNormCache, *, engine: Engine = "auto"):
    """Exact gradients ``(dX, dgamma, dbeta)`` of a loss, given ``dY = ∂L/∂Y``.

    ``dX`` has the shape of ``X``; ``dgamma`` and ``dbeta`` have one entry per feature; all
    three come back in the dtype and array library of X in the forward pass. With batch
    statistics the gradient flows through the mean and the variance; with fixed statistics
    (inference) it is ``dY ⊙ γ ⊙ inv_denom``. A result that would overflow raises
    ``ValueError`` (typically a nearly constant feature with a tiny ε, whose 1/denominator is huge).
    ``engine`` chooses the code as in :func:`forward` (the fused kernel takes training-mode
    caches of NumPy arrays, with ``dY`` in X's dtype and memory layout).
    """
    kernel_declined = False
    if type(engine) is str and engine in ("auto", "fused") and type(cache) is BatchNormCache:
        grads = fused._backward_fast(dY, cache)
        if grads:
            return grads
        kernel_declined = grads is False
    if not isinstance(cache, BatchNormCache):
        raise TypeError(f"cache must be the BatchNormCache from forward(), got {type(cache).__name__}")
    engine = _check_engine(engine)
    xp = _arrays.foreign_namespace(cache.xhat)
    if xp is None:
        dY = as_float_array(dY, "dY")
    else:
        dY = _arrays.as_float(xp, dY, "dY", like=cache.xhat)
    require_shape(dY, tuple(cache.xhat.shape), "dY", "the shape of X in the forward pass")
    if xp is None:
        if engine != "numpy" and not kernel_declined:
            grads = fused._backward(dY, cache, engine)
            if grads is not None:
                return grads
        return _backward_numpy(dY, cache)
    fused._use_kernel(engine, cache.xhat, cache.axis)  # engine="fused" raises: the kernel takes NumPy arrays
    with np.errstate(all="ignore"):
        return _backward_xp(xp, dY, cache)


def _out_dtype(cache):
    """Gradients come back in the dtype of the forward input: float16 when it was float16."""
    return cache.xhat.dtype if cache.dtype is None else cache.dtype


def _refuse_infinite_inverse(xp, cache: BatchNormCache) -> None:
    """dX is of order γ/denominator: when 1/denominator overflowed in the forward pass, so would dX."""
    infinite = ~xp.isfinite(cache.inv_denom)
    if bool(xp.any(infinite)):
        bad = _arrays.true_indices(xp, infinite)
        raise ValueError(
            f"batch-norm backward: 1/denominator of feature(s) {bad} overflows {cache.xhat.dtype} "
            "(σ + ε is subnormal), so dX cannot be represented; rescale X or use a larger eps"
        )


def _backward_numpy(dY: np.ndarray, cache: BatchNormCache):
    xhat, axes, ndim = cache.xhat, cache.axis, cache.xhat.ndim
    dtype = xhat.dtype
    out_dtype = _out_dtype(cache)
    what = "batch-norm backward"
    with np.errstate(all="ignore"):
        dbeta = np.add.reduce(dY, axis=axes, keepdims=True, dtype=dtype)
    if not np.isfinite(dbeta).all():
        require_finite(dY, "dY")
        largest = np.abs(dY).max()
        if largest > np.finfo(dtype).max:
            raise ValueError(f"dY holds values beyond the range of {dtype.name}, X's dtype (max |dY| = {largest:.3g})")
        raise ValueError(f"{what}: the sum of dY over the batch overflows {dtype.name}; rescale the loss")
    dY = dY.astype(dtype, copy=False)
    dgamma = _broadcast(_sum_of_products(dY, xhat, axes), ndim, axes)
    if not np.isfinite(dgamma).all():
        raise ValueError(f"{what}: Σ dY ⊙ x̂ over the batch overflows {dtype.name}; rescale the loss")
    gamma, inv_denom, kappa = (_broadcast(v, ndim, axes) for v in (cache.gamma, cache.inv_denom, cache.kappa))
    _refuse_infinite_inverse(np, cache)
    with np.errstate(all="ignore"):
        scale = gamma * inv_denom
    if not np.isfinite(scale).all():
        raise ValueError(f"{what}: γ/denominator overflows {dtype.name}, so dX cannot be represented")
    try:
        with np.errstate(over="raise", invalid="raise", under="ignore", divide="ignore"):
            if cache.batch_stats:
                # dX = γ·inv_denom·(dY - Σ dY / N - κ x̂ Σ(dY ⊙ x̂) / (N - ddof)): g = dY ⊙ γ with γ factored out
                dX = np.multiply(xhat, dgamma * (kappa / -(cache.batch_size - cache.ddof)))
                dX += dY
                dX -= dbeta / cache.batch_size
                dX *= scale
            else:
                dX = np.multiply(dY, scale)
            grads = [a.astype(out_dtype, copy=False) for a in (dX, dgamma, dbeta)]
    except FloatingPointError:
        raise ValueError(
            f"{what}: dX, dgamma or dbeta overflows {np.dtype(out_dtype).name} (max γ/denominator = "
            f"{np.abs(scale).max():.3g}: a nearly constant feature with a tiny eps, or a huge dY)"
        ) from None
    features = _feature_shape(xhat.shape, axes)
    return grads[0], grads[1].reshape(features), grads[2].reshape(features)


def _backward_xp(xp, dY, cache: BatchNormCache):
    """The book's formula, line by line, with array-API functions."""
    xhat, axes, ndim = cache.xhat, cache.axis, cache.xhat.ndim
    out_dtype = _out_dtype(cache)
    if dY.dtype != xhat.dtype:
        dY = xp.astype(dY, xhat.dtype)
    _arrays.require_finite(xp, dY, "dY")
    _refuse_infinite_inverse(xp, cache)
    gamma, inv_denom = (_expand(xp, v, ndim, axes) for v in (cache.gamma, cache.inv_denom))
    dbeta = xp.sum(dY, axis=axes)
    dgamma = xp.sum(dY * xhat, axis=axes)
    g = dY * gamma
    if cache.batch_stats:
        n = cache.batch_size
        kappa = _expand(xp, cache.kappa, ndim, axes)
        projection = xp.sum(g * xhat, axis=axes, keepdims=True) * kappa / (n - cache.ddof)
        dX = inv_denom * (g - xp.sum(g, axis=axes, keepdims=True) / n - xhat * projection)
    else:
        dX = g * inv_denom
    grads = [a if a.dtype == out_dtype else xp.astype(a, out_dtype) for a in (dX, dgamma, dbeta)]
    for name, grad in zip(("dX", "dgamma", "dbeta"), grads, strict=True):
        if not _arrays.all_finite(xp, grad):
            raise ValueError(
                f"batch-norm backward: {name} overflows {out_dtype} "
                "(a nearly constant feature with a tiny eps, or a huge dY)"
            )
    return tuple(grads)


def _check_num_features(num_features: object) -> tuple[int, ...]:
    items = num_features if isinstance(num_features, (tuple, list)) else (num_features,)
    return tuple(require_int(item, "num_features", minimum=1) for item in items)


def _owned_array(name: str, what: str) -> property:
    """A layer attribute that copies what is assigned to it, so that it never shares memory."""
    private = "_" + name

    def get(self) -> np.ndarray:
        return getattr(self, private)

    def set(self, value: object) -> None:
        setattr(self, private, self._owned(value, name))

    return property(get, set, doc=f"The {what} (a copy of what was assigned).")


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

    ``gamma``, ``beta``, ``running_mean`` and ``running_var`` are NumPy float64 arrays owned
    by the layer: assigning one copies it (after checking its shape), so the caller's array
    and the layer never share memory; updating them in place (an optimizer step) works.
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
        self._shape = shape
        self.gamma = np.ones(shape)
        self.beta = np.zeros(shape)
        self.running_mean = np.zeros(shape)
        self.running_var = np.ones(shape)
        self.training = True
        self.dgamma: np.ndarray | None = None
        self.dbeta: np.ndarray | None = None
        self._cache: BatchNormCache | None = None

    def _owned(self, value: object, name: str) -> np.ndarray:
        array = as_float_array(value, name)
        require_shape(array, self._shape, name, f"one entry per feature of BatchNorm({self.num_features})")
        require_finite(array, name)
        if name == "running_var" and np.any(array < 0):
            raise ValueError(f"running_var must be >= 0 (a variance), got {int(np.sum(array < 0))} negative value(s)")
        return np.array(array, dtype=np.float64)

    gamma = _owned_array("gamma", "scale γ, one entry per feature")
    beta = _owned_array("beta", "shift β, one entry per feature")
    running_mean = _owned_array("running_mean", "running mean used in eval mode")
    running_var = _owned_array("running_var", "running variance used in eval mode")

    def train(self, mode: bool = True) -> BatchNorm:
        """Switch to training mode (batch statistics), or to inference with ``mode=False``."""
        self.training = require_bool(mode, "mode")
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
