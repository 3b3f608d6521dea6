"""Batch-norm forward + backward: loops, the library's matrix form and PyTorch, measured together.

    .venv/bin/python benchmarks/run.py            # the full grid, a few minutes on 2 cores
    .venv/bin/python benchmarks/run.py --quick    # a small subset, under a minute
    .venv/bin/python benchmarks/run.py --device cuda   # library on torch CUDA tensors vs torch

Everything runs in one process. For each size the implementations run round-robin, one call
each per repetition in rotating order, after a warm-up call each, and the medians are compared
(bnbackprop.benchmarking.interleaved_times). Each case is a training-mode forward pass and the
backward pass to (dX, dgamma, dbeta):

* ``loops``  bnbackprop.loops, scalar Python, O(N² p): only for N = p ≤ 256 in float64;
* ``matrix`` bnbackprop.batchnorm.forward + backward, the library's matrix form;
* ``torch``  torch.nn.functional.batch_norm(training=True) + torch.autograd.grad, CPU (or CUDA),
  with PyTorch's default number of threads, as a user would run it;
* ``torch_1thread``  the same on one thread (NumPy's element-wise operations use one thread);
* ``copy``   one copy of an array of the size of X (one read and one write pass), the unit in
  which the others' times are also expressed ("equivalent passes").

After all timings, the peak memory of one call of each is measured (growth of the resident set,
with glibc told to mmap every allocation of 64 KiB or more so that it counts; and, for NumPy,
tracemalloc's peak), and the memory traffic of the library's operations is counted on torch
tensors. Results go to benchmarks/results/<name>.json and .png (name: cpu, cpu-quick, cuda).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bnbackprop import batchnorm, benchmarking

SCHEMA = "bnbackprop-benchmark/1"
HERE = Path(__file__).resolve().parent

# N × p sizes of the main grid: N from 64 to 8192, p from 64 to 4096, all pairs with at most
# 2^23 elements (64 MiB per array in float64); float64 and float32 each.
FULL_N = (64, 256, 1024, 4096, 8192)
FULL_P = (64, 256, 1024, 4096)
MAX_ELEMENTS = 2**23
# Square sizes at which the pure-Python loop reference is timed (it stops at 256: O(N² p)).
FULL_LOOP_SIZES = (16, 32, 64, 128, 256)
HEADLINE = (4096, 1024)
LOOP_MEMORY_ELEMENTS = 64 * 64

GRIDS = {
    "full": {
        "sizes": [(n, p) for n in FULL_N for p in FULL_P if n * p <= MAX_ELEMENTS],
        "loop_sizes": FULL_LOOP_SIZES,
        "dtypes": ("float64", "float32"),
        "target_s": 0.4,
        "min_repeats": 5,
        "headline_repeats": 21,
    },
    "quick": {
        "sizes": [(256, 256), (1024, 1024), HEADLINE],
        "loop_sizes": (16, 32, 64, 128),
        "dtypes": ("float64", "float32"),
        "target_s": 0.2,
        "min_repeats": 5,
        "headline_repeats": 11,
    },
    "smoke": {
        "sizes": [(64, 32)],
        "loop_sizes": (8, 16),
        "dtypes": ("float64", "float32"),
        "target_s": 0.0,
        "min_repeats": 3,
        "headline_repeats": 3,
    },
    "cuda": {
        "sizes": [(4096, 1024), (16384, 1024), (65536, 1024)],
        "loop_sizes": (),
        "dtypes": ("float32", "float64"),
        "target_s": 0.5,
        "min_repeats": 11,
        "headline_repeats": 21,
    },
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a small subset of the grid (under a minute)")
    size.add_argument("--smoke", action="store_true", help="tiny sizes, for the test suite (seconds)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where torch tensors live")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="directory for the JSON and PNG")
    parser.add_argument("--name", help="file name stem of the results (default: cpu, cpu-quick, cpu-smoke, cuda)")
    parser.add_argument("--no-plot", action="store_true", help="write the JSON only")
    return parser.parse_args(argv)


def repeats_for(first_call_s: float, grid: dict, headline: bool) -> int:
    """Enough repetitions to fill about ``target_s`` per implementation, within bounds."""
    wanted = grid["target_s"] / max(first_call_s, 1e-9)
    repeats = int(min(max(wanted, grid["min_repeats"]), 51))
    return max(repeats, grid["headline_repeats"]) if headline else repeats


def max_abs_difference(result, reference) -> float:
    """Largest |difference| between two (Y, (dX, dgamma, dbeta)) results, as NumPy."""
    def flat(value):
        Y, (dX, dgamma, dbeta) = value
        return [np.asarray(_to_numpy(a), dtype=np.float64) for a in (Y, dX, dgamma, dbeta)]

    return max(float(np.max(np.abs(a - b))) for a, b in zip(flat(result), flat(reference), strict=True))


def _to_numpy(value):
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def library_accepts_torch() -> bool:
    """Whether batchnorm.forward returns a torch tensor when given torch tensors."""
    import torch

    inputs = benchmarking.to_torch(benchmarking.make_inputs(4, 3))
    try:
        Y, _ = batchnorm.forward(inputs["X"], inputs["gamma"], inputs["beta"])
    except (TypeError, ValueError):
        return False
    return isinstance(Y, torch.Tensor)


def measure_size(n: int, p: int, dtype: str, *, with_loops: bool, grid: dict, device: str, headline: bool) -> dict:
    """Time every implementation at one size, interleaved; return the record for the JSON."""
    import torch

    inputs = benchmarking.make_inputs(n, p, dtype)
    if device == "cuda":
        device_inputs = benchmarking.to_torch(inputs, "cuda")
        synchronize = torch.cuda.synchronize
    else:
        device_inputs = inputs
        synchronize = None
    matrix = benchmarking.matrix_case(device_inputs)
    torch_default = benchmarking.torch_case(inputs, device)
    # PyTorch's threads keep a core busy after each call on a machine with other load, which
    # slows whatever runs next: the single-threaded implementations are interleaved with
    # PyTorch on one thread, and PyTorch with its default threads gets a group of its own with
    # the matrix form.
    split = device == "cpu" and torch.get_num_threads() > 1
    single = {"matrix": matrix, "copy": benchmarking.copy_case(device_inputs)}
    if split:
        single["torch_1thread"] = benchmarking.torch_case(inputs, device, threads=1)
    else:
        single["torch"] = torch_default
    if with_loops:
        single["loops"] = benchmarking.loop_case(inputs)
    groups = [single] + ([{"matrix": matrix, "torch": torch_default}] if split else [])

    # One warm-up call of each; the slowest sets the number of repetitions.
    first = 0.0
    for case in [*single.values(), torch_default]:
        start = time.perf_counter()
        case()
        if synchronize is not None:
            synchronize()
        first = max(first, time.perf_counter() - start)
    # The loops are slow enough that three timed calls suffice.
    repeats = 3 if with_loops else repeats_for(first, grid, headline)
    times = [benchmarking.interleaved_times(group, repeats=repeats, warmup=0, synchronize=synchronize)
             for group in groups]
    impls = {name: benchmarking.summarise(seconds) for name, seconds in times[0].items()}
    if split:
        impls["torch"] = benchmarking.summarise(times[1]["torch"])
        matrix_beside_torch = benchmarking.summarise(times[1]["matrix"])["median_s"]
    else:
        matrix_beside_torch = impls["matrix"]["median_s"]
    record = {"N": n, "p": p, "dtype": dtype, "elements": n * p, "itemsize": np.dtype(dtype).itemsize,
              "impls": impls, "loops_measured": with_loops, "groups": [list(group) for group in groups]}
    torch_s = impls["torch"]["median_s"]
    copy_s = impls["copy"]["median_s"]
    for summary in impls.values():
        summary["ratio_to_torch"] = summary["median_s"] / torch_s
        summary["equivalent_passes"] = 2 * summary["median_s"] / copy_s
    impls["matrix"]["median_s_beside_torch"] = matrix_beside_torch
    impls["matrix"]["ratio_to_torch"] = matrix_beside_torch / torch_s
    if "torch_1thread" in impls:
        impls["matrix"]["ratio_to_torch_1thread"] = impls["matrix"]["median_s"] / impls["torch_1thread"]["median_s"]
    if with_loops:
        record["loops_over_matrix"] = impls["loops"]["median_s"] / impls["matrix"]["median_s"]
    record["max_abs_difference_matrix_vs_torch"] = max_abs_difference(matrix(), torch_default())
    return record


def measure_memory(record: dict, device: str) -> None:
    """Peak memory of one call of each implementation, added to ``record`` (after all timings)."""
    import torch

    inputs = benchmarking.make_inputs(record["N"], record["p"], record["dtype"])
    if device == "cuda":
        device_inputs = benchmarking.to_torch(inputs, "cuda")
        cases = {"matrix": benchmarking.matrix_case(device_inputs), "torch": benchmarking.torch_case(inputs, "cuda")}
        for name, case in cases.items():
            case()
            torch.cuda.synchronize()
            before = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            result = case()
            torch.cuda.synchronize()
            record["impls"][name]["peak_cuda_bytes"] = torch.cuda.max_memory_allocated() - before
            del result
        return
    cases = {"matrix": benchmarking.matrix_case(inputs), "torch": benchmarking.torch_case(inputs)}
    # The loops' memory is measured only where a call is quick (tracemalloc slows pure Python ten-fold).
    if record["loops_measured"] and record["elements"] <= LOOP_MEMORY_ELEMENTS:
        cases["loops"] = benchmarking.loop_case(inputs)
    for name, case in cases.items():
        case()
        record["impls"][name]["peak_rss_bytes"] = benchmarking.peak_rss_increase(case)
        record["impls"][name]["peak_tracemalloc_bytes"] = (
            benchmarking.peak_traced_increase(case) if name != "torch" else None
        )


def measure_traffic(n: int, p: int, dtype: str, copy_bandwidth: float) -> dict | None:
    """Bytes the library's operations move at one size (counted on torch CPU tensors)."""
    if not library_accepts_torch():
        return None
    inputs = benchmarking.to_torch(benchmarking.make_inputs(n, p, dtype))
    counted = benchmarking.count_traffic(benchmarking.matrix_case(inputs))
    array_bytes = n * p * np.dtype(dtype).itemsize
    moved = counted["bytes_read"] + counted["bytes_written"]
    return {
        "N": n, "p": p, "dtype": dtype, **counted,
        "bytes_moved": moved,
        "passes": moved / array_bytes,
        "lower_bound_s": moved / copy_bandwidth,
        "minimum_passes": benchmarking.MINIMUM_PASSES,
        "minimum_s": benchmarking.MINIMUM_PASSES * array_bytes / copy_bandwidth,
    }


def run(args: argparse.Namespace) -> dict:
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit(
            "--device cuda needs PyTorch built with CUDA and a visible GPU; "
            f"torch {torch.__version__} reports torch.cuda.is_available() == False"
        )
    grid_name = "cuda" if args.device == "cuda" else "smoke" if args.smoke else "quick" if args.quick else "full"
    grid = GRIDS[grid_name]
    if args.device == "cuda" and not library_accepts_torch():
        sys.exit("this version of bnbackprop.batchnorm does not accept torch tensors (no array-API support)")
    started = time.perf_counter()
    machine = benchmarking.machine_info()
    if args.device == "cuda":
        machine["device"] = torch.cuda.get_device_name(0)
    else:
        machine["device"] = "cpu"
    bandwidth = benchmarking.copy_bandwidth(2**23 if grid_name == "smoke" else 256 * 2**20)
    print(f"{machine['cpu_model']}, {machine['logical_cpus']} logical CPUs, torch threads "
          f"{machine['torch_num_threads']}, load average {machine['loadavg']}")
    print(f"copy bandwidth (read + write): {bandwidth['bytes_per_s'] / 1e9:.1f} GB/s")

    records = []
    plan = [(s, s, "float64", True) for s in grid["loop_sizes"]]
    plan += [(n, p, dtype, False) for dtype in grid["dtypes"] for n, p in grid["sizes"]]
    for n, p, dtype, with_loops in plan:
        headline = (n, p) == HEADLINE or (grid_name in ("smoke", "cuda") and (n, p) == grid["sizes"][0])
        record = measure_size(n, p, dtype, with_loops=with_loops, grid=grid, device=args.device, headline=headline)
        records.append(record)
        impls = record["impls"]
        line = (f"N={n:6d} p={p:5d} {dtype}  matrix {impls['matrix']['median_s'] * 1e3:9.3f} ms  "
                f"torch {impls['torch']['median_s'] * 1e3:9.3f} ms  matrix/torch "
                f"{impls['matrix']['ratio_to_torch']:5.2f}  passes {impls['matrix']['equivalent_passes']:5.1f}")
        if "torch_1thread" in impls:
            line += f"  matrix/torch(1 thread) {impls['matrix']['median_s'] / impls['torch_1thread']['median_s']:5.2f}"
        if with_loops:
            line += f"  loops {impls['loops']['median_s']:8.3f} s  loops/matrix {record['loops_over_matrix']:8.0f}"
        print(line, flush=True)

    if args.device == "cpu":
        benchmarking.mmap_large_allocations()
    for record in records:
        measure_memory(record, args.device)

    traffic = []
    if args.device == "cpu":
        for dtype in grid["dtypes"]:
            n, p = grid["sizes"][-1] if grid_name == "smoke" else HEADLINE
            counted = measure_traffic(n, p, dtype, bandwidth["bytes_per_s"])
            if counted is not None:
                measured = next(r for r in records if (r["N"], r["p"], r["dtype"]) == (n, p, dtype))
                counted["measured_s"] = measured["impls"]["matrix"]["median_s"]
                counted["torch_s"] = measured["impls"]["torch"]["median_s"]
                traffic.append(counted)

    load_end = list(os.getloadavg())
    cpus = machine["logical_cpus"] or 1
    result = {
        "schema": SCHEMA,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["benchmarks/run.py", *sys.argv[1:]]) if args is not None else "",
        "grid": grid_name,
        "machine": machine,
        "load": {
            "loadavg_start": machine["loadavg"],
            "loadavg_end": load_end,
            "under_load": machine["loadavg"][0] >= 0.5 * cpus,
            "definition": "under_load: the 1-minute load average before the run was at least half the "
                          "logical CPUs, i.e. other processes were competing for the cores",
        },
        "method": {
            "timer": "time.perf_counter, one process, round-robin over implementations per repetition "
                     "(rotating order), one warm-up call each, medians; repetitions fill about target_s per "
                     "implementation (at least min_repeats, at most 51; the headline size at least "
                     "headline_repeats; the loops 3)",
            "target_s": grid["target_s"], "min_repeats": grid["min_repeats"],
            "headline_repeats": grid["headline_repeats"],
            "groups": "each size is timed in interleaved groups: the single-threaded implementations "
                      "(matrix, copy, loops) with torch on one thread; then, on a CPU with more than one "
                      "thread, the matrix form with torch on its default threads, whose threads keep a "
                      "core busy after each call and would slow the others",
            "ratio_to_torch": "median / median of torch with its default threads (torch_num_threads); for "
                              "matrix, measured in the same group (median_s_beside_torch / torch median); "
                              "ratio_to_torch_1thread: matrix median / median of torch on one thread, "
                              "same group",
            "case": "training-mode forward pass and backward pass to (dX, dgamma, dbeta)",
            "loops": "bnbackprop.loops only at N = p in loop_sizes (pure Python, O(N^2 p)); stops at "
                     f"{max(grid['loop_sizes'], default=0)}",
            "equivalent_passes": "2 * median / median of one copy of an array of the size of X "
                                 "(a copy reads one array and writes one)",
            "peak_rss_bytes": "growth of VmHWM over VmRSS during one call, outputs included, with glibc's "
                              "mmap threshold set to 64 KiB after the timings so that large buffers count",
            "peak_tracemalloc_bytes": "tracemalloc peak during one call (NumPy's allocations); None for torch",
            "traffic": "bytes read + written by each torch operation of the library's forward + backward "
                       "run on torch CPU tensors (unfused; views free); lower_bound_s = bytes / copy bandwidth",
            "minimum_passes": "forward: read X, read X + write Y; backward: read dY, X, read dY, X + write dX",
        },
        "grid_sizes": {"sizes": grid["sizes"], "loop_sizes": list(grid["loop_sizes"]), "dtypes": list(grid["dtypes"])},
        "copy_bandwidth": bandwidth,
        "records": records,
        "traffic": traffic,
        "wall_s": time.perf_counter() - started,
    }
    return result


def headline_ratios(result: dict) -> dict:
    """The targets of the speed issue, read from a result: ratios at the headline sizes."""
    ratios = {}
    for record in result["records"]:
        if (record["N"], record["p"]) == HEADLINE and not record["loops_measured"]:
            impls = record["impls"]
            label = f"{record['dtype']} N={HEADLINE[0]} p={HEADLINE[1]}"
            ratios[f"matrix/torch {label}"] = impls["matrix"]["ratio_to_torch"]
            if "torch_1thread" in impls:
                ratios[f"matrix/torch(1 thread) {label}"] = impls["matrix"]["ratio_to_torch_1thread"]
        if record["loops_measured"] and record["N"] == max(result["grid_sizes"]["loop_sizes"]):
            ratios[f"loops/matrix float64 N=p={record['N']}"] = record["loops_over_matrix"]
    return ratios


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    colours = {"float64": "C0", "float32": "C1"}
    for dtype in result["grid_sizes"]["dtypes"]:
        rows = [r for r in result["records"] if r["dtype"] == dtype and not r["loops_measured"]]
        if not rows:
            continue
        size = [r["elements"] for r in rows]
        matrix = [r["impls"]["matrix"] for r in rows]
        left.loglog(size, [m["median_s"] for m in matrix], "o", color=colours[dtype], label=f"matrix form, {dtype}")
        left.loglog(size, [r["impls"]["torch"]["median_s"] for r in rows], "s", mfc="none", color=colours[dtype],
                    alpha=0.6, label=f"PyTorch, {dtype}")
        right.loglog(size, [m["ratio_to_torch"] for m in matrix], "s", mfc="none", color=colours[dtype],
                     label=f"vs PyTorch ({result['machine']['torch_num_threads']} threads), {dtype}")
        if "ratio_to_torch_1thread" in matrix[0]:
            right.loglog(size, [m["ratio_to_torch_1thread"] for m in matrix], "o", color=colours[dtype],
                         label=f"vs PyTorch (1 thread), {dtype}")
    loop_rows = [r for r in result["records"] if r["loops_measured"]]
    if loop_rows:
        size = [r["elements"] for r in loop_rows]
        left.loglog(size, [r["impls"]["loops"]["median_s"] for r in loop_rows], "^-", color="C3",
                    label="loops, float64 (N = p)")
        left.loglog(size, [r["impls"]["matrix"]["median_s"] for r in loop_rows], "o:", color="C0")
    left.set_xlabel("N · p (elements of X)")
    left.set_ylabel("forward + backward, median seconds")
    left.legend(fontsize=7)
    right.axhline(1.0, color="grey", lw=0.8)
    right.set_xlabel("N · p (elements of X)")
    right.set_ylabel("matrix form time / PyTorch time")
    right.legend(fontsize=7)
    machine = result["machine"]
    fig.suptitle(f"{machine['device']} · {machine['cpu_model']} · {machine['logical_cpus']} CPUs · "
                 f"torch {machine['torch_num_threads']} threads · {result['created_utc']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> dict:
    args = parse_args(argv)
    result = run(args)
    name = args.name or ("cuda" if args.device == "cuda" else "cpu-smoke" if args.smoke
                         else "cpu-quick" if args.quick else "cpu")
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / f"{name}.json"
    json_path.write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
    if not args.no_plot:
        plot(result, args.out / f"{name}.png")
    for label, ratio in headline_ratios(result).items():
        print(f"{label}: {ratio:.3g}")
    for row in result["traffic"]:
        print(f"library traffic {row['dtype']} N={row['N']} p={row['p']}: {row['passes']:.1f} passes "
              f"({row['operations']} operations), bound {row['lower_bound_s'] * 1e3:.2f} ms, "
              f"measured {row['measured_s'] * 1e3:.2f} ms; minimum {row['minimum_passes']} passes = "
              f"{row['minimum_s'] * 1e3:.2f} ms")
    print(f"load average at start {result['load']['loadavg_start'][0]:.2f}, at end "
          f"{result['load']['loadavg_end'][0]:.2f}; wrote {json_path} in {result['wall_s']:.0f} s")
    assert all(math.isfinite(r["impls"]["matrix"]["ratio_to_torch"]) for r in result["records"])
    return result


if __name__ == "__main__":
    main()
