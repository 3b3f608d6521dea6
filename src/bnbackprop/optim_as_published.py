"""The sources' optimizer update rules exactly as they print them, kept to be judged.

Nothing here is meant for use. Each class reproduces one source's rule so that the book can
run it step by step beside :mod:`bnbackprop.optim` and beside the formula the same source
prints. All of them work like the blog post's classes: one instance per parameter array,
``update(w, grad)`` returns the new array and keeps the state on the instance.

* ``Notes*``: the lecture notes' appendix "Optimizing Neural Networks" (seed 003), written
  from its LaTeX formulas: running averages, momentum in its two formulations, the rule it
  calls "adadelta", and Adam with ε inside the square root.
* ``Blog*``: the blog post's optimizer classes (seed 004), code copied verbatim apart from
  the class names (prefixed ``Blog``) and comments, bugs included.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

# --- seed 003: the lecture notes -------------------------------------------------------


def notes_running_average(c: Sequence[float], gamma: Sequence[float] | float) -> list[float]:
    """The notes' running average ``C_0 = 0``, ``C_t = γ_t C_{t-1} + (1 - γ_t) c_t``.

    ``gamma`` is one number (a moving average) or one ``γ_t`` per datum. Returns
    ``[C_1, …, C_T]``. Works on SymPy expressions too.
    """
    gammas = [gamma] * len(c) if not isinstance(gamma, Sequence) else list(gamma)
    if len(gammas) != len(c):
        raise ValueError(f"need one gamma per datum: {len(gammas)} gammas for {len(c)} data")
    running, out = 0, []
    for c_t, gamma_t in zip(c, gammas, strict=True):
        running = gamma_t * running + (1 - gamma_t) * c_t
        out.append(running)
    return out


class NotesMomentumV:
    """The notes' momentum, first form: ``V_t = γ V_{t-1} + η ∇J(W_{t-1})``, ``W_t = W_{t-1} - V_t``."""

    def __init__(self, eta: float, gamma: float) -> None:
        self.eta, self.gamma, self.V = eta, gamma, None

    def update(self, W, grad):
        if self.V is None:
            self.V = np.zeros(np.shape(W))
        self.V = self.gamma * self.V + self.eta * grad
        return W - self.V


class NotesMomentumM:
    """The notes' momentum, second form: ``M_t = γ M_{t-1} + (1 - γ) ∇J(W_{t-1})``, ``W_t = W_{t-1} - η' M_t``."""

    def __init__(self, eta_prime: float, gamma: float) -> None:
        self.eta_prime, self.gamma, self.M = eta_prime, gamma, None

    def update(self, W, grad):
        if self.M is None:
            self.M = np.zeros(np.shape(W))
        self.M = self.gamma * self.M + (1 - self.gamma) * grad
        return W - self.eta_prime * self.M


class NotesAdadelta:
    """The notes' "adadelta": ``G_t = γ G_{t-1} + (1 - γ) g_t²``, ``W_t = W_{t-1} - η g_t / √(G_t + ε)``.

    This is RMSprop with ε inside the root; Zeiler's Adadelta is
    :class:`bnbackprop.optim.Adadelta`.
    """

    def __init__(self, eta: float, gamma: float, eps: float) -> None:
        self.eta, self.gamma, self.eps, self.G = eta, gamma, eps, None

    def update(self, W, grad):
        if self.G is None:
            self.G = np.zeros(np.shape(W))
        self.G = self.gamma * self.G + (1 - self.gamma) * grad**2
        return W - self.eta / np.sqrt(self.G + self.eps) * grad


class NotesAdam:
    """The notes' Adam: bias-corrected ``m̂``, ``v̂`` and ``W_t = W_{t-1} - η m̂_t / √(v̂_t + ε)``.

    ε sits inside the square root; Kingma and Ba add it to ``√v̂_t``.
    """

    def __init__(self, eta: float, B1: float = 0.9, B2: float = 0.999, eps: float = 1e-8) -> None:
        self.eta, self.B1, self.B2, self.eps = eta, B1, B2, eps
        self.m = self.v = None
        self.t = 0

    def update(self, W, grad):
        if self.m is None:
            self.m, self.v = np.zeros(np.shape(W)), np.zeros(np.shape(W))
        self.t += 1
        self.m = self.B1 * self.m + (1 - self.B1) * grad
        self.v = self.B2 * self.v + (1 - self.B2) * grad**2
        m_hat = self.m / (1 - self.B1**self.t)
        v_hat = self.v / (1 - self.B2**self.t)
        return W - self.eta / np.sqrt(v_hat + self.eps) * m_hat


# --- seed 004: the blog post, code verbatim ----------------------------------------------


class BlogStochasticGradientDescent:
    """The blog's ``StochasticGradientDescent``: ``v = momentum·v + lr·g``, ``w - v``."""

    def __init__(self, learning_rate=0.01, momentum=0.8):
        self.lr = learning_rate
        self.momentum = momentum
        self.velocity = None

    def update(self, w, w_grad):
        if self.velocity is None:
            self.velocity = np.zeros(np.shape(w))
        self.velocity = self.momentum * self.velocity + self.lr * w_grad
        return w - self.velocity


class BlogNesterovAcceleratedGradient:
    """The blog's ``NesterovAcceleratedGradient``, verbatim.

    Two departures from the formula it prints: the gradient is clipped to [-1, 1], and the
    velocity starts as an empty array that is used before the line that would initialise it.
    """

    def __init__(self, learning_rate=0.001, momentum=0.4):
        self.lr = learning_rate
        self.momentum = momentum
        self.velocity = np.array([])

    def update(self, w, grad_func: Callable):
        w_grad_ = grad_func(w - self.momentum * self.velocity)
        w_grad_ = np.clip(w_grad_, -1, 1)
        if not self.velocity.any():
            self.velocity = np.zeros(np.shape(w))

        self.velocity = self.momentum * self.velocity + self.lr * w_grad_
        return w - self.velocity


class BlogAdagrad:
    """The blog's ``Adagrad``: ``G += g²``, ``w - lr·g/√(G + ε)`` with ε = 1e-8 fixed."""

    def __init__(self, learning_rate=0.01):
        self.lr = learning_rate
        self.G = None
        self.eps = 1e-8

    def update(self, w, w_grad):
        if self.G is None:
            self.G = np.zeros(np.shape(w))
        self.G += np.power(w_grad, 2)
        return w - self.lr * w_grad / np.sqrt(self.G + self.eps)


class BlogRMSprop:
    """The blog's ``RMSprop``: ``E = ρE + (1 - ρ)g²``, ``w - lr·g/√(E + ε)`` with ε = 1e-8 fixed."""

    def __init__(self, learning_rate=0.01, rho=0.9):
        self.lr = learning_rate
        self.Eg = None
        self.eps = 1e-8
        self.rho = rho

    def update(self, w, w_grad):
        if self.Eg is None:
            self.Eg = np.zeros(np.shape(w_grad))
        self.Eg = self.rho * self.Eg + (1 - self.rho) * np.power(w_grad, 2)
        return w - self.lr * w_grad / np.sqrt(self.Eg + self.eps)


class BlogAdam:
    """The blog's ``Adam``, verbatim: its "bias correction" divides by ``1 - β`` instead of ``1 - β^t``."""

    def __init__(self, learning_rate=0.001, b1=0.9, b2=0.999):
        self.lr = learning_rate
        self.eps = 1e-8
        self.m, self.v = None, None
        self.b1, self.b2 = b1, b2

    def update(self, w, w_grad):
        if self.m is None:
            self.m = np.zeros(w_grad.shape)
            self.v = np.zeros(w_grad.shape)

        self.m = self.b1 * self.m + (1 - self.b1) * w_grad
        self.v = self.b2 * self.v + (1 - self.b2) * np.power(w_grad, 2)

        m_hat = self.m / (1 - self.b1)
        v_hat = self.v / (1 - self.b2)
        return w - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
