"""Property-based tests of batch norm: the identities the book proves, over many inputs.

Inputs are drawn by hypothesis under the fixed profile of ``conftest.py`` (same examples
on every run). They cover shapes with N = 2 and p = 1, both layouts (``axis`` 0 and 1),
``ddof`` 0 and 1, ε inside and outside the root, float64 and float32, and per-feature
scales from 1e-150 to 1e150 (float64) or 1e-15 to 1e15 (float32: the same distance from
the square roots of its smallest and largest normal numbers).

Well-conditioned inputs are ``X = Z · diag(s)`` with Z a matrix of small integers whose
columns are not constant, so that every feature's σ is at least about 0.3 s and the
rounding error of x̂ is a few ulps; tolerances are stated in units of the dtype's ε.

Identities, for g = dY ⊙ γ, per feature (the book's closed form
dX = (g - mean(g) - κ x̂ Σ(g x̂)/(N - ddof)) / d with d the denominator):

* Σ_i dX_i = 0: the closed form is centred, since Σ x̂ = 0.
* Σ_i dX_i x̂_i = Σ(g x̂) / d · (1 - κ Σx̂²/(N - ddof)). With Σ x̂² = (N - ddof) σ²/d²:
  ε inside (κ = 1, d² = σ² + ε) gives the factor ε/(σ² + ε); ε outside
  (κ = (σ + ε)/σ, d = σ + ε) gives ε/(σ + ε). So dX ⟂ x̂ exactly when ε = 0, for both
  placements and both ddof, and otherwise Σ dX x̂ equals that factor times Σ(g x̂)/d, which
  is what the test checks for every ε.
* Y is unchanged by a per-feature shift of X (any ε), and by a positive per-feature
  scaling of X when ε = 0.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import Phase, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bnbackprop import batchnorm, loops
from bnbackprop.gradcheck import numerical_gradient

EPSILONS = (0.0, 1e-5, 0.1)
EXPONENTS = {np.float64: 150, np.float32: 15}


def ulp(dtype) -> float:
    return float(np.finfo(dtype).eps)


# ---------------------------------------------------------------------------------------
# strategies


@st.composite
def well_conditioned(draw, *, dtypes=(np.float64, np.float32), band="extreme", eps=EPSILONS):
    """A dict with X, gamma, beta, dY and options; X = Z · diag(s), columns of Z not constant."""
    dtype = draw(st.sampled_from(dtypes))
    n = draw(st.integers(2, 6))
    p = draw(st.integers(1, 4))
    ddof = draw(st.sampled_from((0, 1)))
    axis = draw(st.sampled_from((0, 1)))
    placement = draw(st.sampled_from(("inside", "outside")))
    epsilon = draw(st.sampled_from(eps))
    Z = draw(arrays(np.int64, (n, p), elements=st.integers(-8, 8))).astype(np.float64)
    for j in range(p):
        if Z[0, j] == Z[1, j]:
            Z[1, j] = Z[0, j] + 1 if Z[0, j] < 8 else Z[0, j] - 1
    top = EXPONENTS[dtype] if band == "extreme" else 3
    exponents = draw(st.lists(st.integers(-top, top), min_size=p, max_size=p))
    scales = np.array([10.0**e for e in exponents])
    gamma = draw(arrays(np.float64, p, elements=st.floats(0.25, 4.0))) * draw(
        arrays(np.float64, p, elements=st.sampled_from((-1.0, 1.0)))
    )
    beta = draw(arrays(np.float64, p, elements=st.integers(-3, 3).map(float)))
    dY = draw(arrays(np.int64, (n, p), elements=st.integers(-8, 8))).astype(np.float64)
    X = Z * scales

    def layout(M):
        return (M if axis == 0 else M.T).astype(dtype)

    return {
        "Z": Z, "scales": scales, "exponents": exponents, "X": layout(X), "dY": layout(dY),
        "gamma": gamma.astype(dtype), "beta": beta.astype(dtype), "dtype": dtype, "layout": layout,
        "options": {"eps": epsilon, "ddof": ddof, "axis": axis, "eps_placement": placement},
    }


def per_feature(M, axis):
    """The features of M as columns (samples in rows), whatever the layout."""
    return M if axis == 0 else M.T


# ---------------------------------------------------------------------------------------
# identities on well-conditioned input, at every scale


@given(well_conditioned())
def test_each_column_of_dX_sums_to_zero(case):
    _, cache = batchnorm.forward(case["X"], case["gamma"], case["beta"], **case["options"])
    dX, _, _ = batchnorm.backward(case["dY"], cache)
    axis, n = case["options"]["axis"], cache.batch_size
    g = per_feature(case["dY"], axis).astype(np.float64) * case["gamma"].astype(np.float64)
    # size of the terms whose sum cancels: |g|, |mean g| and |x̂| |projection| per sample
    xhat = per_feature(cache.xhat, axis).astype(np.float64)
    kappa = _kappa(cache)
    terms = cache.inv_std * (np.abs(g).sum(0) * (2 + 2 * kappa * n * np.abs(xhat).max(0) ** 2))
    column_sums = per_feature(dX, axis).astype(np.float64).sum(0)
    assert np.all(np.abs(column_sums) <= 16 * n * ulp(case["dtype"]) * terms)


def _kappa(cache):
    if cache.eps_placement == "inside":
        return np.ones_like(cache.var, dtype=np.float64)
    sigma = np.sqrt(cache.var.astype(np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sigma > 0, (sigma + cache.eps) / np.where(sigma > 0, sigma, 1.0), 0.0)


@given(well_conditioned())
def test_dX_times_xhat_is_the_derived_epsilon_factor(case):
    """Σ dX x̂ = Σ(g x̂)/d · ε/(σ² + ε) (inside) or · ε/(σ + ε) (outside); 0 when ε = 0."""
    options = case["options"]
    _, cache = batchnorm.forward(case["X"], case["gamma"], case["beta"], **options)
    dX, _, _ = batchnorm.backward(case["dY"], cache)
    axis, n, eps = options["axis"], cache.batch_size, options["eps"]
    xhat = per_feature(cache.xhat, axis).astype(np.float64)
    g = per_feature(case["dY"], axis).astype(np.float64) * case["gamma"].astype(np.float64)
    var = cache.var.astype(np.float64)
    inv_std = cache.inv_std.astype(np.float64)
    factor = eps / (var + eps) if options["eps_placement"] == "inside" else eps / (np.sqrt(var) + eps)
    expected = inv_std * (g * xhat).sum(0) * factor
    actual = (per_feature(dX, axis).astype(np.float64) * xhat).sum(0)
    size = inv_std * np.abs(g).sum(0) * np.abs(xhat).max(0) * (2 + 2 * _kappa(cache) * n * np.abs(xhat).max(0) ** 2)
    assert np.all(np.abs(actual - expected) <= 16 * n * ulp(case["dtype"]) * size)
    if eps == 0:
        assert np.all(np.abs(actual) <= 16 * n * ulp(case["dtype"]) * size)


@given(well_conditioned(), st.data())
def test_Y_is_unchanged_by_a_per_feature_shift(case, data):
    options, axis = case["options"], case["options"]["axis"]
    p = case["Z"].shape[1]
    multiples = np.array(data.draw(st.lists(st.integers(-16, 16), min_size=p, max_size=p)), dtype=np.float64)
    shifted = case["layout"]((case["Z"] + multiples) * case["scales"])
    Y, _ = batchnorm.forward(case["X"], case["gamma"], case["beta"], **options)
    Y_shifted, _ = batchnorm.forward(shifted, case["gamma"], case["beta"], **options)
    # x - μ is exact up to the rounding of X and of μ: a few ulps of (|Z| + |shift|) s
    size = np.abs(case["gamma"]).astype(np.float64) * (1 + 8 + np.abs(multiples)) * 8
    difference = per_feature(np.abs(Y_shifted.astype(np.float64) - Y.astype(np.float64)), axis)
    assert np.all(difference <= 16 * ulp(case["dtype"]) * (size + np.abs(case["beta"]).astype(np.float64)))


@given(well_conditioned(eps=(0.0,)), st.data())
def test_Y_is_unchanged_by_a_positive_per_feature_scaling_when_eps_is_zero(case, data):
    options, axis = case["options"], case["options"]["axis"]
    p = case["Z"].shape[1]
    top = EXPONENTS[case["dtype"]]
    new_exponents = data.draw(st.lists(st.integers(-top, top), min_size=p, max_size=p))
    mantissas = np.array(data.draw(st.lists(st.floats(1.0, 9.9), min_size=p, max_size=p)))
    rescaled = case["layout"](case["Z"] * (mantissas * np.array([10.0**e for e in new_exponents])))
    Y, _ = batchnorm.forward(case["X"], case["gamma"], case["beta"], **options)
    Y_scaled, _ = batchnorm.forward(rescaled, case["gamma"], case["beta"], **options)
    difference = per_feature(np.abs(Y_scaled.astype(np.float64) - Y.astype(np.float64)), axis)
    size = np.abs(case["gamma"]).astype(np.float64) * 8 * 8 + np.abs(case["beta"]).astype(np.float64)
    assert np.all(difference <= 16 * ulp(case["dtype"]) * size)


@given(well_conditioned())
def test_forward_and_backward_agree_with_the_loop_reference(case):
    options = case["options"]
    Y, cache = batchnorm.forward(case["X"], case["gamma"], case["beta"], **options)
    dX, dgamma, dbeta = batchnorm.backward(case["dY"], cache)
    Y_loops = loops.forward(case["X"], case["gamma"], case["beta"], **options)
    dX_loops, dgamma_loops, dbeta_loops = loops.backward(case["dY"], case["X"], case["gamma"], **options)
    u, n, axis = ulp(case["dtype"]), cache.batch_size, options["axis"]
    scale_Y = np.abs(case["gamma"]).astype(np.float64) * 8 + np.abs(case["beta"]).astype(np.float64)
    assert np.all(per_feature(np.abs(Y - Y_loops), axis) <= 64 * n * u * scale_Y)
    g = per_feature(case["dY"], axis).astype(np.float64) * case["gamma"].astype(np.float64)
    xmax = np.abs(per_feature(cache.xhat, axis).astype(np.float64)).max(0)
    size = cache.inv_std * np.abs(g).sum(0) * (2 + 2 * _kappa(cache) * n * xmax**2)
    assert np.all(per_feature(np.abs(dX - dX_loops), axis) <= 64 * n * u * size)
    dY_abs = np.abs(per_feature(case["dY"], axis)).sum(0)
    assert np.all(np.abs(dgamma - dgamma_loops) <= 64 * n * u * dY_abs * (1 + xmax))
    np.testing.assert_array_equal(dbeta, dbeta_loops)


@given(well_conditioned(dtypes=(np.float64,), band="moderate"))
def test_backward_agrees_with_finite_differences(case):
    """Central differences with a step relative to each feature's scale, in float64."""
    options = case["options"]
    _, cache = batchnorm.forward(case["X"], case["gamma"], case["beta"], **options)
    dX, dgamma, dbeta = batchnorm.backward(case["dY"], cache)
    step_scale = case["layout"](np.ones_like(case["Z"]) * case["scales"])

    def loss(relative):
        Y, _ = batchnorm.forward(case["X"] + relative * step_scale, case["gamma"], case["beta"], **options)
        return float(np.sum(case["dY"] * Y))

    numeric = numerical_gradient(loss, np.zeros_like(case["X"]), step=1e-6) / step_scale
    error = np.abs(numeric - dX) * step_scale
    # FD error ~ 1e-10 of the gradient's size per unit of X's scale
    size = np.abs(dX * step_scale).max() + np.abs(case["dY"]).max() * np.abs(case["gamma"]).max()
    assert error.max() <= 1e-6 * size
    numeric_gamma = numerical_gradient(
        lambda v: float(np.sum(case["dY"] * batchnorm.forward(case["X"], v, case["beta"], **options)[0])),
        case["gamma"],
    )
    np.testing.assert_allclose(dgamma, numeric_gamma, rtol=1e-6, atol=1e-6 * np.abs(case["dY"]).sum())
    numeric_beta = numerical_gradient(
        lambda v: float(np.sum(case["dY"] * batchnorm.forward(case["X"], case["gamma"], v, **options)[0])),
        case["beta"],
    )
    np.testing.assert_allclose(dbeta, numeric_beta, rtol=1e-6, atol=1e-6 * np.abs(case["dY"]).sum())


# ---------------------------------------------------------------------------------------
# anything else: a clear error or the correct answer


def reference(X, gamma, beta, dY, *, eps, ddof, axis, eps_placement, largest_variance=None):
    """x̂, Y and dX in 80-digit arithmetic (mpmath) from the same float inputs, or None where
    a denominator is zero (the library must refuse). ``largest_variance``, a one-element
    list if given, receives the largest per-feature variance."""
    mpmath.mp.dps = 80
    largest_variance = [0] if largest_variance is None else largest_variance
    rows, upstream = per_feature(X, axis), per_feature(dY, axis)
    n, p = rows.shape
    xhat, Y, dX = (np.zeros((n, p)) for _ in range(3))
    inv = np.zeros(p)
    for j in range(p):
        column = [mpmath.mpf(float(v)) for v in rows[:, j]]
        mean = mpmath.fsum(column) / n
        var = mpmath.fsum((c - mean) ** 2 for c in column) / (n - ddof)
        largest_variance[0] = max(largest_variance[0], var)
        sigma = mpmath.sqrt(var)
        eps_ = mpmath.mpf(float(eps))
        d = mpmath.sqrt(var + eps_) if eps_placement == "inside" else sigma + eps_
        if d == 0:
            return None
        x = [(c - mean) / d for c in column]
        g = [mpmath.mpf(float(upstream[i, j])) * mpmath.mpf(float(gamma[j])) for i in range(n)]
        kappa = 1 if eps_placement == "inside" or sigma == 0 else (sigma + eps_) / sigma
        projection = kappa * mpmath.fsum(gi * xi for gi, xi in zip(g, x, strict=True)) / (n - ddof)
        mean_g = mpmath.fsum(g) / n
        for i in range(n):
            xhat[i, j] = float(x[i])
            Y[i, j] = float(mpmath.mpf(float(gamma[j])) * x[i] + mpmath.mpf(float(beta[j])))
            dX[i, j] = float((g[i] - mean_g - x[i] * projection) / d)
        inv[j] = float(1 / d)
    return xhat, Y, dX, inv


def _check_clear_error_or_correct(X, gamma, beta, dY, options):
    largest_variance = [0]
    expected = reference(X, gamma, beta, dY, **options, largest_variance=largest_variance)
    try:
        Y, cache = batchnorm.forward(X, gamma, beta, **options)
        dX, _, _ = batchnorm.backward(dY, cache)
    except (ValueError, TypeError) as error:
        message = str(error)
        assert any(name in message for name in ("X", "eps", "gamma", "beta", "dY")), message
        if expected is None:
            return
        # a refusal is acceptable only where the exact result does not fit the dtype, or where
        # the variance or 1/denominator does not (the library's documented limits: σ² and
        # 1/√(σ² + ε) or 1/(σ + ε), which the cache keeps, must fit the dtype)
        big = np.finfo(X.dtype).max
        assert (
            np.abs(expected[1]).max() > big
            or np.abs(expected[2]).max() > big
            or not np.all(np.isfinite(expected[2]))
            or largest_variance[0] > big
            or np.abs(expected[3]).max() > big
        ), f"refused a computable input: {message}"
        return
    assert expected is not None, "a zero denominator (zero variance with eps=0) was not refused"
    xhat_ref, Y_ref, dX_ref, inv_ref = expected
    axis, n, u = options["axis"], X.shape[options["axis"]], ulp(X.dtype)
    # below the smallest normal number the dtype keeps no relative precision
    floor = 64 * n * np.finfo(X.dtype).tiny
    xmax = np.abs(xhat_ref).max(0)
    # the condition number of x̂ in X: rounding X by u moves x̂ by about u · max|x| / d
    cond = np.abs(per_feature(X, axis).astype(np.float64)).max(0) * inv_ref
    size_Y = np.abs(gamma) * (1 + xmax + cond) + np.abs(beta)
    error_Y = per_feature(np.abs(Y.astype(np.float64) - per_feature(Y_ref, axis)), axis)
    assert np.all(error_Y <= 64 * n * u * size_Y + floor)
    g = np.abs(per_feature(dY, axis).astype(np.float64) * gamma.astype(np.float64))
    kappa = _kappa(cache)
    with np.errstate(over="ignore"):
        size_dX = inv_ref * g.sum(0) * (2 + 2 * kappa * n * xmax**2) * (1 + cond)
    size_dX = np.where(np.isfinite(size_dX), size_dX, np.inf)
    error_dX = per_feature(np.abs(dX.astype(np.float64) - per_feature(dX_ref, axis)), axis)
    assert np.all(error_dX <= 64 * n * u * size_dX + floor)


options_strategy = st.fixed_dictionaries({
    "eps": st.sampled_from(EPSILONS),
    "ddof": st.sampled_from((0, 1)),
    "axis": st.sampled_from((0, 1)),
    "eps_placement": st.sampled_from(("inside", "outside")),
})


@st.composite
def raw_input(draw, elements, dtype=np.float64):
    options = draw(options_strategy)
    n, p = draw(st.integers(2, 5)), draw(st.integers(1, 3))
    shape = (n, p) if options["axis"] == 0 else (p, n)
    X = draw(arrays(dtype, shape, elements=elements))
    gamma = draw(arrays(dtype, p, elements=st.floats(-4, 4, width=32)))
    beta = draw(arrays(dtype, p, elements=st.floats(-4, 4, width=32)))
    dY = draw(arrays(dtype, shape, elements=st.integers(-8, 8).map(float)))
    return X, gamma, beta, dY, options


@given(raw_input(st.floats(-1e6, 1e6, allow_subnormal=False).filter(lambda v: v == 0 or abs(v) > 1e-6)
                 | st.integers(-5, 5).map(float)))
def test_moderate_input_with_spread_clear_error_or_correct_answer(case):
    """Moderate values whose features are not nearly constant: the answer must be correct.

    "Correct" here and below: within a few N·u of the 80-digit reference, in units of the
    condition number max|x|/d of x̂, which is what rounding the input alone costs.
    """
    X, gamma, beta, dY, options = case
    rows = per_feature(X, options["axis"])
    spread = rows.max(0) - rows.min(0)
    assume(np.all(spread > 1e-3 * np.abs(rows).max(0)))
    _check_clear_error_or_correct(X, gamma, beta, dY, options)


# The three tests below run without shrinking (a failure is reported as drawn, in a second rather than a minute),
# and the RuntimeWarnings of the failing code are muted.
NO_SHRINK = (Phase.explicit, Phase.generate)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@settings(phases=NO_SHRINK)
@given(raw_input(st.just(0.0)), st.floats(-1e6, 1e6, allow_subnormal=False))
def test_constant_features_clear_error_or_correct_answer(case, value):
    """A feature constant in floating point has zero variance: refused with ε = 0, x̂ = 0 with ε > 0."""
    X, gamma, beta, dY, options = case
    _check_clear_error_or_correct(X + value, gamma, beta, dY, options)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@settings(phases=NO_SHRINK)
@given(raw_input(st.floats(allow_nan=False, allow_infinity=False)))
def test_any_finite_float64_clear_error_or_correct_answer(case):
    """Any finite float64 values (the whole range, subnormals included, constant columns too)."""
    _check_clear_error_or_correct(*case)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@settings(phases=NO_SHRINK)
@given(raw_input(st.floats(allow_nan=False, allow_infinity=False, width=32), dtype=np.float32))
def test_any_finite_float32_clear_error_or_correct_answer(case):
    _check_clear_error_or_correct(*case)


@given(
    raw_input(st.floats(allow_nan=True, allow_infinity=True)),
    st.sampled_from(["nan", "inf", "batch of one", "ddof", "eps", "placement", "axis", "gamma shape", "dY shape"]),
)
def test_bad_input_is_refused_clearly(case, defect):
    """Each defect, injected into otherwise arbitrary input, raises ValueError/TypeError naming the argument."""
    X, gamma, beta, dY, options = case
    options = dict(options)
    if defect not in ("nan", "inf"):
        X = np.where(np.isfinite(X), X, 0.0)
    expected_name = {"nan": "X", "inf": "X", "batch of one": "X", "ddof": "ddof", "eps": "eps",
                     "placement": "eps_placement", "axis": "axis", "gamma shape": "gamma", "dY shape": "dY"}[defect]
    X = X.copy()
    if defect == "nan":
        X.flat[0] = math.nan
    elif defect == "inf":
        X.flat[-1] = -math.inf
    elif defect == "batch of one":
        X = X.take([0], axis=options["axis"])
        dY = dY.take([0], axis=options["axis"])
    elif defect == "ddof":
        options["ddof"] = X.shape[options["axis"]]
        expected_name = "X"  # the message names X's batch and ddof
    elif defect == "eps":
        options["eps"] = -1e-3
    elif defect == "placement":
        options["eps_placement"] = "beside"
    elif defect == "axis":
        options["axis"] = 2
    elif defect == "gamma shape":
        gamma = np.append(gamma, 1.0)
    if defect == "dY shape":
        X = np.arange(X.size, dtype=np.float64).reshape(X.shape) ** 2
        _, cache = batchnorm.forward(X, gamma, beta, **{**options, "eps": 0.1})
        with pytest.raises((ValueError, TypeError), match=expected_name):
            batchnorm.backward(dY[:, :-1] if dY.shape[1] > 1 else dY[:-1], cache)
        return
    with pytest.raises((ValueError, TypeError), match=expected_name):
        batchnorm.forward(X, gamma, beta, **options)
