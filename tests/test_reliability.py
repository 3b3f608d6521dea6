"""Issue 8's promises outside batchnorm.py: one ε per stepwise pass, three-way proofs,
outputs checked, no state shared with the caller, float16 refused by the optimizers."""

import numpy as np
import pytest
import sympy as sp

from bnbackprop import gradcheck, layers, loops, losses, optim, question_network, stepwise, symbolic

rng = np.random.default_rng(8)
X, GAMMA, BETA, DY = rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=3), rng.normal(size=(5, 3))
x, y = sp.symbols("x y", positive=True)


# stepwise: the backward pass uses the forward pass's ε -------------------------------------


def test_stepwise_keeps_eps_in_its_forward_values_and_backward_uses_it():
    values = stepwise.forward_steps(X, GAMMA, BETA, eps=0.3)
    assert values["eps"] == 0.3
    # same gradients whether the ε is restated or not, and they are those of ε = 0.3
    implicit = stepwise.backward_steps(DY, values)
    explicit = stepwise.backward_steps(DY, values, eps=0.3)
    np.testing.assert_array_equal(implicit["total_dX"], explicit["total_dX"])
    dX_loops, _, _ = loops.backward(DY, X, GAMMA, eps=0.3)
    assert gradcheck.relative_error(implicit["total_dX"], dX_loops) < 1e-12


def test_stepwise_backward_refuses_another_eps_and_tampered_values():
    values = stepwise.forward_steps(X, GAMMA, BETA, eps=1e-5)
    with pytest.raises(ValueError, match=r"eps=0\.1 differs from the eps=1e-05"):
        stepwise.backward_steps(DY, values, eps=0.1)
    with pytest.raises(ValueError, match="changed after forward_steps"):
        stepwise.backward_steps(DY, {**values, "eps": 0.1})
    with pytest.raises(ValueError, match="forward_steps"):
        stepwise.backward_steps(DY, {k: v for k, v in values.items() if k != "eps"})


def test_stepwise_forward_copies_X():
    X_caller = X.copy()
    values = stepwise.forward_steps(X_caller, GAMMA, BETA)
    X_caller[0, 0] += 100.0
    np.testing.assert_array_equal(values["X"], X)


# prove_zero: zero, non-zero with a witness, or undecided ------------------------------------


def test_prove_zero_returns_a_proof_with_three_outcomes():
    proved = symbolic.prove_zero(sp.sqrt(x) ** 2 - x)
    assert proved.status == "zero" and proved and proved.witness is None

    refuted = symbolic.prove_zero(sp.sqrt(x + y) - sp.sqrt(x) - sp.sqrt(y))
    assert refuted.status == "nonzero" and not refuted
    value = (sp.sqrt(x + y) - sp.sqrt(x) - sp.sqrt(y)).xreplace(refuted.witness)
    assert abs(sp.N(value, 30)) > 1e-10  # the witness really is a counterexample

    # sin² + cos² = 1 holds, but trigonometric identities are outside the algebraic reduction,
    # and no point shows a non-zero value: undecided, not "false"
    undecided = symbolic.prove_zero(sp.sin(x) ** 2 + sp.cos(x) ** 2 - 1)
    assert undecided.status == "undecided" and not undecided and undecided.witness is None
    assert "no point with a clearly non-zero value" in undecided.reason


def test_nonzero_witness_respects_the_symbols_assumptions():
    negative = sp.Symbol("n", negative=True)
    integer = sp.Symbol("k", integer=True, positive=True)
    point = symbolic.nonzero_witness(negative + integer + 100, [negative, integer])
    assert point[negative] < 0 and point[integer].is_Integer


def test_nonzero_witness_needs_a_real_value():
    # √(x - 20) is imaginary at every point drawn (x ≤ 9): no real witness
    assert symbolic.nonzero_witness(sp.sqrt(x - 20), [x]) is None


# outputs checked -----------------------------------------------------------------------------


def test_relative_error_is_exact_at_the_float_limits():
    a = np.array([1e300, 2e300])
    assert gradcheck.relative_error(a, a * (1 + 1e-10)) == pytest.approx(1e-10, rel=1e-5)
    tiny = np.array([3e-320, 5e-320])  # subnormal
    assert gradcheck.relative_error(tiny, 2 * tiny) == pytest.approx(0.5, rel=0.02)


def test_losses_and_layers_refuse_to_overflow():
    with pytest.raises(ValueError, match="squared_error produced 1 non-finite"):
        losses.squared_error(np.array([1e200]), np.array([-1e200]))
    with pytest.raises(ValueError, match="linear_forward"):
        layers.linear_forward(np.full((1, 2), 1e200), np.full((2, 1), 1e200))


def test_loops_treat_a_constant_feature_as_zero_variance():
    # 0.1 three times: the summed mean is not 0.1, yet the feature is constant
    X_const = np.column_stack([np.full(3, 0.1), [1.0, 2.0, 4.0]])
    with pytest.raises(ValueError, match="zero variance and eps=0"):
        loops.forward(X_const, np.ones(2), np.zeros(2), eps=0.0)
    Y = loops.forward(X_const, np.ones(2), np.zeros(2), eps=1e-5)
    np.testing.assert_array_equal(Y[:, 0], 0.0)


# memory shared with the caller ---------------------------------------------------------------


def test_linear_backward_differentiates_the_forward_pass_that_ran():
    W = rng.normal(size=(3, 2))
    X_caller = X.copy()
    layer = layers.Linear(W.copy())
    layer.forward(X_caller)
    expected_dX, expected_dW, _ = layers.linear_backward(DY[:, :2], X, W)
    X_caller[...] = 0.0  # the caller reuses its buffer
    layer.W += 1.0  # an optimizer step before backward
    dX = layer.backward(DY[:, :2])
    np.testing.assert_array_equal(layer.dW, expected_dW)
    np.testing.assert_array_equal(dX, expected_dX)


def test_question_network_cache_does_not_follow_the_callers_arrays():
    data = question_network.load_question_data()
    X_caller = data.X.copy()
    cache = question_network.QuestionNetwork().forward(X_caller, data.G1, data.G2, data.gamma, data.beta)
    X_caller[...] = 0.0
    np.testing.assert_array_equal(cache.X, data.X)


@pytest.mark.parametrize(
    "make_params",
    [
        lambda buffer: {"a": buffer, "b": buffer},
        lambda buffer: {"a": buffer[:4], "b": buffer[3:]},
        lambda buffer: {"a": buffer.reshape(2, 3), "b": buffer[::2]},
    ],
    ids=["same array", "overlapping slices", "reshaped and strided views"],
)
def test_optimizers_refuse_parameters_that_share_memory(make_params):
    params = make_params(np.zeros(6))
    grads = {key: np.ones_like(value) for key, value in params.items()}
    with pytest.raises(ValueError, match=r"params\['a'\] and params\['b'\] share memory"):
        optim.SGD(lr=0.1).step(params, grads)


def test_optimizers_accept_disjoint_views_of_one_buffer():
    buffer = np.zeros(6)
    params = {"a": buffer[:3], "b": buffer[3:]}
    optim.SGD(lr=0.5).step(params, {"a": np.ones(3), "b": 2 * np.ones(3)})
    np.testing.assert_array_equal(buffer, [-0.5, -0.5, -0.5, -1.0, -1.0, -1.0])


@pytest.mark.parametrize(
    ("optimizer", "entry"),
    [(optim.Adam(), "v"), (optim.RMSprop(lr=0.1), "mean_sq"), (optim.AdaGrad(lr=0.1), "sum_sq"),
     (optim.Adadelta(), "mean_sq_grad")],
)
def test_optimizer_state_that_would_overflow_raises_instead_of_freezing(optimizer, entry):
    # g² = 1e400 overflows float64: v = inf would make every later step lr · m / inf = 0
    w = np.array([1.0, 2.0])
    with pytest.raises(ValueError, match=rf"state '{entry}' of params\['w'\] non-finite"):
        optimizer.step({"w": w}, {"w": np.array([1e200, 1.0])})
    np.testing.assert_array_equal(w, [1.0, 2.0])  # nothing was updated
    assert "w" not in optimizer.state


def test_optimizers_refuse_float16_parameters():
    for optimizer in (optim.SGD(lr=0.1), optim.Adam()):
        with pytest.raises(TypeError, match=r"params\['w'\] is float16"):
            optimizer.step({"w": np.ones(2, dtype=np.float16)}, {"w": np.ones(2)})
