"""SymPy helpers: explicit small matrices of symbols, element-wise derivatives, proofs of zero.

The book checks closed forms on explicit matrices, entry by entry, and never through
``MatrixSymbol`` derivatives (SymPy gets some of those silently wrong).

:func:`prove_zero` decides that an expression with square roots vanishes identically by
algebra, not by sampling: each radical ``√A`` becomes a fresh positive symbol ``r``, the
expression is brought over one denominator, and its numerator is reduced modulo
``r² - A``. A zero remainder proves the identity wherever the expression is defined. It
returns a :class:`Proof`: ``"zero"`` (proved), ``"nonzero"`` (with a point where the value
is clearly not zero) or ``"undecided"``; only a proof is true in a boolean context, so
``assert prove_zero(e)`` asserts a proof.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import sympy as sp

from bnbackprop._validation import require_choice, require_int


def _expr(value: object, name: str) -> sp.Expr:
    """A SymPy scalar expression (Python numbers are converted), or a ``TypeError`` naming ``name``.

    Strings are refused: SymPy would parse them as code.
    """
    if isinstance(value, sp.MatrixBase):
        raise TypeError(f"{name} must be a scalar SymPy expression, got a {value.shape} matrix")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (sp.Basic, int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a SymPy expression, got {type(value).__name__}")
    return sp.sympify(value)


def _matrix(value: object, name: str) -> sp.MatrixBase:
    if not isinstance(value, sp.MatrixBase):
        raise TypeError(f"{name} must be a SymPy Matrix, got {type(value).__name__}")
    return value


def _symbols(values: object, name: str) -> list[sp.Symbol]:
    if isinstance(values, (str, sp.Basic)) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a list of SymPy symbols, got {type(values).__name__}")
    for value in values:
        if not isinstance(value, sp.Symbol):
            raise TypeError(f"{name} must hold SymPy symbols only, got {value!r} ({type(value).__name__})")
    return list(values)


def _name(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"name must be a non-empty string, got {value!r}")
    return value


def matrix_symbols(name: str, rows: int, cols: int, *, positive: bool = False) -> sp.Matrix:
    """A ``rows × cols`` matrix of real symbols ``name_{ij}`` (indices from 1)."""
    name = _name(name)
    rows = require_int(rows, "rows", minimum=1)
    cols = require_int(cols, "cols", minimum=1)
    sep = "" if rows < 10 and cols < 10 else ","
    return sp.Matrix(
        rows,
        cols,
        lambda i, j: sp.Symbol(f"{name}_{{{i + 1}{sep}{j + 1}}}", real=True, positive=positive or None),
    )


def vector_symbols(name: str, n: int, *, positive: bool = False) -> list[sp.Symbol]:
    """A list of ``n`` real symbols ``name_1 … name_n``."""
    name = _name(name)
    n = require_int(n, "n", minimum=1)
    return [sp.Symbol(f"{name}_{i + 1}", real=True, positive=positive or None) for i in range(n)]


def vec(M: sp.Matrix) -> sp.Matrix:
    """Stack the columns of ``M`` into one column (the book's vec convention)."""
    M = _matrix(M, "M")
    return sp.Matrix([M[i, j] for j in range(M.cols) for i in range(M.rows)])


def gradient(f: sp.Expr, X: sp.Matrix) -> sp.Matrix:
    """``∂f/∂X`` entry by entry, with the shape of ``X``."""
    f = _expr(f, "f")
    X = _matrix(X, "X")
    return X.applyfunc(lambda x: sp.diff(f, x))


def jacobian(F: sp.Matrix, X: sp.Matrix) -> sp.Matrix:
    """``∂ vec F / ∂ vec X`` entry by entry (columns stacked)."""
    F, X = _matrix(F, "F"), _matrix(X, "X")
    f, x = vec(F), vec(X)
    return sp.Matrix(len(f), len(x), lambda i, j: sp.diff(f[i], x[j]))


def batchnorm_forward(
    X: sp.Matrix,
    gamma: Sequence[sp.Expr],
    beta: Sequence[sp.Expr],
    *,
    eps: sp.Expr | None = None,
    ddof: int = 0,
    axis: int = 0,
    eps_placement: str = "inside",
) -> sp.Matrix:
    """The batch-norm forward pass on a SymPy matrix, with the options of the NumPy version.

    ``eps`` defaults to a positive symbol ``epsilon``; a number must be >= 0. The batch
    along ``axis`` needs at least 2 samples and more than ``ddof``.
    """
    X = _matrix(X, "X")
    eps = sp.Symbol("epsilon", positive=True) if eps is None else _expr(eps, "eps")
    if eps.is_negative:
        raise ValueError(f"eps must be >= 0, got {eps}")
    ddof = require_int(ddof, "ddof", minimum=0)
    require_choice(axis, "axis", (0, 1))
    require_choice(eps_placement, "eps_placement", ("inside", "outside"))
    for name, value in (("gamma", gamma), ("beta", beta)):
        if isinstance(value, (str, sp.Basic)) or not isinstance(value, (Sequence, sp.MatrixBase)):
            raise TypeError(f"{name} must be a sequence of SymPy expressions, got {type(value).__name__}")
    Xr = X if axis == 0 else X.T
    n, p = Xr.shape
    if len(gamma) != p or len(beta) != p:
        raise ValueError(f"gamma and beta need {p} entries for X of shape {X.shape}, axis={axis}")
    gamma = [_expr(value, "gamma") for value in gamma]
    beta = [_expr(value, "beta") for value in beta]
    if n < 2 or n <= ddof:
        raise ValueError(
            f"X: batch norm needs a batch of at least 2 samples (and more than ddof={ddof}) along "
            f"axis {axis}; X has shape {X.shape}, a batch of {n}"
        )
    out = sp.zeros(n, p)
    for j in range(p):
        column = [Xr[i, j] for i in range(n)]
        mean = sp.Add(*column) / n
        var = sp.Add(*[(x - mean) ** 2 for x in column]) / (n - ddof)
        denominator = sp.sqrt(var + eps) if eps_placement == "inside" else sp.sqrt(var) + eps
        for i in range(n):
            out[i, j] = gamma[j] * (column[i] - mean) / denominator + beta[j]
    return out if axis == 0 else out.T


def _canonical_radicand(base: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """Split an expanded radicand into a positive rational content and a primitive part."""
    content, primitive = sp.expand(base).as_content_primitive()
    return content, sp.expand(primitive)


def _eliminate_radicals(expr: sp.Expr) -> tuple[sp.Expr, list[tuple[sp.Symbol, sp.Expr, int]]]:
    """Replace each radical A**(k/q) by r**k with a fresh symbol r and the relation r**q = A.

    Symbolic radicands are expanded and stripped of their rational content first, so that
    √(S/8) and √(S)/√8 become the same r; numeric radicals such as √2 get symbols too.
    """
    radicals: dict[sp.Expr, tuple[sp.Symbol, int]] = {}

    def radical_symbol(base: sp.Expr, q: int) -> sp.Symbol:
        if base not in radicals:
            radicals[base] = (sp.Dummy(f"r{len(radicals)}", positive=True), q)
        symbol, q_known = radicals[base]
        if q_known != q:
            raise NotImplementedError("radicals of one base with different root orders")
        return symbol

    def is_radical(power: sp.Pow) -> bool:
        return power.exp.is_Rational and not power.exp.is_Integer

    replacements = {}
    for power in expr.atoms(sp.Pow):
        if is_radical(power) and power.base.free_symbols:
            content, primitive = _canonical_radicand(power.base)
            symbol = radical_symbol(primitive, int(power.exp.q))
            replacements[power] = content**power.exp * symbol ** int(power.exp.p)
    expr = expr.xreplace(replacements)
    numeric = {}
    for power in expr.atoms(sp.Pow):
        if is_radical(power) and not power.free_symbols:
            symbol = radical_symbol(power.base, int(power.exp.q))
            numeric[power] = symbol ** int(power.exp.p)
    relations = [(symbol, base, q) for base, (symbol, q) in radicals.items()]
    return expr.xreplace(numeric), relations


@dataclass(frozen=True)
class Proof:
    """What :func:`prove_zero` found: ``status`` is ``"zero"`` (proved identically zero),
    ``"nonzero"`` (``witness`` is a point where the value is clearly not zero) or
    ``"undecided"`` (``reason`` says why). True in a boolean context only when proved zero."""

    status: Literal["zero", "nonzero", "undecided"]
    witness: dict[sp.Symbol, sp.Rational] | None = None
    reason: str = field(default="", compare=False)

    def __bool__(self) -> bool:
        return self.status == "zero"


def prove_zero(expr: sp.Expr) -> Proof:
    """Decide whether ``expr`` is identically zero: a :class:`Proof`, true only if proved.

    Square roots (and other rational powers) are eliminated as described in the module
    docstring; the rest is exact arithmetic in the field of rational functions over the
    rationals, with the radical symbols ordered first so that reducing by the relations
    ``r**q - A`` (a Gröbner basis, since their leading terms ``r**q`` are coprime) leaves
    zero exactly when the numerator lies in the ideal they generate. Radicands are assumed
    positive. When a remainder is left, :func:`nonzero_witness` looks for a point where
    the expression is clearly non-zero (status ``"nonzero"``); without one, or when the
    reduction does not apply, the status is ``"undecided"``.
    """
    expr = _expr(expr, "expr")
    try:
        proved = _reduces_to_zero(expr)
    except NotImplementedError as exc:
        proved, reason = False, f"the reduction does not apply: {exc}"
    else:
        reason = "the reduction left a remainder, and no point with a clearly non-zero value was found"
    if proved:
        return Proof("zero")
    witness = nonzero_witness(expr, sorted(expr.free_symbols, key=str))
    if witness is not None:
        return Proof("nonzero", witness)
    return Proof("undecided", reason=reason)


def _reduces_to_zero(expr: sp.Expr) -> bool:
    """True if the algebraic reduction of the module docstring leaves no remainder."""
    if expr == 0:
        return True
    reduced, relations = _eliminate_radicals(expr)
    radical_symbols = [symbol for symbol, _, _ in relations]
    others = set(reduced.free_symbols).union(*(base.free_symbols for _, base, _ in relations))
    generators = radical_symbols + sorted(others - set(radical_symbols), key=str)
    if not generators:
        return sp.simplify(reduced) == 0
    field_, *_ = sp.field(generators, sp.QQ, order=sp.lex)
    try:
        numerator = field_.from_expr(reduced).numer
    except ValueError:
        # not a rational function of its symbols (a symbolic exponent such as γ**t, say):
        # treat the offending subexpressions as further indeterminates
        return _prove_zero_by_expansion(reduced, relations)
    ring = numerator.ring
    basis = [ring.from_expr(symbol) ** q - ring.from_expr(base) for symbol, base, q in relations]
    if basis:
        numerator = numerator.rem(basis)
    return numerator == 0


def _prove_zero_by_expansion(reduced: sp.Expr, relations: list[tuple[sp.Symbol, sp.Expr, int]]) -> bool:
    """The same proof with SymPy's general expressions, whose expansion treats any
    non-polynomial subexpression (γ**t, exp(x)) as one more indeterminate."""
    numerator = sp.expand(sp.fraction(sp.together(reduced))[0])
    for symbol, base, q in relations:
        numerator = sp.expand(sp.rem(numerator, symbol**q - base, symbol))
    return numerator == 0


def prove_matrix_zero(M: sp.Matrix) -> bool:
    """True if every entry of ``M`` is proved identically zero (see :func:`prove_zero`), else False."""
    M = _matrix(M, "M")
    try:
        return all(_reduces_to_zero(sp.sympify(entry)) for entry in M)
    except NotImplementedError:
        return False


def nonzero_witness(
    expr: sp.Expr,
    symbols: Sequence[sp.Symbol],
    *,
    seed: int = 0,
    tries: int = 20,
    digits: int = 50,
    low: int = 1,
    high: int = 9,
) -> dict[sp.Symbol, sp.Rational] | None:
    """A point of small rationals (multiples of 1/8 in [low, high]) where ``expr`` is clearly
    non-zero, or None.

    ``symbols`` must include every free symbol of ``expr``. A symbol declared negative (or
    non-positive) gets the negated value, an integer symbol an integer. The value is
    evaluated with ``digits`` significant digits; a witness's value is real and exceeds
    ``10**(-digits // 2)`` in magnitude, so rounding cannot explain it.
    """
    expr = _expr(expr, "expr")
    symbols = _symbols(symbols, "symbols")
    missing = sorted(map(str, expr.free_symbols - set(symbols)))
    if missing:
        raise ValueError(f"symbols must include every free symbol of expr; missing {missing}")
    seed = require_int(seed, "seed")
    tries = require_int(tries, "tries", minimum=1)
    digits = require_int(digits, "digits", minimum=2)
    low = require_int(low, "low")
    high = require_int(high, "high")
    if low > high:
        raise ValueError(f"low must be <= high, got low={low}, high={high}")
    rng = random.Random(seed)

    def draw(symbol: sp.Symbol) -> sp.Rational:
        if symbol.is_integer:
            value = sp.Integer(rng.randint(low, high))
        else:
            value = sp.Rational(rng.randint(low * 8, high * 8), 8)
        return -value if symbol.is_nonpositive else value

    for _ in range(tries):
        point = {s: draw(s) for s in symbols}
        value = sp.N(expr.xreplace(point), digits)
        if value.is_number and value.is_real and value.is_finite and abs(value) > sp.Float(10) ** (-(digits // 2)):
            return point
    return None


def to_numpy(expr: sp.Expr | sp.Matrix, symbols: Sequence[sp.Symbol]) -> Callable[..., np.ndarray]:
    """A NumPy function of ``symbols`` that evaluates ``expr`` (a matrix gives a 2-D array)."""
    if not isinstance(expr, sp.MatrixBase):
        expr = _expr(expr, "expr")
    symbols = _symbols(symbols, "symbols")
    missing = sorted(map(str, expr.free_symbols - set(symbols)))
    if missing:
        raise ValueError(f"symbols must include every free symbol of expr; missing {missing}")
    function = sp.lambdify(list(symbols), expr, modules="numpy")

    def evaluate(*values: float) -> np.ndarray:
        if len(values) != len(symbols):
            raise TypeError(f"the function takes {len(symbols)} values, one per symbol, got {len(values)}")
        return np.asarray(function(*values), dtype=np.float64)

    return evaluate
