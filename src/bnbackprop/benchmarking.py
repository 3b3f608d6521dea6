"""Measuring batch norm's speed: interleaved medians, peak memory, copy bandwidth, memory traffic.

The harness in ``benchmarks/run.py`` and the chapter "What the matrix form buys" use these
helpers. A timing means something only next to a reference measured in the same process at the
same time, so :func:`interleaved_times` runs every implementation once per repetition, in
rotating order, after a warm-up, and reports medians; a slow neighbour on a shared machine then
slows all of them alike and their ratios survive.

Each implementation is a *case*: a function of no arguments that runs a training-mode
batch-norm forward pass and its backward pass (``dX``, ``dgamma``, ``dbeta``) on arrays made
once beforehand by :func:`make_inputs`. PyTorch is imported only by the functions that need it.
"""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from bnbackprop import batchnorm, fused, loops, stepwise
from bnbackprop._validation import require_choice, require_int

try:  # page-fault counts for interleaved_times (POSIX only)
    import resource
except ImportError:  # pragma: no cover - not POSIX
    resource = None

#: Training-mode batch norm must move at least this many arrays of the size of X through memory
#: for forward + backward when only per-feature vectors are kept between the passes: forward
#: reads X for the statistics, then reads X and writes Y; backward reads dY and X for the two
#: per-feature sums, then reads dY and X and writes dX.
MINIMUM_PASSES = 8


def make_inputs(n: int, p: int, dtype: str = "float64", seed: int = 0) -> dict[str, np.ndarray]:
    """Random ``X`` (N × p), ``dY``, and per-feature ``gamma``, ``beta`` in ``dtype``."""
    n = require_int(n, "n", minimum=2)
    p = require_int(p, "p", minimum=1)
    if not isinstance(dtype, str) or dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    seed = require_int(seed, "seed", minimum=0)
    rng = np.random.default_rng(seed)
    arrays = {
        "X": rng.standard_normal((n, p)) * 2.0 + 0.5,
        "dY": rng.standard_normal((n, p)),
        "gamma": rng.uniform(0.5, 1.5, p),
        "beta": rng.standard_normal(p),
    }
    return {name: np.ascontiguousarray(value, dtype=dtype) for name, value in arrays.items()}


INPUT_NAMES = ("X", "dY", "gamma", "beta")


def _inputs(inputs: object, names: tuple[str, ...] = INPUT_NAMES) -> tuple:
    """The arrays of ``inputs`` (a dict from :func:`make_inputs`) named ``names``, checked for presence."""
    if not isinstance(inputs, dict):
        raise TypeError(f"inputs must be the dict of arrays from make_inputs(), got {type(inputs).__name__}")
    missing = [name for name in names if name not in inputs]
    if missing:
        raise ValueError(f"inputs lacks {missing}: it must hold {list(names)}, as make_inputs() returns")
    return tuple(inputs[name] for name in names)


def _callable(value: object, name: str) -> None:
    if not callable(value):
        raise TypeError(f"{name} must be a function of no arguments, got {type(value).__name__}")


def loop_case(inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
    """The scalar loop reference, :mod:`bnbackprop.loops` (pure Python, O(N² p))."""
    X, dY, gamma, beta = _inputs(inputs)

    def run():
        Y = loops.forward(X, gamma, beta)
        return Y, loops.backward(dY, X, gamma)

    return run


def matrix_case(inputs: dict[str, Any], engine: str = "auto", threads: int | None = None) -> Callable[[], Any]:
    """The library's matrix form: :func:`bnbackprop.batchnorm.forward` then ``backward``.

    ``inputs`` may hold NumPy arrays or any arrays the library accepts (torch tensors, …).
    ``engine`` is passed to both (``"auto"``, ``"numpy"``, ``"fused"``); ``threads`` sets
    Numba's thread count for the duration of each call (None: its default, one per core).
    """
    X, dY, gamma, beta = _inputs(inputs)
    require_choice(engine, "engine", fused.ENGINES)
    if threads is not None:
        threads = require_int(threads, "threads", minimum=1)
        if not fused.available():
            raise ValueError("threads sets Numba's thread count, and Numba is not installed; pass threads=None")

    def run():
        Y, cache = batchnorm.forward(X, gamma, beta, engine=engine)
        return Y, batchnorm.backward(dY, cache, engine=engine)

    if threads is None:
        return run
    import numba

    def run_with_threads():
        previous = numba.get_num_threads()
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        try:
            return run()
        finally:
            numba.set_num_threads(previous)

    return run_with_threads


def graph_case(inputs: dict[str, np.ndarray]) -> Callable[[], Any]:
    """The nine-step graph of :mod:`bnbackprop.stepwise`, vectorised: each step one NumPy operation
    on whole arrays, run forward and then backward step by step (what the matrix form replaces).

    The steps are the module's own (its explicit broadcasts included); the argument checks of
    ``forward_steps``/``backward_steps`` are left out, so that the time is the graph's.
    """
    X, dY, gamma, beta = _inputs(inputs)
    steps = stepwise.make_steps(1e-5)

    def run():
        values = {"X": X, "gamma": gamma, "beta": beta}
        for step in steps:
            values[step.output] = step.forward(*(values[name] for name in step.inputs))
        totals = {"out": dY}
        for step in reversed(steps):
            contributions = step.backward(totals[step.output], *(values[name] for name in step.inputs))
            for variable, (_, value) in zip(step.inputs, contributions, strict=True):
                totals[variable] = totals[variable] + value if variable in totals else value
        return values["out"], (totals["X"], totals["gamma"], totals["beta"])

    return run


def to_torch(inputs: dict[str, np.ndarray], device: str = "cpu") -> dict[str, Any]:
    """The same arrays as torch tensors on ``device`` (copied once, outside any timing)."""
    _inputs(inputs, ())
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda', got {type(device).__name__}")
    import torch

    try:
        torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device must name a torch device such as 'cpu' or 'cuda', got {device!r}") from exc
    arrays = {}
    for name, value in inputs.items():
        array = np.asarray(value)
        if not np.issubdtype(array.dtype, np.floating):
            raise TypeError(f"inputs[{name!r}] must be a floating NumPy array, got dtype {array.dtype}")
        arrays[name] = torch.from_numpy(np.array(array)).to(device)
    return arrays


def torch_case(inputs: dict[str, np.ndarray], device: str = "cpu", threads: int | None = None) -> Callable[[], Any]:
    """PyTorch's own batch norm with autograd: ``F.batch_norm(training=True)`` and its backward.

    ``threads`` sets ``torch.set_num_threads`` for the duration of each call (and restores the
    previous value after it); None keeps PyTorch's default, as a user would.
    """
    _inputs(inputs)
    if threads is not None:
        threads = require_int(threads, "threads", minimum=1)
    import torch
    import torch.nn.functional as F

    tensors = to_torch(inputs, device)
    X = tensors["X"].requires_grad_(True)
    gamma = tensors["gamma"].requires_grad_(True)
    beta = tensors["beta"].requires_grad_(True)
    dY = tensors["dY"]

    def run():
        Y = F.batch_norm(X, None, None, weight=gamma, bias=beta, training=True, eps=1e-5)
        return Y, torch.autograd.grad(Y, (X, gamma, beta), dY)

    if threads is None:
        return run

    def run_with_threads():
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return run()
        finally:
            torch.set_num_threads(previous)

    return run_with_threads


def copy_case(inputs: dict[str, Any]) -> Callable[[], Any]:
    """One copy of an array of the size of X: one read pass and one write pass."""
    (X,) = _inputs(inputs, ("X",))
    if isinstance(X, np.ndarray):
        destination = np.empty_like(X)
        return lambda: np.copyto(destination, X)
    if not hasattr(X, "detach"):
        raise TypeError(f"inputs['X'] must be a NumPy array or a torch tensor, got {type(X).__name__}")
    destination = X.detach().clone()
    return lambda: destination.copy_(X)


def interleaved_times(
    cases: dict[str, Callable[[], Any]],
    *,
    repeats: int,
    warmup: int = 1,
    synchronize: Callable[[], None] | None = None,
    faults: dict[str, list[int]] | None = None,
) -> dict[str, list[float]]:
    """Seconds per call of each case, measured round-robin: one call of each per repetition.

    The order rotates from one repetition to the next so that no case always runs right after
    the same neighbour. ``synchronize`` (for example ``torch.cuda.synchronize``) is called
    before reading the clock, for devices that run asynchronously. ``faults``, an empty dict,
    receives the process's minor page faults during each timed call (pages the operating
    system had to hand out, zeroed, because the call touched memory it did not hold yet),
    read with ``getrusage`` outside the timed interval; where ``getrusage`` is missing it
    stays empty.
    """
    repeats = require_int(repeats, "repeats", minimum=1)
    warmup = require_int(warmup, "warmup", minimum=0)
    if not isinstance(cases, dict):
        raise TypeError(f"cases must be a dict from names to functions of no arguments, got {type(cases).__name__}")
    if not cases:
        raise ValueError("cases must name at least one case")
    for name, case in cases.items():
        _callable(case, f"cases[{name!r}]")
    if synchronize is not None:
        _callable(synchronize, "synchronize")
    if faults is not None and (not isinstance(faults, dict) or faults):
        raise TypeError("faults must be an empty dict, to receive the page faults of each call")
    sync = synchronize or (lambda: None)
    names = list(cases)
    count_faults = faults is not None and _minor_faults() is not None
    if count_faults:
        faults.update({name: [] for name in names})
    for _ in range(warmup):
        for name in names:
            cases[name]()
    sync()
    times: dict[str, list[float]] = {name: [] for name in names}
    for repetition in range(repeats):
        shift = repetition % len(names)
        for name in names[shift:] + names[:shift]:
            faults_before = _minor_faults() if count_faults else 0
            start = time.perf_counter()
            result = cases[name]()
            sync()
            times[name].append(time.perf_counter() - start)
            if count_faults:
                faults[name].append(_minor_faults() - faults_before)
            del result
    return times


def _minor_faults() -> int | None:
    """Minor page faults of this process so far (all its threads), or None without ``resource``."""
    if resource is None:  # pragma: no cover - not POSIX
        return None
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def summarise(seconds: list[float]) -> dict[str, float]:
    """Median, minimum, quartiles and count of a list of timings."""
    if isinstance(seconds, (str, bytes)) or not hasattr(seconds, "__len__"):
        raise TypeError(f"seconds must be a list of timings, got {type(seconds).__name__}")
    if len(seconds) == 0:
        raise ValueError("seconds is empty: there is no median of no timings")
    values = np.asarray(seconds)
    if not (np.issubdtype(values.dtype, np.floating) or np.issubdtype(values.dtype, np.integer)) or values.ndim != 1:
        raise TypeError(f"seconds must be a flat list of numbers, got dtype {values.dtype}, shape {values.shape}")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("seconds must hold finite timings >= 0")
    q1, _, q3 = statistics.quantiles(seconds, n=4) if len(seconds) > 1 else (seconds[0],) * 3
    return {"median_s": statistics.median(seconds), "min_s": min(seconds), "q1_s": q1, "q3_s": q3,
            "repeats": len(seconds)}


def copy_bandwidth(nbytes: int = 256 * 2**20, repeats: int = 7) -> dict[str, float]:
    """The machine's copy bandwidth: bytes read plus bytes written per second by ``np.copyto``.

    The array is far larger than the caches, so this is main-memory bandwidth, the speed limit
    of an operation that streams whole arrays.
    """
    nbytes = require_int(nbytes, "nbytes", minimum=8)
    repeats = require_int(repeats, "repeats", minimum=1)
    source = np.ones(nbytes // 8)
    destination = np.zeros_like(source)
    times = interleaved_times({"copy": lambda: np.copyto(destination, source)}, repeats=repeats, warmup=1)["copy"]
    median = statistics.median(times)
    return {"bytes": int(source.nbytes), "median_s": median, "bytes_per_s": 2 * source.nbytes / median}


# --- peak memory -------------------------------------------------------------------------------

_M_MMAP_THRESHOLD = -3


def mmap_large_allocations(threshold: int = 64 * 1024) -> bool:
    """Make glibc serve allocations of ``threshold`` bytes or more with fresh mmaps.

    Freed large buffers then go straight back to the system, so the peak resident set of a call
    measures what it allocates. This changes allocation speed: call it only after all timings.
    Returns False where glibc's ``mallopt`` is not available.
    """
    threshold = require_int(threshold, "threshold", minimum=0)
    if threshold > 2**31 - 1:
        raise ValueError(f"threshold must fit a C int (< 2**31), got {threshold}")
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(threshold)))
    except (OSError, AttributeError):
        return False


def _release_free_memory() -> None:
    """Return the pages of freed heap blocks to the system (glibc's ``malloc_trim``).

    Blocks freed before :func:`mmap_large_allocations` stay in the heap and would be reused
    without touching new pages; trimmed, their reuse shows in the resident set again.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _status_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False


def peak_rss_increase(case: Callable[[], Any]) -> int | None:
    """Peak growth of the resident set (bytes) during one call, outputs included (Linux only).

    Read from ``VmHWM`` after resetting it through ``/proc/self/clear_refs``; None elsewhere.
    Counts every allocator (NumPy's, PyTorch's), in whole pages.
    """
    _callable(case, "case")
    gc.collect()
    _release_free_memory()
    before = _status_bytes("VmRSS")
    if before is None or not _reset_peak_rss():
        return None
    result = case()
    peak = _status_bytes("VmHWM")
    del result
    return None if peak is None else max(peak - before, 0)


def peak_traced_increase(case: Callable[[], Any]) -> int:
    """Peak of the memory traced by ``tracemalloc`` (NumPy's arrays, Python objects) during one
    call, outputs included. PyTorch's CPU allocator is not traced: this is 0 for torch."""
    _callable(case, "case")
    gc.collect()
    started_here = not tracemalloc.is_tracing()
    if started_here:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        result = case()
        _, peak = tracemalloc.get_traced_memory()
        del result
    finally:
        if started_here:
            tracemalloc.stop()
    return max(peak - before, 0)


# --- memory traffic ------------------------------------------------------------------------------


def count_traffic(case: Callable[[], Any]) -> dict[str, int]:
    """Bytes read and written by the torch operations a call makes, one operation at a time.

    Runs ``case`` under a ``TorchFunctionMode``; every operation that returns a tensor counts
    the bytes of the tensors it takes and of the tensors it returns (an in-place operation's
    result is its first argument, read and written). Views (results sharing storage with an
    argument, outside in-place operations) move nothing. This is the traffic of the operations
    as written, each a separate pass over its arrays; a compiler that fused them would move
    less. It sees only operations on torch tensors: run the case on torch tensors.
    """
    _callable(case, "case")
    import torch
    from torch.overrides import TorchFunctionMode
    from torch.utils._pytree import tree_leaves

    totals = {"bytes_read": 0, "bytes_written": 0, "operations": 0}

    def tensors(tree) -> list:
        return [leaf for leaf in tree_leaves(tree) if isinstance(leaf, torch.Tensor)]

    def storage(tensor) -> int:
        return tensor.untyped_storage().data_ptr()

    class Counter(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            result = func(*args, **kwargs)
            outputs = tensors(result)
            if not outputs:
                return result
            inputs = tensors((args, kwargs))
            name = getattr(func, "__name__", "")
            dunder = name.startswith("__") and name.endswith("__")
            in_place = (name.endswith("_") and not dunder) or name.startswith("__i") or "out" in kwargs
            input_storages = {storage(tensor) for tensor in inputs}
            if not in_place and all(storage(tensor) in input_storages for tensor in outputs):
                return result
            totals["bytes_read"] += sum(tensor.nbytes for tensor in inputs)
            totals["bytes_written"] += sum(tensor.nbytes for tensor in outputs)
            totals["operations"] += 1
            return result

    with Counter():
        case()
    return totals


# --- the machine -------------------------------------------------------------------------------

_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user, nice, system, irq, softirq, steal (not idle, not iowait)


def cpu_snapshot() -> dict[str, float] | None:
    """The machine's busy CPU seconds (all processes, from ``/proc/stat``), this process's CPU
    seconds (all its threads) and the wall clock, now; None where ``/proc/stat`` is missing.

    Two snapshots give, with :func:`other_load`, the CPU time other processes used in between.
    Busy time counts the hypervisor's steal time: a virtual CPU taken away is load too.
    """
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    values = [int(value) for value in fields[1:]]
    busy = sum(values[i] for i in _BUSY_FIELDS if i < len(values)) / ticks
    own = os.times()
    return {"busy_s": busy, "own_s": own.user + own.system, "wall_s": time.perf_counter(),
            "cpus": float(os.cpu_count() or 1)}


def other_load(start: dict[str, float] | None, end: dict[str, float] | None) -> dict[str, float] | None:
    """CPU time used by other processes between two :func:`cpu_snapshot` s: machine busy time minus
    this process's, in seconds and as a share of the machine's capacity (wall time × CPUs).

    A share of 0.5 on two CPUs means other processes kept one core busy all along. None when a
    snapshot is None. (Accounting in clock ticks: shares below about 1 % over a second are noise.)
    """
    if start is None or end is None:
        return None
    keys = ("busy_s", "own_s", "wall_s", "cpus")
    for name, snapshot in (("start", start), ("end", end)):
        if not isinstance(snapshot, dict) or any(key not in snapshot for key in keys):
            raise TypeError(f"{name} must be a snapshot from cpu_snapshot() (a dict with {list(keys)})")
    wall = end["wall_s"] - start["wall_s"]
    if wall <= 0:
        raise ValueError(f"end must be taken after start (wall clock {start['wall_s']} then {end['wall_s']})")
    other = max((end["busy_s"] - start["busy_s"]) - (end["own_s"] - start["own_s"]), 0.0)
    own = end["own_s"] - start["own_s"]
    capacity = wall * end["cpus"]
    return {"wall_s": wall, "other_cpu_s": other, "own_cpu_s": own, "other_share": min(other / capacity, 1.0),
            "own_share": min(own / capacity, 1.0)}


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _numba_version() -> str | None:
    if not fused.available():
        return None
    import numba

    return numba.__version__


def _numba_threads() -> int | None:
    if not fused.available():
        return None
    import numba

    return numba.get_num_threads()


def machine_info() -> dict[str, Any]:
    """Where a measurement was made: CPU, core count, library versions, threads, load."""
    import torch

    info = {
        "numba": _numba_version(),
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "numba_num_threads": _numba_threads(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    try:
        import array_api_compat

        info["array_api_compat"] = array_api_compat.__version__
    except ImportError:  # pragma: no cover - pinned in requirements.txt
        info["array_api_compat"] = None
    return info
