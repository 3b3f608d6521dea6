"""The fused kernel (bnbackprop.fused) against the NumPy path: same results to a few units in the
last place, the same errors, and the NumPy path wherever the kernel cannot give the exact answer.

Without Numba the kernel tests are skipped and the last tests check that the NumPy path runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import array_api_strict
import numpy as np
import pytest

from bnbackprop import batchnorm, fused
from bnbackprop.gradcheck import relative_error

needs_numba = pytest.mark.skipif(not fused.available(), reason="Numba is not installed")
RNG = np.random.default_rng(18)


def run(X, gamma, beta, dY, engine, **options):
    Y, cache = batchnorm.forward(X, gamma, beta, engine=engine, **options)
    dX, dgamma, dbeta = batchnorm.backward(dY, cache, engine=engine)
    return {"Y": Y, "xhat": cache.xhat, "mean": cache.mean, "var": cache.var, "inv_denom": cache.inv_denom,
            "kappa": cache.kappa, "dX": dX, "dgamma": dgamma, "dbeta": dbeta}


def reference(X, gamma, beta, dY, **options):
    """The NumPy path in float64 (float128 where the platform has it would not change the bounds)."""
    wide = {name: np.asarray(a, dtype=np.float64) for name, a in (("X", X), ("gamma", gamma), ("beta", beta),
                                                                  ("dY", dY))}
    return run(wide["X"], wide["gamma"], wide["beta"], wide["dY"], "numpy", **options)


@pytest.fixture
def kernel_calls(monkeypatch):
    """Records, for every call of the kernel's forward and backward, whether it finished (True)
    or handed the call to the NumPy path (False)."""
    calls = []
    forward, backward = fused._forward, fused._backward

    def counted_forward(*args, **kwargs):
        result = forward(*args, **kwargs)
        calls.append(("forward", result is not None))
        return result

    def counted_backward(*args, **kwargs):
        result = backward(*args, **kwargs)
        calls.append(("backward", result is not None))
        return result

    backward_fast = fused._backward_fast

    def counted_backward_fast(*args, **kwargs):  # a None here goes on to _backward, which records it
        result = backward_fast(*args, **kwargs)
        if result is not None:
            calls.append(("backward", True))
        return result

    monkeypatch.setattr(fused, "_forward", counted_forward)
    monkeypatch.setattr(fused, "_backward", counted_backward)
    monkeypatch.setattr(fused, "_backward_fast", counted_backward_fast)
    return calls


def arrays(shape, dtype, features, order="C", scale=2.0, offset=0.5):
    X = np.asarray(RNG.standard_normal(shape) * scale + offset, dtype=dtype, order=order)
    dY = np.asarray(RNG.standard_normal(shape), dtype=dtype, order=order)
    gamma = RNG.uniform(0.5, 1.5, features).astype(dtype)
    beta = RNG.standard_normal(features).astype(dtype)
    return X, gamma, beta, dY


LAYOUTS = [
    ((64, 32), 0, "C"),  # samples in rows: the usual layout
    ((300, 7), 0, "C"),  # fewer features than a vector register
    ((4, 5, 6), 0, "C"),  # (N, …) with axis 0: every other index is a feature
    ((3, 4, 5, 6), (0, 1), "C"),  # two leading batch axes
    ((7, 40), 1, "F"),  # features in rows, batch in columns, Fortran order: the transpose is (N, p) C
    ((6, 5, 50), (1, 2), "F"),
]


@needs_numba
@pytest.mark.parametrize("dtype", (np.float64, np.float32))
@pytest.mark.parametrize(("shape", "axis", "order"), LAYOUTS, ids=str)
@pytest.mark.parametrize("options", ({}, {"ddof": 1}, {"eps_placement": "outside"}, {"eps": 0.0}), ids=str)
@pytest.mark.parametrize("chunks", (1, 3), ids=("serial", "parallel"))
def test_the_kernel_agrees_with_the_numpy_path(kernel_calls, monkeypatch, dtype, shape, axis, order, options, chunks):
    if chunks > 1:  # the parallel kernel, with three chunks of rows even on these small arrays
        monkeypatch.setattr(fused, "MIN_CHUNK_ELEMENTS", 1)
        monkeypatch.setattr(fused, "_threads", lambda: chunks)
    features = tuple(size for i, size in enumerate(shape) if i not in np.atleast_1d(axis))
    X, gamma, beta, dY = arrays(shape, dtype, features, order)
    fast = run(X, gamma, beta, dY, "fused", axis=axis, **options)
    assert kernel_calls == [("forward", True), ("backward", True)]
    plain = run(X, gamma, beta, dY, "numpy", axis=axis, **options)
    exact = reference(X, gamma, beta, dY, axis=axis, **options)
    resolution = np.finfo(dtype).eps
    for name in fast:
        assert fast[name].dtype == plain[name].dtype == dtype, name
        assert fast[name].shape == plain[name].shape, name
        # a few units in the last place of each other, and no further from the float64 answer
        assert relative_error(fast[name], plain[name]) < 8 * resolution, name
        assert relative_error(fast[name], exact[name]) <= relative_error(plain[name], exact[name]) + 8 * resolution
    assert not fast["xhat"].flags.writeable


@needs_numba
@pytest.mark.parametrize("n", (4096, 2 * fused.MIN_CHUNK_ELEMENTS // 16 + 7))
def test_the_kernel_is_more_accurate_than_its_bound_on_a_large_batch(n):
    """Large N in float32: sums over many rows are where accumulating in float64 shows (the
    second size is large enough for the parallel kernel, with chunks of unequal length)."""
    X, gamma, beta, dY = arrays((n, 16), np.float32, 16, offset=30.0)
    fast = run(X, gamma, beta, dY, "fused")
    exact = reference(X, gamma, beta, dY)
    for name in ("Y", "var", "dX", "dgamma", "dbeta"):
        assert relative_error(fast[name], exact[name]) < 8 * np.finfo(np.float32).eps, name


@needs_numba
def test_auto_uses_the_kernel_by_default(kernel_calls):
    X, gamma, beta, dY = arrays((32, 8), np.float64, 8)
    _, cache = batchnorm.forward(X, gamma, beta)
    batchnorm.backward(dY, cache)
    layer = batchnorm.BatchNorm(8)
    layer.forward(X)
    layer.backward(dY)
    assert kernel_calls == [("forward", True), ("backward", True)] * 2


@needs_numba
@pytest.mark.parametrize("placement", ("inside", "outside"))
def test_exactly_constant_features_stay_in_the_kernel(kernel_calls, placement):
    """A dead unit (all entries equal) has mean = that value, variance 0 and x̂ = 0, on both paths."""
    X = np.column_stack([np.full(7, 0.1), np.zeros(7), np.arange(7.0)])
    assert X[:, 0].mean() != 0.1  # the computed mean is inexact: a naive x̂ would be ±1
    gamma, beta, dY = np.array([2.0, 3.0, 1.0]), np.array([0.5, -1.0, 0.0]), RNG.standard_normal((7, 3))
    fast = run(X, gamma, beta, dY, "fused", eps_placement=placement)
    assert kernel_calls == [("forward", True), ("backward", True)]
    plain = run(X, gamma, beta, dY, "numpy", eps_placement=placement)
    assert fast["mean"][0] == 0.1 and fast["var"][0] == 0 and np.all(fast["xhat"][:, :2] == 0)
    assert np.all(fast["Y"][:, 0] == 0.5) and np.all(fast["Y"][:, 1] == -1.0)
    for name in fast:
        assert relative_error(fast[name], plain[name]) < 8 * np.finfo(np.float64).eps, name


@needs_numba
@pytest.mark.parametrize("chunks", (1, 3), ids=("serial", "parallel"))
def test_constancy_is_decided_over_every_row(kernel_calls, monkeypatch, chunks):
    """A feature is constant only if every row agrees: one constant per chunk of rows is not, and
    one entry off by a unit in the last place sends the call to the NumPy path."""
    if chunks > 1:
        monkeypatch.setattr(fused, "MIN_CHUNK_ELEMENTS", 1)
        monkeypatch.setattr(fused, "_threads", lambda: chunks)
    n = 30
    per_chunk = np.repeat([0.0, 1.0, 2.0], n // 3)  # constant within each chunk of rows only
    X = np.column_stack([np.full(n, 0.1), np.zeros(n), per_chunk, np.arange(n, dtype=float)])
    gamma, beta, dY = np.ones(4), np.zeros(4), RNG.standard_normal((n, 4))
    fast = run(X, gamma, beta, dY, "fused")
    assert kernel_calls == [("forward", True), ("backward", True)]
    plain = run(X, gamma, beta, dY, "numpy")
    assert np.array_equal(fast["var"][:2], [0.0, 0.0]) and np.all(fast["xhat"][:, :2] == 0)
    assert fast["var"][2] == pytest.approx(2 / 3)  # not constant: only the middle third sits at the mean
    assert np.count_nonzero(fast["xhat"][:, 2]) == 2 * n // 3
    for name in fast:
        assert relative_error(fast[name], plain[name]) < 8 * np.finfo(np.float64).eps, name

    kernel_calls.clear()
    X[-1, 0] = np.nextafter(0.1, 1.0)  # a spread within rounding of the mean: not constant
    Y, cache = batchnorm.forward(X, gamma, beta)
    assert kernel_calls == [("forward", False)]
    Y_plain, cache_plain = batchnorm.forward(X, gamma, beta, engine="numpy")
    np.testing.assert_array_equal(Y, Y_plain)
    np.testing.assert_array_equal(cache.xhat, cache_plain.xhat)
    assert cache.var[0] > 0 and np.count_nonzero(cache.xhat[:, 0]) == n  # not taken for a constant


# The numerics cases of tests/test_batchnorm_edges.py: (values, dtype, whether the kernel finishes).
# Where squares overflow or underflow, or the spread is within rounding of the mean, the kernel hands
# the call to the NumPy path (its forward returns None) and the answer is the NumPy path's, bit for
# bit. Its float64 sums finish some cases that the NumPy path rescues by rescaling.
EDGES = {
    "squares near the largest float": (lambda: RNG.standard_normal((64, 3)) * 1e150, np.float64, True),
    "huge scale": (lambda: RNG.standard_normal((64, 3)) * 1e154, np.float64, False),
    "tiny scale": (lambda: RNG.standard_normal((64, 3)) * 1e-160, np.float64, False),
    "squares underflow to 0": (lambda: RNG.standard_normal((64, 3)) * 1e-300, np.float64, False),
    "float32 huge": (lambda: RNG.standard_normal((64, 3)) * 1e18, np.float32, True),
    "float32 tiny": (lambda: RNG.standard_normal((64, 3)) * 1e-19, np.float32, False),
    "large mean next to the spread": (lambda: (RNG.standard_normal((64, 3)) + 1e3) * 1e140, np.float64, True),
    "constant up to rounding": (lambda: 1.0 + np.arange(64.0)[:, None] * np.array([2.0**-52, 1.0, 1.0]),
                                np.float64, False),
}


@needs_numba
@pytest.mark.parametrize("case", sorted(EDGES))
def test_cases_at_the_float_limits(kernel_calls, case):
    make, dtype, finishes = EDGES[case]
    X = make().astype(dtype)
    gamma, beta = np.ones(3, dtype), np.zeros(3, dtype)
    dY = RNG.standard_normal(X.shape).astype(dtype)
    Y, cache = batchnorm.forward(X, gamma, beta, engine="fused", eps=0.0)
    assert kernel_calls == [("forward", finishes)]
    Y_plain, cache_plain = batchnorm.forward(X, gamma, beta, engine="numpy", eps=0.0)
    # the input itself carries a relative rounding error of ε_machine · |mean| / σ (as in test_batchnorm_edges)
    wide = X.astype(np.float64) / np.max(np.abs(X.astype(np.float64)))  # scaled: no overflow, no underflow
    bound = 8 * np.finfo(dtype).eps * (1 + np.max(np.abs(wide.mean(axis=0)) / wide.std(axis=0)))
    assert relative_error(Y, Y_plain) < bound
    assert relative_error(cache.var, cache_plain.var) < bound
    if not finishes:
        np.testing.assert_array_equal(Y, Y_plain)
    try:
        grads = batchnorm.backward(dY, cache, engine="fused")
    except ValueError as error:  # e.g. 1/σ overflows: the same refusal on both paths
        with pytest.raises(ValueError, match=str(error)[:40]):
            batchnorm.backward(dY, cache_plain, engine="numpy")
        return
    for a, b in zip(grads, batchnorm.backward(dY, cache_plain, engine="numpy"), strict=True):
        assert relative_error(a, b) < bound


@needs_numba
def test_float16_is_computed_in_float32_by_the_numpy_path(kernel_calls):
    X, gamma, beta, dY = arrays((32, 4), np.float16, 4)
    fast = run(X, gamma, beta, dY, "auto")
    assert kernel_calls == [("backward", False)]  # forward not chosen: float16 is not a dtype the kernel takes
    plain = run(X, gamma, beta, dY, "numpy")
    for name in fast:
        np.testing.assert_array_equal(fast[name], plain[name])
    assert fast["Y"].dtype == np.float16 and fast["xhat"].dtype == np.float32
    with pytest.raises(ValueError, match="engine='fused' cannot run: it computes in float32 and float64"):
        batchnorm.forward(X, gamma, beta, engine="fused")


@needs_numba
@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda X: np.asarray(X.T, order="C").T, "leading axes of a C-contiguous"),  # (N, p) Fortran, axis 0
        (lambda X: X[::2], "leading axes of a C-contiguous"),  # a strided view
        (lambda X: array_api_strict.asarray(X), "takes NumPy arrays"),
    ],
    ids=("fortran order", "strided view", "array-api-strict"),
)
def test_layouts_the_kernel_does_not_take(kernel_calls, make, why):
    X, gamma, beta, _ = arrays((16, 4), np.float64, 4)
    X = make(X)
    batchnorm.forward(X, gamma, beta)  # auto: the NumPy (or array-API) path
    assert kernel_calls == []
    with pytest.raises(ValueError, match=f"engine='fused' cannot run: .*{why}"):
        batchnorm.forward(X, gamma, beta, engine="fused")


@needs_numba
def test_backward_cases_the_kernel_does_not_take(kernel_calls):
    X, gamma, beta, dY = arrays((16, 4), np.float64, 4)
    _, cache = batchnorm.forward(X, gamma, beta)
    kernel_calls.clear()
    expected = batchnorm.backward(dY, cache, engine="numpy")
    for other, why in ((dY.astype(np.float32), "dY is float32"), (np.asfortranarray(dY), "memory layout")):
        for a, b in zip(batchnorm.backward(other, cache), expected, strict=True):
            assert relative_error(a, b) < 1e-6
        with pytest.raises(ValueError, match=why):
            batchnorm.backward(other, cache, engine="fused")
    _, inference = batchnorm.forward_inference(X, gamma, beta, np.zeros(4), np.ones(4))
    with pytest.raises(ValueError, match="fixed statistics"):
        batchnorm.backward(dY, inference, engine="fused")
    assert kernel_calls == [("backward", False)] * 2  # the two calls with engine="auto"; "fused" raised


@needs_numba
@pytest.mark.parametrize(
    ("spoil", "match"),
    [
        (lambda X, g, b: (np.where(X == X[3, 1], np.nan, X), g, b), r"X holds 1 non-finite"),
        (lambda X, g, b: (np.where(X == X[3, 1], np.inf, X), g, b), r"X holds 1 non-finite"),
        (lambda X, g, b: (np.column_stack([X[:, :3], np.full(16, 2.0)]), g, b), "zero variance and eps=0"),
        (lambda X, g, b: (X, g * 1e308, b), r"output Y = γ ⊙ x̂ \+ β overflows"),
    ],
    ids=("NaN", "inf", "constant with eps 0", "Y overflows"),
)
def test_the_same_clear_errors_on_both_paths(spoil, match):
    X, gamma, beta, _ = arrays((16, 4), np.float64, 4)
    X, gamma, beta = spoil(X, gamma, beta)
    for engine in ("fused", "numpy"):
        with pytest.raises(ValueError, match=match):
            batchnorm.forward(X, gamma, beta, eps=0.0, engine=engine)


@needs_numba
@pytest.mark.parametrize(
    ("dY", "match"),
    [
        (lambda dY: np.where(dY == dY[2, 2], np.nan, dY), "dY holds 1 non-finite"),
        (lambda dY: dY * 1e10, r"dX, dgamma or dbeta overflows float64 \(max γ/denominator"),
        (lambda dY: np.full_like(dY, 1e308), "the sum of dY over the batch overflows"),
    ],
    ids=("NaN in dY", "dX overflows", "dbeta overflows"),
)
def test_the_same_clear_backward_errors_on_both_paths(dY, match):
    X, gamma, beta, dY0 = arrays((16, 4), np.float64, 4)
    dY0 = np.abs(dY0)
    _, cache = batchnorm.forward(X, gamma * 1e300, beta)
    for engine in ("fused", "numpy"):
        with pytest.raises(ValueError, match=match):
            batchnorm.backward(dY(dY0), cache, engine=engine)


def test_no_features_take_the_numpy_path():
    X = np.ones((4, 0))
    Y, cache = batchnorm.forward(X, np.ones(0), np.zeros(0))
    grads = batchnorm.backward(X, cache)
    assert Y.shape == (4, 0) and [g.shape for g in grads] == [(4, 0), (0,), (0,)]


@pytest.mark.parametrize("engine", ("fast", "NUMPY", None, 1))
def test_unknown_engines_are_refused(engine):
    X, gamma, beta, dY = arrays((8, 3), np.float64, 3)
    with pytest.raises(ValueError, match=r"engine must be one of \('auto', 'numpy', 'fused'\)"):
        batchnorm.forward(X, gamma, beta, engine=engine)
    _, cache = batchnorm.forward(X, gamma, beta)
    with pytest.raises(ValueError, match="engine must be one of"):
        batchnorm.backward(dY, cache, engine=engine)


def test_without_numba_auto_is_the_numpy_path_and_fused_says_why(monkeypatch):
    monkeypatch.setattr(fused, "available", lambda: False)
    X, gamma, beta, dY = arrays((32, 5), np.float64, 5)
    auto = run(X, gamma, beta, dY, "auto")
    plain = run(X, gamma, beta, dY, "numpy")
    for name in auto:
        np.testing.assert_array_equal(auto[name], plain[name])
    with pytest.raises(ValueError, match="Numba is not installed"):
        batchnorm.forward(X, gamma, beta, engine="fused")


def test_the_package_runs_where_numba_cannot_be_imported():
    """A fresh interpreter in which ``import numba`` fails: the NumPy path runs, "fused" says why."""
    src = Path(__file__).resolve().parents[1] / "src"
    code = (
        "import sys; sys.modules['numba'] = None\n"
        "import numpy as np\n"
        "from bnbackprop import batchnorm, fused\n"
        "assert not fused.available()\n"
        "X = np.arange(12.0).reshape(4, 3) ** 1.5\n"
        "Y, cache = batchnorm.forward(X, np.ones(3), np.zeros(3))\n"
        "dX, dgamma, dbeta = batchnorm.backward(np.ones((4, 3)), cache)\n"
        "assert np.allclose(Y.mean(axis=0), 0) and np.allclose(dX, 0)\n"
        "try:\n"
        "    batchnorm.forward(X, np.ones(3), np.zeros(3), engine='fused')\n"
        "except ValueError as error:\n"
        "    print(error)\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                               env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"}, check=False)
    assert completed.returncode == 0, completed.stderr
    assert "engine='fused' cannot run: Numba is not installed" in completed.stdout


@needs_numba
@pytest.mark.parametrize("dtype", (np.float64, np.float32))
@pytest.mark.parametrize("options", ({}, {"ddof": 1}, {"eps_placement": "outside"}, {"eps": 0.0}), ids=str)
def test_the_short_paths_give_the_full_paths_results_bit_for_bit(monkeypatch, dtype, options):
    """forward and backward send the common call (N × p, C order, axis=0, γ and β of X's dtype)
    to the kernel with fewer checks; the full path (taken here for axis=-2, and with the short
    backward switched off) runs the same kernel, so every output must be identical."""
    X, gamma, beta, dY = arrays((96, 40), dtype, 40)
    short = run(X, gamma, beta, dY, "auto", **options)
    calls = []
    monkeypatch.setattr(fused, "_backward_fast", lambda *args: calls.append(args) and None)
    full = run(X, gamma, beta, dY, "auto", axis=-2, **options)
    assert len(calls) == 1  # the short backward was asked, and declined (None): the full path ran
    for name in short:
        assert short[name].dtype == full[name].dtype == dtype, name
        np.testing.assert_array_equal(short[name], full[name], err_msg=name)
    for name in ("xhat", "mean", "var", "inv_denom", "kappa"):
        assert not short[name].flags.writeable, name


@needs_numba
def test_the_short_paths_still_refuse_bad_vectors_and_unknown_options():
    X, gamma, beta, dY = arrays((16, 3), np.float64, 3)
    for name, bad in (("gamma", np.array([1.0, np.nan, 1.0])), ("beta", np.array([0.0, 0.0, np.inf]))):
        vectors = {"gamma": gamma, "beta": beta, name: bad}
        with pytest.raises(ValueError, match=f"{name} holds 1 non-finite value"):
            batchnorm.forward(X, **vectors)
    with pytest.raises(ValueError, match="eps_placement must be one of"):
        batchnorm.forward(X, gamma, beta, eps_placement="Inside")
    with pytest.raises(ValueError, match="engine must be one of"):
        batchnorm.forward(X, gamma, beta, engine="Fused")
    _, cache = batchnorm.forward(X, gamma, beta)
    with pytest.raises(ValueError, match="dY holds"):
        batchnorm.backward(np.where(X > 0, np.nan, dY), cache)
    gamma_in = gamma.copy()
    _, cache = batchnorm.forward(X, gamma_in, beta)
    gamma_in[:] = 7.0  # the cache keeps its own copy
    assert np.array_equal(cache.gamma, gamma) and not np.shares_memory(cache.gamma, gamma_in)
