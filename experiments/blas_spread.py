"""How far the training chapter's short live runs move when only the floating-point kernels change.

    .venv/bin/python experiments/blas_spread.py      # about a minute per configuration on 2 cores

The chapter reruns the start of each stored experiment (the blog's digits network as
published, 501 steps, and corrected, 500 steps; the MNIST networks, two epochs) and
compares the losses with the stored ones. The same code on the same data gives different
last bits when OpenBLAS picks another kernel for the CPU (``OPENBLAS_CORETYPE``; with
``DYNAMIC_ARCH`` it chooses by the CPU it finds, so two "AMD EPYC" machines can differ) or
when NumPy's SIMD dispatch differs (``NPY_DISABLE_CPU_FEATURES``); hundreds of optimizer
steps then amplify those last bits. This script runs the live runs once per configuration,
each in a fresh process, and writes ``results/blas_spread.json``: the losses of each
configuration, the kernel OpenBLAS reported, and the machine. The chapter takes its bounds
from the largest relative deviation measured here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

# OpenBLAS kernels that an x86-64 CPU with AVX-512 can run, from the oldest instruction set up.
CORETYPES = ("Prescott", "Nehalem", "Sandybridge", "Haswell", "Zen", "SkylakeX", "Cooperlake")
NO_AVX512 = "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL X86_V4"


def live_runs() -> dict:
    """The chapter's live runs, in this process (one BLAS thread, as the chapter)."""
    import numpy as np
    from threadpoolctl import threadpool_info, threadpool_limits

    from bnbackprop.data import load_digits_as_blog, load_mnist_subset
    from bnbackprop.digits_as_published import train_as_published
    from bnbackprop.experiments import digits_corrected, mnist_run

    threadpool_limits(1)
    digits = load_digits_as_blog()
    mnist = load_mnist_subset()
    out = {"openblas": [info.get("architecture") for info in threadpool_info() if info["user_api"] == "blas"]}
    published = train_as_published(0, digits.X_train, digits.y_train, digits.X_test, digits.y_test,
                                   steps=501, print_every=500)
    out["digits_published_loss_sum"] = published["loss_sum"]
    out["digits_corrected_train_loss"] = digits_corrected(0, digits, steps=500, log_every=500).train_loss
    for batchnorm in (True, False):
        _, history = mnist_run(0, mnist, batchnorm=batchnorm, epochs=2)
        out[f"mnist_{'bn' if batchnorm else 'plain'}_train_loss"] = history.train_loss
    out["numpy_avx512"] = bool(np._core._multiarray_umath.__cpu_features__.get("AVX512F", False))
    return out


def main() -> int:
    if sys.argv[1:] == ["--worker"]:
        print(json.dumps(live_runs()))
        return 0
    from bnbackprop.experiments import machine_info

    configurations = {"default": {}}
    configurations.update({f"OPENBLAS_CORETYPE={name}": {"OPENBLAS_CORETYPE": name} for name in CORETYPES})
    configurations["NumPy without AVX-512"] = {"NPY_DISABLE_CPU_FEATURES": NO_AVX512}
    started = time.perf_counter()
    results = {}
    for label, extra in configurations.items():
        env = {**os.environ, **extra}
        done = subprocess.run([sys.executable, __file__, "--worker"], env=env, capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            results[label] = {"error": done.stderr.strip().splitlines()[-1:]}
        else:
            results[label] = json.loads(done.stdout.strip().splitlines()[-1])
        print(label, results[label], flush=True)
    record = {"command": "python experiments/blas_spread.py", "configurations": results,
              "machine": machine_info(), "wall_seconds": time.perf_counter() - started}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "blas_spread.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS / 'blas_spread.json'} ({record['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
