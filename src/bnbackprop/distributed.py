"""Batch norm across processes: one batch split into shards, statistics of the whole batch.

Under data parallelism each of K processes holds a shard X_k of the batch; stacked, the
shards are the batch X. Batch norm must take its statistics over X, not over X_k, or the
layer changes meaning. In matrix form the sums that the single-process pass takes over the
batch are sums over shards of sums over rows, so every process computes the sums of its
own rows and the collectives add them up:

* forward: the count N = Σ n_k, the mean μ = Σ_k 1ᵀX_k / N, then the centred sums
  Σ_k 1ᵀ(X_k - μ) and Σ_k 1ᵀ(X_k - μ)², from which ``batchnorm._corrected``
  makes the variance exactly as the single-process library does (corrected two-pass);
* backward: the two per-feature sums 1ᵀdY and 1ᵀ(dY ⊙ X̂) over all processes; with them
  and N each process computes its own rows of dX with the single-process formula.

Collectives per call (K processes, p features; :func:`record_collectives` lists them):

* :func:`forward`: one ``all_gather`` of a descriptor of 17 int64 (this shard's count and
  shape, the dtype and the options: the shapes are checked before any sized collective, so
  a mismatch is refused on every process instead of hanging), one ``all_reduce`` of p
  values (Σx) and one of 2p (the centred sums). A feature whose spread is within rounding
  of its mean (or exactly 0) adds one ``all_reduce`` (max) of 2m values for those m
  features, to tell constant features apart as the single-process library does.
* :func:`backward`: one ``all_reduce`` of 2p values.

Why two all-reduces rather than one: a single all-reduce of [Σx, Σx²] loses the variance
to cancellation when the mean's magnitude ≫ σ (the textbook one-pass formula); an ``all_gather`` of each
shard's (mean, M2), combined by Chan's formula, is stable in one round but moves K·2p
values to every process. Two all-reduces take one more latency, move O(p) values per
process whatever K, and reproduce the library's corrected two-pass algorithm term by term,
so the results agree with :func:`bnbackprop.batchnorm.forward` on the whole batch to
rounding (only the order of the additions differs).

A process whose own input is refused (wrong shape, NaN, bad option) still takes part in
the collectives of that call, flagging its failure, so that every process raises instead
of waiting for it; the others raise ``RuntimeError`` naming it. Two checks come after a
call's last collective and so raise on the failing process alone: an x̂ (forward) or dX
(backward) that overflows the dtype; the other processes return, and their next collective
waits until the group's timeout. Features whose variance overflows or underflows the dtype
are refused ("rescale X"), where the single-process library rescales them. Arrays: NumPy arrays
(communicated as CPU tensors: gloo) and torch tensors (communicated as they are: gloo on
CPU, NCCL on GPUs). :func:`run_processes` starts K processes joined by a gloo group on
127.0.0.1, for the book and the tests.
"""

from __future__ import annotations

import contextlib
import datetime
import math
import multiprocessing
import os
import pickle
import queue
import socket
import struct
import sys
import time
import traceback
from dataclasses import dataclass

import numpy as np

from bnbackprop import _arrays, batchnorm
from bnbackprop._validation import as_float_array, require_finite, require_int, require_shape
from bnbackprop.batchnorm import (
    BatchNormCache,
    EpsPlacement,
    _check_options,
    _corrected,
    _expand,
    _feature_shape,
    _finish_cache,
    _limits,
    _output_numpy,
    _output_xp,
    _prepare,
    _refuse_zero_denominator,
    _sum_of_products,
)

# ---------------------------------------------------------------------------------------
# torch.distributed, imported only when used

HOW_TO_INITIALISE = (
    "call torch.distributed.init_process_group('gloo', init_method='tcp://127.0.0.1:PORT', rank=RANK, "
    "world_size=K, timeout=datetime.timedelta(seconds=60)) in every process first (gloo on CPU, 'nccl' for "
    "CUDA tensors), or run your function with bnbackprop.distributed.run_processes, which does it"
)


def _torch():
    try:
        import torch
        import torch.distributed as dist
    except ImportError as exc:  # pragma: no cover - torch is in requirements.txt
        raise ImportError("bnbackprop.distributed needs PyTorch (torch.distributed) for its collectives") from exc
    return torch, dist


def _require_group(group):
    """``torch.distributed`` with an initialised group, or an error saying how to get one."""
    _, dist = _torch()
    if not dist.is_available():  # pragma: no cover - builds without distributed support
        raise RuntimeError("group: this PyTorch build has no torch.distributed")
    if group is not None and not isinstance(group, dist.ProcessGroup):
        raise TypeError(f"group must be a torch.distributed ProcessGroup or None, got {type(group).__name__}")
    if not dist.is_initialized():
        raise RuntimeError(
            "group: torch.distributed's default process group is not initialised, so there are no other "
            f"processes to share the batch statistics with; {HOW_TO_INITIALISE}"
        )
    return dist


# ---------------------------------------------------------------------------------------
# collectives, each one recorded


@dataclass(frozen=True)
class Collective:
    """One collective call of this module: ``kind`` ("all_gather" or "all_reduce"), ``op``
    ("sum", "max", or "" for a gather), the number of elements this process sends, and their dtype."""

    kind: str
    op: str
    numel: int
    dtype: str


_RECORDS: list[list[Collective]] = []


@contextlib.contextmanager
def record_collectives():
    """Collect the :class:`Collective` calls made inside the ``with`` block into a list (yielded)."""
    log: list[Collective] = []
    _RECORDS.append(log)
    try:
        yield log
    finally:
        _RECORDS.remove(log)


def _record(kind: str, op: str, tensor) -> None:
    entry = Collective(kind, op, int(tensor.numel()), str(tensor.dtype).replace("torch.", ""))
    for log in _RECORDS:
        log.append(entry)


def _as_tensor(buffer):
    torch, _ = _torch()
    return torch.from_numpy(buffer) if isinstance(buffer, np.ndarray) else buffer


def _all_reduce(buffer, group, op: str = "sum"):
    """Reduce a contiguous 1-D NumPy array or tensor in place over the group; return it."""
    _, dist = _torch()
    tensor = _as_tensor(buffer)
    _record("all_reduce", op, tensor)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX, group=group)
    return buffer


def _all_gather(row, group) -> np.ndarray:
    """Every process's copy of the 1-D tensor ``row``, stacked by rank (a NumPy array)."""
    torch, dist = _torch()
    parts = [torch.empty_like(row) for _ in range(dist.get_world_size(group))]
    _record("all_gather", "", row)
    dist.all_gather(parts, row, group=group)
    return torch.stack(parts).cpu().numpy()


def _flat(namespace, arrays):
    """One contiguous 1-D buffer holding ``arrays`` one after the other (a copy)."""
    if namespace is np:
        return np.concatenate([np.ravel(a) for a in arrays])
    torch, _ = _torch()
    return torch.cat([torch.reshape(a, (-1,)) for a in arrays]).contiguous()


# ---------------------------------------------------------------------------------------
# the descriptor: each process's shape, count, dtype and options, checked on every process

# one int64 row per process: [failed, count n_k, ndim, bit mask of the reduced axes, dtype code, ddof,
# eps placement (0 inside, 1 outside), the bits of eps as a float64, reserved (0), the shape padded to 8 dims]
_MAX_DIMS = 8
_DTYPE_CODES = {"float16": 1, "bfloat16": 2, "float32": 3, "float64": 4}
_DESCRIPTOR_SIZE = 9 + _MAX_DIMS


def _dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def _descriptor(failed: bool, X=None, axes=(), eps=0.0, ddof=0, eps_placement="inside") -> list[int]:
    row = [0] * _DESCRIPTOR_SIZE
    if failed or X is None:
        row[0] = 1
        return row
    shape = tuple(int(s) for s in X.shape)
    row[1] = math.prod(shape[a] for a in axes)
    row[2] = len(shape)
    row[3] = sum(1 << a for a in axes)
    row[4] = _DTYPE_CODES.get(_dtype_name(X.dtype), 0)
    row[5] = ddof
    row[6] = 0 if eps_placement == "inside" else 1
    row[7] = struct.unpack("<q", struct.pack("<d", eps))[0]
    row[8] = 0
    row[9 : 9 + len(shape)] = shape
    return row


def _shape_of(row) -> tuple[int, ...]:
    return tuple(int(s) for s in row[9 : 9 + int(row[2])])


def _check_agreement(table: np.ndarray) -> tuple[int, ...]:
    """The counts of every process, or the same error raised on every process."""
    failed = [r for r in range(table.shape[0]) if table[r, 0] != 0]
    if failed:
        raise RuntimeError(
            f"batch norm across processes: process(es) {failed} of the group refused their own input "
            "(the error is raised there); nothing was computed"
        )

    def features(row) -> tuple:
        shape = _shape_of(row)
        axes = tuple(a for a in range(len(shape)) if int(row[3]) >> a & 1)
        return _feature_shape(shape, axes), axes

    described = [features(row) for row in table]
    if len(set(described)) > 1:
        shapes = "; ".join(
            f"rank {r}: X {_shape_of(row)}, axis={described[r][1]}, features {described[r][0]}"
            for r, row in enumerate(table)
        )
        raise ValueError(
            f"X: the shards' feature shapes differ across processes ({shapes}); every process must hold "
            "the same features with the same axis, only the sizes of the batch axes may differ"
        )
    for column, name in ((4, "dtype of X"), (5, "ddof"), (6, "eps_placement"), (7, "eps")):
        if len(set(table[:, column].tolist())) > 1:
            argument = "X" if column == 4 else name
            names = {v: k for k, v in _DTYPE_CODES.items()}
            values = [
                names.get(int(v), "?") if column == 4
                else ("inside", "outside")[int(v)] if column == 6
                else struct.unpack("<d", struct.pack("<q", int(v)))[0] if column == 7
                else int(v)
                for v in table[:, column]
            ]
            raise ValueError(
                f"{argument}: the {name} differs across processes ({values} by rank); every process must "
                "normalise with the same options"
            )
    return tuple(int(n) for n in table[:, 1])


# ---------------------------------------------------------------------------------------
# forward


@dataclass(frozen=True)
class DistributedCache:
    """What :func:`forward` keeps for :func:`backward`.

    ``shard`` is a :class:`bnbackprop.batchnorm.BatchNormCache` holding this process's rows
    of x̂ and the whole batch's per-feature ``mean``, ``var``, ``inv_denom`` and ``kappa``;
    ``count`` is the whole batch's N, ``counts`` each process's share of it (by rank), and
    ``group`` the process group (None: the default group).
    """

    shard: BatchNormCache
    count: int
    counts: tuple[int, ...]
    group: object = None

    @property
    def batch_size(self) -> int:
        """N over all processes (``shard.batch_size`` is this process's share)."""
        return self.count


def _sum(namespace, A, axes):
    if namespace is np:
        return np.add.reduce(A, axis=axes)
    return namespace.sum(A, axis=axes)


def _sum_squares(namespace, A, axes):
    if namespace is np:
        return _sum_of_products(A, A, axes)
    return namespace.sum(A * A, axis=axes)


def _is_torch(value) -> bool:
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "numel")


def _any(namespace, mask) -> bool:
    return bool(namespace.any(mask))


def _require_finite_anywhere(namespace, A, name: str, what: str) -> None:
    """After a reduced sum came out non-finite: name this process's array if it is the culprit."""
    if namespace is np:
        require_finite(A, name)
    else:
        _arrays.require_finite(namespace, A, name)
    raise ValueError(
        f"{name}: {what} is not finite: on another process {name} holds NaN or inf or was refused (the error is "
        "raised there), or the sum overflows"
    )


def _full(namespace, shape, value, dtype, *, like):
    """An array of ``value`` in the library (and on the device) of ``like``."""
    if namespace is np:
        return np.full(shape, value, dtype=dtype)
    return namespace.full(shape, value, dtype=dtype, device=_arrays.device_of(like))


def _local_extremes(namespace, X, axes, n_local: int, features, dtype):
    """Per-feature max and -min of this shard (-inf for an empty shard)."""
    if n_local == 0:
        lowest = _full(namespace, features, -math.inf, dtype, like=X)
        return lowest, lowest
    return namespace.max(X, axis=axes), -namespace.min(X, axis=axes)


def _settle_untrusted(namespace, X, axes, n, n_local, features, mean, var, dtype, group):
    """Mean, variance, σ and the constant features, as :func:`bnbackprop.batchnorm.forward` has them.

    A variance that overflows is refused. Features whose spread is within rounding of their
    mean (or 0) are checked for being constant over the whole batch with one extra
    all-reduce (max) of their max and -min: a constant feature gets mean = its value, σ² = 0
    and x̂ = 0, as in the single-process library. The statistics are identical on every
    process (they come from the same all-reduces), so every process takes the same branch.
    """
    ok, sigma = batchnorm._trusted(namespace, mean, var, n, dtype)
    overflow = ~namespace.isfinite(var)
    if _any(namespace, overflow):
        bad = _arrays.true_indices(namespace, overflow)
        raise ValueError(
            f"X: the variance of feature(s) {bad} over all processes overflows {_dtype_name(dtype)}; rescale X"
        )
    if bool(namespace.all(ok)):
        return mean, var, sigma, None
    suspect = ~ok
    high, neg_low = _local_extremes(namespace, X, axes, n_local, features, dtype)
    m = int(namespace.sum(namespace.astype(suspect, namespace.int64))) if namespace is not np else int(suspect.sum())
    extremes = _all_reduce(_flat(namespace, [high[suspect], neg_low[suspect]]), group, "max")  # collective 4
    constant = _full(namespace, features, False, namespace.bool, like=X)
    value = namespace.zeros_like(mean)
    constant[suspect] = extremes[:m] == -extremes[m:]
    value[suspect] = extremes[:m]
    zero = namespace.zeros_like(var)
    mean = namespace.where(constant, value, mean)
    var = namespace.where(constant, zero, var)
    sigma = namespace.where(constant, zero, sigma)
    tiny, rounding = _limits(namespace, dtype)
    underflow = suspect & ~constant & (var < tiny / rounding)
    if _any(namespace, underflow):
        bad = _arrays.true_indices(namespace, underflow)
        raise ValueError(
            f"X: the variance of feature(s) {bad} over all processes is too small for {_dtype_name(dtype)} "
            "(its squares lose digits to underflow); rescale X"
        )
    return mean, var, sigma, constant


def forward(
    X,
    gamma,
    beta,
    *,
    eps: float = 1e-5,
    axis: int | tuple[int, ...] = 0,
    ddof: int = 0,
    eps_placement: EpsPlacement = "inside",
    group=None,
):
    """Training-mode batch norm of this process's shard ``X`` with the statistics of all shards.

    Every process of ``group`` (the default ``torch.distributed`` group when None) calls
    this with its own shard; the statistics are those of the union of the shards, so that
    ``Y`` equals this shard's rows of :func:`bnbackprop.batchnorm.forward` applied to the
    whole batch (the shards stacked along a batch axis). Shards may differ in size along
    the axes in ``axis`` and may be empty (that process gets an empty ``Y``); their other
    axes (the features), dtype and options must agree, or every process raises. ``gamma``
    and ``beta`` are this process's copies, identical on every process in data-parallel
    training (not checked). The options are those of :func:`bnbackprop.batchnorm.forward`.
    Returns ``(Y, cache)`` with a :class:`DistributedCache` for :func:`backward`.
    """
    _require_group(group)
    torch, _ = _torch()
    failure: Exception | None = None
    device = X.device if _is_torch(X) else "cpu"
    try:
        eps, ddof, eps_placement = _check_options(eps, ddof, eps_placement)
        xp, namespace, X, axes, dtype, gamma, beta = _prepare(X, axis, gamma=gamma, beta=beta)
        if xp is not None and not _is_torch(X):
            raise TypeError(f"X must be a NumPy array or a torch tensor, got {type(X).__module__}.{type(X).__name__}")
        if X.ndim > _MAX_DIMS:
            raise ValueError(f"X may have at most {_MAX_DIMS} dimensions here, got shape {tuple(X.shape)}")
    except (TypeError, ValueError) as exc:
        failure = exc
    row = _descriptor(True) if failure else _descriptor(False, X, axes, eps, ddof, eps_placement)
    table = _all_gather(torch.tensor(row, dtype=torch.int64, device=device), group)  # collective 1
    if failure is not None:
        raise failure
    counts = _check_agreement(table)
    n = sum(counts)
    if n < 2 or n <= ddof:
        raise ValueError(
            f"X: training-mode batch norm needs a batch of at least 2 samples (and more than ddof={ddof}) over all "
            f"processes; the shards hold {list(counts)} (by rank), {n} in all"
        )
    X_valid = X  # its dtype is that of the outputs (float16 is computed in float32)
    n_local = math.prod(X.shape[a] for a in axes)
    features = _feature_shape(tuple(X.shape), axes)
    p = math.prod(features)
    if X.dtype != dtype:
        X = X.astype(dtype) if namespace is np else namespace.astype(X, dtype)

    def expand(vector):
        return _expand(namespace, vector, X.ndim, axes)

    with np.errstate(all="ignore"):
        # pass 1: the mean of the whole batch, from Σ over shards of 1ᵀX_k
        total = _all_reduce(_flat(namespace, [_sum(namespace, X, axes)]), group)  # collective 2
        mean = namespace.reshape(total, features) / n
        if not _arrays.all_finite(namespace, mean):
            _require_finite_anywhere(namespace, X, "X", "the sum of X over all processes")
        # pass 2: Σ 1ᵀ(X_k - μ) and Σ 1ᵀ(X_k - μ)², corrected as in the single-process library
        centred = X - expand(mean)
        sums = _all_reduce(  # collective 3
            _flat(namespace, [_sum(namespace, centred, axes), _sum_squares(namespace, centred, axes)]), group
        )
        shift = namespace.reshape(sums[:p], features) / n
        squares = namespace.reshape(sums[p:], features)
        mean, var = _corrected(namespace, mean, shift, squares, n, ddof)
        mean, var, sigma, constant = _settle_untrusted(
            namespace, X, axes, n, n_local, features, mean, var, dtype, group
        )
        denominator = namespace.sqrt(var + eps) if eps_placement == "inside" else sigma + eps
        _refuse_zero_denominator(namespace, denominator, X, features)
        inv_denom = 1.0 / denominator
        xhat = (centred - expand(shift)) * expand(inv_denom)
        if constant is not None:
            xhat = namespace.where(expand(constant), namespace.zeros_like(xhat), xhat)
        if not _arrays.all_finite(namespace, xhat):
            raise ValueError(
                f"distributed batch-norm forward: x̂ = (X - μ)/denominator overflows {_dtype_name(dtype)} on this "
                "process (σ + ε below the smallest float); rescale X or use a larger eps"
            )
        what = "distributed batch-norm forward"
        if namespace is np:
            Y = _output_numpy(xhat, expand(gamma), expand(beta), X_valid.dtype, what)
        else:
            Y = _output_xp(namespace, xhat, expand(gamma), expand(beta), X_valid.dtype, what)
    shard = _finish_cache(
        namespace, X_valid, xhat, mean, var, sigma, inv_denom, gamma, eps, ddof, axes, eps_placement, True
    )
    return Y, DistributedCache(shard=shard, count=n, counts=counts, group=group)


# ---------------------------------------------------------------------------------------
# backward


def backward(dY, cache: DistributedCache):
    """Exact gradients ``(dX, dgamma, dbeta)`` for this process, given its ``dY = ∂L/∂Y``.

    ``L`` is the sum over processes of each process's loss. ``dX`` is this shard's rows of
    the whole batch's ∂L/∂X: the single-process formula of :func:`bnbackprop.batchnorm.backward`
    with the whole batch's N and with 1ᵀdY and 1ᵀ(dY ⊙ x̂) summed over all processes by one
    all-reduce of 2p values. ``dgamma`` and ``dbeta`` are this process's contributions, the
    sums over its own rows 1ᵀ(dY_k ⊙ x̂_k) and 1ᵀdY_k, not the all-reduced sums: their sum over processes
    is the whole batch's gradient, and that sum is what data-parallel training performs on
    every parameter gradient anyway. ``DistributedDataParallel`` all-reduces and divides by
    the number of processes K, so with each process's loss the mean over its own shard, γ
    and β get the same average as every other parameter (that average is the whole batch's
    mean loss only when the shards are equal: with unequal shards, scale process k's mean loss
    by K·n_k/N). Returning the all-reduced sums
    instead would have them reduced twice, K times too large (nnabla#1120).
    """
    if not isinstance(cache, DistributedCache):
        raise TypeError(f"cache must be the DistributedCache from distributed.forward(), got {type(cache).__name__}")
    _require_group(cache.group)
    shard = cache.shard
    xhat, axes, ndim = shard.xhat, shard.axis, shard.xhat.ndim
    xp = _arrays.foreign_namespace(xhat)
    namespace = np if xp is None else xp
    features = _feature_shape(tuple(xhat.shape), axes)
    p = math.prod(features)
    failure: Exception | None = None
    try:
        dY = as_float_array(dY, "dY") if xp is None else _arrays.as_float(xp, dY, "dY", like=xhat)
        require_shape(dY, tuple(xhat.shape), "dY", "the shape of this process's X in the forward pass")
        if dY.dtype != xhat.dtype:
            dY = dY.astype(xhat.dtype) if xp is None else xp.astype(dY, xhat.dtype)
    except (TypeError, ValueError) as exc:
        failure = exc
    with np.errstate(all="ignore"):
        if failure is None:
            dbeta = _sum(namespace, dY, axes)
            dgamma = _sum(namespace, dY * xhat, axes) if xp is not None else _sum_of_products(dY, xhat, axes)
            buffer = _flat(namespace, [dbeta, dgamma])
        else:  # take part all the same, so that the others raise instead of waiting: NaN marks the failure
            buffer = _full(namespace, (2 * p,), math.nan, xhat.dtype, like=xhat)
        _all_reduce(buffer, cache.group)  # the backward pass's one collective
        if failure is not None:
            raise failure
        if not _arrays.all_finite(namespace, buffer):
            _require_finite_anywhere(namespace, dY, "dY", "1ᵀdY or 1ᵀ(dY ⊙ x̂) summed over all processes")
        n, ddof = cache.count, shard.ddof
        total_dbeta, total_dgamma = (namespace.reshape(part, features) for part in (buffer[:p], buffer[p:]))
        if bool(namespace.any(~namespace.isfinite(shard.inv_denom))):
            batchnorm._refuse_infinite_inverse(namespace, shard)
        gamma, inv_denom, kappa = (
            _expand(namespace, v, ndim, axes) for v in (shard.gamma, shard.inv_denom, shard.kappa)
        )
        scale = gamma * inv_denom
        mean_dy = _expand(namespace, total_dbeta / n, ndim, axes)
        projection = _expand(namespace, total_dgamma / (n - ddof), ndim, axes) * kappa
        dX = scale * (dY - mean_dy - xhat * projection)
    out_dtype = shard.dtype if shard.dtype is not None else xhat.dtype
    grads = []
    for name, grad in (("dX", dX), ("dgamma", dgamma), ("dbeta", dbeta)):
        if grad.dtype != out_dtype:
            grad = grad.astype(out_dtype) if xp is None else xp.astype(grad, out_dtype)
        if not _arrays.all_finite(namespace, grad):
            raise ValueError(
                f"distributed batch-norm backward: {name} overflows {_dtype_name(out_dtype)} "
                "(a nearly constant feature with a tiny eps, or a huge dY)"
            )
        grads.append(grad)
    dX, dgamma, dbeta = grads
    return dX, namespace.reshape(dgamma, features), namespace.reshape(dbeta, features)


# ---------------------------------------------------------------------------------------
# the layer


def _to_numpy(value) -> np.ndarray:
    if _is_torch(value):
        return np.asarray(value.detach().cpu(), dtype=np.float64)
    return np.asarray(value, dtype=np.float64)


class SyncBatchNorm(batchnorm.BatchNorm):
    """:class:`bnbackprop.batchnorm.BatchNorm` whose training statistics span all processes of ``group``.

    In training mode :meth:`forward` normalises with :func:`bnbackprop.distributed.forward` and updates the running
    statistics with the whole batch's mean and variance, the variance made unbiased with the
    whole batch's count N (not this process's: pytorch#22192), so the running statistics
    are those of ``BatchNorm`` run on the whole batch and the same on every process. In
    eval mode it normalises locally with the running statistics (no communication).
    :meth:`backward` returns this process's ``dgamma`` and ``dbeta`` (see :func:`bnbackprop.distributed.backward`).
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
        group=None,
    ) -> None:
        super().__init__(
            num_features, momentum=momentum, eps=eps, ddof=ddof, axis=axis, eps_placement=eps_placement,
            running_var_ddof=running_var_ddof,
        )
        if group is not None:
            _require_group(group)
        self.group = group

    def forward(self, X):
        """Normalise this process's shard; in training mode with all shards' statistics, updating the running ones."""
        if not self.training:
            return super().forward(X)
        Y, cache = forward(
            X, self.gamma, self.beta, eps=self.eps, axis=self.axis, ddof=self.ddof,
            eps_placement=self.eps_placement, group=self.group,
        )
        n = cache.count  # the whole batch's count, the same on every process
        if n <= self.running_var_ddof:
            raise ValueError(f"X: a batch of {n} cannot update the running variance with ddof={self.running_var_ddof}")
        batch_var = _to_numpy(cache.shard.var) * ((n - self.ddof) / (n - self.running_var_ddof))
        keep = 1.0 - self.momentum
        self.running_mean = keep * self.running_mean + self.momentum * _to_numpy(cache.shard.mean)
        self.running_var = keep * self.running_var + self.momentum * batch_var
        self._cache = cache
        return Y

    __call__ = forward

    def backward(self, dY):
        """``(dX, dgamma, dbeta)`` of this process, stored on the layer as ``dgamma`` and ``dbeta`` too."""
        if self._cache is None:
            raise RuntimeError("SyncBatchNorm.backward called before forward")
        if isinstance(self._cache, DistributedCache):
            dX, self.dgamma, self.dbeta = backward(dY, self._cache)
        else:
            dX, self.dgamma, self.dbeta = batchnorm.backward(dY, self._cache)
        return dX, self.dgamma, self.dbeta


# ---------------------------------------------------------------------------------------
# K processes on this machine


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the system picks it: bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _worker(function, rank: int, world_size: int, port: int, collective_timeout: float, args: tuple, results) -> None:
    """One spawned process: join the gloo group on 127.0.0.1, run ``function``, report to the parent."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    if sys.platform.startswith("linux"):  # gloo connects over loopback too, whatever the hostname resolves to
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    try:
        torch, dist = _torch()
        torch.set_num_threads(1)
        dist.init_process_group(
            "gloo", init_method="env://", rank=rank, world_size=world_size,
            timeout=datetime.timedelta(seconds=collective_timeout),
        )
        try:
            value = function(rank, world_size, *args)
        finally:
            dist.destroy_process_group()
        message = (rank, True, pickle.dumps(value))
    except BaseException:  # reported to the parent, which raises
        message = (rank, False, traceback.format_exc())
    results.put(message)


def _module_level(function) -> bool:
    module = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", "")
    if module == "__main__":  # a script can be re-imported by the new processes; a notebook cannot
        return callable(function) and hasattr(sys.modules["__main__"], "__file__") and "<" not in qualname
    return callable(function) and module is not None and "<" not in qualname


_PORT_TAKEN = "address already in use"
_GRACE = 10.0  # seconds the others get to report once one process has failed


def _launch(function, world_size: int, args: tuple, collective_timeout: float, deadline: float):
    """Start the processes, collect what they report until ``deadline``, and make sure none is left running."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    port = free_port()
    processes = [
        context.Process(
            target=_worker, args=(function, rank, world_size, port, collective_timeout, args, results), daemon=True
        )
        for rank in range(world_size)
    ]
    values: dict[int, object] = {}
    errors: dict[int, str] = {}
    try:
        for process in processes:
            process.start()
        while len(values) + len(errors) < world_size and time.monotonic() < deadline:
            try:
                rank, ok, payload = results.get(timeout=min(0.5, max(deadline - time.monotonic(), 0.01)))
            except queue.Empty:
                for rank, process in enumerate(processes):
                    if rank not in values and rank not in errors and process.exitcode not in (None, 0):
                        errors[rank] = f"process {rank} exited with code {process.exitcode} without reporting"
                        deadline = min(deadline, time.monotonic() + _GRACE)
                continue
            if ok:
                values[rank] = pickle.loads(payload)
            else:
                errors[rank] = payload
                if _PORT_TAKEN in payload.lower():
                    break
                deadline = min(deadline, time.monotonic() + _GRACE)  # the others may be waiting for it
    finally:
        for process in processes:
            if process.pid is None:  # never started: starting an earlier one failed
                continue
            process.join(timeout=max(0.0, min(5.0, deadline - time.monotonic())) + 1.0)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5.0)
            if process.is_alive():  # pragma: no cover - terminate is ignored
                process.kill()
                process.join(timeout=5.0)
        results.close()
    return values, errors


def run_processes(function, world_size: int, *args, timeout: float = 120.0, collective_timeout: float = 30.0) -> list:
    """Run ``function(rank, world_size, *args)`` in ``world_size`` new processes; return the results by rank.

    The processes are started with the 'spawn' method and joined by a ``torch.distributed``
    gloo group on 127.0.0.1 (MASTER_ADDR=127.0.0.1, a free port), with ``collective_timeout``
    seconds for every collective; each uses one thread. ``function`` must be defined at
    module level of an importable module or script (the new processes import it: not in a
    notebook, not a lambda), and its arguments and result must pickle. After ``timeout`` seconds in
    all, processes still running are terminated and ``RuntimeError`` is raised, as it is
    when a process fails (with its traceback; the others get 10 s more to report, then are
    terminated): a failure never hangs the caller. If the free port was taken before the
    group could bind it, the processes are started once more on another port.
    """
    if not _module_level(function):
        raise TypeError(
            "function must be a function defined at module level of an importable module (the spawned processes "
            f"import it by name), got {getattr(function, '__qualname__', function)!r}"
        )
    world_size = require_int(world_size, "world_size", minimum=1)
    for name, value in (("timeout", timeout), ("collective_timeout", collective_timeout)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    deadline = time.monotonic() + timeout
    for attempt in range(2):  # a second try only when the free port was taken before rank 0 could bind it
        values, errors = _launch(function, world_size, args, float(collective_timeout), deadline)
        if not any(_PORT_TAKEN in message.lower() for message in errors.values()) or attempt == 1:
            break
    missing = [rank for rank in range(world_size) if rank not in values and rank not in errors]
    if errors or missing:
        report = [f"--- process {rank} failed:\n{errors[rank]}" for rank in sorted(errors)]
        if missing:
            report.append(
                f"--- process(es) {missing} did not finish within timeout={timeout} s (or {_GRACE:.0f} s after "
                "another process failed) and were terminated"
            )
        raise RuntimeError(f"run_processes({getattr(function, '__qualname__', function)}): \n" + "\n".join(report))
    return [values[rank] for rank in range(world_size)]
