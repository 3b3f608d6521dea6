"""SymPy helpers: explicit small matrices of symbols, element-wise derivatives, proofs of zero.

The book checks closed forms on explicit matrices, entry by entry, and never through
``MatrixSymbol`` derivatives (SymPy gets some of those silently wrong).

:func:`prove_zero` decides that an expression with square roots vanishes identically by
algebra, not by sampling: each radical ``√A`` becomes a fresh positive symbol ``r``, the
expression is brought over one denominator, and its numerator is reduced modulo
``r² - A``. A zero remainder proves the identity wherever the expression is defined.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import numpy as np
import sympy as sp

from bnbackprop._validation import require_choice, require_int


def matrix_symbols(name: str, rows: int, cols: int, *, positive: bool = False) -> sp.Matrix:
    """A ``rows × cols`` matrix of real symbols ``name_{ij}`` (indices from 1)."""
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
    n = require_int(n, "n", minimum=1)
    return [sp.Symbol(f"{name}_{i + 1}", real=True, positive=positive or None) for i in range(n)]


def vec(M: sp.Matrix) -> sp.Matrix:
    """Stack the columns of ``M`` into one column (the book's vec convention)."""
    return sp.Matrix([M[i, j] for j in range(M.cols) for i in range(M.rows)])


def gradient(f: sp.Expr, X: sp.Matrix) -> sp.Matrix:
    """``∂f/∂X`` entry by entry, with the shape of ``X``."""
    return X.applyfunc(lambda x: sp.diff(f, x))


def jacobian(F: sp.Matrix, X: sp.Matrix) -> sp.Matrix:
    """``∂ vec F / ∂ vec X`` entry by entry (columns stacked)."""
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

    ``eps`` defaults to a positive symbol ``epsilon``.
    """
    if eps is None:
        eps = sp.Symbol("epsilon", positive=True)
    require_choice(axis, "axis", (0, 1))
    require_choice(eps_placement, "eps_placement", ("inside", "outside"))
    Xr = X if axis == 0 else X.T
    n, p = Xr.shape
    if len(gamma) != p or len(beta) != p:
        raise ValueError(f"gamma and beta need {p} entries for X of shape {X.shape}, axis={axis}")
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


def prove_zero(expr: sp.Expr) -> bool:
    """True if ``expr`` is identically zero (proved algebraically); False if not proved.

    Square roots (and other rational powers) are eliminated as described in the module
    docstring; the rest is exact arithmetic in the field of rational functions over the
    rationals, with the radical symbols ordered first so that reducing by the relations
    ``r**q - A`` (a Gröbner basis, since their leading terms ``r**q`` are coprime) leaves
    zero exactly when the numerator lies in the ideal they generate. ``False`` means only
    that the reduction left a remainder; use :func:`nonzero_witness` to exhibit a point
    where the expression differs from zero. Radicands are assumed positive.
    """
    expr = sp.sympify(expr)
    if expr == 0:
        return True
    reduced, relations = _eliminate_radicals(expr)
    radical_symbols = [symbol for symbol, _, _ in relations]
    others = set(reduced.free_symbols).union(*(base.free_symbols for _, base, _ in relations))
    generators = radical_symbols + sorted(others - set(radical_symbols), key=str)
    if not generators:
        return sp.simplify(reduced) == 0
    field, *_ = sp.field(generators, sp.QQ, order=sp.lex)
    try:
        numerator = field.from_expr(reduced).numer
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
    """True if every entry of ``M`` is proved identically zero."""
    return all(prove_zero(entry) for entry in M)


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
    """A point of small positive rationals where ``expr`` is clearly non-zero, or None.

    The value is evaluated with ``digits`` significant digits; a witness's value exceeds
    ``10**(-digits // 2)`` in magnitude, so rounding cannot explain it.
    """
    rng = random.Random(seed)
    for _ in range(tries):
        point = {s: sp.Rational(rng.randint(low * 8, high * 8), 8) for s in symbols}
        value = sp.N(expr.xreplace(point), digits)
        if value.is_number and value.is_finite and abs(value) > sp.Float(10) ** (-(digits // 2)):
            return point
    return None


def to_numpy(expr: sp.Expr | sp.Matrix, symbols: Sequence[sp.Symbol]) -> Callable[..., np.ndarray]:
    """A NumPy function of ``symbols`` that evaluates ``expr`` (a matrix gives a 2-D array)."""
    function = sp.lambdify(list(symbols), expr, modules="numpy")

    def evaluate(*values: float) -> np.ndarray:
        return np.asarray(function(*values), dtype=np.float64)

    return evaluate
