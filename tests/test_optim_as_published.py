"""The sources' optimizer rules: each against the formula its source prints, and against bnbackprop.optim.

The printed formulas are written here in closed form over the whole gradient history (sums of
powers), not as the recursions of the module, so that the two are computed differently.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from bnbackprop.optim import SGD, Adadelta, AdaGrad, Adam, RMSprop
from bnbackprop.optim_as_published import (
    BlogAdagrad,
    BlogAdam,
    BlogNesterovAcceleratedGradient,
    BlogRMSprop,
    BlogStochasticGradientDescent,
    NotesAdadelta,
    NotesAdam,
    NotesMomentumM,
    NotesMomentumV,
    notes_running_average,
)

A = np.diag([1.0, 8.0])
C = np.array([1.0, -0.5])


def grad_quadratic(w: np.ndarray) -> np.ndarray:
    return A @ (w - C)


def moving_average(values: list, decay: float):
    """The printed closed form Σ_{s=1}^{t} decay^(t-s) (1 - decay) c_s of a running average started at 0."""
    t = len(values)
    return sum(decay ** (t - s) * (1 - decay) * values[s - 1] for s in range(1, t + 1))


def run_published(optimizer, steps: int, w0=(-1.0, 1.0)) -> np.ndarray:
    w, path = np.array(w0), []
    for _ in range(steps):
        w = optimizer.update(w, grad_quadratic(w))
        path.append(w)
    return np.array(path)


def run_ours(optimizer, steps: int, w0=(-1.0, 1.0)) -> np.ndarray:
    w, path = np.array(w0), []
    for _ in range(steps):
        optimizer.step({"w": w}, {"w": grad_quadratic(w)})
        path.append(w.copy())
    return np.array(path)


# --- seed 003: the lecture notes ----------------------------------------------------------


def test_running_average_closed_form_symbolically():
    # C_T = Σ_t γ^{T-t} (1 - γ) c_t, proved with symbols for T = 6
    gamma = sp.Symbol("gamma")
    c = sp.symbols("c1:7")
    running = notes_running_average(list(c), gamma)
    T = len(c)
    closed = sum(gamma ** (T - t) * (1 - gamma) * c[t - 1] for t in range(1, T + 1))
    assert sp.expand(running[-1] - closed) == 0


def test_running_average_with_gamma_t_minus_one_over_t_is_the_mean():
    c = sp.symbols("c1:9")
    gammas = [sp.Rational(t - 1, t) for t in range(1, len(c) + 1)]
    running = notes_running_average(list(c), gammas)
    for T, value in enumerate(running, start=1):
        assert sp.expand(value - sum(c[:T]) / T) == 0


def test_running_average_needs_one_gamma_per_datum():
    with pytest.raises(ValueError, match="one gamma per datum"):
        notes_running_average([1.0, 2.0], [0.5])


def test_two_momentum_forms_agree_with_eta_equal_eta_prime_times_one_minus_gamma():
    for gamma in (0.1, 0.5, 0.9):
        eta_prime = 0.05
        v_form = run_published(NotesMomentumV(eta=eta_prime * (1 - gamma), gamma=gamma), 100)
        m_form = run_published(NotesMomentumM(eta_prime=eta_prime, gamma=gamma), 100)
        np.testing.assert_allclose(v_form, m_form, rtol=1e-12, atol=1e-14)
        assert np.abs(v_form[-1] - v_form[0]).max() > 0.05
    # and not with η = η' (the condition matters)
    v_form = run_published(NotesMomentumV(eta=0.05, gamma=0.5), 20)
    m_form = run_published(NotesMomentumM(eta_prime=0.05, gamma=0.5), 20)
    assert np.abs(v_form - m_form).max() > 1e-3


def test_notes_momentum_is_torch_style_sgd_for_a_constant_learning_rate():
    np.testing.assert_allclose(
        run_published(NotesMomentumV(eta=0.04, gamma=0.9), 150),
        run_ours(SGD(lr=0.04, momentum=0.9), 150),
        rtol=1e-11,
        atol=1e-13,
    )


def test_notes_adadelta_is_rmsprop_with_eps_inside_and_not_zeilers_adadelta():
    notes = run_published(NotesAdadelta(eta=0.01, gamma=0.9, eps=1e-8), 200)
    np.testing.assert_allclose(
        notes, run_ours(RMSprop(lr=0.01, rho=0.9, eps=1e-8, eps_placement="inside"), 200), rtol=1e-12
    )
    zeiler = run_ours(Adadelta(rho=0.9, eps=1e-6), 200)
    assert np.abs(notes - zeiler).max() > 0.1


def test_notes_adadelta_against_its_printed_formula():
    # W_t = W_{t-1} - η g_t / √(G_t + ε), G_t = Σ_s γ^{t-s} (1 - γ) g_s² (closed form)
    eta, gamma, eps = 0.01, 0.9, 1e-8
    notes, w, history = NotesAdadelta(eta, gamma, eps), np.array([-1.0, 1.0]), []
    w_formula = w.copy()
    for _ in range(50):
        w = notes.update(w, grad_quadratic(w))
        g = grad_quadratic(w_formula)
        history.append(g)
        G = moving_average([h**2 for h in history], gamma)
        w_formula = w_formula - eta / np.sqrt(G + eps) * g
        np.testing.assert_allclose(w, w_formula, rtol=1e-12)


def adam_formula_path(eta, b1, b2, eps, steps, eps_inside):
    """Kingma–Ba / the notes' Adam from closed-form m_t = Σ b1^{t-s}(1-b1) g_s."""
    w, history, path = np.array([-1.0, 1.0]), [], []
    for t in range(1, steps + 1):
        history.append(grad_quadratic(w))
        m = moving_average(history, b1)
        v = moving_average([h**2 for h in history], b2)
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        root = np.sqrt(v_hat + eps) if eps_inside else np.sqrt(v_hat) + eps
        w = w - eta * m_hat / root
        path.append(w)
    return np.array(path)


def test_notes_adam_against_its_printed_formula_and_ours():
    notes = run_published(NotesAdam(eta=0.05), 60)
    np.testing.assert_allclose(notes, adam_formula_path(0.05, 0.9, 0.999, 1e-8, 60, True), rtol=1e-11)
    np.testing.assert_allclose(notes, run_ours(Adam(lr=0.05, eps_placement="inside"), 60), rtol=1e-11)


def test_notes_adam_eps_inside_the_root_matters_for_small_gradients():
    # with ε = 1e-8 inside the root the floor is √ε = 1e-4: a constant gradient of 1e-6 moves
    # Kingma–Ba's Adam by ≈ lr per step, the notes' by ≈ lr · 1e-6 / 1e-4 = lr / 100
    g = 1e-6
    w_notes, notes = np.array([0.0]), NotesAdam(eta=0.1)
    w_ours, ours = np.array([0.0]), Adam(lr=0.1)
    for _ in range(10):
        w_notes = notes.update(w_notes, np.array([g]))
        ours.step({"w": w_ours}, {"w": np.array([g])})
    assert -w_ours[0] == pytest.approx(10 * 0.1 * g / (g + 1e-8), rel=1e-9)
    assert -w_notes[0] == pytest.approx(10 * 0.1 * g / math.sqrt(g**2 + 1e-8), rel=1e-9)
    assert -w_ours[0] / -w_notes[0] > 90


def test_adam_bias_correction_coefficients_sum_to_one():
    # m_t = B1^t m_0 + Σ_s (1 - B1) B1^{t-s} g_s: coefficients sum to 1 (SymPy, t = 7)
    B1 = sp.Symbol("B1")
    t = 7
    total = B1**t + sum((1 - B1) * B1 ** (t - s) for s in range(1, t + 1))
    assert sp.simplify(total - 1) == 0


# --- seed 004: the blog post ------------------------------------------------------------


def test_blog_sgd_against_its_printed_formula_and_ours():
    # v_t = momentum·v_{t-1} + η ∇f(w_t), w_{t+1} = w_t - v_t, in closed form v_t = Σ μ^{t-s} η g_s
    eta, mu = 0.03, 0.8
    blog, w, w_formula, history = BlogStochasticGradientDescent(eta, mu), np.array([-1.0, 1.0]), None, []
    w_formula = w.copy()
    for _ in range(80):
        w = blog.update(w, grad_quadratic(w))
        history.append(grad_quadratic(w_formula))
        t = len(history)
        w_formula = w_formula - sum(mu ** (t - s) * eta * history[s - 1] for s in range(1, t + 1))
        np.testing.assert_allclose(w, w_formula, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(
        run_published(BlogStochasticGradientDescent(eta, mu), 80), run_ours(SGD(lr=eta, momentum=mu), 80), rtol=1e-11
    )


def test_blog_sgd_differs_from_torch_style_sgd_under_a_schedule():
    # learning rate inside the velocity: old velocity keeps the old rate
    blog, ours = BlogStochasticGradientDescent(0.05, 0.9), SGD(lr=0.05, momentum=0.9)
    w_blog, w_ours = np.array([-1.0, 1.0]), np.array([-1.0, 1.0])
    for step in range(20):
        lr = 0.05 if step < 10 else 0.005
        blog.lr, ours.lr = lr, lr
        w_blog = blog.update(w_blog, grad_quadratic(w_blog))
        ours.step({"w": w_ours}, {"w": grad_quadratic(w_ours)})
    assert np.abs(w_blog - w_ours).max() > 1e-3


def test_blog_nesterov_fails_on_its_first_call():
    with pytest.raises(ValueError, match="could not be broadcast"):
        BlogNesterovAcceleratedGradient().update(np.array([-1.0, 1.0]), grad_quadratic)
    # a one-element parameter silently becomes an empty array
    out = BlogNesterovAcceleratedGradient().update(np.array([1.0]), lambda w: 2 * w)
    assert out.shape == (0,)


def nesterov_formula_path(eta, mu, steps, clip):
    """v_{t+1} = μ v_t + η ∇f(w_t - μ v_t), w_{t+1} = w_t - v_{t+1} (Sutskever et al.)."""
    w, v, path, lookahead = np.array([-1.0, 1.0]), np.zeros(2), [], []
    for _ in range(steps):
        g = grad_quadratic(w - mu * v)
        if clip:
            g = np.clip(g, -1, 1)
        v = mu * v + eta * g
        w = w - v
        path.append(w)
        lookahead.append(w - mu * v)
    return np.array(path), np.array(lookahead)


def blog_nesterov_path(eta, mu, steps):
    blog = BlogNesterovAcceleratedGradient(eta, mu)
    blog.velocity = np.zeros(2)  # the repair: start from a zero velocity of the right shape
    w, path = np.array([-1.0, 1.0]), []
    for _ in range(steps):
        w = blog.update(w, grad_quadratic)
        path.append(w)
    return np.array(path)


def test_blog_nesterov_repaired_matches_its_formula_only_while_no_gradient_is_clipped():
    # starting gradient A(w0 - c) = (-2, 12): clipped on the first step
    clipped_formula, _ = nesterov_formula_path(0.02, 0.4, 60, clip=True)
    plain_formula, lookahead = nesterov_formula_path(0.02, 0.4, 60, clip=False)
    blog = blog_nesterov_path(0.02, 0.4, 60)
    np.testing.assert_allclose(blog, clipped_formula, rtol=1e-12, atol=1e-14)
    assert np.abs(blog - plain_formula).max() > 0.01
    # torch-style Nesterov SGD iterates are the look-ahead points w_t - μ v_t of the formula
    ours = run_ours(SGD(lr=0.02, momentum=0.4, nesterov=True), 60)
    np.testing.assert_allclose(ours, lookahead, rtol=1e-11, atol=1e-13)


def test_blog_adagrad_against_its_printed_formula_and_ours():
    # G_t = Σ_{i≤t} g_i², w_{t+1} = w_t - η g_t / √(G_t + ε) with ε = 1e-8
    blog, w, history = BlogAdagrad(0.1), np.array([-1.0, 1.0]), []
    w_formula = w.copy()
    for _ in range(100):
        w = blog.update(w, grad_quadratic(w))
        g = grad_quadratic(w_formula)
        history.append(g)
        w_formula = w_formula - 0.1 * g / np.sqrt(sum(h**2 for h in history) + 1e-8)
        np.testing.assert_allclose(w, w_formula, rtol=1e-12)
    ours = run_ours(AdaGrad(lr=0.1, eps=1e-8, eps_placement="inside"), 100)
    np.testing.assert_allclose(run_published(BlogAdagrad(0.1), 100), ours, rtol=1e-12)


def test_blog_rmsprop_against_its_printed_formula_and_ours():
    # E(G_t) = ρ E(G_{t-1}) + (1 - ρ) g_t², w_{t+1} = w_t - η g_t / √(E(G_t) + ε)
    rho, eta = 0.9, 0.01
    blog, w, history = BlogRMSprop(eta, rho), np.array([-1.0, 1.0]), []
    w_formula = w.copy()
    for _ in range(100):
        w = blog.update(w, grad_quadratic(w))
        g = grad_quadratic(w_formula)
        history.append(g)
        E = moving_average([h**2 for h in history], rho)
        w_formula = w_formula - eta * g / np.sqrt(E + 1e-8)
        np.testing.assert_allclose(w, w_formula, rtol=1e-12)
    ours = run_ours(RMSprop(lr=eta, rho=rho, eps=1e-8, eps_placement="inside"), 100)
    np.testing.assert_allclose(run_published(BlogRMSprop(eta, rho), 100), ours, rtol=1e-12)


def test_blog_adam_follows_its_printed_formula_which_lacks_the_power_t():
    # printed: m̂_t = m_t / (1 - β1), v̂_t = v_t / (1 - β2), w - η m̂ / (√v̂ + ε)
    b1, b2, eta, eps = 0.9, 0.999, 0.001, 1e-8
    blog, w, history = BlogAdam(eta, b1, b2), np.array([-1.0, 1.0]), []
    w_formula = w.copy()
    for _ in range(60):
        w = blog.update(w, grad_quadratic(w))
        history.append(grad_quadratic(w_formula))
        m = moving_average(history, b1)
        v = moving_average([h**2 for h in history], b2)
        w_formula = w_formula - eta * (m / (1 - b1)) / (np.sqrt(v / (1 - b2)) + eps)
        np.testing.assert_allclose(w, w_formula, rtol=1e-12)


def test_blog_adam_equals_adam_on_step_one_only():
    blog = run_published(BlogAdam(0.001), 30)
    ours = run_ours(Adam(lr=0.001), 30)
    np.testing.assert_allclose(blog[0], ours[0], rtol=1e-14)
    assert np.abs(blog[1] - ours[1]).max() > 1e-5


def test_blog_adam_step_under_a_constant_gradient():
    # m_t = (1 - b1^t) g, v_t = (1 - b2^t) g²: blog step = η (1 - b1^t)/(1 - b1) · √((1 - b2)/(1 - b2^t))
    b1, b2, eta, g = 0.9, 0.999, 0.001, 0.5
    blog, w = BlogAdam(eta, b1, b2), np.array([0.0])
    factors = []
    for t in range(1, 3001):
        before = w[0]
        w = blog.update(w, np.array([g]))
        expected = (1 - b1**t) / (1 - b1) * math.sqrt((1 - b2) / (1 - b2**t))
        assert (before - w[0]) / eta == pytest.approx(expected, rel=1e-6)
        factors.append(expected)
    assert max(factors) > 2.0 and factors[-1] < 0.35  # over ×2 early, ×√(1-b2)/(1-b1) late
