"""Wrong ways to share batch norm across processes, reconstructed from bug reports, kept to be caught.

Nothing here is meant for use: each function is a deliberate mistake that real
implementations made, written with the same collectives as :mod:`bnbackprop.distributed`
so that the book's chapter on data parallelism can run it on real processes and show that
comparing with one process on the whole batch catches it. They take 2-D NumPy shards
(samples in rows, ``axis=0``), ε inside the square root and ``ddof=0``.

* :func:`forward_equal_weights`: per-shard mean and variance averaged over processes with
  equal weights, as if every shard had the same size (SyncBatchNorm before unequal sizes
  were supported, pytorch#22248);
* :func:`backward_equal_weight_means`: the backward pass's means of dY and dY ⊙ x̂ taken
  per shard and averaged with equal weights (the wrong dX with unequal sizes fixed by
  pytorch#36382);
* :func:`backward_local_means`: the backward pass's means taken over this shard only, with
  no communication (the single-process backward applied to the shard);
* :func:`backward_reduced_twice`: dγ and dβ all-reduced inside the layer, then again by
  data-parallel training (nnabla#1120);
* :func:`running_var_local_count`: the running variance made unbiased with this process's
  count, as if every process had as many samples (pytorch#22192).

:func:`compare_worker` runs the correct layer and every variant in one process of a group;
:func:`run_comparison` starts the group.
"""

from __future__ import annotations

import numpy as np

from bnbackprop import distributed


def _world_size(group=None) -> int:
    _, dist = distributed._torch()
    return dist.get_world_size(group)


def forward_equal_weights(X: np.ndarray, gamma: np.ndarray, beta: np.ndarray, *, eps: float = 1e-5, group=None):
    """Y with the shards' means and variances averaged with equal weights (a shard with no rows sends zeros)."""
    n_local = X.shape[0]
    mean_k = X.mean(axis=0) if n_local else np.zeros(X.shape[1])
    var_k = X.var(axis=0) if n_local else np.zeros(X.shape[1])
    sums = distributed._all_reduce(np.concatenate([mean_k, var_k + mean_k**2]), group)
    K = _world_size(group)
    p = X.shape[1]
    mean = sums[:p] / K
    var = sums[p:] / K - mean**2
    return gamma * (X - mean) / np.sqrt(var + eps) + beta


def _shard_terms(dY: np.ndarray, cache: distributed.DistributedCache):
    shard = cache.shard
    return shard.xhat, shard.gamma * shard.inv_denom, dY.shape[0]


def backward_equal_weight_means(dY: np.ndarray, cache: distributed.DistributedCache) -> np.ndarray:
    """dX with mean(dY) and mean(dY ⊙ x̂) taken per shard, then averaged over processes with equal weights."""
    xhat, scale, n_local = _shard_terms(dY, cache)
    local = np.concatenate([dY.sum(axis=0), (dY * xhat).sum(axis=0)]) / max(n_local, 1)
    means = distributed._all_reduce(local, cache.group) / _world_size(cache.group)
    p = xhat.shape[1]
    return scale * (dY - means[:p] - xhat * means[p:])


def backward_local_means(dY: np.ndarray, cache: distributed.DistributedCache) -> np.ndarray:
    """dX with mean(dY) and mean(dY ⊙ x̂) over this shard only: no communication in the backward pass."""
    xhat, scale, n_local = _shard_terms(dY, cache)
    if n_local == 0:
        return np.zeros_like(dY)
    return scale * (dY - dY.mean(axis=0) - xhat * (dY * xhat).mean(axis=0))


def backward_reduced_twice(dY: np.ndarray, cache: distributed.DistributedCache):
    """The right dX, but dγ and dβ already summed over processes (data-parallel training sums them again)."""
    dX, dgamma, dbeta = distributed.backward(dY, cache)
    p = dgamma.shape[0]
    total = distributed._all_reduce(np.concatenate([dgamma, dbeta]), cache.group)
    return dX, total[:p], total[p:]


def running_var_local_count(cache: distributed.DistributedCache, running_var: np.ndarray, momentum: float):
    """The running variance updated with the whole batch's variance made unbiased with K·n_k, this process's
    count taken for everyone's (the count passed to the statistics in pytorch#22192)."""
    assumed = _world_size(cache.group) * cache.shard.xhat.shape[0]
    unbiased = cache.shard.var * (assumed / (assumed - 1))
    return (1 - momentum) * running_var + momentum * unbiased


def _torch_sync_batchnorm(X: np.ndarray, dY: np.ndarray, momentum: float) -> dict:
    """Try ``torch.nn.SyncBatchNorm`` on CPU tensors: its results, or the error it raises."""
    import torch

    layer = torch.nn.SyncBatchNorm(X.shape[1], momentum=momentum).double()
    x = torch.from_numpy(np.ascontiguousarray(X)).requires_grad_(True)
    try:
        y = layer(x)
        y.backward(torch.from_numpy(np.ascontiguousarray(dY)))
    except Exception as exc:  # the answer reported to the chapter
        return {"ran": False, "error": f"{type(exc).__name__}: {exc}"}
    return {
        "ran": True, "Y": y.detach().numpy(), "dX": x.grad.numpy(), "dgamma": layer.weight.grad.numpy(),
        "dbeta": layer.bias.grad.numpy(), "running_mean": layer.running_mean.numpy(),
        "running_var": layer.running_var.numpy(),
    }


def compare_worker(rank: int, world_size: int, X, dY, gamma, beta, splits, momentum: float = 0.1) -> dict:
    """One process of the chapter's group: for each split (shard sizes by rank) of the batch ``X``,
    the correct layer's results and every wrong variant's, on this process's rows."""
    results = {}
    for name, sizes in splits.items():
        start = sum(sizes[:rank])
        x, dy = X[start : start + sizes[rank]], dY[start : start + sizes[rank]]
        layer = distributed.SyncBatchNorm(X.shape[1], momentum=momentum)
        layer.gamma, layer.beta = gamma, beta
        with distributed.record_collectives() as forward_log:
            Y = layer.forward(x)
        cache = layer._cache
        with distributed.record_collectives() as backward_log:
            dX, dgamma, dbeta = layer.backward(dy)
        twice = backward_reduced_twice(dy, cache)
        results[name] = {
            "Y": Y, "dX": dX, "dgamma": dgamma, "dbeta": dbeta,
            "running_mean": layer.running_mean, "running_var": layer.running_var,
            "forward_log": forward_log, "backward_log": backward_log,
            "equal_weights_Y": forward_equal_weights(x, gamma, beta),
            "equal_weight_means_dX": backward_equal_weight_means(dy, cache),
            "local_means_dX": backward_local_means(dy, cache),
            "twice_dgamma": twice[1], "twice_dbeta": twice[2],
            "local_count_running_var": running_var_local_count(cache, np.ones(X.shape[1]), momentum)
            if sizes[rank] else None,
        }
    first = next(iter(splits.values()))
    start = sum(first[:rank])
    results["torch.nn.SyncBatchNorm"] = _torch_sync_batchnorm(
        X[start : start + first[rank]], dY[start : start + first[rank]], momentum
    )
    return results


def run_comparison(X, dY, gamma, beta, splits: dict, *, momentum: float = 0.1, timeout: float = 180.0) -> list:
    """Start one process per entry of each split's sizes (all splits have the same number) and run
    :func:`compare_worker` in each; return their results by rank."""
    world_size = len(next(iter(splits.values())))
    return distributed.run_processes(
        compare_worker, world_size, X, dY, gamma, beta, splits, momentum, timeout=timeout, collective_timeout=60.0
    )
