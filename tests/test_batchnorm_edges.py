"""Numbers at the edges: values near the float limits, constant features, float16, overflowing
outputs, and memory shared with the caller. Either a correct answer or a clear error."""

import array_api_strict
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnbackprop import batchnorm
from bnbackprop.gradcheck import relative_error

RNG = np.random.default_rng(12)
UNIT = RNG.normal(size=(64, 3))  # a batch of unit scale; the edge cases are scaled copies of it
GAMMA, BETA, DY = RNG.normal(size=3), RNG.normal(size=3), RNG.normal(size=(64, 3))


def unit_result(**options):
    Y, cache = batchnorm.forward(UNIT, GAMMA, BETA, eps=0.0, **options)
    return (Y, *batchnorm.backward(DY, cache))


def to_numpy(a):
    return a if isinstance(a, np.ndarray) else np.from_dlpack(a)


# (dtype, scale, offset): X = (UNIT + offset) * scale. With ε = 0, Y, dγ and dβ do not depend
# on the scale or the offset and dX scales as 1/scale: the exact answer is the unit batch's.
LIMITS = [
    (np.float64, 1e150, 0.0),  # squares near 1e300: the sum of squares overflows for large N
    (np.float64, 1e153, 0.0),  # squares 1e306: the sum of 64 of them overflows
    (np.float64, 1e-150, 0.0),  # squares 1e-300: below tiny/ε, partly subnormal
    (np.float64, 1e-160, 0.0),  # squares 1e-320: subnormal, most digits lost
    (np.float64, 1e-170, 0.0),  # squares underflow to 0: the naive variance is 0
    (np.float64, 1e-300, 0.0),
    (np.float64, 1e140, 1e3),  # a large mean next to the spread
    (np.float32, 1e18, 0.0),  # float32 range ends at 3.4e38: squares of 1e19 overflow
    (np.float32, 1e-19, 0.0),  # squares 1e-38: subnormal in float32
    (np.float32, 1e-25, 0.0),  # squares underflow to 0 in float32
    (np.float32, 1e-30, 1e2),
]


@pytest.mark.parametrize("library", ("numpy", "array-api-strict"))
@pytest.mark.parametrize(("dtype", "scale", "offset"), LIMITS, ids=lambda v: str(v))
def test_features_near_the_float_limits_normalise_correctly(library, dtype, scale, offset):
    X = ((UNIT + offset) * scale).astype(dtype)
    assert np.all(np.isfinite(X))
    convert = np.asarray if library == "numpy" else array_api_strict.asarray
    Y, cache = batchnorm.forward(convert(X), convert(GAMMA.astype(dtype)), convert(BETA.astype(dtype)), eps=0.0)
    dX, dgamma, dbeta = (to_numpy(a) for a in batchnorm.backward(convert(DY.astype(dtype)), cache))
    Y_unit, dX_unit, dgamma_unit, dbeta_unit = unit_result()
    resolution = np.finfo(dtype).eps
    # the input itself carries a relative rounding error of ε_machine · |mean| / σ
    bound = 64 * resolution * (1 + offset)
    assert relative_error(to_numpy(Y), Y_unit) < bound
    assert relative_error(dX.astype(np.float64) * scale, dX_unit) < bound
    assert relative_error(dgamma, dgamma_unit) < bound
    assert relative_error(dbeta, dbeta_unit) < bound


@pytest.mark.parametrize(("dtype", "scale"), [(np.float64, 1e-150), (np.float64, 1e150), (np.float32, 1e-18)])
@pytest.mark.parametrize("eps", (1e-5, 1e-300))
@pytest.mark.parametrize("placement", ("inside", "outside"))
def test_eps_next_to_extreme_variances_follows_the_formula(dtype, scale, eps, placement):
    """x̂ = (x - μ)/√(σ² + ε) or (x - μ)/(σ + ε), computed for σ² anywhere from 1e-300 to 1e300."""
    X = (UNIT * scale).astype(dtype)
    Y, cache = batchnorm.forward(X, np.ones(3), np.zeros(3), eps=eps, eps_placement=placement)
    # the formula in float64 on exactly scaled (power-of-two) data, then scaled back
    shift = 2.0 ** np.round(np.log2(scale))
    centred = (X.astype(np.float64) / shift) - (X.astype(np.float64) / shift).mean(axis=0)
    sigma = np.sqrt((centred**2).mean(axis=0))
    if placement == "inside":
        expected = centred / (np.sqrt(sigma**2 + eps / shift**2) if eps / shift**2 < 1e300 else np.sqrt(eps) / shift)
    else:
        expected = centred / (sigma + eps / shift)
    assert relative_error(Y, expected) < 64 * np.finfo(dtype).eps
    assert np.all(np.isfinite(cache.inv_denom))


@pytest.mark.parametrize(("dtype", "scale"), [(np.float64, 1e155), (np.float64, 1e200), (np.float32, 1e21)])
def test_a_variance_beyond_the_float_range_is_refused(dtype, scale):
    X = (UNIT * scale).astype(dtype)
    for call in (
        lambda: batchnorm.forward(X, np.ones(3), np.zeros(3)),
        lambda: batchnorm.batch_statistics(X),
        lambda: batchnorm.forward(array_api_strict.asarray(X), np.ones(3), np.zeros(3)),
    ):
        with pytest.raises(ValueError, match=r"variance of feature\(s\) \[0, 1, 2\].*overflows"):
            call()


def test_batch_statistics_refuse_a_variance_that_underflows_and_return_one_that_does_not():
    with pytest.raises(ValueError, match=r"variance of feature\(s\) \[0, 1, 2\].*underflows"):
        batchnorm.batch_statistics(UNIT * 1e-170)
    mean, var = batchnorm.batch_statistics(UNIT * 2.0**-490)  # σ² near 2**-980, normal
    assert relative_error(var, UNIT.var(axis=0) * 2.0**-980) < 1e-14
    assert relative_error(mean, UNIT.mean(axis=0) * 2.0**-490) < 1e-14


def test_subnormal_spread_normalises_and_the_backward_pass_refuses():
    X = UNIT * 1e-310  # σ is subnormal: x̂ is representable, 1/σ (hence dX) is not
    Y, cache = batchnorm.forward(X, GAMMA, BETA, eps=0.0)
    assert relative_error(Y, unit_result()[0]) < 1e-2  # the input keeps only about 11 bits
    with pytest.raises(ValueError, match=r"backward: 1/denominator of feature\(s\) \[0, 1, 2\] overflows"):
        batchnorm.backward(DY, cache)


@pytest.mark.parametrize("n", (3, 6, 7))
@pytest.mark.parametrize("placement", ("inside", "outside"))
def test_a_feature_constant_in_floating_point_has_zero_variance(n, placement):
    X = np.column_stack([np.full(n, 0.1), np.arange(n, dtype=float)])
    assert X[:, 0].mean() != 0.1  # the computed mean is inexact for these N: the naive x̂ is ±1
    beta = np.array([0.5, 0.0])
    Y, cache = batchnorm.forward(X, np.array([2.0, 1.0]), beta, eps=1e-5, eps_placement=placement)
    assert np.all(cache.xhat[:, 0] == 0) and np.all(Y[:, 0] == 0.5)
    assert cache.mean[0] == 0.1 and cache.var[0] == 0
    dY = np.arange(2.0 * n).reshape(n, 2)
    dX, _, _ = batchnorm.backward(dY, cache)
    # a constant feature's x̂ is 0, so dX is γ/denominator times the centred dY
    assert np.allclose(dX[:, 0], 2.0 * (dY[:, 0] - dY[:, 0].mean()) * cache.inv_denom[0], rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match=r"feature\(s\) \[0\] .*zero variance and eps=0"):
        batchnorm.forward(X, np.ones(2), np.zeros(2), eps=0.0, eps_placement=placement)


def test_a_constant_feature_whose_sum_overflows_is_still_constant():
    X = np.column_stack([np.full(5, 1.7e308), UNIT[:5, 0]])
    Y, cache = batchnorm.forward(X, np.ones(2), np.zeros(2), eps=1e-5)
    assert cache.mean[0] == 1.7e308 and cache.var[0] == 0 and np.all(Y[:, 0] == 0)
    assert relative_error(Y[:, 1], batchnorm.forward(UNIT[:5, :1], np.ones(1), np.zeros(1))[0][:, 0]) < 1e-15


def test_a_constant_channel_of_a_4d_batch_is_named():
    X = RNG.normal(size=(4, 3, 2, 2))
    X[:, 1] = 1 / 3
    with pytest.raises(ValueError, match=r"feature\(s\) \[1\] of X \(4, 3, 2, 2\) have zero variance"):
        batchnorm.forward(X, np.ones(3), np.zeros(3), axis=(0, 2, 3), eps=0.0)
    Y, _ = batchnorm.forward(X, np.ones(3), np.zeros(3), axis=(0, 2, 3), eps=1e-3)
    assert np.all(Y[:, 1] == 0)


@pytest.mark.parametrize("c", (0.1, 7.0, 3e100, 1e-300))
def test_a_spread_of_one_unit_in_the_last_place_is_not_constant(c):
    """Three entries c and one next float above: x̂ = (-1, -1, -1, 3)/√3 exactly, whatever c."""
    X = np.array([[c], [c], [c], [np.nextafter(c, np.inf)]])
    Y, _ = batchnorm.forward(X, np.ones(1), np.zeros(1), eps=0.0)
    assert np.allclose(Y[:, 0], np.array([-1, -1, -1, 3]) / np.sqrt(3), rtol=1e-15, atol=0)


def test_outputs_that_would_overflow_raise():
    with pytest.raises(ValueError, match=r"forward: the output Y = γ ⊙ x̂ \+ β overflows float64"):
        batchnorm.forward(UNIT, np.full(3, 1e308), np.full(3, 1e308))
    with pytest.raises(ValueError, match=r"forward_inference: x̂ = \(X - mean\) / denominator overflows"):
        far = np.array([[1e308], [-1e308]])
        batchnorm.forward_inference(far, np.ones(1), np.zeros(1), np.zeros(1), np.ones(1) * 1e-20)
    _, nearly_constant = batchnorm.forward(np.array([[0.0], [1e-200]]), np.ones(1), np.zeros(1), eps=1e-300)
    with pytest.raises(ValueError, match="backward: dX, dgamma or dbeta overflows float64"):
        batchnorm.backward(np.array([[1e200], [-1e200]]), nearly_constant)
    _, huge_gamma = batchnorm.forward(np.array([[0.0], [1e-200]]), np.full(1, 1e300), np.zeros(1), eps=1e-300)
    with pytest.raises(ValueError, match="backward: γ/denominator overflows float64"):
        batchnorm.backward(np.array([[1.0], [-1.0]]), huge_gamma)
    _, cache = batchnorm.forward(UNIT, GAMMA, BETA)
    with pytest.raises(ValueError, match="backward: the sum of dY over the batch overflows"):
        batchnorm.backward(np.full(UNIT.shape, 1e307), cache)
    _, cache32 = batchnorm.forward(UNIT.astype(np.float32), GAMMA, BETA)
    with pytest.raises(ValueError, match="dY holds values beyond the range of float32"):
        batchnorm.backward(np.full(UNIT.shape, 1e39), cache32)  # overflows float32 on the way in


def test_float16_is_computed_in_float32_and_returned_in_float16():
    X = (UNIT * 300 + 1000).astype(np.float16)  # squares of 300 overflow float16 (max 65504)
    Y, cache = batchnorm.forward(X, GAMMA, BETA)
    dX, dgamma, dbeta = batchnorm.backward(DY.astype(np.float16), cache)
    assert Y.dtype == dX.dtype == dgamma.dtype == dbeta.dtype == np.float16
    assert cache.xhat.dtype == np.float32 and cache.dtype == np.float16
    Y64, cache64 = batchnorm.forward(X.astype(np.float64), GAMMA, BETA)
    grads64 = batchnorm.backward(DY.astype(np.float16).astype(np.float64), cache64)
    # float16 keeps 11 bits (4.9e-4 relative): the outputs are the float64 answer for the
    # same float16 input, rounded once more to float16
    assert relative_error(Y.astype(np.float64), Y64) < 1e-3
    for low, high in zip((dX, dgamma, dbeta), grads64, strict=True):
        assert relative_error(low.astype(np.float64), high) < 1e-3
    with pytest.raises(ValueError, match="overflows float16"):
        batchnorm.forward(X, np.full(3, 6e4), np.full(3, 6e4))
    with pytest.raises(ValueError, match=r"variance of feature\(s\) \[0, 1, 2\] .* overflows float16"):
        batchnorm.batch_statistics(X)  # σ ≈ 300: σ² ≈ 9e4 is beyond float16's 65504
    mean, var = batchnorm.batch_statistics(X / 10)
    assert mean.dtype == var.dtype == np.float16
    assert relative_error(var.astype(np.float64), (X / 10).astype(np.float64).var(axis=0)) < 1e-3


def test_nothing_shares_memory_with_the_caller():
    X, gamma, beta, dY = UNIT.copy(), GAMMA.copy(), BETA.copy(), DY.copy()
    _, cache = batchnorm.forward(X, gamma, beta)
    expected = batchnorm.backward(dY, cache)
    X += 1.0
    gamma *= 3.0
    beta[:] = 0.0
    for a, b in zip(batchnorm.backward(dY, cache), expected, strict=True):
        assert np.array_equal(a, b)

    mean, var = np.zeros(3), np.ones(3)
    _, fixed = batchnorm.forward_inference(UNIT, gamma, beta, mean, var)
    expected = batchnorm.backward(dY, fixed)
    mean += 5.0
    var *= 4.0
    gamma *= 2.0
    for a, b in zip(batchnorm.backward(dY, fixed), expected, strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(fixed.mean, np.zeros(3)) and np.array_equal(fixed.var, np.ones(3))
    for field in ("xhat", "mean", "var", "inv_denom", "gamma", "kappa"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(fixed, field)[0] = 1.0

    layer = batchnorm.BatchNorm(3)
    weights = np.full(3, 2.0)
    layer.gamma, layer.beta = weights, weights
    weights[:] = -1.0
    assert np.array_equal(layer.gamma, np.full(3, 2.0)) and np.array_equal(layer.beta, np.full(3, 2.0))
    assert not np.shares_memory(layer.gamma, layer.beta)
    layer.gamma -= 0.5  # an optimizer's in-place step still reaches the layer
    assert np.array_equal(layer.gamma, np.full(3, 1.5))
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\)"):
        layer.gamma = np.ones(4)
    layer.forward(UNIT)
    running = layer.running_mean.copy()
    layer.running_mean = running
    running += 1.0
    assert not np.array_equal(layer.running_mean, running)


def test_a_batch_of_one_in_training_mode_is_refused_in_every_entry_point():
    with pytest.raises(ValueError, match=r"batch of at least 2 .*a batch of 1"):
        batchnorm.forward(UNIT[:1], GAMMA, BETA)
    with pytest.raises(ValueError, match=r"batch of at least 2 .*a batch of 1"):
        batchnorm.BatchNorm(3).forward(UNIT[:1])
    with pytest.raises(ValueError, match=r"batch of 1 .*no variance with ddof=1"):
        batchnorm.batch_statistics(UNIT[:1], ddof=1)
    with pytest.raises(ValueError, match=r"batch of at least 2 .*a batch of 1"):
        batchnorm.forward(array_api_strict.asarray(UNIT[:1]), GAMMA, BETA)


@settings(max_examples=150, derandomize=True, deadline=None)
@given(
    n=st.integers(2, 9),
    p=st.integers(1, 3),
    axis=st.sampled_from((0, 1)),
    ddof=st.sampled_from((0, 1)),
    dtype=st.sampled_from((np.float64, np.float32)),
    exponent=st.floats(-1.0, 1.0),
    offset=st.sampled_from((0.0, 10.0, 1e3)),
    seed=st.integers(0, 2**16),
)
def test_any_scale_gives_a_clear_error_or_the_correct_answer(n, p, axis, ddof, dtype, exponent, offset, seed):
    """Scales from 1e-150 to 1e150 in float64 and 1e-30 to 1e30 in float32, with ε = 0 so that
    the exact answer is that of the same input divided by a power of 2 (computed in float64)."""
    if n <= ddof:
        return
    rng = np.random.default_rng(seed)
    shape = (n, p) if axis == 0 else (p, n)
    log_scale = exponent * (150 if dtype == np.float64 else 30)
    X = ((rng.normal(size=shape) + offset) * 10.0**log_scale).astype(dtype)
    gamma, beta, dY = rng.normal(size=p), rng.normal(size=p), rng.normal(size=shape)
    try:
        Y, cache = batchnorm.forward(X, gamma, beta, eps=0.0, ddof=ddof, axis=axis)
        dX, dgamma, dbeta = batchnorm.backward(dY, cache)
    except ValueError as error:
        assert any(words in str(error) for words in ("zero variance and eps=0", "overflows"))
        return
    for result in (Y, dX, dgamma, dbeta):
        assert result.dtype == dtype and np.all(np.isfinite(result))
    power = 2.0 ** np.floor(np.log2(np.abs(X.astype(np.float64)).max()))
    Y_ref, cache_ref = batchnorm.forward(X.astype(np.float64) / power, gamma, beta, eps=0.0, ddof=ddof, axis=axis)
    dX_ref, dgamma_ref, dbeta_ref = batchnorm.backward(dY, cache_ref)
    # the input carries a relative rounding error of ε_machine · |mean| / σ, and sums add √N;
    # errors are measured against the size of the terms, since sums such as dX for N = 2 vanish
    bound = 64 * np.finfo(dtype).eps * (1 + offset) * np.sqrt(n)
    gamma_b, beta_b, inv_denom_b = (np.expand_dims(v, axis) for v in (gamma, beta, cache_ref.inv_denom))
    terms = {
        "Y": (Y, Y_ref, np.abs(gamma_b * cache_ref.xhat) + np.abs(beta_b)),
        "dX": (dX.astype(np.float64) * power, dX_ref, (np.abs(dY * gamma_b).sum(axis=axis) * inv_denom_b).max()),
        "dgamma": (dgamma, dgamma_ref, np.abs(dY * cache_ref.xhat).sum(axis=axis)),
        "dbeta": (dbeta, dbeta_ref, np.abs(dY).sum(axis=axis)),
    }
    for name, (result, reference, size) in terms.items():
        assert np.all(np.abs(result - reference) <= bound * size), name
