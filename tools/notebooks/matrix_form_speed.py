"""Generate chapters/matrix_form_speed.ipynb ("What the matrix form buys") without outputs.

    .venv/bin/python tools/notebooks/matrix_form_speed.py
    .venv/bin/python tools/run_notebook.py chapters/matrix_form_speed.ipynb

The chapter reads the stored benchmark (benchmarks/results/cpu.json, written by
benchmarks/run.py) and makes a small live run of its own; edit this script, not the notebook.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "chapters" / "matrix_form_speed.ipynb"

cells: list[nbformat.NotebookNode] = []


def md(text: str, cell_id: str) -> None:
    cells.append(nbformat.v4.new_markdown_cell(text.strip("\n"), id=cell_id))


def code(text: str, cell_id: str, *tags: str) -> None:
    cell = nbformat.v4.new_code_cell(text.strip("\n"), id=cell_id)
    if tags:
        cell.metadata["tags"] = list(tags)
    cells.append(cell)


md(r"""
# What the matrix form buys

The question this book starts from {cite}`cv_matrix_form_bn` wants the gradients of a
batch-norm network in matrix form because loops over samples are slow, and hopes to run the
result on a GPU. This chapter measures what the matrix form buys: how much faster the
library's `bnbackprop.batchnorm.forward` and `backward` are than the loop reference
`bnbackprop.loops` as N and p grow, how they compare with PyTorch's own batch norm, where
their time goes, and that the same functions run on other array libraries.

**The answer, from the stored run** (the machine and its load are printed below). At
N = p = 256 the matrix form computed the forward and backward pass
{glue:text}`speed-loops-over-matrix:,.0f` times faster than the loops. At N = 4096, p = 1024
it took {glue:text}`speed-f64-ratio-1thread:.2f` times the time of PyTorch's CPU batch norm
on one thread in float64 and {glue:text}`speed-f32-ratio-1thread:.2f` times in float32; against
PyTorch with its default {glue:text}`speed-torch-threads` threads the ratios were
{glue:text}`speed-f64-ratio:.2f` and {glue:text}`speed-f32-ratio:.2f`. The library aims at
no more than 1.5 times PyTorch's time in float64 and 2 times in float32 at that size, and
at least 100 times faster than the loops at N = p = 256. {glue:md}`speed-verdict`
In that run the library's float64 forward + backward took as long as streaming
{glue:text}`speed-f64-passes:.0f` arrays the size of X through memory at the
machine's copy bandwidth, where {glue:text}`speed-minimum-passes` are the least any
implementation needs.

Every time in this chapter is the median of calls measured round-robin in one process, each
implementation once per repetition, after a warm-up; only ratios measured together mean
anything, and the machine the book was built on is shared, so its load is recorded too.
""", "speed-intro")

code(r"""
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown
from myst_nb import glue

from bnbackprop import batchnorm, benchmarking


def find_results() -> Path:
    # The chapter runs in chapters/; the stored results live in benchmarks/results/.
    for folder in (Path.cwd(), *Path.cwd().parents):
        candidate = folder / "benchmarks" / "results" / "cpu.json"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("benchmarks/results/cpu.json: run benchmarks/run.py first")


def rounded(value: float, digits: int = 3) -> float:
    # glued numbers are stored rounded, so that they read the same on every machine
    return float(f"{value:.{digits}g}")


stored = json.loads(find_results().read_text())
records = stored["records"]
""", "speed-setup")

md(r"""
## The stored measurements

`benchmarks/run.py` (the README's "Benchmarks" section says how to run it) wrote the results
below. Each case is a training-mode forward pass and the backward pass to
$(\partial L/\partial X, \partial L/\partial\gamma, \partial L/\partial\beta)$ given
$\partial L/\partial Y$:

* **loops**: `bnbackprop.loops`, scalar Python and O(N² p), timed only up to N = p = 256;
* **matrix**: `bnbackprop.batchnorm.forward` then `backward`, the library's matrix form on
  NumPy arrays;
* **torch**: `torch.nn.functional.batch_norm(training=True)` and `torch.autograd.grad`, with
  PyTorch's default number of threads as a user would run it, and on one thread
  (**torch 1t**), the like-for-like reference for NumPy, whose element-wise operations use one
  thread;
* **copy**: one `np.copyto` of an array the size of X, which reads one array and writes one.
  Time divided by half a copy gives the **passes**: how many arrays of the size of X the
  same time would stream through memory.

First the machine, its load and its copy bandwidth, as the run recorded them.
""", "speed-stored-md")

code(r"""
machine, load = stored["machine"], stored["load"]
bandwidth = stored["copy_bandwidth"]
print(f"measured      {stored['created_utc']} ({stored['grid']} grid, "
      f"{stored['wall_s']:.0f} s)")
print(f"device        {machine['device']}; CPU {machine['cpu_model']}, "
      f"{machine['logical_cpus']} logical CPUs")
print(f"software      Python {machine['python']}, NumPy {machine['numpy']}, "
      f"PyTorch {machine['torch']} ({machine['torch_num_threads']} threads)")
print(f"load average  {load['loadavg_start'][0]:.2f} at the start, "
      f"{load['loadavg_end'][0]:.2f} at the end (1 min); "
      f"{'under load' if load['under_load'] else 'not under load'}")
print(f"copy          {bandwidth['bytes_per_s'] / 1e9:.1f} GB/s read + write "
      f"({bandwidth['bytes'] / 2**20:.0f} MiB array)")


def stored_record(n, p, dtype, loops=False):
    key = (n, p, dtype, loops)
    return next(r for r in records
                if (r["N"], r["p"], r["dtype"], r["loops_measured"]) == key)


loop_top = max(stored["grid_sizes"]["loop_sizes"])
loop_record = stored_record(loop_top, loop_top, "float64", loops=True)
glue("speed-loops-over-matrix", rounded(loop_record["loops_over_matrix"], 2),
     display=False)
for dtype, short in (("float64", "f64"), ("float32", "f32")):
    matrix = stored_record(4096, 1024, dtype)["impls"]["matrix"]
    glue(f"speed-{short}-ratio", rounded(matrix["ratio_to_torch"]), display=False)
    glue(f"speed-{short}-ratio-1thread", rounded(matrix["ratio_to_torch_1thread"]),
         display=False)
    glue(f"speed-{short}-passes", rounded(matrix["equivalent_passes"], 2),
         display=False)
glue("speed-torch-threads", machine["torch_num_threads"], display=False)


def verdict(short, limit):
    matrix = stored_record(4096, 1024, {"f64": "float64", "f32": "float32"}[short])
    ratios = {"on one thread": matrix["impls"]["matrix"]["ratio_to_torch_1thread"],
              "on its default threads": matrix["impls"]["matrix"]["ratio_to_torch"]}
    met = [name for name, ratio in ratios.items() if ratio <= limit]
    missed = [f"{name} ({ratios[name]:.2f} > {limit:g})" for name in ratios
              if name not in met]
    if not missed:
        return "met against PyTorch on one thread and on its default threads"
    if not met:
        return "missed against PyTorch " + " and ".join(missed)
    return f"met against PyTorch {met[0]} and missed against PyTorch {missed[0]}"


loops_ok = loop_record["loops_over_matrix"] >= 100
glue("speed-verdict", Markdown(
    f"In this run the float64 target was {verdict('f64', 1.5)}; the float32 target was "
    f"{verdict('f32', 2.0)}; the loops target was "
    f"{'met' if loops_ok else 'missed'}."), display=False)
glue("speed-minimum-passes", benchmarking.MINIMUM_PASSES, display=False)
glue("speed-bandwidth", rounded(bandwidth["bytes_per_s"] / 1e9, 2), display=False)
""", "speed-machine", "hide-input")

md(r"""
The first table lists every size of the stored run: medians in milliseconds, the matrix
form's time divided by PyTorch's (default threads, then one thread), and the matrix form's
time in passes. The grid stops at 2²³ elements per array (so 4096 × 4096 and 8192 × 4096
are not run: a few minutes on two cores is the budget). The second table gives the loop
reference, with its time in seconds and its ratio to the matrix form.
""", "speed-table-md")

code(r"""
print(f"{'N':>6} {'p':>5} {'dtype':>8} {'matrix ms':>10} {'torch ms':>9}"
      f" {'torch 1t ms':>11} {'m/torch':>8} {'m/torch 1t':>10} {'passes':>7}")
for r in records:
    matrix, torch_ = r["impls"]["matrix"], r["impls"]["torch"]
    torch_1t = r["impls"]["torch_1thread"]
    print(f"{r['N']:6d} {r['p']:5d} {r['dtype']:>8} {matrix['median_s'] * 1e3:10.3f}"
          f" {torch_['median_s'] * 1e3:9.3f} {torch_1t['median_s'] * 1e3:11.3f}"
          f" {matrix['ratio_to_torch']:8.2f} {matrix['ratio_to_torch_1thread']:10.2f}"
          f" {matrix['equivalent_passes']:7.1f}")
print()
print(f"{'N':>6} {'p':>5} {'dtype':>8} {'loops s':>9} {'matrix ms':>10}"
      f" {'loops/matrix':>13}")
for r in records:
    if r["loops_measured"]:
        print(f"{r['N']:6d} {r['p']:5d} {r['dtype']:>8}"
              f" {r['impls']['loops']['median_s']:9.3f}"
              f" {r['impls']['matrix']['median_s'] * 1e3:10.3f}"
              f" {r['loops_over_matrix']:13,.0f}")
""", "speed-table", "hide-input")

md(r"""
The run also measured the peak memory of one call of each implementation (the growth of the
resident set during the call, outputs included). At N = 4096, p = 1024 in float64 the matrix
form's forward + backward raised it by {glue:text}`speed-mem-matrix:.2f` arrays the size of X:
Y, the cached $\hat x$ and $\partial L/\partial X$. PyTorch's raised it by
{glue:text}`speed-mem-torch:.2f`: Y and $\partial L/\partial X$, because between the passes it
keeps only the per-feature mean and inverse standard deviation beside the input it holds
anyway, and recomputes $\hat x$ in the backward pass. Keeping $\hat x$ costs the library
one array of memory; recomputing it would cost, one NumPy operation at a time, extra passes
over X in the backward pass.
""", "speed-memory-md")

code(r"""
matrix = stored_record(4096, 1024, "float64")["impls"]["matrix"]
torch_peak = stored_record(4096, 1024, "float64")["impls"]["torch"]["peak_rss_bytes"]
x_bytes = 4096 * 1024 * 8
print(f"peak memory growth, N = 4096, p = 1024, float64: matrix form"
      f" {matrix['peak_rss_bytes'] / 2**20:.0f} MiB,"
      f" PyTorch {torch_peak / 2**20:.0f} MiB; X is {x_bytes / 2**20:.0f} MiB")
glue("speed-mem-matrix", rounded(matrix["peak_rss_bytes"] / x_bytes, 2), display=False)
glue("speed-mem-torch", rounded(torch_peak / x_bytes, 2), display=False)
""", "speed-memory", "hide-input")

md(r"""
The figure shows the same run: on the left the medians against the number of elements
N · p (the loops in red, up to N = p = 256), on the right the matrix form's time divided by
PyTorch's, on one thread and with its default threads.
""", "speed-figure-md")

code(r"""
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
for dtype, colour in (("float64", "C0"), ("float32", "C1")):
    rows = sorted((r for r in records
                   if r["dtype"] == dtype and not r["loops_measured"]),
                  key=lambda r: (r["elements"], r["N"]))
    size = [r["elements"] for r in rows]
    matrix = [r["impls"]["matrix"] for r in rows]
    left.loglog(size, [m["median_s"] for m in matrix], "o", color=colour,
                label=f"matrix form, {dtype}")
    left.loglog(size, [r["impls"]["torch_1thread"]["median_s"] for r in rows], "x",
                color=colour, alpha=0.6, label=f"PyTorch 1 thread, {dtype}")
    right.semilogx(size, [m["ratio_to_torch_1thread"] for m in matrix], "o",
                   color=colour, label=f"vs PyTorch 1 thread, {dtype}")
    right.semilogx(size, [m["ratio_to_torch"] for m in matrix], "+", color=colour,
                   alpha=0.6, label=f"vs PyTorch default threads, {dtype}")
loop_rows = [r for r in records if r["loops_measured"]]
left.loglog([r["elements"] for r in loop_rows],
            [r["impls"]["loops"]["median_s"] for r in loop_rows], "^-", color="C3",
            label="loops, float64")
left.set(xlabel="N · p", ylabel="forward + backward, median s")
right.axhline(1.0, color="grey", lw=0.8)
right.set(xlabel="N · p", ylabel="matrix form time / PyTorch time", yscale="log")
left.legend(fontsize=7)
right.legend(fontsize=7)
fig.tight_layout()
plt.show()
""", "speed-figure", "hide-input")

md(r"""
## Loops against the matrix form, live

The loop reference applies the chain rule to one scalar at a time: each of the N · p entries
of $\partial L/\partial X$ is a sum over the N samples of its feature, so its cost grows as
N² p, and every step is an interpreted Python operation. The matrix form makes a fixed
number of passes over whole arrays, each a compiled loop, so its cost grows as N p, and for
small arrays it is the fixed cost of a few dozen NumPy calls. The run below times both in
this notebook, first growing N at p = 16, then growing p at N = 64 (three calls each, after
a warm-up; the numbers are this build's and change from run to run).
""", "speed-live-md")

code(r"""
def loops_vs_matrix(sizes, repeats=3):
    rows = []
    for n, p in sizes:
        inputs = benchmarking.make_inputs(n, p)
        times = benchmarking.interleaved_times(
            {"loops": benchmarking.loop_case(inputs),
             "matrix": benchmarking.matrix_case(inputs)}, repeats=repeats)
        loops_s, matrix_s = (float(np.median(times[k])) for k in ("loops", "matrix"))
        rows.append((n, p, loops_s, matrix_s))
        print(f"N = {n:4d}, p = {p:4d}: loops {loops_s * 1e3:9.2f} ms, "
              f"matrix {matrix_s * 1e3:6.3f} ms, ratio {loops_s / matrix_s:8.0f}")
    return rows


grow_n = loops_vs_matrix([(n, 16) for n in (16, 32, 64, 128, 256)])
grow_p = loops_vs_matrix([(64, p) for p in (16, 32, 64, 128, 256)])
""", "speed-live", "nbval-ignore-output")

md(r"""
At N = 256, p = 16 the matrix form must be at least ten times faster than the loops (the
stored run measured a ratio in the thousands at N = p = 256, so only a broken library or a
broken machine could fail this bound); the figure shows the two slopes.
""", "speed-live-check-md")

code(r"""
n, p, loops_s, matrix_s = grow_n[-1]
live_ratio = loops_s / matrix_s
print(f"loops / matrix at N = {n}, p = {p}: {live_ratio:.0f} (bound: at least 10)")
assert live_ratio >= 10


def exponent(rows, index):
    # slope of log(loop time) against log(size) over the last three sizes
    size = np.log([row[index] for row in rows[-3:]])
    return float(np.polyfit(size, np.log([row[2] for row in rows[-3:]]), 1)[0])


slope_n, slope_p = exponent(grow_n, 0), exponent(grow_p, 1)
# generous bounds (timings on a shared machine): they separate N² from N and from p
print(f"loops' growth exponent in N: {slope_n:.2f} (bound 1.4 to 2.5), "
      f"in p: {slope_p:.2f} (bound 0.6 to 1.4)")
assert 1.4 <= slope_n <= 2.5 and 0.6 <= slope_p <= 1.4

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
for axes, rows, index, label in ((left, grow_n, 0, "N (p = 16)"),
                                 (right, grow_p, 1, "p (N = 64)")):
    x = [row[index] for row in rows]
    axes.loglog(x, [row[2] for row in rows], "^-", color="C3", label="loops")
    axes.loglog(x, [row[3] for row in rows], "o-", color="C0", label="matrix form")
    axes.set_xscale("log", base=2)
    axes.set_xticks(x, [str(value) for value in x], minor=False)
    axes.xaxis.set_minor_locator(plt.NullLocator())
    axes.set(xlabel=label)
    axes.legend(fontsize=8)
left.set(ylabel="forward + backward, median s")
fig.tight_layout()
plt.show()
""", "speed-live-check", "nbval-ignore-output", "hide-input")

md(r"""
The loops' curve rises about twice as steeply in N as in p (N² p; the exponents fitted to
the last three sizes are printed and bounded above), the matrix form's hardly at all
at these sizes: for arrays of a few thousand entries its time is the fixed cost of its NumPy
calls and input checks, a fraction of a millisecond.

## Where the time goes: passes over memory

At large sizes batch norm does a handful of arithmetic operations per entry and is limited
by how fast the arrays stream between memory and the core. A lower bound on its time is the
bytes it must move divided by the machine's copy bandwidth. Forward and backward must move at
least {glue:text}`speed-minimum-passes` arrays of the size of X when only per-feature vectors
are kept between them:

* forward reads X once for the mean and variance (one pass can give both), then reads X again
  and writes Y: three arrays;
* backward reads $\partial L/\partial Y$ and X for the two per-feature sums
  $\sum_i \partial L/\partial y_i$ and $\sum_i \partial L/\partial y_i\,\hat x_i$, then reads
  both again and writes $\partial L/\partial X$: five arrays.

A kernel that keeps $\hat x$ instead of recomputing it writes one array more in the forward
pass and reads $\hat x$ in place of X in the backward pass. The stored run measured the copy
bandwidth at {glue:text}`speed-bandwidth` GB/s (read + write) on a 256 MiB array, far beyond
the caches.

The library has two code paths. On NumPy arrays it runs a fast path written for NumPy:
statistics in two passes, the centred array turned into $\hat x$ in place, the output and
$\partial L/\partial X$ built with in-place updates, and the two per-feature sums of the
backward pass taken with `einsum`, which needs no product array. On any other array library
it runs the book's formula line by line with array-API functions. The traffic of the second
can be counted exactly: run on torch tensors under a `TorchFunctionMode`, every operation
reports the arrays it reads and writes (`bnbackprop.benchmarking.count_traffic`). The stored
run counted, at N = 4096, p = 1024:
""", "speed-passes-md")

code(r"""
for row in stored["traffic"]:
    measured = stored_record(row["N"], row["p"], row["dtype"])["impls"]["matrix"]
    print(f"{row['dtype']}:\n"
          f"  array-API path: {row['passes']:.1f} passes in {row['operations']}"
          f" operations, {row['lower_bound_s'] * 1e3:.1f} ms at the copy bandwidth\n"
          f"  NumPy path: measured {row['measured_s'] * 1e3:.1f} ms"
          f" = {measured['equivalent_passes']:.1f} passes\n"
          f"  minimum: {row['minimum_passes']} passes,"
          f" {row['minimum_s'] * 1e3:.1f} ms at the copy bandwidth,"
          f" {row['measured_s'] / row['minimum_s']:.1f}x less than measured")
f64 = next(row for row in stored["traffic"] if row["dtype"] == "float64")
glue("speed-api-passes", rounded(f64["passes"], 2), display=False)
glue("speed-f64-over-minimum", rounded(f64["measured_s"] / f64["minimum_s"], 2),
     display=False)
""", "speed-traffic", "hide-input")

md(r"""
So in float64 the NumPy path takes {glue:text}`speed-f64-over-minimum:.1f` times the time
of the least traffic any implementation needs, counted at the copy bandwidth, while the
array-API path, with its temporaries for every product and its finiteness checks, moves
{glue:text}`speed-api-passes:.0f` arrays the size of X. The gap between the NumPy path and
the minimum is the price of separate NumPy calls: each operation streams its arrays
through memory on its own, where a fused kernel (PyTorch's, or a compiled one) reads X and
$\partial L/\partial Y$ only as often as the algorithm needs. The live run below measures
the bandwidth again, times the matrix form at N = 4096, p = 1024 in both precisions together
with a copy of X, and expresses the time in passes.
""", "speed-passes-live-md")

code(r"""
live_bandwidth = benchmarking.copy_bandwidth(128 * 2**20, repeats=5)["bytes_per_s"]
print(f"copy bandwidth: {live_bandwidth / 1e9:.1f} GB/s (read + write)")
for dtype in ("float64", "float32"):
    inputs = benchmarking.make_inputs(4096, 1024, dtype)
    cases = {"matrix": benchmarking.matrix_case(inputs),
             "copy": benchmarking.copy_case(inputs)}
    times = benchmarking.interleaved_times(cases, repeats=7)
    matrix_s, copy_s = (float(np.median(times[k])) for k in ("matrix", "copy"))
    minimum = benchmarking.MINIMUM_PASSES
    minimum_s = minimum * inputs["X"].nbytes / live_bandwidth
    print(f"{dtype}: matrix form {matrix_s * 1e3:.1f} ms"
          f" = {2 * matrix_s / copy_s:.1f} passes; {minimum} passes at the copy"
          f" bandwidth take {minimum_s * 1e3:.1f} ms, {matrix_s / minimum_s:.1f}x less")
""", "speed-passes-live", "nbval-ignore-output")

md(r"""
## PyTorch's threads on a shared machine

NumPy runs each element-wise operation on one thread; PyTorch splits its batch-norm kernels
over all the threads it was given ({glue:text}`speed-torch-threads` here, one per core), so
at large sizes on an idle machine it can use both cores where NumPy uses one. On a machine
whose cores other processes are using, a parallel region waits for its slowest thread, and a
thread that the operating system has descheduled costs a scheduler time slice, milliseconds,
even for tiny arrays: in runs made while other work shared the cores, PyTorch's
default-thread times were many times its one-thread times, which is why the ratios against
PyTorch on one thread are the ones that compare like with like when the load average was
high. The spinning goes on after a call returns, too, and slows whatever runs next on the
same cores. So the harness times each size in two interleaved
groups, the single-threaded implementations (loops, matrix form, copy) with PyTorch on one
thread, then the matrix form with PyTorch on its default threads, and takes each ratio
within its group. The JSON records the load average at the start and the
end of the run (`load.under_load` is true when the one-minute load average before the run was
at least half the number of logical CPUs).

## On a GPU

No GPU measurement was made for this edition: the machine that built it has none, and the
figures above are CPU only. The harness runs the same comparison on a CUDA device:

```sh
PYTHONPATH=src .venv/bin/python benchmarks/run.py --device cuda
```

puts the inputs on the first GPU as torch tensors, runs the library's `forward` and
`backward` on them through the Python array API and PyTorch's own batch norm beside it
(N = 4096, 16 384 and 65 536, p = 1024, float32 and float64, with `torch.cuda.synchronize()`
before each reading of the clock and the peak of `torch.cuda.max_memory_allocated()`), and
writes `benchmarks/results/cuda.json` with the device named. Without a CUDA build of PyTorch
and a visible GPU it stops with a message saying so; `requirements.txt` pins the CPU build,
so on a GPU machine install a CUDA build of the same PyTorch version into `.venv` first. The
CUDA path of the harness has not yet been run on a GPU.
""", "speed-threads-gpu-md")

md(r"""
## Other array libraries

The library's functions find the array namespace of their input through `array-api-compat`
and use only operations of the Python array API standard, so the same derivation runs on any
array library that follows it: NumPy, PyTorch tensors (on the CPU here, on a GPU as above),
CuPy. The cell below runs `forward` and `backward` on PyTorch CPU tensors and on
`array-api-strict` arrays, a minimal implementation of the standard that rejects anything
outside it, and compares each result with NumPy's: every result comes back in the input's
own array type and agrees with NumPy to rounding.
""", "speed-array-api-md")

code(r"""
import array_api_strict
import torch


def as_numpy(array):
    return np.from_dlpack(array)


inputs = benchmarking.make_inputs(64, 8)
reference = benchmarking.matrix_case(inputs)()
reference = [reference[0], *reference[1]]
converters = {
    "torch": lambda a: torch.from_numpy(a.copy()),
    "array_api_strict": array_api_strict.asarray,
}
for library, convert in converters.items():
    Y, grads = benchmarking.matrix_case({k: convert(v) for k, v in inputs.items()})()
    results = [Y, *grads]
    kinds = {type(a) for a in results}
    assert kinds == {type(convert(inputs["X"]))}
    kind = kinds.pop()
    kinds = [f"{kind.__module__.split('.')[0]}.{kind.__name__}"]
    difference = max(float(np.max(np.abs(as_numpy(a) - b)))
                     for a, b in zip(results, reference, strict=True))
    print(f"{library}: Y, dX, dgamma, dbeta are {kinds[0]}; "
          f"max abs difference: {difference:.3g} (bound 1e-12)")
    assert difference < 1e-12
""", "speed-array-api", "hide-input")

md(r"""
## Exercises

1. Fit the exponent of the loops' time against N in the live run (p = 16). The work grows as
   N², but at small N the O(N p) parts and the fixed cost of each call still count: what
   exponent do you find, and does it approach 2 as N grows?
2. The matrix form keeps float32 input in float32. Run `forward` and `backward` on float32
   arrays and check the dtype of every result; then check that the float32 gradient agrees
   with the float64 one to float32 precision.
3. What does the cache that `forward` hands to `backward` hold? List its arrays and their
   sizes at N = 4096, p = 64, and check that it keeps at most one array the size of X (the
   normalised $\hat x$; the centred X can be recomputed from it or from X) besides
   per-feature vectors.
""", "speed-exercises")

code(r"""
# Solution 1: the slope of log(time) against log(N) between successive sizes.
sizes = np.array([row[0] for row in grow_n], dtype=float)
loop_times = np.array([row[2] for row in grow_n])
slopes = np.diff(np.log(loop_times)) / np.diff(np.log(sizes))
print("local exponents:", np.round(slopes, 2))
assert 1.0 < slopes[-1] < 3.0, "the last exponent should be near 2"
""", "speed-solution-1", "hide-input", "nbval-ignore-output")

code(r"""
# Solution 2: float32 in, float32 out, and within float32 precision of float64.
inputs32 = benchmarking.make_inputs(256, 64, "float32")
Y32, cache32 = batchnorm.forward(inputs32["X"], inputs32["gamma"], inputs32["beta"])
grads32 = batchnorm.backward(inputs32["dY"], cache32)
assert all(a.dtype == np.float32 for a in (Y32, *grads32))
inputs64 = {k: v.astype(np.float64) for k, v in inputs32.items()}
Y64, cache64 = batchnorm.forward(inputs64["X"], inputs64["gamma"], inputs64["beta"])
dX64 = batchnorm.backward(inputs64["dY"], cache64)[0]
difference = np.max(np.abs(grads32[0] - dX64)) / np.max(np.abs(dX64))
print(f"dtypes: {sorted({str(a.dtype) for a in (Y32, *grads32)})}")
print(f"max abs difference: {difference:.3g} (relative to max |dX|; bound 1e-5)")
assert difference < 1e-5
""", "speed-solution-2", "hide-input")

code(r"""
# Solution 3: the arrays in the cache, and how many arrays the size of X they add up to.
import dataclasses

inputs = benchmarking.make_inputs(4096, 64)
_, cache = batchnorm.forward(inputs["X"], inputs["gamma"], inputs["beta"])
x_bytes = inputs["X"].nbytes
held = {field.name: getattr(cache, field.name) for field in dataclasses.fields(cache)}
arrays = {name: value for name, value in held.items() if getattr(value, "ndim", 0) > 0}
for name, value in arrays.items():
    print(f"{name:10} shape {tuple(value.shape)}, {value.nbytes / x_bytes:.4f} of X")
total = sum(value.nbytes for value in arrays.values())
print(f"total: {total / x_bytes:.3f} arrays the size of X (bound: 1 + 16 vectors)")
assert total <= x_bytes + 16 * 64 * 8
""", "speed-solution-3", "hide-input")


def main() -> None:
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata = {
        "kernelspec": {
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
            "name": "python3",
        },
        "language_info": {"name": "python"},
    }
    nbformat.write(nb, NOTEBOOK)
    print(f"wrote {NOTEBOOK.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
