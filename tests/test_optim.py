"""Tests of bnbackprop.optim: hand-derived first steps, PyTorch over many steps, quadratics, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bnbackprop.optim import SGD, Adadelta, AdaGrad, Adam, AdamW, RMSprop

# --- first steps derived by hand -------------------------------------------------------
# One parameter w0 = 2, gradients g1 = 3 then g2 = -1 (a made-up sequence: the optimizers
# only see the numbers). Each expected value is the update rule written out for t = 1, 2.

W0, G1, G2 = 2.0, 3.0, -1.0


def run_two_steps(optimizer):
    w = np.array([W0])
    optimizer.step({"w": w}, {"w": np.array([G1])})
    w1 = float(w[0])
    optimizer.step({"w": w}, {"w": np.array([G2])})
    return w1, float(w[0])


def test_sgd_plain_first_steps():
    w1, w2 = run_two_steps(SGD(lr=0.1))
    assert w1 == pytest.approx(2.0 - 0.1 * 3.0, abs=1e-15)  # 1.7
    assert w2 == pytest.approx(1.7 + 0.1 * 1.0, abs=1e-15)  # 1.8


def test_sgd_momentum_first_steps():
    # b1 = g1 = 3, w1 = 2 - 0.1*3 = 1.7; b2 = 0.9*3 + (-1) = 1.7, w2 = 1.7 - 0.17 = 1.53
    w1, w2 = run_two_steps(SGD(lr=0.1, momentum=0.9))
    assert w1 == pytest.approx(1.7, abs=1e-15)
    assert w2 == pytest.approx(1.53, abs=1e-15)


def test_sgd_nesterov_first_steps():
    # b1 = 3, w1 = 2 - 0.1*(3 + 0.9*3) = 1.43; b2 = 1.7, w2 = 1.43 - 0.1*(-1 + 0.9*1.7) = 1.377
    w1, w2 = run_two_steps(SGD(lr=0.1, momentum=0.9, nesterov=True))
    assert w1 == pytest.approx(1.43, abs=1e-14)
    assert w2 == pytest.approx(1.377, abs=1e-14)


def test_adagrad_first_steps():
    # G1 = 9, w1 = 2 - 0.5*3/(3 + eps); G2 = 10, w2 = w1 + 0.5/(sqrt(10) + eps)
    eps = 1e-10
    w1, w2 = run_two_steps(AdaGrad(lr=0.5))
    assert w1 == pytest.approx(2.0 - 1.5 / (3.0 + eps), abs=1e-15)
    assert w2 == pytest.approx(w1 + 0.5 / (math.sqrt(10.0) + eps), abs=1e-15)
    w1_in, _ = run_two_steps(AdaGrad(lr=0.5, eps=0.16, eps_placement="inside"))
    assert w1_in == pytest.approx(2.0 - 1.5 / math.sqrt(9.16), abs=1e-15)


def test_rmsprop_first_steps():
    # s1 = 0.1*9 = 0.9, w1 = 2 - 0.01*3/(sqrt(0.9) + eps); s2 = 0.81 + 0.1 = 0.91
    eps = 1e-8
    w1, w2 = run_two_steps(RMSprop(lr=0.01))
    assert w1 == pytest.approx(2.0 - 0.03 / (math.sqrt(0.9) + eps), abs=1e-15)
    assert w2 == pytest.approx(w1 + 0.01 / (math.sqrt(0.91) + eps), abs=1e-15)
    w1_in, _ = run_two_steps(RMSprop(lr=0.01, eps=0.1, eps_placement="inside"))
    assert w1_in == pytest.approx(2.0 - 0.03 / math.sqrt(1.0), abs=1e-15)


def test_adadelta_first_steps():
    # E[g²]1 = 0.1*9 = 0.9; Δw1 = -sqrt(0 + eps)/sqrt(0.9 + eps)*3; E[Δw²]1 = 0.1*Δw1²
    # E[g²]2 = 0.81 + 0.1 = 0.91; Δw2 = -sqrt(E[Δw²]1 + eps)/sqrt(0.91 + eps)*(-1)
    eps = 1e-6
    delta1 = -math.sqrt(eps) / math.sqrt(0.9 + eps) * 3.0
    delta2 = math.sqrt(0.1 * delta1**2 + eps) / math.sqrt(0.91 + eps)
    w1, w2 = run_two_steps(Adadelta())
    assert w1 == pytest.approx(2.0 + delta1, abs=1e-15)
    assert w2 == pytest.approx(2.0 + delta1 + delta2, abs=1e-15)
    w1_lr, w2_lr = run_two_steps(Adadelta(lr=0.5))  # lr scales the step, not the accumulator
    assert w1_lr == pytest.approx(2.0 + 0.5 * delta1, abs=1e-15)
    assert w2_lr == pytest.approx(2.0 + 0.5 * (delta1 + delta2), abs=1e-15)


def test_adam_first_steps():
    # t=1: m̂ = g1, v̂ = g1², w1 = 2 - 0.1*3/(3 + eps)
    # t=2: m = 0.9*0.3 + 0.1*(-1) = 0.17, m̂ = 0.17/0.19; v = 0.999*0.009 + 0.001 = 0.009991,
    #      v̂ = 0.009991/0.001999
    eps = 1e-8
    w1, w2 = run_two_steps(Adam(lr=0.1))
    assert w1 == pytest.approx(2.0 - 0.3 / (3.0 + eps), abs=1e-15)
    m_hat, v_hat = 0.17 / 0.19, 0.009991 / 0.001999
    assert w2 == pytest.approx(w1 - 0.1 * m_hat / (math.sqrt(v_hat) + eps), abs=1e-12)
    w1_in, _ = run_two_steps(Adam(lr=0.1, eps=0.16, eps_placement="inside"))
    assert w1_in == pytest.approx(2.0 - 0.3 / math.sqrt(9.16), abs=1e-15)


# --- against torch.optim over many steps --------------------------------------------------

SHAPES = {"weight": (3, 4), "bias": (4,), "scalar": ()}


def loss_gradient(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Gradient of Σ ½ λ (w - c)² + 0.3 Σ cos(2w): anisotropic and not quadratic."""
    grads = {}
    for index, (key, w) in enumerate(sorted(params.items())):
        lam = 0.5 + 3.0 * index + np.arange(np.size(w)).reshape(np.shape(w))
        grads[key] = lam * (w - 1.0 - index) - 0.6 * np.sin(2 * w)
    return grads


def start_params(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {key: rng.normal(size=shape) for key, shape in SHAPES.items()}


TORCH_PAIRS = [
    (lambda: SGD(lr=0.02), lambda p: torch.optim.SGD(p, lr=0.02)),
    (lambda: SGD(lr=0.02, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9)),
    (
        lambda: SGD(lr=0.02, momentum=0.8, nesterov=True),
        lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.8, nesterov=True),
    ),
    (lambda: AdaGrad(lr=0.3), lambda p: torch.optim.Adagrad(p, lr=0.3)),
    (lambda: AdaGrad(lr=0.3, eps=1e-3), lambda p: torch.optim.Adagrad(p, lr=0.3, eps=1e-3)),
    (lambda: RMSprop(lr=0.01), lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9)),
    (
        lambda: RMSprop(lr=0.01, rho=0.99, eps=1e-3),
        lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99, eps=1e-3),
    ),
    (lambda: Adadelta(), lambda p: torch.optim.Adadelta(p)),
    (lambda: Adadelta(rho=0.95, eps=1e-4, lr=0.7), lambda p: torch.optim.Adadelta(p, lr=0.7, rho=0.95, eps=1e-4)),
    (lambda: Adam(lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    (
        lambda: Adam(lr=0.05, beta1=0.5, beta2=0.9, eps=1e-3),
        lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.5, 0.9), eps=1e-3),
    ),
    # dampening (torch's buffer starts as the undamped gradient) and L2 weight decay
    (
        lambda: SGD(lr=0.02, momentum=0.9, dampening=0.9),
        lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9, dampening=0.9),
    ),
    (
        lambda: SGD(lr=0.02, momentum=0.5, dampening=0.3, weight_decay=0.1),
        lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.5, dampening=0.3, weight_decay=0.1),
    ),
    (lambda: SGD(lr=0.02, weight_decay=0.5), lambda p: torch.optim.SGD(p, lr=0.02, weight_decay=0.5)),
    (
        lambda: SGD(lr=0.02, momentum=0.8, nesterov=True, weight_decay=0.2),
        lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.8, nesterov=True, weight_decay=0.2),
    ),
    (lambda: AdaGrad(lr=0.3, weight_decay=0.2), lambda p: torch.optim.Adagrad(p, lr=0.3, weight_decay=0.2)),
    (
        lambda: RMSprop(lr=0.01, rho=0.99, weight_decay=0.3),
        lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99, weight_decay=0.3),
    ),
    (
        lambda: Adadelta(lr=0.7, rho=0.95, eps=1e-4, weight_decay=0.1),
        lambda p: torch.optim.Adadelta(p, lr=0.7, rho=0.95, eps=1e-4, weight_decay=0.1),
    ),
    (lambda: Adam(lr=0.01, weight_decay=0.3), lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.3)),
    # AMSGrad and decoupled weight decay
    (lambda: Adam(lr=0.05, amsgrad=True), lambda p: torch.optim.Adam(p, lr=0.05, amsgrad=True)),
    (
        lambda: Adam(lr=0.05, beta1=0.5, beta2=0.9, weight_decay=0.1, amsgrad=True),
        lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.5, 0.9), weight_decay=0.1, amsgrad=True),
    ),
    (lambda: AdamW(lr=0.01), lambda p: torch.optim.AdamW(p, lr=0.01)),
    (
        lambda: AdamW(lr=0.05, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.5),
        lambda p: torch.optim.AdamW(p, lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.5),
    ),
    (
        lambda: AdamW(lr=0.05, weight_decay=0.2, amsgrad=True),
        lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.2, amsgrad=True),
    ),
]


def step_torch(reference, tensors):
    """One step of a torch optimizer, fed the same loss gradient as ours, in the tensors' dtype."""
    grads = loss_gradient({key: tensor.detach().numpy() for key, tensor in tensors.items()})
    for key, tensor in tensors.items():
        tensor.grad = torch.tensor(grads[key], dtype=tensor.dtype)
    reference.step()


@pytest.mark.parametrize(("ours", "theirs"), TORCH_PAIRS)
def test_matches_torch_over_300_steps(ours, theirs):
    params = start_params()
    tensors = {key: torch.tensor(value.copy(), dtype=torch.float64) for key, value in params.items()}
    optimizer, reference = ours(), theirs(list(tensors.values()))
    moved = 0.0
    for _ in range(300):
        optimizer.step(params, loss_gradient(params))
        step_torch(reference, tensors)
    for key, tensor in tensors.items():
        np.testing.assert_allclose(params[key], tensor.detach().numpy(), rtol=1e-10, atol=1e-12)
        moved += float(np.abs(params[key] - start_params()[key]).sum())
    assert moved > 1.0  # the comparison is not between two parameters that never moved


def test_sgd_follows_torch_under_a_learning_rate_schedule():
    # PyTorch's velocity holds gradients, the learning rate multiplies it at each step.
    params = start_params()
    tensors = {key: torch.tensor(value.copy(), dtype=torch.float64) for key, value in params.items()}
    optimizer = SGD(lr=0.05, momentum=0.9)
    reference = torch.optim.SGD(list(tensors.values()), lr=0.05, momentum=0.9)
    for step in range(60):
        lr = 0.05 if step < 30 else 0.005
        optimizer.lr = lr
        for group in reference.param_groups:
            group["lr"] = lr
        optimizer.step(params, loss_gradient(params))
        step_torch(reference, tensors)
    for key, tensor in tensors.items():
        np.testing.assert_allclose(params[key], tensor.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_float32_parameters_stay_float32_and_follow_torch():
    params = {key: value.astype(np.float32) for key, value in start_params().items()}
    tensors = {key: torch.tensor(value.copy()) for key, value in params.items()}
    optimizer, reference = Adam(lr=0.01), torch.optim.Adam(list(tensors.values()), lr=0.01)
    for _ in range(50):
        optimizer.step(params, loss_gradient(params))
        step_torch(reference, tensors)
    for key, tensor in tensors.items():
        assert params[key].dtype == np.float32
        np.testing.assert_allclose(params[key], tensor.detach().numpy(), rtol=1e-4, atol=1e-5)


# --- known behaviour on quadratics and linear functions -----------------------------------


def test_gradient_descent_on_a_quadratic_is_geometric():
    # f = ½ λ w²: w_t = (1 - lr λ)^t w_0, oscillating when lr λ > 1
    for lr in (0.1, 0.15):
        w = np.array([1.0])
        optimizer = SGD(lr=lr)
        for t in range(1, 41):
            optimizer.step({"w": w}, {"w": 10.0 * w})
            assert w[0] == pytest.approx((1 - 10.0 * lr) ** t, rel=1e-12)


def test_gradient_descent_diverges_above_two_over_lambda():
    w = np.array([1.0])
    optimizer = SGD(lr=0.21)  # lr λ = 2.1 > 2
    for _ in range(20):
        optimizer.step({"w": w}, {"w": 10.0 * w})
    assert abs(w[0]) == pytest.approx(1.1**20, rel=1e-12)


def test_momentum_converges_where_plain_descent_diverges():
    # heavy ball on ½ λ w² is stable for lr λ < 2 (1 + μ): with μ = 0.9, lr λ = 2.1 converges
    w = np.array([1.0])
    optimizer = SGD(lr=0.21, momentum=0.9)
    for _ in range(2000):
        optimizer.step({"w": w}, {"w": 10.0 * w})
    assert abs(w[0]) < 1e-6


@pytest.mark.parametrize(
    "make",
    [
        lambda: SGD(lr=0.05),
        lambda: SGD(lr=0.02, momentum=0.9),
        lambda: SGD(lr=0.02, momentum=0.9, nesterov=True),
        lambda: AdaGrad(lr=0.5),
        lambda: RMSprop(lr=0.001),
        lambda: Adadelta(rho=0.95),
        lambda: Adam(lr=0.005),
    ],
)
def test_every_optimizer_reaches_the_minimum_of_a_quadratic(make):
    # f = ½ (w - c)ᵀ A (w - c) with A = diag(1, 10): minimiser c
    A, c = np.diag([1.0, 10.0]), np.array([1.0, -2.0])
    w = np.array([-3.0, 3.0])
    optimizer = make()
    for _ in range(20000):
        optimizer.step({"w": w}, {"w": A @ (w - c)})
    assert np.linalg.norm(w - c) < 0.01


def test_adagrad_step_decays_like_one_over_root_t():
    # constant gradient g: G_t = t g², step = lr g / (√t |g| + ε)
    w, g, eps = np.array([0.0]), 0.7, 1e-10
    optimizer = AdaGrad(lr=0.2)
    for t in range(1, 101):
        before = w[0]
        optimizer.step({"w": w}, {"w": np.array([g])})
        assert before - w[0] == pytest.approx(0.2 * g / (math.sqrt(t) * g + eps), rel=1e-12)


def test_rmsprop_step_under_a_constant_gradient():
    # s_t = (1 - ρ^t) g², step = lr g / (√(1 - ρ^t) |g| + ε)
    w, g = np.array([0.0]), 0.7
    optimizer = RMSprop(lr=0.01, rho=0.9, eps=1e-8)
    for t in range(1, 101):
        before = w[0]
        optimizer.step({"w": w}, {"w": np.array([g])})
        assert before - w[0] == pytest.approx(0.01 * g / (math.sqrt(1 - 0.9**t) * g + 1e-8), rel=1e-12)


def test_adam_step_is_lr_under_a_constant_gradient():
    # m_t = (1 - β1^t) g and v_t = (1 - β2^t) g², so m̂ = g and v̂ = g²: every step is lr g/(|g| + ε)
    w, g = np.array([0.0]), -0.3
    optimizer = Adam(lr=0.01)
    for _ in range(200):
        before = w[0]
        optimizer.step({"w": w}, {"w": np.array([g])})
        assert w[0] - before == pytest.approx(0.01 * 0.3 / (0.3 + 1e-8), rel=1e-9)


def test_adadelta_is_invariant_to_the_scale_of_the_gradient_when_eps_is_negligible():
    # Zeiler's units argument: Δw depends on g only through g / RMS[g] when ε ≪ g², so
    # scaling every gradient by 1000 leaves the trajectory unchanged apart from ε terms.
    paths = []
    for scale in (1.0, 1000.0):
        w, optimizer, path = np.array([1.0]), Adadelta(rho=0.9, eps=1e-12), []
        for _ in range(50):
            optimizer.step({"w": w}, {"w": scale * 2.0 * w})
            path.append(w[0])
        paths.append(np.array(path))
    np.testing.assert_allclose(paths[0], paths[1], rtol=1e-4)
    assert paths[0][-1] != 1.0


def test_state_is_kept_per_key():
    # two keys stepped together equal two separate optimizers stepping one key each
    joint = Adam(lr=0.1)
    a, b = np.array([1.0, 2.0]), np.array([[3.0]])
    alone_a, alone_b = Adam(lr=0.1), Adam(lr=0.1)
    a2, b2 = a.copy(), b.copy()
    for _ in range(5):
        joint.step({"a": a, "b": b}, {"a": 2 * a, "b": -b})
        alone_a.step({"a": a2}, {"a": 2 * a2})
        alone_b.step({"b": b2}, {"b": -b2})
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)
    assert joint.state["a"]["step"] == 5


def test_update_is_in_place():
    w = np.array([1.0, 2.0])
    view = w
    SGD(lr=0.5).step({"w": w}, {"w": np.array([1.0, 1.0])})
    assert view is w
    np.testing.assert_array_equal(view, [0.5, 1.5])


def test_the_new_options_change_the_path():
    # each option compared with torch above must actually act on the test problem (its path differs)
    def final(make):
        params, path = start_params(), []
        optimizer = make()
        for _ in range(300):
            optimizer.step(params, loss_gradient(params))
            path.append(np.concatenate([value.ravel() for value in params.values()]))
        return np.array(path)

    pairs = [
        (lambda: SGD(lr=0.02, momentum=0.9), lambda: SGD(lr=0.02, momentum=0.9, dampening=0.9)),
        (lambda: SGD(lr=0.02), lambda: SGD(lr=0.02, weight_decay=0.5)),
        (lambda: Adam(lr=0.05), lambda: Adam(lr=0.05, amsgrad=True)),
        (lambda: Adam(lr=0.01), lambda: Adam(lr=0.01, weight_decay=0.3)),
        (lambda: Adam(lr=0.01, weight_decay=0.3), lambda: AdamW(lr=0.01, weight_decay=0.3)),
        (lambda: Adam(lr=0.01), lambda: AdamW(lr=0.01)),
    ]
    for plain, option in pairs:
        assert np.abs(final(plain) - final(option)).max() > 1e-3


def test_dampened_first_step_is_undamped_like_torch():
    # b_1 = g_1 (not (1 - dampening) g_1); b_2 = μ b_1 + (1 - dampening) g_2
    w1, w2 = run_two_steps(SGD(lr=0.1, momentum=0.9, dampening=0.9))
    assert w1 == pytest.approx(2.0 - 0.1 * 3.0, abs=1e-15)
    assert w2 == pytest.approx(w1 - 0.1 * (0.9 * 3.0 + 0.1 * -1.0), abs=1e-15)


def test_dampening_mu_is_not_the_notes_averaged_momentum():
    # fed the same gradients, torch's b_t and the notes' M_t = μ M + (1 - μ) g differ by μ^t g_1
    mu, gradients = 0.9, np.random.default_rng(2).normal(size=30)
    optimizer, w, M = SGD(lr=0.0, momentum=mu, dampening=mu), np.zeros(1), 0.0
    for t, g in enumerate(gradients, start=1):
        optimizer.step({"w": w}, {"w": np.array([g])})
        M = mu * M + (1 - mu) * g
        assert optimizer.state["w"]["velocity"][0] - M == pytest.approx(mu**t * gradients[0], abs=1e-14)


def test_adamw_decay_is_decoupled_from_the_moments():
    # with a zero gradient AdamW shrinks w by (1 - lr wd) per step and m, v stay zero;
    # Adam's L2 decay enters m and v and, divided by sqrt(v_hat), moves w by about lr per step
    w = np.array([2.0])
    adamw = AdamW(lr=0.1, weight_decay=0.5)
    for t in range(1, 21):
        adamw.step({"w": w}, {"w": np.zeros(1)})
        assert w[0] == pytest.approx(2.0 * (1 - 0.05) ** t, rel=1e-13)
    assert adamw.state["w"]["m"][0] == 0 and adamw.state["w"]["v"][0] == 0
    w_l2 = np.array([2.0])
    adam = Adam(lr=0.1, weight_decay=0.5)
    adam.step({"w": w_l2}, {"w": np.zeros(1)})
    assert w_l2[0] == pytest.approx(2.0 - 0.1, rel=1e-7)


def test_amsgrad_keeps_the_largest_second_moment():
    # a large gradient followed by small ones: v decays, v_max does not, and the steps are smaller
    plain, ams = Adam(lr=0.1), Adam(lr=0.1, amsgrad=True)
    w_plain, w_ams = np.array([0.0]), np.array([0.0])
    for g in [10.0] + [0.1] * 50:
        plain.step({"w": w_plain}, {"w": np.array([g])})
        ams.step({"w": w_ams}, {"w": np.array([g])})
    state = ams.state["w"]
    assert state["v_max"][0] == pytest.approx(0.001 * 100.0, rel=1e-12)
    assert state["v"][0] < 0.96 * state["v_max"][0]
    assert abs(w_ams[0]) < abs(w_plain[0])


@pytest.mark.parametrize(
    ("call", "keyword"),
    [
        (lambda: SGD(0.1, 0.9), "momentum=0.9"),
        (lambda: SGD(0.1, 0.9, True), "nesterov=True"),
        (lambda: AdaGrad(0.1, 1e-3), "eps=0.001"),
        (lambda: RMSprop(0.1, 0.99), "rho=0.99"),
        (lambda: Adadelta(0.95, 1e-4), "rho=0.95, eps=0.0001"),
        (lambda: Adam(0.1, 0.5), "beta1=0.5"),
        (lambda: AdamW(0.1, 0.5), "beta1="),
    ],
)
def test_hyper_parameters_after_lr_are_keyword_only(call, keyword):
    message = r"takes only lr by position; pass the hyper-parameters after it by keyword"
    with pytest.raises(TypeError, match=message) as error:
        call()
    assert keyword in str(error.value)


def test_lr_alone_may_be_positional_and_signatures_show_the_keywords():
    import inspect

    assert SGD(0.1).lr == 0.1 and Adadelta(0.5).lr == 0.5 and Adadelta(0.5).rho == 0.9
    for cls in (SGD, AdaGrad, RMSprop, Adadelta, Adam, AdamW):
        parameters = list(inspect.signature(cls).parameters.values())
        assert parameters[0].name == "lr"
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters[1:]), cls


# --- bad input ------------------------------------------------------------------------------


def test_missing_and_extra_keys():
    optimizer = SGD(lr=0.1)
    with pytest.raises(ValueError, match=r"same keys: no gradient for \['b'\]"):
        optimizer.step({"a": np.zeros(2), "b": np.zeros(2)}, {"a": np.zeros(2)})
    with pytest.raises(ValueError, match=r"gradients without a parameter for \['c'\]"):
        optimizer.step({"a": np.zeros(2)}, {"a": np.zeros(2), "c": np.zeros(2)})
    with pytest.raises(ValueError, match="params is empty"):
        optimizer.step({}, {})


def test_key_set_and_shape_must_not_change_between_steps():
    optimizer = Adam()
    optimizer.step({"a": np.zeros(2)}, {"a": np.ones(2)})
    with pytest.raises(ValueError, match="parameters changed between steps"):
        optimizer.step({"b": np.zeros(2)}, {"b": np.ones(2)})
    with pytest.raises(ValueError, match=r"changed shape between steps: \(2,\) before, \(3,\) now"):
        optimizer.step({"a": np.zeros(3)}, {"a": np.ones(3)})


def test_gradient_shape_and_values():
    optimizer = RMSprop(lr=0.1)
    with pytest.raises(ValueError, match=r"grads\['a'\] must have shape \(2, 3\)"):
        optimizer.step({"a": np.zeros((2, 3))}, {"a": np.zeros((3, 2))})
    with pytest.raises(ValueError, match=r"grads\['a'\] holds 1 non-finite"):
        optimizer.step({"a": np.zeros(2)}, {"a": np.array([1.0, np.nan])})
    with pytest.raises(ValueError, match=r"params\['a'\] holds 1 non-finite"):
        optimizer.step({"a": np.array([np.inf, 0.0])}, {"a": np.zeros(2)})
    with pytest.raises(TypeError, match=r"grads\['a'\] must hold real numbers"):
        optimizer.step({"a": np.zeros(2)}, {"a": np.array(["x", "y"])})


def test_parameters_must_be_updatable_in_place():
    optimizer = SGD(lr=0.1)
    with pytest.raises(TypeError, match=r"params\['a'\] must be a floating-point NumPy array.*int64"):
        optimizer.step({"a": np.array([1, 2])}, {"a": np.ones(2)})
    with pytest.raises(TypeError, match=r"params\['a'\] must be a floating-point NumPy array.*list"):
        optimizer.step({"a": [1.0, 2.0]}, {"a": np.ones(2)})
    frozen = np.zeros(2)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        optimizer.step({"a": frozen}, {"a": np.ones(2)})
    with pytest.raises(TypeError, match="params must be a dict"):
        optimizer.step([np.zeros(2)], {"a": np.ones(2)})


def test_a_failing_step_changes_nothing():
    # eps = 0 and a zero gradient make AdaGrad divide 0 by 0 for key "b"; "a" must stay put
    optimizer = AdaGrad(lr=0.1, eps=0.0)
    a, b = np.array([1.0]), np.array([1.0])
    with pytest.raises(ValueError, match=r"params\['b'\] non-finite .* eps=0"):
        optimizer.step({"a": a, "b": b}, {"a": np.array([1.0]), "b": np.array([0.0])})
    assert a[0] == 1.0 and b[0] == 1.0
    assert optimizer.state == {}


def test_divergence_is_reported_not_returned_as_inf():
    w = np.array([1e300])
    with pytest.raises(ValueError, match="non-finite"):
        SGD(lr=1e10).step({"w": w}, {"w": w.copy()})
    assert w[0] == 1e300


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: SGD(lr=-0.1), ValueError, "lr must be a finite number >= 0"),
        (lambda: SGD(lr=float("nan")), ValueError, "lr must be a finite number >= 0"),
        (lambda: SGD(lr=True), TypeError, "lr must be a real number"),
        (lambda: SGD(lr=0.1, momentum=1.0), ValueError, r"momentum must lie in \[0, 1\)"),
        (lambda: SGD(lr=0.1, momentum=-0.5), ValueError, "momentum must be a finite number >= 0"),
        (lambda: SGD(lr=0.1, nesterov=True), ValueError, "nesterov=True needs momentum > 0"),
        (lambda: SGD(lr=0.1, momentum=0.9, nesterov=1), TypeError, "nesterov must be True or False"),
        (lambda: AdaGrad(lr=0.1, eps=-1e-10), ValueError, "eps must be a finite number >= 0"),
        (lambda: AdaGrad(lr=0.1, eps_placement="middle"), ValueError, "eps_placement must be one of"),
        (lambda: RMSprop(lr=0.1, rho=1.0), ValueError, r"rho must lie in \[0, 1\)"),
        (lambda: Adadelta(rho=1.5), ValueError, r"rho must lie in \[0, 1\)"),
        (lambda: Adadelta(lr="1"), TypeError, "lr must be a real number"),
        (lambda: Adam(beta1=1.0), ValueError, r"beta1 must lie in \[0, 1\)"),
        (lambda: Adam(beta2=-0.1), ValueError, "beta2 must be a finite number >= 0"),
        (lambda: Adam(eps=float("inf")), ValueError, "eps must be a finite number >= 0"),
        (lambda: SGD(lr=0.1, dampening=1.5), ValueError, r"dampening must lie in \[0, 1\]"),
        (lambda: SGD(lr=0.1, momentum=0.9, dampening=0.5, nesterov=True), ValueError, "dampening=0"),
        (lambda: SGD(lr=0.1, weight_decay=-1.0), ValueError, "weight_decay must be a finite number >= 0"),
        (lambda: Adam(amsgrad=1), TypeError, "amsgrad must be True or False"),
        (lambda: AdamW(weight_decay=float("nan")), ValueError, "weight_decay must be a finite number >= 0"),
        (lambda: Adadelta(weight_decay="0.1"), TypeError, "weight_decay must be a real number"),
    ],
)
def test_invalid_hyper_parameters(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_learning_rate_set_later_is_checked():
    optimizer = SGD(lr=0.1)
    with pytest.raises(ValueError, match="lr must be a finite number >= 0"):
        optimizer.lr = -1.0
    assert optimizer.lr == 0.1
