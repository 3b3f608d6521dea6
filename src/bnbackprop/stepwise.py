"""Batch norm as a computation graph of nine small steps, run forward and backward.

This follows the Haskell series' step-by-step pass (samples in rows, population variance,
ε inside the square root). Each :class:`Step` knows its local forward function and its
local backward function, so that the book can check every step on its own against finite
differences, and the whole chain against :mod:`bnbackprop.batchnorm`. The names of the
gradients (``dxmu1``, ``dxmu2``, ``dx1``, …) are the series' own.

The forward values carry their ε (``values["eps"]``), and the backward pass uses that one:
a backward pass with another ε would differentiate a different function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from bnbackprop._validation import (
    as_float_array,
    require_batch,
    require_finite,
    require_finite_output,
    require_nonnegative_float,
    require_shape,
)


@dataclass(frozen=True)
class Step:
    """One node of the graph: ``output = forward(*inputs)``.

    ``backward(upstream, *inputs)`` returns, for each input, the pair (the series' name for
    that gradient contribution, its value).
    """

    number: int
    description: str
    inputs: tuple[str, ...]
    output: str
    forward: Callable[..., np.ndarray]
    backward: Callable[..., tuple[tuple[str, np.ndarray], ...]]


def _rows(n: int, vector: np.ndarray) -> np.ndarray:
    """Repeat a length-p vector as n rows, the series' explicit broadcast ``br``."""
    return np.tile(vector, (n, 1))


def make_steps(eps: float) -> tuple[Step, ...]:
    """The nine forward steps, with ``eps`` added to the variance in step 5."""
    eps = require_nonnegative_float(eps, "eps")
    return (
        Step(1, "batch mean", ("X",), "mu",
             lambda X: X.mean(axis=0),
             lambda dmu, X: (("dx2", _rows(X.shape[0], dmu) / X.shape[0]),)),
        Step(2, "mean subtraction", ("X", "mu"), "xmu",
             lambda X, mu: X - _rows(X.shape[0], mu),
             lambda dxmu, X, mu: (("dx1", dxmu), ("dmu", -dxmu.sum(axis=0)))),
        Step(3, "square", ("xmu",), "sq",
             lambda xmu: xmu**2,
             lambda dsq, xmu: (("dxmu2", 2 * xmu * dsq),)),
        Step(4, "variance", ("sq",), "var",
             lambda sq: sq.mean(axis=0),
             lambda dvar, sq: (("dsq", _rows(sq.shape[0], dvar) / sq.shape[0]),)),
        Step(5, "square root", ("var",), "sqrtvar",
             lambda var: np.sqrt(var + eps),
             lambda dsqrtvar, var: (("dvar", 0.5 / np.sqrt(var + eps) * dsqrtvar),)),
        Step(6, "reciprocal", ("sqrtvar",), "ivar",
             lambda sqrtvar: 1.0 / sqrtvar,
             lambda divar, sqrtvar: (("dsqrtvar", -divar / sqrtvar**2),)),
        Step(7, "normalise", ("xmu", "ivar"), "xhat",
             lambda xmu, ivar: xmu * _rows(xmu.shape[0], ivar),
             lambda dxhat, xmu, ivar: (
                 ("dxmu1", dxhat * _rows(xmu.shape[0], ivar)),
                 ("divar", (dxhat * xmu).sum(axis=0)),
             )),
        Step(8, "rescale", ("gamma", "xhat"), "gammax",
             lambda gamma, xhat: _rows(xhat.shape[0], gamma) * xhat,
             lambda dgammax, gamma, xhat: (
                 ("dgamma", (dgammax * xhat).sum(axis=0)),
                 ("dxhat", dgammax * _rows(xhat.shape[0], gamma)),
             )),
        Step(9, "translate", ("gammax", "beta"), "out",
             lambda gammax, beta: gammax + _rows(gammax.shape[0], beta),
             lambda dout, gammax, beta: (("dgammax", dout), ("dbeta", dout.sum(axis=0)))),
    )


def _vector(value: object, name: str, X: np.ndarray) -> np.ndarray:
    vector = as_float_array(value, name)
    require_shape(vector, (X.shape[1],), name, f"one entry per feature (column) of X {X.shape}")
    require_finite(vector, name)
    return vector


def forward_steps(X: np.ndarray, gamma: np.ndarray, beta: np.ndarray, *, eps: float = 1e-5) -> dict:
    """Run the nine steps; return every intermediate value by the series' names, and ``eps``.

    ``X`` is N × p with N ≥ 2, ``gamma`` and ``beta`` have p entries. A feature of zero
    variance needs ``eps > 0``; a step whose result is not finite raises.
    """
    eps = require_nonnegative_float(eps, "eps")
    X = as_float_array(X, "X", ndim=2)
    require_finite(X, "X")
    require_batch(X.shape[0], 0, X.shape, 0)
    gamma = _vector(gamma, "gamma", X).astype(X.dtype)
    beta = _vector(beta, "beta", X).astype(X.dtype)
    values = {"X": X.copy(), "gamma": gamma, "beta": beta}
    for step in make_steps(eps):
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            values[step.output] = step.forward(*(values[name] for name in step.inputs))
        if step.output == "sqrtvar" and np.any(values["sqrtvar"] == 0):
            zero = np.flatnonzero(values["sqrtvar"] == 0).tolist()
            raise ValueError(f"X: feature(s) {zero} have zero variance and eps=0: step 6 divides by zero; use eps > 0")
        require_finite_output(
            values[step.output], f"step {step.number} ({step.description})",
            "overflow or underflow; values of X near the float limits?",
        )
    values["eps"] = eps
    return values


_FORWARD_NAMES = ("X", "gamma", "beta", "mu", "xmu", "sq", "var", "sqrtvar", "ivar", "xhat", "gammax", "out", "eps")


def _forward_eps(values: object) -> float:
    """The ε of the forward pass that made ``values``, checked against its own step 5."""
    if not isinstance(values, Mapping):
        raise TypeError(f"values must be the dict returned by forward_steps, got {type(values).__name__}")
    missing = [name for name in _FORWARD_NAMES if name not in values]
    if missing:
        raise ValueError(f"values must be the dict returned by forward_steps; it lacks {missing}")
    eps = require_nonnegative_float(values["eps"], 'values["eps"]')
    with np.errstate(all="ignore"):
        consistent = np.array_equal(np.sqrt(values["var"] + eps), values["sqrtvar"])
    if not consistent:
        raise ValueError(
            'values["eps"] is not the ε its step 5 used (sqrtvar ≠ √(var + eps)): '
            "the values were changed after forward_steps"
        )
    return eps


def backward_steps(dout: np.ndarray, values: dict, *, eps: float | None = None) -> dict:
    """Run the steps backwards from ``dout = ∂L/∂out``, with the ε of the forward pass.

    Returns every gradient contribution by the series' name, plus the total gradient of each
    variable under ``"d" + variable`` (``dX`` = ``dx1 + dx2``; ``dxmu`` = ``dxmu1 + dxmu2``,
    which the series calls ``dx1`` once it has been passed through step 2).

    ``values`` is what :func:`forward_steps` returned; its ``"eps"`` is used. ``eps`` may be
    passed to state it, and must then equal it: the gradient of the forward pass with one ε
    computed with another would be silently wrong.
    """
    forward_eps = _forward_eps(values)
    if eps is not None and require_nonnegative_float(eps, "eps") != forward_eps:
        raise ValueError(
            f"eps={eps!r} differs from the eps={forward_eps!r} of the forward pass that made values; "
            "the backward pass must use the forward pass's ε (omit eps)"
        )
    dout = as_float_array(dout, "dout", ndim=2)
    require_shape(dout, values["out"].shape, "dout", "the shape of the output out (and of X)")
    require_finite(dout, "dout")
    totals = {"out": dout.astype(np.float64)}
    named = {}
    for step in reversed(make_steps(forward_eps)):
        upstream = totals[step.output]
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            contributions = step.backward(upstream, *(values[name] for name in step.inputs))
        for variable, (name, value) in zip(step.inputs, contributions, strict=True):
            require_finite_output(
                value, f"backward step {step.number} ({step.description}) → {name}",
                "overflow; dout or X near the float limits, or a variance near 0 with a tiny eps?",
            )
            named[name] = value
            totals[variable] = totals[variable] + value if variable in totals else value
    named.update({f"total_d{variable}": value for variable, value in totals.items()})
    return named
