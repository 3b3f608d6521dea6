"""Batch norm across processes against the single-process library, on real processes.

One group of K = 3 processes (gloo on 127.0.0.1, spawned by ``distributed.run_processes``
with a timeout on every collective and on the whole run) runs every case below and sends
its results back; the comparisons with ``bnbackprop.batchnorm`` on the whole batch run
here. Error cases run in the same group: each process catches its own error and reports
its type and message, so that a refusal that hangs or is raised on only some processes
fails the test (by the collective timeout at worst) instead of hanging it. Two more
one-process runs check that ``run_processes`` reports a failing and a hanging function.
"""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from bnbackprop import batchnorm, distributed

K = 3
RNG = np.random.default_rng(17)


def _batch(shape, dtype=np.float64, *, constant_feature=False):
    X = (RNG.normal(size=shape) * 2.0 + 3.0).astype(dtype)
    dY = RNG.normal(size=shape).astype(dtype)
    if constant_feature:
        X[:, -1] = 0.1  # constant in floating point: mean 0.1, variance 0, x̂ = 0 (the library's rule)
    return X, dY


def _case(name, shape, sizes, *, split_axis=0, dtype=np.float64, library="numpy", sync=False, **options):
    X, dY = _batch(shape, dtype, constant_feature=options.pop("constant_feature", False))
    axes = options.get("axis", 0)
    axes = axes if isinstance(axes, tuple) else (axes,)
    features = tuple(s for i, s in enumerate(shape) if i not in [a % len(shape) for a in axes])
    gamma = RNG.uniform(0.5, 2.0, size=features)
    beta = RNG.normal(size=features)
    assert sum(sizes) == shape[split_axis] and len(sizes) == K
    return {
        "name": name, "X": X, "dY": dY, "gamma": gamma, "beta": beta, "sizes": sizes, "split_axis": split_axis,
        "library": library, "sync": sync, "options": options,
    }


CASES = [
    _case("unequal, empty, constant feature", (12, 4), (5, 0, 7), constant_feature=True, sync=True),
    _case("ddof=1, eps outside", (9, 3), (1, 2, 6), ddof=1, eps=1e-3, eps_placement="outside", sync=True),
    _case("float32", (16, 5), (4, 3, 9), dtype=np.float32),
    _case("float16, computed in float32", (8, 3), (3, 0, 5), dtype=np.float16),
    _case("torch NCHW axis=(0, 2, 3)", (5, 3, 2, 2), (2, 0, 3), library="torch", axis=(0, 2, 3), sync=True),
    _case("features x batch, axis=1", (3, 7), (3, 4, 0), split_axis=1, axis=1),
    _case("torch float32, eps=0 outside", (10, 2), (6, 2, 2), dtype=np.float32, library="torch", eps=0.0,
          eps_placement="outside"),
    _case("eps=0 inside, ddof=1", (8, 3), (2, 2, 4), eps=0.0, ddof=1),
    _case("3-D, axis=(0, 1), split along axis 1", (2, 9, 3), (4, 1, 4), split_axis=1, axis=(0, 1)),
    _case("equal sizes, a large mean", (9, 2), (3, 3, 3), constant_feature=False),
]
CASES[-1]["X"] = CASES[-1]["X"] + 1e6  # |μ| ≫ σ: where one-pass Σx² would lose the variance


def _shard(array, sizes, rank, axis):
    start = sum(sizes[:rank])
    return np.take(array, range(start, start + sizes[rank]), axis=axis)


def _to_numpy(value):
    return value.detach().numpy() if hasattr(value, "detach") else np.asarray(value)


def _error(call):
    try:
        call()
    except Exception as exc:  # reported to the parent, which checks the type and message
        return type(exc).__name__, str(exc)
    return None


def _run_case(rank, case):
    import torch

    X = _shard(case["X"], case["sizes"], rank, case["split_axis"])
    dY = _shard(case["dY"], case["sizes"], rank, case["split_axis"])
    gamma, beta = case["gamma"], case["beta"]
    if case["library"] == "torch":
        X, dY, gamma, beta = (torch.from_numpy(np.ascontiguousarray(a)) for a in (X, dY, gamma, beta))
    with distributed.record_collectives() as forward_log:
        Y, cache = distributed.forward(X, gamma, beta, **case["options"])
    with distributed.record_collectives() as backward_log:
        dX, dgamma, dbeta = distributed.backward(dY, cache)
    result = {
        "Y": _to_numpy(Y), "dX": _to_numpy(dX), "dgamma": _to_numpy(dgamma), "dbeta": _to_numpy(dbeta),
        "type": type(Y).__module__.split(".")[0], "dtype": str(Y.dtype), "forward": forward_log,
        "backward": backward_log, "count": cache.batch_size, "counts": cache.counts,
    }
    if case["sync"]:
        options = dict(case["options"])
        layer = distributed.SyncBatchNorm(tuple(np.shape(case["gamma"])), momentum=0.3, **options)
        layer.gamma, layer.beta = case["gamma"], case["beta"]
        layer.forward(X)
        layer.forward(X * 2.0 + 1.0)
        _, layer_dgamma, _ = layer.backward(dY)
        result["running"] = (layer.running_mean, layer.running_var, _to_numpy(layer_dgamma))
        layer.eval()
        result["eval"] = _to_numpy(layer(X))
    return result


def _bad_cases(rank):
    """Refusals: each process reports (type, message) of what it raised."""
    X, dY = np.arange(12.0).reshape(4, 3) ** 1.5, np.ones((4, 3))
    g, b = np.ones(3), np.zeros(3)
    wide = np.ones((4, 4)) * np.arange(4.0)
    found = {}
    found["feature shapes differ"] = _error(lambda: distributed.forward(wide if rank == 1 else X, *(
        (np.ones(4), np.zeros(4)) if rank == 1 else (g, b))))
    spoiled = np.where(X > 5, np.nan, X)
    found["NaN on one process"] = _error(lambda: distributed.forward(spoiled if rank == 2 else X, g, b))
    found["gamma refused on one process"] = _error(lambda: distributed.forward(X, g[:2] if rank == 0 else g, b))
    found["dtypes differ"] = _error(lambda: distributed.forward(X.astype(np.float32) if rank == 1 else X, g, b))
    found["ddof differs"] = _error(lambda: distributed.forward(X, g, b, ddof=rank % 2))
    found["one sample in all"] = _error(lambda: distributed.forward(X[:1] if rank == 0 else X[:0], g, b))
    cache = distributed.forward(X, g, b)[1]
    found["dY refused on one process"] = _error(lambda: distributed.backward(dY[:2] if rank == 1 else dY, cache))
    found["after all that, a good pass"] = _error(lambda: distributed.backward(dY, distributed.forward(X, g, b)[1]))
    return found


def _group_worker(rank, world_size, cases):
    assert world_size == K
    return {"cases": [_run_case(rank, case) for case in cases], "bad": _bad_cases(rank)}


@pytest.fixture(scope="module")
def group_results():
    start = time.monotonic()
    results = distributed.run_processes(_group_worker, K, CASES, timeout=240, collective_timeout=60)
    print(f"\n{K} processes, {len(CASES)} cases and the refusals: {time.monotonic() - start:.1f} s")
    return results


def _gathered(results, index, key, axis):
    return np.concatenate([r["cases"][index][key] for r in results], axis=axis)


def _bound(case):
    return {np.float16: 2e-3, np.float32: 2e-5}.get(case["X"].dtype.type, 1e-11)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[case["name"] for case in CASES])
def test_matches_one_process_on_the_whole_batch(group_results, index):
    case = CASES[index]
    # The reference is the NumPy path, whose corrected two-pass statistics the distributed
    # forward reproduces term by term; the fused kernel sums in another order, which at
    # |μ| ≫ σ differs by about u·|μ|/σ (1e-10 here), above this test's bound.
    Y_ref, cache = batchnorm.forward(case["X"], case["gamma"], case["beta"], engine="numpy", **case["options"])
    dX_ref, dgamma_ref, dbeta_ref = batchnorm.backward(case["dY"], cache, engine="numpy")
    axis = case["split_axis"]
    Y, dX = _gathered(group_results, index, "Y", axis), _gathered(group_results, index, "dX", axis)
    dgamma = sum(r["cases"][index]["dgamma"] for r in group_results)
    dbeta = sum(r["cases"][index]["dbeta"] for r in group_results)
    bound = _bound(case)
    for name, got, want in (("Y", Y, Y_ref), ("dX", dX, dX_ref), ("dgamma", dgamma, dgamma_ref),
                            ("dbeta", dbeta, dbeta_ref)):
        assert got.shape == want.shape, name
        assert got.dtype == want.dtype, name
        assert np.abs(got - want).max() <= bound * max(1.0, float(np.abs(want).max())), name
    for rank, result in enumerate(group_results):
        part = result["cases"][index]
        assert part["type"] == case["library"]
        p = case["gamma"].size
        assert part["counts"] == tuple(r["cases"][index]["Y"].size // p for r in group_results)
        assert part["count"] == cache.batch_size
        if case["sizes"][rank] == 0:
            assert part["Y"].size == 0 and part["dX"].size == 0
            assert not np.any(part["dgamma"]) and not np.any(part["dbeta"])


def test_the_large_mean_case_would_defeat_one_pass_sums(group_results):
    """The case with |μ| ≫ σ is a real test of the algorithm: the one-pass formula fails on it."""
    X = CASES[-1]["X"]
    n = X.shape[0]
    one_pass = (np.sum(X * X, axis=0) - np.sum(X, axis=0) ** 2 / n) / n
    assert np.abs(one_pass - X.var(axis=0)).max() > 1e-6 * X.var(axis=0).max()


@pytest.mark.parametrize("index", [i for i, case in enumerate(CASES) if case["sync"]],
                         ids=[case["name"] for case in CASES if case["sync"]])
def test_sync_batchnorm_running_statistics_are_those_of_the_whole_batch(group_results, index):
    case = CASES[index]
    options = dict(case["options"])
    layer = batchnorm.BatchNorm(tuple(np.shape(case["gamma"])), momentum=0.3, **options)
    layer.gamma, layer.beta = case["gamma"], case["beta"]
    layer.forward(case["X"])
    layer.forward(case["X"] * 2.0 + 1.0)
    _, dgamma_ref, _ = layer.backward(case["dY"])
    for result in group_results:
        running_mean, running_var, _ = result["cases"][index]["running"]
        assert np.abs(running_mean - layer.running_mean).max() <= 1e-12 * np.abs(layer.running_mean).max()
        assert np.abs(running_var - layer.running_var).max() <= 1e-12 * np.abs(layer.running_var).max()
    dgamma = sum(result["cases"][index]["running"][2] for result in group_results)
    assert np.abs(dgamma - dgamma_ref).max() <= 1e-11 * np.abs(dgamma_ref).max()
    layer.eval()
    Y_eval = _gathered(group_results, index, "eval", case["split_axis"])
    assert np.abs(Y_eval - layer(case["X"])).max() <= 1e-12 * np.abs(Y_eval).max()


def test_collectives_are_counted_and_as_small_as_the_mathematics_allows(group_results):
    """Forward: the 17-int descriptor, then p and 2p values (plus 2m for m features constant to rounding);
    backward: 2p values. Nothing scales with K or with the number of rows."""
    for index, case in enumerate(CASES):
        p = int(np.prod(np.shape(case["gamma"])))
        dtype = "float64" if case["X"].dtype == np.float64 else "float32"  # float16 is computed in float32
        for result in group_results:
            forward = [(c.kind, c.op, c.numel, c.dtype) for c in result["cases"][index]["forward"]]
            expected = [("all_gather", "", 17, "int64"), ("all_reduce", "sum", p, dtype),
                        ("all_reduce", "sum", 2 * p, dtype)]
            if index == 0:  # one feature constant: its max and -min, one extra all-reduce
                expected.append(("all_reduce", "max", 2, dtype))
            assert forward == expected, case["name"]
            backward = [(c.kind, c.op, c.numel, c.dtype) for c in result["cases"][index]["backward"]]
            assert backward == [("all_reduce", "sum", 2 * p, dtype)], case["name"]


def _errors(group_results, key):
    return [result["bad"][key] for result in group_results]


def test_feature_shapes_that_differ_are_refused_on_every_process(group_results):
    for kind, message in _errors(group_results, "feature shapes differ"):
        assert kind == "ValueError"
        assert message.startswith("X:") and "rank 1: X (4, 4)" in message and "rank 0: X (4, 3)" in message


def test_a_nan_on_one_process_is_refused_on_every_process(group_results):
    errors = _errors(group_results, "NaN on one process")
    assert all(kind == "ValueError" for kind, _ in errors)
    assert "X holds" in errors[2][1] and "non-finite" in errors[2][1]
    assert all("on another process X holds NaN" in message for _, message in errors[:2])


def test_a_bad_argument_on_one_process_is_refused_there_and_reported_elsewhere(group_results):
    errors = _errors(group_results, "gamma refused on one process")
    assert errors[0][0] == "ValueError" and errors[0][1].startswith("gamma must have shape (3,)")
    for kind, message in errors[1:]:
        assert kind == "RuntimeError" and "process(es) [0]" in message


def test_options_and_dtypes_must_agree(group_results):
    for kind, message in _errors(group_results, "dtypes differ"):
        assert kind == "ValueError" and message.startswith("X: the dtype of X differs") and "float32" in message
    for kind, message in _errors(group_results, "ddof differs"):
        assert kind == "ValueError" and message.startswith("ddof:") and "[0, 1, 0]" in message


def test_the_whole_batch_needs_two_samples(group_results):
    for kind, message in _errors(group_results, "one sample in all"):
        assert kind == "ValueError" and message.startswith("X:") and "[1, 0, 0]" in message


def test_a_bad_dY_on_one_process_is_refused_on_every_process_and_the_group_survives(group_results):
    errors = _errors(group_results, "dY refused on one process")
    assert errors[1][0] == "ValueError" and errors[1][1].startswith("dY must have shape (4, 3)")
    for kind, message in (errors[0], errors[2]):
        assert kind == "ValueError" and message.startswith("dY:") and "on another process" in message
    assert _errors(group_results, "after all that, a good pass") == [None] * K


def test_without_a_process_group_the_error_says_how_to_start_one():
    with pytest.raises(RuntimeError, match=r"group: .*not initialised.*init_process_group\('gloo'"):
        distributed.forward(np.ones((4, 3)), np.ones(3), np.zeros(3))


def _raise(rank, world_size):
    raise ValueError(f"process {rank} of {world_size} refuses on purpose")


def _sleep(rank, world_size):
    time.sleep(600)


def test_run_processes_retries_a_taken_port_and_reports_a_failing_function(monkeypatch):
    """The first port offered is already taken: the group cannot start there, run_processes starts it
    again on another port, where the function fails and its traceback comes back."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    offered = []
    free_port = distributed.free_port

    def first_taken():
        offered.append(taken.getsockname()[1] if not offered else free_port())
        return offered[-1]

    monkeypatch.setattr(distributed, "free_port", first_taken)
    try:
        with pytest.raises(RuntimeError, match=r"(?s)process 0 failed.*ValueError: process 0 of 1 refuses on purpose"):
            distributed.run_processes(_raise, 1, timeout=120)
    finally:
        taken.close()
    assert len(offered) == 2 and offered[0] != offered[1]


def test_run_processes_terminates_a_function_that_hangs():
    with pytest.raises(RuntimeError, match=r"process\(es\) \[0\] did not finish within timeout=5 s"):
        distributed.run_processes(_sleep, 1, timeout=5)
