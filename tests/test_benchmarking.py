"""The speed harness: its helpers measure what they say, and benchmarks/run.py cannot rot.

No test here times anything against a bound: speed is reported by the harness as ratios.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bnbackprop import batchnorm, benchmarking, fused

ROOT = Path(__file__).resolve().parents[1]


def test_make_inputs_shapes_dtypes_and_bad_dtype():
    inputs = benchmarking.make_inputs(5, 3, "float32")
    assert inputs["X"].shape == inputs["dY"].shape == (5, 3)
    assert inputs["gamma"].shape == inputs["beta"].shape == (3,)
    assert {value.dtype for value in inputs.values()} == {np.dtype(np.float32)}
    with pytest.raises(ValueError, match="dtype"):
        benchmarking.make_inputs(5, 3, "float16")
    with pytest.raises(ValueError, match="n must be >= 2"):
        benchmarking.make_inputs(1, 3)


def test_cases_compute_the_same_gradients():
    inputs = benchmarking.make_inputs(12, 4)
    Y_loop, (dX_loop, dgamma_loop, dbeta_loop) = benchmarking.loop_case(inputs)()
    Y, (dX, dgamma, dbeta) = benchmarking.matrix_case(inputs)()
    Y_torch, (dX_torch, dgamma_torch, dbeta_torch) = benchmarking.torch_case(inputs, threads=1)()
    for loop, matrix, reference in (
        (Y_loop, Y, Y_torch), (dX_loop, dX, dX_torch), (dgamma_loop, dgamma, dgamma_torch),
        (dbeta_loop, dbeta, dbeta_torch),
    ):
        np.testing.assert_allclose(loop, reference.detach().numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(np.asarray(matrix), reference.detach().numpy(), rtol=1e-9, atol=1e-12)


def test_graph_case_and_every_engine_compute_the_same_gradients():
    for dtype, bound in (("float64", 1e-12), ("float32", 1e-5)):
        inputs = benchmarking.make_inputs(40, 6, dtype)
        Y, grads = benchmarking.matrix_case(inputs, "numpy")()
        expected = [Y, *grads]
        cases = [benchmarking.graph_case(inputs), benchmarking.matrix_case(inputs)]
        if fused.available():
            cases.append(benchmarking.matrix_case(inputs, "fused", threads=1))
        for case in cases:
            Y, grads = case()
            for a, b in zip((Y, *grads), expected, strict=True):
                assert a.dtype == b.dtype
                np.testing.assert_allclose(a, b, rtol=bound, atol=bound)


def test_matrix_case_refuses_unknown_engines():
    with pytest.raises(ValueError, match="engine"):
        benchmarking.matrix_case(benchmarking.make_inputs(4, 2), "jit")


def test_other_load_counts_cpu_time_of_others_not_our_own():
    start = benchmarking.cpu_snapshot()
    if start is None:
        pytest.skip("no /proc/stat on this system")
    total = 0.0
    while benchmarking.cpu_snapshot()["own_s"] - start["own_s"] < 0.2:  # keep one core busy ourselves
        total += float(np.sum(np.ones(10_000)))
    load = benchmarking.other_load(start, benchmarking.cpu_snapshot())
    assert load["own_cpu_s"] >= 0.2
    assert 0 <= load["other_share"] <= 1 and 0 < load["own_share"] <= 1
    # what this process used is not counted as others' load: others' share leaves room for ours
    assert load["other_share"] + load["own_share"] <= 1 + 0.05
    with pytest.raises(TypeError, match="start"):
        benchmarking.other_load({"busy_s": 1.0}, start)
    with pytest.raises(ValueError, match="after start"):
        benchmarking.other_load(benchmarking.cpu_snapshot(), start)


def test_torch_case_restores_thread_count():
    before = torch.get_num_threads()
    benchmarking.torch_case(benchmarking.make_inputs(4, 2), threads=1)()
    assert torch.get_num_threads() == before


def test_copy_case_copies_x():
    inputs = benchmarking.make_inputs(6, 5)
    benchmarking.copy_case(inputs)()  # returns None for NumPy: the copy lands in its own buffer
    tensors = benchmarking.to_torch(inputs)
    copied = benchmarking.copy_case(tensors)()
    np.testing.assert_array_equal(copied.numpy(), inputs["X"])


def test_interleaved_times_rotates_and_counts_calls():
    calls = []
    cases = {name: (lambda name=name: calls.append(name)) for name in "abc"}
    times = benchmarking.interleaved_times(cases, repeats=3, warmup=1)
    assert calls == list("abc") + list("abc") + list("bca") + list("cab")
    assert {name: len(seconds) for name, seconds in times.items()} == {"a": 3, "b": 3, "c": 3}
    assert all(t >= 0 for seconds in times.values() for t in seconds)
    with pytest.raises(ValueError, match="repeats"):
        benchmarking.interleaved_times(cases, repeats=0)
    with pytest.raises(ValueError, match="at least one case"):
        benchmarking.interleaved_times({}, repeats=1)


def test_interleaved_times_counts_the_page_faults_of_fresh_memory():
    existing = np.ones(2**21)  # 16 MiB, touched once: later writes need no new pages
    faults = {}
    times = benchmarking.interleaved_times({
        "fresh": lambda: np.ones(2**22),  # 32 MiB of new memory at every call
        "reuse": lambda: existing.fill(2.0),
    }, repeats=5, faults=faults)
    assert set(faults) == set(times) and all(len(counts) == 5 for counts in faults.values())
    # 32 MiB is at least 16 pages even if every one is a 2 MiB huge page; reusing memory needs none
    assert min(faults["fresh"]) >= 16
    assert max(faults["reuse"]) < min(faults["fresh"])
    with pytest.raises(TypeError, match="faults must be an empty dict"):
        benchmarking.interleaved_times({"a": lambda: None}, repeats=1, faults={"a": [1]})


def test_count_traffic_counts_each_operation_once_and_views_as_free():
    x = torch.ones(100, 50, dtype=torch.float64)
    array = x.nbytes

    def operations():
        y = x + 1  # read 1, write 1
        y -= 2  # in place: read y, write y
        z = y.T  # a view: free
        return (z * z).sum()  # read 2, write 1; then read 1, write one scalar

    counted = benchmarking.count_traffic(operations)
    assert counted["operations"] == 4
    assert counted["bytes_read"] == 5 * array
    assert counted["bytes_written"] == 3 * array + 8


def test_peak_traced_increase_sees_a_numpy_allocation():
    nbytes = 8 * 200_000
    peak = benchmarking.peak_traced_increase(lambda: np.ones(nbytes // 8).sum())
    assert nbytes <= peak < 2 * nbytes


def test_copy_bandwidth_is_positive_and_counts_read_plus_write():
    measured = benchmarking.copy_bandwidth(2**20, repeats=3)
    assert measured["bytes"] == 2**20
    assert measured["bytes_per_s"] == pytest.approx(2 * 2**20 / measured["median_s"])


def test_machine_info_names_versions_and_threads():
    info = benchmarking.machine_info()
    assert info["numpy"] == np.__version__ and info["torch"] == torch.__version__
    assert info["torch_num_threads"] == torch.get_num_threads()
    assert isinstance(info["cpu_model"], str) and info["cpu_model"]


def test_harness_smoke_run_writes_json_and_plot(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--smoke", "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads((tmp_path / "cpu-smoke.json").read_text())
    assert (tmp_path / "cpu-smoke.png").stat().st_size > 0
    assert result["schema"] == "bnbackprop-benchmark/1"
    for key in ("created_utc", "machine", "load", "method", "grid_sizes", "copy_bandwidth", "records", "traffic"):
        assert key in result, key
    for key in ("cpu_model", "logical_cpus", "numpy", "torch", "torch_num_threads", "loadavg", "device"):
        assert key in result["machine"], key
    assert isinstance(result["load"]["under_load"], bool)
    assert 0 <= result["load"]["other_share"] <= 1
    assert result["load"]["under_load"] == (result["load"]["other_share"] > result["load"]["threshold"])
    assert result["copy_bandwidth"]["bytes_per_s"] > 0
    sizes = {(r["N"], r["p"], r["dtype"]) for r in result["records"]}
    assert sizes == {(8, 8, "float64"), (16, 16, "float64"), (64, 32, "float64"), (64, 32, "float32")}
    library = "fused" if fused.available() else "numpy"
    for record in result["records"]:
        impls = record["impls"]
        assert record["library"] == library
        if record["loops_measured"]:
            assert set(impls) == {"loops", library}
            assert math.isfinite(record["loops_over_library"])
        else:
            expected = {"numpy", "graph", "torch_1thread", "torch", library}
            assert expected | ({"fused_1thread"} if library == "fused" else set()) == set(impls)
            assert record["library_over_torch"] == impls[library]["median_s"] / impls["torch"]["median_s"]
            assert len(record["library_over_torch_blocks"]) == 3
            bound = 1e-10 if record["dtype"] == "float64" else 1e-4
            assert set(record["max_abs_difference_vs_torch"]) == set(impls) - {"torch", "torch_1thread"}
            assert max(record["max_abs_difference_vs_torch"].values()) < bound
            assert impls[library]["peak_tracemalloc_bytes"] > 0
        for summary in impls.values():
            faults = summary["minor_faults"]
            assert 0 <= faults["min"] <= faults["median"] <= faults["max"]
        for summary in impls.values():
            assert summary["min_s"] <= summary["q1_s"] <= summary["median_s"] <= summary["q3_s"]
            # one reference bandwidth: passes are recomputable from the median and the array's size
            assert summary["passes"] == pytest.approx(
                summary["median_s"] * result["copy_bandwidth"]["bytes_per_s"] / record["array_bytes"])
        assert 0 <= record["other_load"]["other_share"] <= 1
    for row in result["traffic"]:
        assert row["passes"] >= row["minimum_passes"]
        assert math.isfinite(row["lower_bound_s"]) and row["lower_bound_s"] > 0


def test_repeated_runs_keep_each_runs_ratios_and_their_spread(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "repeat.py"), "--smoke", "--runs", "2", "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    summary = json.loads((tmp_path / "cpu-smoke-repeats.json").read_text())
    assert summary["grid"] == "smoke" and len(summary["runs"]) == 2
    assert summary["runs"][0]["created_utc"] <= summary["runs"][1]["created_utc"]
    labels = set(summary["runs"][0]["ratios"])
    assert "grid median library/torch" in labels and labels == set(summary["spread"])
    for label, spread in summary["spread"].items():
        values = sorted(run["ratios"][label] for run in summary["runs"])
        assert (spread["min"], spread["max"]) == (values[0], values[-1])
        assert spread["median"] == pytest.approx(sum(values) / 2)
        assert all(math.isfinite(v) and v > 0 for v in values)
    refused = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "repeat.py"), "--smoke", "--runs", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert refused.returncode == 2 and "--runs must be at least 2" in refused.stderr


def test_harness_cuda_without_a_gpu_fails_clearly(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the harness would run")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    completed = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--device", "cuda", "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )
    assert completed.returncode != 0
    assert "torch.cuda.is_available() == False" in completed.stderr
    assert not list(tmp_path.iterdir())


def test_library_output_matches_on_torch_tensors_when_supported():
    """Where batchnorm accepts torch tensors (array API), it returns tensors equal to NumPy's."""
    inputs = benchmarking.make_inputs(9, 4)
    tensors = benchmarking.to_torch(inputs)
    Y, _ = batchnorm.forward(tensors["X"], tensors["gamma"], tensors["beta"])
    if not isinstance(Y, torch.Tensor):
        pytest.skip("this version of batchnorm converts torch tensors to NumPy")
    Y_numpy, _ = batchnorm.forward(inputs["X"], inputs["gamma"], inputs["beta"])
    np.testing.assert_allclose(Y.numpy(), Y_numpy, rtol=1e-12, atol=1e-12)
