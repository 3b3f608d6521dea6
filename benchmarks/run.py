"""Batch-norm forward + backward: loops, the nine-step graph, the library's matrix form and PyTorch, together.

    .venv/bin/python benchmarks/run.py            # the full grid, 2 to 4 minutes on 2 cores
    .venv/bin/python benchmarks/run.py --quick    # a small subset, under a minute
    .venv/bin/python benchmarks/run.py --device cuda   # library on torch CUDA tensors vs torch

Everything runs in one process. For each size the implementations run round-robin, one call
each per repetition in rotating order, after a warm-up call each, and the medians are compared
(bnbackprop.benchmarking.interleaved_times). Each case is a training-mode forward pass and the
backward pass to (dX, dgamma, dbeta):

* ``loops``  bnbackprop.loops, scalar Python, O(N² p): only for N = p ≤ 256 in float64, timed
  beside the library as a user calls it (default engine and threads);
* ``fused``  bnbackprop.batchnorm.forward + backward with the default engine: the fused kernel of
  bnbackprop.fused (Numba) on its default threads; ``fused_1thread`` the same on one thread;
* ``numpy``  the same functions with engine="numpy": the library's NumPy path (one thread);
* ``graph``  the nine-step graph of bnbackprop.stepwise, vectorised (one NumPy operation per step);
* ``torch``  torch.nn.functional.batch_norm(training=True) + torch.autograd.grad, CPU (or CUDA),
  with PyTorch's default number of threads, as a user would run it; ``torch_1thread`` on one thread.

Each grid size is timed in two interleaved groups, the one-thread implementations together and
then the kernel with PyTorch on their default threads (whose threads keep the cores busy around
each call). Times are also given in "passes": the number of arrays of the size of X that the
machine's copy bandwidth, measured once at the start, moves in that time. The CPU time that
other processes used while the timings ran (/proc/stat) is recorded for the run and each size.

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
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bnbackprop import batchnorm, benchmarking, fused

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
#: ``under_load`` when other processes used more than this share of the machine's CPU time during the timings.
UNDER_LOAD_SHARE = 0.1
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


def _blocks(first: list[float], second: list[float], count: int = 3) -> list[float]:
    """Ratios of the medians of ``first`` and ``second`` over ``count`` consecutive blocks of
    repetitions: how much the ratio moves from one stretch of the run to the next."""
    blocks = np.array_split(np.arange(len(first)), min(count, len(first)))
    return [statistics.median(first[i] for i in block) / statistics.median(second[i] for i in block)
            for block in blocks]


def measure_size(n: int, p: int, dtype: str, *, with_loops: bool, grid: dict, device: str, headline: bool,
                 bandwidth: float) -> dict:
    """Time every implementation at one size, interleaved; return the record for the JSON."""
    import torch

    inputs = benchmarking.make_inputs(n, p, dtype)
    before = benchmarking.cpu_snapshot()
    synchronize = None
    kernel = device == "cpu" and fused.available()
    library = "fused" if kernel else "numpy"
    if device == "cuda":
        device_inputs = benchmarking.to_torch(inputs, "cuda")
        synchronize = torch.cuda.synchronize
        groups = [{"numpy": benchmarking.matrix_case(device_inputs, "numpy"),
                   "torch": benchmarking.torch_case(inputs, device)}]
    elif with_loops:
        # the loop reference beside the library as a user calls it (default engine and threads)
        groups = [{"loops": benchmarking.loop_case(inputs), library: benchmarking.matrix_case(inputs)}]
    else:
        # PyTorch's threads (and the kernel's) keep the cores busy around each call, which slows
        # whatever runs next: the one-thread implementations are interleaved in one group, the
        # kernel and PyTorch on their default threads in another.
        single = {"numpy": benchmarking.matrix_case(inputs, "numpy"), "graph": benchmarking.graph_case(inputs),
                  "torch_1thread": benchmarking.torch_case(inputs, device, threads=1)}
        if kernel:
            single["fused_1thread"] = benchmarking.matrix_case(inputs, "fused", threads=1)
        groups = [single, {library: benchmarking.matrix_case(inputs), "torch": benchmarking.torch_case(inputs)}]

    # One warm-up call of each; the slowest sets the number of repetitions.
    first = 0.0
    for group in groups:
        for case in group.values():
            start = time.perf_counter()
            case()
            if synchronize is not None:
                synchronize()
            first = max(first, time.perf_counter() - start)
    # The loops are slow enough that three timed calls suffice.
    repeats = 3 if with_loops else repeats_for(first, grid, headline)
    times, faults = {}, {}
    for group in groups:
        group_faults = {}
        times.update(benchmarking.interleaved_times(group, repeats=repeats, warmup=0, synchronize=synchronize,
                                                    faults=group_faults))
        faults.update(group_faults)
    array_bytes = n * p * np.dtype(dtype).itemsize
    impls = {name: benchmarking.summarise(seconds) for name, seconds in times.items()}
    for name, summary in impls.items():
        summary["passes"] = summary["median_s"] * bandwidth / array_bytes
        if faults.get(name):
            counts = faults[name]
            summary["minor_faults"] = {"median": statistics.median(counts), "min": min(counts), "max": max(counts)}
    record = {"N": n, "p": p, "dtype": dtype, "elements": n * p, "itemsize": np.dtype(dtype).itemsize,
              "array_bytes": array_bytes, "impls": impls, "loops_measured": with_loops, "library": library,
              "groups": [list(group) for group in groups]}
    if with_loops:
        record["loops_over_library"] = impls["loops"]["median_s"] / impls[library]["median_s"]
    else:
        record["library_over_torch"] = impls[library]["median_s"] / impls["torch"]["median_s"]
        record["library_over_torch_blocks"] = _blocks(times[library], times["torch"])
        reference = groups[-1]["torch"]()
        record["max_abs_difference_vs_torch"] = {
            name: max_abs_difference(case(), reference) for group in groups for name, case in group.items()
            if name not in ("torch", "torch_1thread")
        }
    record["other_load"] = benchmarking.other_load(before, benchmarking.cpu_snapshot())
    return record


def measure_memory(record: dict, device: str) -> None:
    """Peak memory of one call of each implementation, added to ``record`` (after all timings)."""
    import torch

    inputs = benchmarking.make_inputs(record["N"], record["p"], record["dtype"])
    if device == "cuda":
        device_inputs = benchmarking.to_torch(inputs, "cuda")
        cases = {"numpy": benchmarking.matrix_case(device_inputs, "numpy"),
                 "torch": benchmarking.torch_case(inputs, "cuda")}
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
    cases = {name: case for name, case in (
        ("fused", benchmarking.matrix_case(inputs)), ("numpy", benchmarking.matrix_case(inputs, "numpy")),
        ("torch", benchmarking.torch_case(inputs))) if name in record["impls"]}
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
    load_start = benchmarking.cpu_snapshot()
    loadavg_start = list(os.getloadavg())
    for n, p, dtype, with_loops in plan:
        headline = (n, p) == HEADLINE or (grid_name in ("smoke", "cuda") and (n, p) == grid["sizes"][0])
        record = measure_size(n, p, dtype, with_loops=with_loops, grid=grid, device=args.device, headline=headline,
                              bandwidth=bandwidth["bytes_per_s"])
        records.append(record)
        impls, library = record["impls"], record["library"]
        line = f"N={n:6d} p={p:5d} {dtype}  {library} {impls[library]['median_s'] * 1e3:9.3f} ms"
        if with_loops:
            line += f"  loops {impls['loops']['median_s']:8.3f} s  loops/{library} {record['loops_over_library']:8.0f}"
        else:
            blocks = record["library_over_torch_blocks"]
            line += (f"  torch {impls['torch']['median_s'] * 1e3:9.3f} ms  {library}/torch "
                     f"{record['library_over_torch']:5.2f} ({min(blocks):.2f}-{max(blocks):.2f})  "
                     f"passes {impls[library]['passes']:5.1f}")
            if "numpy" in impls and "graph" in impls:
                line += (f"  numpy {impls['numpy']['median_s'] * 1e3:8.3f} ms"
                         f"  graph {impls['graph']['median_s'] * 1e3:8.3f} ms")
        if record["other_load"] is not None:
            line += f"  others {record['other_load']['other_share']:.0%}"
        print(line, flush=True)
    load = benchmarking.other_load(load_start, benchmarking.cpu_snapshot())
    loadavg_end = list(os.getloadavg())

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
                measured = next(r for r in records
                                if (r["N"], r["p"], r["dtype"], r["loops_measured"]) == (n, p, dtype, False))
                counted["measured_numpy_s"] = measured["impls"]["numpy"]["median_s"]
                counted["measured_library_s"] = measured["impls"][measured["library"]]["median_s"]
                counted["torch_s"] = measured["impls"]["torch"]["median_s"]
                traffic.append(counted)

    result = {
        "schema": SCHEMA,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["benchmarks/run.py", *sys.argv[1:]]) if args is not None else "",
        "grid": grid_name,
        "machine": machine,
        "load": {
            "other_share": None if load is None else load["other_share"],
            "other_cpu_s": None if load is None else load["other_cpu_s"],
            "own_share": None if load is None else load["own_share"],
            "timing_wall_s": None if load is None else load["wall_s"],
            "max_other_share": max((r["other_load"]["other_share"] for r in records if r["other_load"]), default=None),
            "under_load": bool(load is not None and load["other_share"] > UNDER_LOAD_SHARE),
            "threshold": UNDER_LOAD_SHARE,
            "loadavg_start": loadavg_start,
            "loadavg_end": loadavg_end,
            "definition": "other_share: CPU time used by other processes while the timings ran (busy time of "
                          "the whole machine from /proc/stat, steal included, minus this process's own CPU "
                          "time), divided by wall time x logical CPUs; per size in records[i].other_load; "
                          f"under_load: other_share above {UNDER_LOAD_SHARE}",
        },
        "method": {
            "timer": "time.perf_counter, one process, round-robin over the implementations of a group per "
                     "repetition (rotating order), one warm-up call each, medians; repetitions fill about "
                     "target_s per implementation (at least min_repeats, at most 51; the headline size at "
                     "least headline_repeats; the loops 3)",
            "target_s": grid["target_s"], "min_repeats": grid["min_repeats"],
            "headline_repeats": grid["headline_repeats"],
            "groups": "each grid size is timed in two interleaved groups: the one-thread implementations "
                      "(numpy: the library's NumPy path; graph: the nine-step graph of bnbackprop.stepwise, "
                      "vectorised; torch_1thread; fused_1thread: the kernel on one Numba thread), then the "
                      "library's default (fused: the kernel on Numba's default threads) with torch on its "
                      "default threads; the loop sizes time the loops beside the library's default",
            "library_over_torch": "median of the library's default / median of torch (default threads), "
                                  "same group; library_over_torch_blocks: the same ratio over three "
                                  "consecutive blocks of the repetitions (the spread from one stretch of "
                                  "the run to the next)",
            "case": "training-mode forward pass and backward pass to (dX, dgamma, dbeta)",
            "loops": "bnbackprop.loops only at N = p in loop_sizes (pure Python, O(N^2 p)); stops at "
                     f"{max(grid['loop_sizes'], default=0)}",
            "passes": "median * copy_bandwidth.bytes_per_s / bytes of X: the number of arrays of the size "
                      "of X that the machine's copy bandwidth (read + write, one reference for every size) "
                      "moves in that time",
            "peak_rss_bytes": "growth of VmHWM over VmRSS during one call, outputs included, with glibc's "
                              "mmap threshold set to 64 KiB after the timings so that large buffers count",
            "peak_tracemalloc_bytes": "tracemalloc peak during one call (NumPy's allocations); None for torch",
            "traffic": "bytes read + written by each torch operation of the library's array-API path run on "
                       "torch CPU tensors (unfused; views free); lower_bound_s = bytes / copy bandwidth",
            "minimum_passes": "forward: read X, read X + write Y; backward: read dY, X, read dY, X + write dX",
            "minor_faults": "minor page faults of the whole process during each timed call (getrusage, read "
                            "outside the timed interval): median, min, max over the repetitions. Pages the operating "
                            "system had to zero and hand out because the call wrote into memory the process did "
                            "not hold (fresh memory, not reused); one fault is 4 KiB, or 2 MiB where NumPy's or "
                            "torch's large buffers get transparent huge pages",
        },
        "grid_sizes": {"sizes": grid["sizes"], "loop_sizes": list(grid["loop_sizes"]), "dtypes": list(grid["dtypes"])},
        "copy_bandwidth": bandwidth,
        "records": records,
        "traffic": traffic,
        "wall_s": time.perf_counter() - started,
    }
    return result


def headline_ratios(result: dict) -> dict:
    """The targets of the speed issue, read from a result: ratios at the headline sizes, the grid's median."""
    ratios = {}
    grid = [r for r in result["records"] if not r["loops_measured"]]
    for record in grid:
        if (record["N"], record["p"]) in (HEADLINE, (256, 256)):
            label = f"{record['library']}/torch {record['dtype']} N={record['N']} p={record['p']}"
            ratios[label] = record["library_over_torch"]
    if grid:
        ratios["grid median library/torch"] = statistics.median(r["library_over_torch"] for r in grid)
    for record in result["records"]:
        if record["loops_measured"] and record["N"] == max(result["grid_sizes"]["loop_sizes"]):
            ratios[f"loops/library float64 N=p={record['N']}"] = record["loops_over_library"]
    return ratios


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(2, 1, figsize=(7, 8))
    colours = {"float64": "C0", "float32": "C1"}
    for dtype in result["grid_sizes"]["dtypes"]:
        rows = sorted((r for r in result["records"] if r["dtype"] == dtype and not r["loops_measured"]),
                      key=lambda r: (r["elements"], r["N"]))
        if not rows:
            continue
        size = [r["elements"] for r in rows]
        library = rows[0]["library"]
        for name, marker in ((library, "o"), ("torch", "s"), ("numpy", "x"), ("graph", "^")):
            if name in rows[0]["impls"]:
                left.loglog(size, [r["impls"][name]["median_s"] for r in rows], marker, color=colours[dtype],
                            mfc="none" if marker == "s" else None, label=f"{name}, {dtype}")
        ratio = [r["library_over_torch"] for r in rows]
        low = [min(r["library_over_torch_blocks"] + [r["library_over_torch"]]) for r in rows]
        high = [max(r["library_over_torch_blocks"] + [r["library_over_torch"]]) for r in rows]
        right.errorbar(size, ratio, yerr=[np.subtract(ratio, low), np.subtract(high, ratio)], fmt="o",
                       color=colours[dtype], label=f"{library}/torch, {dtype}")
    right.set_xscale("log")
    left.set(xlabel="N · p (elements of X)", ylabel="forward + backward, median s")
    right.axhline(1.0, color="grey", lw=0.8)
    right.set(xlabel="N · p (elements of X)", ylabel="time / PyTorch's (default threads)")
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    machine = result["machine"]
    fig.suptitle(f"{machine['device']} · {machine['cpu_model']} · {machine['logical_cpus']} CPUs · "
                 f"{result['created_utc']}", fontsize=9)
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
        print(f"array-API path traffic {row['dtype']} N={row['N']} p={row['p']}: {row['passes']:.1f} passes "
              f"({row['operations']} operations), bound {row['lower_bound_s'] * 1e3:.2f} ms; NumPy path measured "
              f"{row['measured_numpy_s'] * 1e3:.2f} ms, library {row['measured_library_s'] * 1e3:.2f} ms; "
              f"minimum {row['minimum_passes']} passes = {row['minimum_s'] * 1e3:.2f} ms")
    load = result["load"]
    if load["other_share"] is not None:
        print(f"other processes used {load['other_share']:.0%} of the machine's CPU time during the timings "
              f"(at most {load['max_other_share']:.0%} during one size): "
              f"{'under load' if load['under_load'] else 'not under load'}")
    print(f"load average at start {load['loadavg_start'][0]:.2f}, at end {load['loadavg_end'][0]:.2f}; "
          f"wrote {json_path} in {result['wall_s']:.0f} s")
    assert all(math.isfinite(r.get("library_over_torch", 1.0)) for r in result["records"])
    return result


if __name__ == "__main__":
    main()
