"""The bias example of Ioffe and Szegedy (2015, section 2), made executable.

One unit, a batch of N inputs ``u``: the layer computes ``x = w u + b`` and normalises it
over the batch, either by subtracting the mean (``scale=False``: ``x̂ = x - E[x]``) or by
full batch norm without the affine part (``scale=True``: ``x̂ = (x - E[x]) / √(Var[x] + ε)``,
population variance). The loss is ``ℓ = ½ Σᵢ (x̂ᵢ - tᵢ)²`` for targets ``t``.

Gradient descent on ``b`` (and optionally ``w``) comes in two kinds:

* ``through_statistics=False``: the step ignores that ``E[x]`` (and ``Var[x]``) depend on the
  parameters, as in the paper's example: ``∂ℓ/∂b = Σᵢ ∂ℓ/∂x̂ᵢ / s`` with ``s = 1`` or the
  standard deviation held constant.
* ``through_statistics=True``: the exact gradient, through the batch statistics
  (:func:`bnbackprop.batchnorm.backward`), which for ``b`` is zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bnbackprop import batchnorm
from bnbackprop._validation import (
    as_float_array,
    require_finite,
    require_int,
    require_nonnegative_float,
    require_real_number,
    require_shape,
)


@dataclass(frozen=True)
class DescentHistory:
    """Parameters, outputs and losses of a gradient-descent run, one row per iterate.

    ``w``, ``b`` and ``loss`` have ``steps + 1`` entries (the start included), ``xhat`` has
    shape ``(steps + 1, N)``, and ``grad_w``, ``grad_b`` hold the ``steps`` gradients used.
    """

    w: np.ndarray
    b: np.ndarray
    loss: np.ndarray
    xhat: np.ndarray
    grad_w: np.ndarray
    grad_b: np.ndarray


def _check_batch(u: object, target: object) -> tuple[np.ndarray, np.ndarray]:
    u = as_float_array(u, "u", ndim=1).astype(np.float64)
    require_finite(u, "u")
    if u.size < 2:
        raise ValueError(f"u must hold a batch of at least 2 inputs, got shape {u.shape}")
    target = as_float_array(target, "target", ndim=1).astype(np.float64)
    require_shape(target, u.shape, "target", "one target per input u")
    require_finite(target, "target")
    return u, target


def _normalise(x: np.ndarray, scale: bool, eps: float) -> tuple[np.ndarray, float]:
    """``x̂`` and the divisor ``s`` (1 for mean subtraction, √(Var + ε) with scale)."""
    if not scale:
        return x - x.mean(), 1.0
    Y, cache = batchnorm.forward(x[:, np.newaxis], np.ones(1), np.zeros(1), eps=eps)
    return Y[:, 0], float(1.0 / cache.inv_denom[0])


def layer(u: np.ndarray, w: float, b: float, *, scale: bool = False, eps: float = 0.0) -> np.ndarray:
    """The normalised output ``x̂`` of ``x = w u + b`` over the batch ``u``."""
    u, _ = _check_batch(u, np.zeros(np.shape(u)))
    eps = require_nonnegative_float(eps, "eps")
    x = require_real_number(w, "w") * u + require_real_number(b, "b")
    return _normalise(x, bool(scale), eps)[0]


def squared_loss(xhat: np.ndarray, target: np.ndarray) -> float:
    """``ℓ = ½ Σᵢ (x̂ᵢ - tᵢ)²``."""
    xhat, target = _check_batch(xhat, target)
    return float(0.5 * np.sum((xhat - target) ** 2))


def gradients(
    u: np.ndarray,
    target: np.ndarray,
    w: float,
    b: float,
    *,
    through_statistics: bool,
    scale: bool = False,
    eps: float = 0.0,
) -> tuple[float, float]:
    """``(∂ℓ/∂w, ∂ℓ/∂b)``, exact or with the batch statistics held constant (see module doc)."""
    u, target = _check_batch(u, target)
    eps = require_nonnegative_float(eps, "eps")
    x = require_real_number(w, "w") * u + require_real_number(b, "b")
    xhat, divisor = _normalise(x, bool(scale), eps)
    dxhat = xhat - target
    if not through_statistics:
        dx = dxhat / divisor
    elif not scale:
        dx = dxhat - dxhat.mean()
    else:
        _, cache = batchnorm.forward(x[:, np.newaxis], np.ones(1), np.zeros(1), eps=eps)
        dx = batchnorm.backward(dxhat[:, np.newaxis], cache)[0][:, 0]
    return float(np.sum(dx * u)), float(np.sum(dx))


def gradient_descent(
    u: np.ndarray,
    target: np.ndarray,
    *,
    lr: float,
    steps: int,
    through_statistics: bool,
    w0: float = 1.0,
    b0: float = 0.0,
    learn_w: bool = False,
    scale: bool = False,
    eps: float = 0.0,
) -> DescentHistory:
    """Plain gradient descent on ``b`` (and ``w`` if ``learn_w``) for ``steps`` steps."""
    u, target = _check_batch(u, target)
    lr = require_nonnegative_float(lr, "lr")
    steps = require_int(steps, "steps", minimum=0)
    eps = require_nonnegative_float(eps, "eps")
    w, b = require_real_number(w0, "w0"), require_real_number(b0, "b0")
    ws, bs, losses, xhats, grad_ws, grad_bs = [w], [b], [], [], [], []
    for _ in range(steps + 1):
        xhat = layer(u, w, b, scale=scale, eps=eps)
        xhats.append(xhat)
        losses.append(squared_loss(xhat, target))
        if len(ws) == steps + 1:
            break
        dw, db = gradients(u, target, w, b, through_statistics=through_statistics, scale=scale, eps=eps)
        grad_ws.append(dw)
        grad_bs.append(db)
        b -= lr * db
        if learn_w:
            w -= lr * dw
        ws.append(w)
        bs.append(b)
    return DescentHistory(
        w=np.array(ws), b=np.array(bs), loss=np.array(losses), xhat=np.array(xhats),
        grad_w=np.array(grad_ws), grad_b=np.array(grad_bs),
    )
