"""Batch norm as a computation graph of nine small steps, run forward and backward.

This follows the Haskell series' step-by-step pass (samples in rows, population variance,
ε inside the square root). Each :class:`Step` knows its local forward function and its
local backward function, so that the book can check every step on its own against finite
differences, and the whole chain against :mod:`bnbackprop.batchnorm`. The names of the
gradients (``dxmu1``, ``dxmu2``, ``dx1``, …) are the series' own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bnbackprop._validation import as_float_array, require_finite


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


def forward_steps(X: np.ndarray, gamma: np.ndarray, beta: np.ndarray, *, eps: float = 1e-5) -> dict:
    """Run the nine steps; return every intermediate value by the series' names.

    The dictionary also keeps ``"eps"``, so that :func:`backward_steps` differentiates the
    graph that was run and not one with another ε.
    """
    X = as_float_array(X, "X", ndim=2)
    require_finite(X, "X")
    values = {"X": X, "gamma": np.asarray(gamma, dtype=X.dtype), "beta": np.asarray(beta, dtype=X.dtype)}
    values["eps"] = float(eps)
    for step in make_steps(eps):
        values[step.output] = step.forward(*(values[name] for name in step.inputs))
    return values


def backward_steps(dout: np.ndarray, values: dict, *, eps: float | None = None) -> dict:
    """Run the steps backwards from ``dout = ∂L/∂out``.

    ``values`` is what :func:`forward_steps` returned; the ε of that forward run is used.
    Passing ``eps`` is allowed only to restate it (a different value raises ``ValueError``).

    Returns every gradient contribution by the series' name, plus the total gradient of each
    variable under ``"d" + variable`` (``dX`` = ``dx1 + dx2``; ``dxmu`` = ``dxmu1 + dxmu2``,
    which the series calls ``dx1`` once it has been passed through step 2).
    """
    if "eps" not in values:
        raise ValueError("values must be the dictionary returned by forward_steps (it has no 'eps')")
    if eps is not None and float(eps) != values["eps"]:
        raise ValueError(f"eps={eps} differs from the eps={values['eps']} of the forward run")
    eps = values["eps"]
    totals = {"out": np.asarray(dout, dtype=np.float64)}
    named = {}
    for step in reversed(make_steps(eps)):
        upstream = totals[step.output]
        contributions = step.backward(upstream, *(values[name] for name in step.inputs))
        for variable, (name, value) in zip(step.inputs, contributions, strict=True):
            named[name] = value
            totals[variable] = totals[variable] + value if variable in totals else value
    named.update({f"total_d{variable}": value for variable, value in totals.items()})
    return named
