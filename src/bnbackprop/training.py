"""Training loop for :class:`bnbackprop.network.Sequential`: mini-batches, history, evaluation.

``fit`` shuffles the training set once per epoch with a generator seeded by ``seed`` (so a
run is reproducible bit for bit on one machine), cuts it into mini-batches of
``batch_size`` (``None``: the full batch; a last, smaller batch is kept unless it has one
sample, which batch norm cannot normalise), and takes one optimizer step per batch. After
every epoch (or every ``log_every`` steps) it records the training loss and accuracy and
the test accuracy, all computed in inference mode (running statistics) on the whole sets.

A ``tqdm`` progress bar appears only where someone can watch it: ``progress="auto"`` shows it
when stderr is a terminal, and tqdm's ``delay`` keeps it hidden for runs shorter than a few
seconds. Under pytest and in the book's build stderr is not a terminal, so nothing prints.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bnbackprop._validation import as_float_array, require_bool, require_finite, require_int
from bnbackprop.batchnorm import BatchNorm
from bnbackprop.layers import Linear
from bnbackprop.losses import softmax_cross_entropy
from bnbackprop.network import Sequential
from bnbackprop.optim import Optimizer

__all__ = ["History", "accuracy", "evaluate", "fit"]

LossFunction = Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]


@dataclass
class History:
    """What ``fit`` records: one entry per logged point (after an epoch, or every ``log_every`` steps)."""

    step: list[int] = field(default_factory=list)
    epoch: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, list]:
        """Plain lists, for JSON."""
        return {name: list(getattr(self, name)) for name in self.__dataclass_fields__}


def _labels(y: object, N: int, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (N,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must be {N} integer class labels (one per row of the inputs), got {y.dtype} "
                         f"{y.shape}")
    return y


def _classes(y: np.ndarray, C: int, name: str, what: str = "one per output of the network") -> None:
    bad = (y < 0) | (y >= C)
    if np.any(bad):
        raise ValueError(
            f"{name}: class labels must lie in [0, {C}) ({what}); "
            f"{int(bad.sum())} do not (e.g. {y[bad][0]})"
        )


def _output_width(model: Sequential) -> int:
    """The number of outputs (classes) of ``model``: the width of its last sized layer."""
    for layer in reversed(model.layers):
        if isinstance(layer, Linear):
            return int(layer.W.shape[1])
        if isinstance(layer, BatchNorm):
            return int(layer.num_features)
    raise AssertionError("unreachable: Sequential guarantees a sized layer")  # pragma: no cover


def _check_model_and_loss(model: object, loss: object) -> None:
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a Sequential, got {type(model).__name__}")
    if not callable(loss):
        raise TypeError(f"loss must be a function (logits, labels) -> (value, dlogits), got {type(loss).__name__}")


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    """The fraction of rows whose largest logit is at the label."""
    logits = as_float_array(logits, "logits", ndim=2)
    require_finite(logits, "logits")
    y = _labels(y, logits.shape[0], "y")
    _classes(y, logits.shape[1], "y", f"one per column of logits {logits.shape}")
    return float(np.mean(np.argmax(logits, axis=1) == y))


def evaluate(
    model: Sequential, X: np.ndarray, y: np.ndarray, *, loss: LossFunction = softmax_cross_entropy,
    batch_size: int | None = None, training_mode: bool = False,
) -> tuple[float, float]:
    """``(mean loss, accuracy)`` of ``model`` on ``(X, y)``.

    By default in inference mode (running statistics) on the whole set at once; the model's
    mode is restored afterwards. ``training_mode=True`` with a ``batch_size`` evaluates the
    way a network left in training mode would, each batch normalised by its own statistics
    (and, as in training, the running statistics are updated: pass a copy).
    """
    _check_model_and_loss(model, loss)
    X = as_float_array(X, "X", ndim=2)
    y = _labels(y, X.shape[0], "y")
    _classes(y, _output_width(model), "y")
    training_mode = require_bool(training_mode, "training_mode")
    step = X.shape[0] if batch_size is None else require_int(batch_size, "batch_size", minimum=1)
    # A batch of one in training mode is refused by Sequential.forward, whose message the training
    # chapter prints verbatim (it names neither X nor batch_size; see the bad-input table).
    was_training = model.training
    model.train(training_mode)
    try:
        logits = np.concatenate([model.forward(X[start:start + step]) for start in range(0, X.shape[0], step)])
    finally:
        model.train(was_training)
    value, _ = loss(logits, y)
    return float(value), accuracy(logits, y)


def _has_batchnorm(model: Sequential) -> bool:
    return any(isinstance(layer, BatchNorm) for layer in model.layers)


def _progress_bar(total: int, progress: bool | str, description: str):
    if progress == "auto":
        progress = sys.stderr.isatty() and "PYTEST_CURRENT_TEST" not in os.environ
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, delay=2.0, leave=False)


def fit(
    model: Sequential,
    optimizer: Optimizer,
    X: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int | None = None,
    seed: int = 0,
    X_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    loss: LossFunction = softmax_cross_entropy,
    log_every: int | None = None,
    log_initial: bool = True,
    progress: bool | str = "auto",
    description: str = "training",
) -> History:
    """Train ``model`` in place with ``optimizer`` on ``(X, y)`` and return its :class:`History`.

    ``loss(logits, labels)`` must return ``(value, ∂value/∂logits)``; the default is the mean
    softmax cross-entropy. ``log_initial`` records the untrained network as step 0.
    """
    _check_model_and_loss(model, loss)
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a bnbackprop.optim optimizer, got {type(optimizer).__name__}")
    X = as_float_array(X, "X", ndim=2)
    require_finite(X, "X")
    N = X.shape[0]
    y = _labels(y, N, "y")
    classes = _output_width(model)
    _classes(y, classes, "y")
    epochs = require_int(epochs, "epochs", minimum=1)
    batch = N if batch_size is None else require_int(batch_size, "batch_size", minimum=1)
    if batch > N:
        raise ValueError(f"batch_size {batch} exceeds the {N} training samples")
    if batch < 2 and _has_batchnorm(model):
        raise ValueError(f"batch_size {batch}: batch norm in training mode needs batches of at least 2 samples")
    seed = require_int(seed, "seed", minimum=0)
    log_initial = require_bool(log_initial, "log_initial")
    if progress not in (True, False, "auto"):
        raise ValueError(f"progress must be True, False or 'auto', got {progress!r}")
    if not isinstance(description, str):
        raise TypeError(f"description must be a string, got {type(description).__name__}")
    if (X_test is None) != (y_test is None):
        raise ValueError("pass both X_test and y_test, or neither")
    if X_test is not None:
        X_test = as_float_array(X_test, "X_test", ndim=2)
        require_finite(X_test, "X_test")
        if X_test.shape[1] != X.shape[1]:
            raise ValueError(f"X_test must have the {X.shape[1]} columns of X {X.shape}, got shape {X_test.shape}")
        y_test = _labels(y_test, X_test.shape[0], "y_test")
        _classes(y_test, classes, "y_test")
    if log_every is not None:
        log_every = require_int(log_every, "log_every", minimum=1)
    if X.dtype != model.parameters()[next(iter(model.parameters()))].dtype:
        X = X.astype(model.parameters()[next(iter(model.parameters()))].dtype)
        X_test = None if X_test is None else X_test.astype(X.dtype)

    history = History()

    def log(step: int, epoch: float) -> None:
        train_loss, train_acc = evaluate(model, X, y, loss=loss)
        history.step.append(step)
        history.epoch.append(epoch)
        history.train_loss.append(train_loss)
        history.train_accuracy.append(train_acc)
        if X_test is not None:
            test_loss, test_acc = evaluate(model, X_test, y_test, loss=loss)
            history.test_loss.append(test_loss)
            history.test_accuracy.append(test_acc)

    rng = np.random.default_rng(seed)
    starts = [start for start in range(0, N, batch) if N - start >= 2 or start == 0]
    steps_per_epoch = len(starts)
    bar = _progress_bar(epochs * steps_per_epoch, progress, description)
    if log_initial:
        log(0, 0.0)
    model.train()
    step = 0
    try:
        for epoch in range(1, epochs + 1):
            order = rng.permutation(N) if batch < N else np.arange(N)
            for start in starts:
                rows = order[start:start + batch]
                model.train()
                logits = model.forward(X[rows])
                _, dlogits = loss(logits, y[rows])
                model.backward(dlogits)
                optimizer.step(model.parameters(), model.gradients())
                step += 1
                if bar is not None:
                    bar.update(1)
                if log_every is not None and step % log_every == 0:
                    log(step, step / steps_per_epoch)
            if log_every is None:
                log(step, float(epoch))
    finally:
        if bar is not None:
            bar.close()
        model.train()
    return history
