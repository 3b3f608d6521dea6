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

from bnbackprop._validation import as_float_array, require_finite, require_shape

DEFAULT_STEP = 1e-6
DEFAULT_BOUND = 1e-6


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``‖a - b‖ / max(‖a‖, ‖b‖)`` in the Frobenius norm, 0.0 when both are zero."""
    a = as_float_array(a, "a").astype(np.float64)
    b = as_float_array(b, "b").astype(np.float64)
    require_shape(b, a.shape, "b", "the shape of a")
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    if scale == 0:
        return 0.0
    return float(np.linalg.norm(a - b) / scale)


def _check_step(step: float) -> float:
    if not (isinstance(step, (int, float)) and np.isfinite(step) and step > 0):
        raise ValueError(f"step must be a finite number > 0, got {step!r}")
    return float(step)


def _vec_indices(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Multi-indices of an array in column-major (vec) order."""
    return [np.unravel_index(k, shape, order="F") for k in range(int(np.prod(shape)))]


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, *, step: float = DEFAULT_STEP
) -> np.ndarray:
    """Central-difference gradient of a scalar function ``f`` at ``x``; same shape as ``x``."""
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
        grad[index] = (values[0] - values[1]) / (2 * step)
    return grad


def numerical_jacobian(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, *, step: float = DEFAULT_STEP
) -> np.ndarray:
    """Central-difference Jacobian ``∂ vec f(x) / ∂ vec x`` (columns stacked)."""
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
        columns.append(((f_plus - f_minus) / (2 * step)).reshape(-1, order="F"))
    return np.stack(columns, axis=1)


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
    analytic = as_float_array(analytic, name)
    reference = as_float_array(reference, f"reference for {name}")
    require_shape(reference, analytic.shape, f"reference for {name}", f"the shape of {name}")
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
    upstream = as_float_array(upstream, "upstream").astype(np.float64)

    def loss(z: np.ndarray) -> float:
        out = np.asarray(f(z), dtype=np.float64)
        require_shape(upstream, out.shape, "upstream", "the shape of f(x)")
        return float(np.sum(upstream * out))

    return check_gradient(name, loss, x, analytic, step=step, bound=bound)
