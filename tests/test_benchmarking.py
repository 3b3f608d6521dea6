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

from bnbackprop import batchnorm, benchmarking

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
    assert result["copy_bandwidth"]["bytes_per_s"] > 0
    sizes = {(r["N"], r["p"], r["dtype"]) for r in result["records"]}
    assert sizes == {(8, 8, "float64"), (16, 16, "float64"), (64, 32, "float64"), (64, 32, "float32")}
    for record in result["records"]:
        impls = record["impls"]
        expected = {"matrix", "torch", "copy"} | ({"loops"} if record["loops_measured"] else set())
        assert expected <= set(impls)
        for summary in impls.values():
            assert math.isfinite(summary["ratio_to_torch"]) and summary["ratio_to_torch"] > 0
            assert math.isfinite(summary["equivalent_passes"]) and summary["equivalent_passes"] > 0
        assert impls["matrix"]["peak_tracemalloc_bytes"] > 0
        bound = 1e-10 if record["dtype"] == "float64" else 1e-4
        assert record["max_abs_difference_matrix_vs_torch"] < bound
    for row in result["traffic"]:
        assert row["passes"] >= row["minimum_passes"]
        assert math.isfinite(row["lower_bound_s"]) and row["lower_bound_s"] > 0


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
