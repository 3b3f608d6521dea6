"""Central finite differences: the book's independent check of every gradient.

Conventions:

* Everything is computed in float64; inputs of other dtypes are converted first.
* The step ``h`` is absolute (default ``1e-6``). A central difference
  ``(f(x + h e_i) - f(x - h e_i)) / 2h`` has truncation error O(h²) and rounding error
  about ``1e-16 · |f| / h``; with ``h = 1e-6`` both are near 1e-10 relative to the
  gradient for the well-scaled functions of this book.
* The relative error of two arrays is ``‖a - b‖ / max(‖a‖, ‖b‖)`` in the Frobenius norm
  (0 when both are zero). The default bound ``1e-6`` sits four orders of magnitude above
  the error a correct gradient shows and far below the error of a wrong formula.
* Jacobians use the book's ``vec`` convention (columns stacked):
  ``J[i, j] = ∂ vec(f(X))_i / ∂ vec(X)_j``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bnbackprop._validation import (
    as_float_array,
    require_finite,
    require_finite_output,
    require_nonnegative_float,
    require_shape,
)

DEFAULT_STEP = 1e-6
DEFAULT_BOUND = 1e-6


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``‖a - b‖ / max(‖a‖, ‖b‖)`` in the Frobenius norm, 0.0 when both are zero.

    ``a`` and ``b`` must be finite. Both are first scaled by the same power of two (exact),
    so that entries near the float limits neither overflow nor underflow the norms.
    """
    a = as_float_array(a, "a").astype(np.float64)
    b = as_float_array(b, "b").astype(np.float64)
    require_shape(b, a.shape, "b", "the shape of a")
    require_finite(a, "a")
    require_finite(b, "b")
    largest = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)))
    if largest == 0:
        return 0.0
    exponent = -np.frexp(largest)[1]
    a, b = np.ldexp(a, exponent), np.ldexp(b, exponent)
    error = float(np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b)))
    require_finite_output(error, "relative_error", "unexpected: the scaled norms should be finite")
    return error


def _check_step(step: float) -> float:
    if isinstance(step, bool) or not isinstance(step, (int, float, np.integer, np.floating)):
        raise TypeError(f"step must be a real number, got {type(step).__name__}")
    if not (np.isfinite(step) and step > 0):
        raise ValueError(f"step must be a finite number > 0, got {step!r}")
    return float(step)


def _check_function(f: object, name: str = "f") -> None:
    if not callable(f):
        raise TypeError(f"{name} must be a function of an array, got {type(f).__name__}")


def _require_finite_value(value: np.ndarray, index: object, sign: str) -> None:
    if not np.all(np.isfinite(value)):
        raise ValueError(
            f"f returned a non-finite value at x[{index}] {sign} step: f is undefined or overflows "
            "there; choose another point or a smaller step"
        )


def _vec_indices(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Multi-indices of an array in column-major (vec) order."""
    return [np.unravel_index(k, shape, order="F") for k in range(int(np.prod(shape)))]


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, *, step: float = DEFAULT_STEP
) -> np.ndarray:
    """Central-difference gradient of a scalar function ``f`` at ``x``; same shape as ``x``.

    ``f`` must return a finite scalar at every point it is evaluated; the result must be
    finite too (a difference quotient that overflows raises).
    """
    _check_function(f)
    step = _check_step(step)
    x = as_float_array(x, "x").astype(np.float64)
    require_finite(x, "x")
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + step
        f_plus = f(x.copy())
        x[index] = original - step
        f_minus = f(x.copy())
        x[index] = original
        values = np.asarray([f_plus, f_minus], dtype=np.float64)
        if values.shape != (2,):
            raise ValueError(f"f must return a scalar, got an array of shape {np.shape(f_plus)}")
        _require_finite_value(values[0], index, "+")
        _require_finite_value(values[1], index, "-")
        with np.errstate(over="ignore"):
            grad[index] = (values[0] - values[1]) / (2 * step)
    require_finite_output(grad, "numerical_gradient", "the difference quotient overflowed; f is too large here")
    return grad


def numerical_jacobian(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, *, step: float = DEFAULT_STEP
) -> np.ndarray:
    """Central-difference Jacobian ``∂ vec f(x) / ∂ vec x`` (columns stacked).

    ``f`` must return finite arrays of one shape; the result must be finite too.
    """
    _check_function(f)
    step = _check_step(step)
    x = as_float_array(x, "x").astype(np.float64)
    require_finite(x, "x")
    columns = []
    for index in _vec_indices(x.shape):
        original = x[index]
        x[index] = original + step
        f_plus = np.asarray(f(x.copy()), dtype=np.float64)
        x[index] = original - step
        f_minus = np.asarray(f(x.copy()), dtype=np.float64)
        x[index] = original
        if f_plus.shape != f_minus.shape or (columns and f_plus.size != columns[0].size):
            raise ValueError(f"f must return arrays of one shape, got {f_plus.shape} and {f_minus.shape}")
        _require_finite_value(f_plus, index, "+")
        _require_finite_value(f_minus, index, "-")
        with np.errstate(over="ignore"):
            columns.append(((f_plus - f_minus) / (2 * step)).reshape(-1, order="F"))
    jacobian = np.stack(columns, axis=1)
    require_finite_output(jacobian, "numerical_jacobian", "the difference quotient overflowed; f is too large here")
    return jacobian


@dataclass(frozen=True)
class CheckResult:
    """Outcome of a comparison: the relative error, the bound it was held to, and the verdict."""

    name: str
    relative_error: float
    bound: float

    @property
    def passed(self) -> bool:
        return self.relative_error <= self.bound

    def __str__(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        return f"{self.name}: relative error: {self.relative_error:.1e} (bound {self.bound:.0e}) {verdict}"


def compare(
    name: str, analytic: np.ndarray, reference: np.ndarray, *, bound: float = DEFAULT_BOUND
) -> CheckResult:
    """Print the relative error of ``analytic`` against ``reference`` and raise if above ``bound``.

    The printed line has the form ``name: relative error: 1.2e-10 (bound 1e-06) ok`` so that
    notebook tests can mask the machine-dependent digits.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    bound = require_nonnegative_float(bound, "bound")
    analytic = as_float_array(analytic, f"analytic ({name})")
    reference = as_float_array(reference, f"reference ({name})")
    require_shape(reference, analytic.shape, f"reference ({name})", f"the shape of analytic ({name})")
    require_finite(analytic, f"analytic ({name})")
    require_finite(reference, f"reference ({name})")
    result = CheckResult(name, relative_error(analytic, reference), float(bound))
    print(result)
    if not result.passed:
        raise AssertionError(str(result))
    return result


def check_gradient(
    name: str,
    f: Callable[[np.ndarray], float],
    x: np.ndarray,
    analytic: np.ndarray,
    *,
    step: float = DEFAULT_STEP,
    bound: float = DEFAULT_BOUND,
) -> CheckResult:
    """Compare an analytic gradient of scalar ``f`` at ``x`` with central differences."""
    _check_function(f)
    return compare(name, analytic, numerical_gradient(f, x, step=step), bound=bound)


def check_vjp(
    name: str,
    f: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    upstream: np.ndarray,
    analytic: np.ndarray,
    *,
    step: float = DEFAULT_STEP,
    bound: float = DEFAULT_BOUND,
) -> CheckResult:
    """Check a vector–Jacobian product: ``analytic`` should equal ``∂⟨upstream, f(x)⟩ / ∂x``.

    This is what a backward pass computes: given ``dY = upstream``, the gradient with respect
    to ``x`` of the scalar loss ``L = Σ upstream ⊙ f(x)``.
    """
    _check_function(f)
    upstream = as_float_array(upstream, "upstream").astype(np.float64)
    require_finite(upstream, "upstream")

    def loss(z: np.ndarray) -> float:
        out = np.asarray(f(z), dtype=np.float64)
        require_shape(upstream, out.shape, "upstream", "the shape of f(x)")
        return float(np.sum(upstream * out))

    return check_gradient(name, loss, x, analytic, step=step, bound=bound)
