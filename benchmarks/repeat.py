"""Run the benchmark grid several times, each run in a fresh process, and keep what changes from
one run to the next: the ratios to PyTorch at the target sizes and the grid median.

One run's medians (``benchmarks/run.py``) say nothing about how the next run would come out:
the machine's other load, where the allocator finds memory and which cores the threads land
on change between processes. The speed chapter reads the result
(``benchmarks/results/cpu-repeats.json``) to give the spread of repeated runs beside the
stored run.

    .venv/bin/python benchmarks/repeat.py            # three runs of the full grid (4 to 12 minutes)
    .venv/bin/python benchmarks/repeat.py --runs 5 --quick
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import headline_ratios  # noqa: E402  (the harness beside this file)

SCHEMA = 1


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="how many runs, each in a fresh process (at least 2)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="the harness's small subset of the grid")
    size.add_argument("--smoke", action="store_true", help="the harness's tiny sizes, for the test suite")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="directory for the JSON")
    parser.add_argument("--name", help="file name stem (default: cpu-repeats, cpu-quick-repeats, cpu-smoke-repeats)")
    args = parser.parse_args(argv)
    if args.runs < 2:
        parser.error(f"--runs must be at least 2 to show a spread, got {args.runs}")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    grid = "smoke" if args.smoke else "quick" if args.quick else "full"
    runs = []
    machine = None
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(args.runs):
            command = [sys.executable, str(HERE / "run.py"), "--out", scratch, "--name", f"run{index}", "--no-plot"]
            if grid != "full":
                command.append(f"--{grid}")
            print(f"run {index + 1} of {args.runs}: {' '.join(command[1:])}", flush=True)
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            result = json.loads((Path(scratch) / f"run{index}.json").read_text())
            machine = result["machine"]
            ratios = headline_ratios(result)
            runs.append({
                "created_utc": result["created_utc"],
                "wall_s": result["wall_s"],
                "other_share": result["load"]["other_share"],
                "under_load": result["load"]["under_load"],
                "ratios": ratios,
            })
            print("  " + ", ".join(f"{label}: {ratio:.3g}" for label, ratio in ratios.items()), flush=True)
    labels = list(runs[0]["ratios"])
    summary = {
        "schema": SCHEMA,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["benchmarks/repeat.py", *(sys.argv[1:] if argv is None else argv)]),
        "grid": grid,
        "machine": machine,
        "method": "each run is benchmarks/run.py in a fresh Python process, one after the other; ratios as "
                  "in run.py's headline_ratios (library / torch on its default threads, medians of one run)",
        "runs": runs,
        "spread": {label: {"min": min(r["ratios"][label] for r in runs),
                           "median": statistics.median(r["ratios"][label] for r in runs),
                           "max": max(r["ratios"][label] for r in runs)} for label in labels},
    }
    name = args.name or {"full": "cpu-repeats", "quick": "cpu-quick-repeats", "smoke": "cpu-smoke-repeats"}[grid]
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{name}.json"
    path.write_text(json.dumps(summary, indent=1, allow_nan=False) + "\n")
    for label, spread in summary["spread"].items():
        print(f"{label}: {spread['min']:.3g} to {spread['max']:.3g} over {len(runs)} runs "
              f"(median {spread['median']:.3g})")
    print(f"wrote {path}")
    return summary


if __name__ == "__main__":
    main()
