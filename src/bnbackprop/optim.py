"""Gradient-descent optimizers on dicts of NumPy arrays: SGD, AdaGrad, RMSprop, Adadelta, Adam, AdamW.

Every optimizer has ``step(params, grads)``: ``params`` and ``grads`` are dicts with the same
keys, ``params[key]`` a floating NumPy array that is updated in place and ``grads[key]`` its
gradient, of the same shape. State (velocities, running averages, the step count) is kept
per key, so one optimizer serves a whole network. Notation below, per entry of one array:
``g`` the gradient, ``w`` the parameter, ``t = 1, 2, …`` the step, ``lr`` the learning rate.

Each class states where ε sits and how it maps onto ``torch.optim``; the tests compare all
six with PyTorch over many steps, with and without weight decay. Only the learning rate may
be passed by position; every other hyper-parameter is keyword-only, with torch's names
(``SGD(0.1, momentum=0.9)``). Positional hyper-parameters raise ``TypeError`` naming the
keyword to use: their order differed between this library and ``torch.optim`` (an earlier
``Adadelta`` took ``rho`` first, ``torch.optim.SGD``'s third argument is ``dampening``), so a
positional call could not mean one thing to every reader. Bad input raises before anything is changed: missing or
extra keys, a key set or a shape that changes between steps, non-finite gradients or
parameters, parameters that are not floating arrays (they could not be updated in place),
invalid hyper-parameters, two parameters that share memory (the same array twice, or
overlapping views: an in-place update would lose one of the two updates), and a step that
would produce non-finite parameters or non-finite state (the optimizer has diverged, a
squared gradient overflows, or ``eps=0`` divided zero by zero) — state that became
infinite would otherwise freeze a parameter silently.

Parameters must be float32 or float64. float16 is refused: its largest value is 65504, so
a squared gradient above 256 overflows the second-moment state of AdaGrad, RMSprop,
Adadelta and Adam, and their default ε (1e-10 to 1e-6) rounds to zero or to a few
subnormal steps; keep a float32 master copy of float16 weights instead.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Literal

import numpy as np

from bnbackprop._validation import (
    as_float_array,
    require_choice,
    require_finite,
    require_nonnegative_float,
    require_separate_memory,
    require_shape,
)

EpsPlacement = Literal["inside", "outside"]
EPS_PLACEMENTS = ("inside", "outside")

__all__ = ["SGD", "AdaGrad", "Adadelta", "Adam", "AdamW", "Optimizer", "RMSprop"]


def _require_unit_interval(value: object, name: str) -> float:
    """A decay rate: a number in [0, 1)."""
    number = require_nonnegative_float(value, name)
    if number >= 1:
        raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
    return number


def _keyword_only_after_lr(cls: type) -> type:
    """Make a positional hyper-parameter after ``lr`` a ``TypeError`` that names the keyword.

    ``cls._former_order`` lists the names this library once took by position (the learning
    rate included where it came first), so that the message can say what an old positional
    call meant; the keyword-only names of ``__init__`` are the ones to use now.
    """
    init = cls.__init__
    keywords = [
        name for name, parameter in inspect.signature(init).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]

    @functools.wraps(init)
    def checked_init(self, *args, **kwargs):
        if len(args) > 1:
            former = cls.__dict__.get("_former_order")
            meant = ""
            if former is not None:
                named = ", ".join(f"{name}={value!r}" for name, value in zip(former, args, strict=False))
                meant = f"; in this library's former order that was {cls.__name__}({named})"
            raise TypeError(
                f"{cls.__name__} takes only lr by position; pass the hyper-parameters after it by "
                f"keyword, one of {', '.join(k + '=' for k in keywords)} (got {len(args)} positional "
                f"arguments {args!r}{meant}; torch.optim.{cls._torch_name} orders them differently)"
            )
        init(self, *args, **kwargs)

    cls.__init__ = checked_init
    return cls


def _l2(grad: np.ndarray, param: np.ndarray, weight_decay: float) -> np.ndarray:
    """The gradient of the loss plus ``weight_decay · w``: L2 weight decay, as ``torch.optim``."""
    return grad + weight_decay * param if weight_decay else grad


def _root(second_moment: np.ndarray, eps: float, eps_placement: str) -> np.ndarray:
    """``√(s + ε)`` (ε inside) or ``√s + ε`` (ε outside)."""
    if eps_placement == "inside":
        return np.sqrt(second_moment + eps)
    return np.sqrt(second_moment) + eps


class Optimizer:
    """Base class: argument checks, per-key state, and an all-or-nothing in-place update.

    Subclasses implement ``_new_state`` (the state of a key before its first step) and
    ``_update`` (new parameter values and new state from the old ones; it must not
    modify its arguments).
    """

    def __init__(self, lr: float) -> None:
        self.lr = lr
        self.state: dict[object, dict[str, np.ndarray | int]] = {}
        self._keys: frozenset | None = None

    @property
    def lr(self) -> float:
        """The learning rate; it may be changed between steps (a schedule)."""
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = require_nonnegative_float(value, "lr")

    def _new_state(self, param: np.ndarray) -> dict[str, np.ndarray | int]:
        raise NotImplementedError

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict, t: int) -> tuple[np.ndarray, dict]:
        raise NotImplementedError

    def _check(self, params: Mapping, grads: Mapping) -> list[tuple[object, np.ndarray, np.ndarray]]:
        for name, value in (("params", params), ("grads", grads)):
            if not isinstance(value, Mapping):
                raise TypeError(f"{name} must be a dict of arrays, got {type(value).__name__}")
        missing = [key for key in params if key not in grads]
        extra = [key for key in grads if key not in params]
        if missing or extra:
            raise ValueError(
                f"params and grads must have the same keys: no gradient for {missing}, "
                f"gradients without a parameter for {extra}"
            )
        keys = frozenset(params)
        if not keys:
            raise ValueError("params is empty: nothing to optimise")
        if self._keys is not None and keys != self._keys:
            raise ValueError(
                f"the parameters changed between steps: new keys {sorted(map(str, keys - self._keys))}, "
                f"gone {sorted(map(str, self._keys - keys))}; use a new optimizer for a new set"
            )
        checked = []
        for key in params:
            param = params[key]
            if not isinstance(param, np.ndarray) or not np.issubdtype(param.dtype, np.floating):
                kind = param.dtype if isinstance(param, np.ndarray) else type(param).__name__
                raise TypeError(
                    f"params[{key!r}] must be a floating-point NumPy array (updated in place), "
                    f"got {kind}"
                )
            if param.dtype == np.float16:
                raise TypeError(
                    f"params[{key!r}] is float16, which the optimizers refuse: squared gradients above "
                    "256 overflow its state and eps rounds to 0; use float32 or float64"
                )
            if not param.flags.writeable:
                raise ValueError(f"params[{key!r}] is read-only and cannot be updated in place")
            require_finite(param, f"params[{key!r}]")
            grad = as_float_array(grads[key], f"grads[{key!r}]")
            require_shape(grad, param.shape, f"grads[{key!r}]", f"the shape of params[{key!r}]")
            require_finite(grad, f"grads[{key!r}]")
            if key in self.state:
                known = self.state[key]["shape"]
                if param.shape != known:
                    raise ValueError(
                        f"params[{key!r}] changed shape between steps: {known} before, "
                        f"{param.shape} now"
                    )
            checked.append((key, param, grad.astype(param.dtype, copy=False)))
        require_separate_memory(params, "params")
        return checked

    def step(self, params: Mapping[object, np.ndarray], grads: Mapping[object, np.ndarray]) -> None:
        """Update every ``params[key]`` in place from ``grads[key]``; all keys or none."""
        updates = []
        for key, param, grad in self._check(params, grads):
            state = self.state.get(key)
            if state is None:
                state = {"shape": param.shape, "step": 0, **self._new_state(param)}
            t = int(state["step"]) + 1
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                new_param, new_state = self._update(param, grad, state, t)
            name = type(self).__name__
            if not np.all(np.isfinite(new_param)):
                raise ValueError(
                    f"{name}.step would make params[{key!r}] non-finite (divergence, or a zero "
                    f"denominator with eps=0); nothing was updated"
                )
            for entry, value in new_state.items():
                if isinstance(value, np.ndarray) and not np.all(np.isfinite(value)):
                    raise ValueError(
                        f"{name}.step would make its state {entry!r} of params[{key!r}] non-finite "
                        f"(grads[{key!r}] too large: its square overflows {param.dtype}), which would "
                        "freeze the parameter; nothing was updated"
                    )
            updates.append((key, param, new_param, {**state, **new_state, "step": t}))
        for key, param, new_param, state in updates:
            param[...] = new_param
            self.state[key] = state
        self._keys = frozenset(params)


@_keyword_only_after_lr
class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum, as ``torch.optim.SGD``.

    Update, with velocity ``b`` and momentum ``μ``, after L2 weight decay
    ``g_t ← g_t + weight_decay · w_{t-1}``::

        b_1 = g_1,   b_t = μ b_{t-1} + (1 - dampening) g_t   (t > 1)
        w_t = w_{t-1} - lr · b_t                   (nesterov=False)
        w_t = w_{t-1} - lr · (g_t + μ b_t)         (nesterov=True)

    This is PyTorch's rule, its first step included: the velocity starts as the *undamped*
    gradient. With ``dampening=0`` (the default) that is the same as starting from ``b₀ = 0``.
    With ``dampening=μ`` it is *not* the lecture notes' averaged form
    ``M_t = μ M_{t-1} + (1 - μ) g_t``, ``M₀ = 0``: that form has ``M_1 = (1 - μ) g_1``, PyTorch's
    has ``b_1 = g_1``; fed the same gradients, ``b_t - M_t = μ^t g_1``, which fades but changes the path.
    The notes' form is ``SGD(lr=lr' (1 - μ), momentum=μ)`` (no dampening) instead.

    The sources write momentum with the learning rate inside the velocity,
    ``v_t = μ v_{t-1} + lr · g_t`` and ``w_t = w_{t-1} - v_t``: for a constant learning rate
    ``v_t = lr · b_t`` and the two produce the same iterates; they differ only when ``lr``
    changes between steps (PyTorch's velocity then carries past gradients at the new rate).

    Nesterov momentum in the sources' (Sutskever et al.) form evaluates the gradient at the
    look-ahead point ``w - μ v``; this class, like PyTorch, takes the gradient at its own
    parameters, which are exactly that look-ahead point: the iterates here equal
    ``w_t - μ v_t`` of the sources' form. No ε is involved. ``nesterov=True`` needs
    ``momentum > 0`` and ``dampening=0``, as in PyTorch.
    """

    _former_order = ("lr", "momentum", "nesterov")
    _torch_name = "SGD"

    def __init__(
        self,
        lr: float,
        *,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr)
        self.momentum = _require_unit_interval(momentum, "momentum")
        self.dampening = require_nonnegative_float(dampening, "dampening")
        if self.dampening > 1:
            raise ValueError(f"dampening must lie in [0, 1], got {dampening!r}")
        if not isinstance(nesterov, bool):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ValueError("nesterov=True needs momentum > 0 and dampening=0 (as torch.optim.SGD)")
        self.nesterov = nesterov
        self.weight_decay = require_nonnegative_float(weight_decay, "weight_decay")

    def _new_state(self, param: np.ndarray) -> dict:
        return {"velocity": np.zeros_like(param)}

    def _update(self, param, grad, state, t):
        grad = _l2(grad, param, self.weight_decay)
        if t == 1:
            velocity = grad.copy()
        else:
            velocity = self.momentum * state["velocity"] + (1 - self.dampening) * grad
        direction = grad + self.momentum * velocity if self.nesterov else velocity
        return param - self.lr * direction, {"velocity": velocity}


@_keyword_only_after_lr
class AdaGrad(Optimizer):
    """AdaGrad (Duchi, Hazan and Singer, 2011), as ``torch.optim.Adagrad``.

    Update, with the sum of squared gradients ``G₀ = 0``, after L2 weight decay
    ``g_t ← g_t + weight_decay · w_{t-1}``::

        G_t = G_{t-1} + g_t²
        w_t = w_{t-1} - lr · g_t / (√G_t + ε)      (eps_placement="outside", PyTorch)
        w_t = w_{t-1} - lr · g_t / √(G_t + ε)      (eps_placement="inside", the blog post)

    Defaults are PyTorch's (``eps=1e-10`` outside the root, ``lr_decay=0``,
    ``initial_accumulator_value=0``; the last two are not offered). For a constant gradient
    the step is ``lr/√t``: the effective learning rate only decays.
    """

    _former_order = ("lr", "eps")
    _torch_name = "Adagrad"

    def __init__(
        self,
        lr: float,
        *,
        eps: float = 1e-10,
        weight_decay: float = 0.0,
        eps_placement: EpsPlacement = "outside",
    ) -> None:
        super().__init__(lr)
        self.eps = require_nonnegative_float(eps, "eps")
        self.weight_decay = require_nonnegative_float(weight_decay, "weight_decay")
        require_choice(eps_placement, "eps_placement", EPS_PLACEMENTS)
        self.eps_placement = eps_placement

    def _new_state(self, param: np.ndarray) -> dict:
        return {"sum_sq": np.zeros_like(param)}

    def _update(self, param, grad, state, t):
        grad = _l2(grad, param, self.weight_decay)
        sum_sq = state["sum_sq"] + grad**2
        new = param - self.lr * grad / _root(sum_sq, self.eps, self.eps_placement)
        return new, {"sum_sq": sum_sq}


@_keyword_only_after_lr
class RMSprop(Optimizer):
    """RMSprop (Tieleman and Hinton, 2012), as ``torch.optim.RMSprop`` with ``alpha = rho``.

    Update, with the moving average of squared gradients ``s₀ = 0``, after L2 weight decay
    ``g_t ← g_t + weight_decay · w_{t-1}``::

        s_t = ρ s_{t-1} + (1 - ρ) g_t²
        w_t = w_{t-1} - lr · g_t / (√s_t + ε)      (eps_placement="outside", PyTorch)
        w_t = w_{t-1} - lr · g_t / √(s_t + ε)      (eps_placement="inside", the sources)

    PyTorch calls ρ ``alpha`` and defaults it to 0.99; this class defaults to the sources'
    0.9. ``momentum=0`` and ``centered=False`` in PyTorch terms. What the lecture notes call
    "adadelta" is this rule with ε inside the root, not :class:`Adadelta`.
    """

    _former_order = ("lr", "rho", "eps")
    _torch_name = "RMSprop"

    def __init__(
        self,
        lr: float,
        *,
        rho: float = 0.9,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        eps_placement: EpsPlacement = "outside",
    ) -> None:
        super().__init__(lr)
        self.rho = _require_unit_interval(rho, "rho")
        self.eps = require_nonnegative_float(eps, "eps")
        self.weight_decay = require_nonnegative_float(weight_decay, "weight_decay")
        require_choice(eps_placement, "eps_placement", EPS_PLACEMENTS)
        self.eps_placement = eps_placement

    def _new_state(self, param: np.ndarray) -> dict:
        return {"mean_sq": np.zeros_like(param)}

    def _update(self, param, grad, state, t):
        grad = _l2(grad, param, self.weight_decay)
        mean_sq = self.rho * state["mean_sq"] + (1 - self.rho) * grad**2
        new = param - self.lr * grad / _root(mean_sq, self.eps, self.eps_placement)
        return new, {"mean_sq": mean_sq}


@_keyword_only_after_lr
class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012), as ``torch.optim.Adadelta``.

    Update, with ``E[g²]₀ = E[Δw²]₀ = 0`` and ``RMS[z] = √(z + ε)`` (ε inside the root,
    as in the paper and PyTorch), after L2 weight decay ``g_t ← g_t + weight_decay · w_{t-1}``::

        E[g²]_t  = ρ E[g²]_{t-1} + (1 - ρ) g_t²
        Δw_t     = - √(E[Δw²]_{t-1} + ε) / √(E[g²]_t + ε) · g_t
        E[Δw²]_t = ρ E[Δw²]_{t-1} + (1 - ρ) Δw_t²
        w_t      = w_{t-1} + lr · Δw_t

    Zeiler's method has no learning rate (``lr = 1``, the default); PyTorch multiplies the
    step by ``lr`` but accumulates the unscaled ``Δw``, and so does this class. The ratio of
    two RMS values makes the step carry the units of ``w``. The arguments follow PyTorch:
    ``lr`` first, then ``rho=`` and ``eps=`` by keyword (this class once took ``rho`` first).
    """

    _former_order = ("rho", "eps", "lr")
    _torch_name = "Adadelta"

    def __init__(
        self, lr: float = 1.0, *, rho: float = 0.9, eps: float = 1e-6, weight_decay: float = 0.0
    ) -> None:
        super().__init__(lr)
        self.rho = _require_unit_interval(rho, "rho")
        self.eps = require_nonnegative_float(eps, "eps")
        self.weight_decay = require_nonnegative_float(weight_decay, "weight_decay")

    def _new_state(self, param: np.ndarray) -> dict:
        return {"mean_sq_grad": np.zeros_like(param), "mean_sq_delta": np.zeros_like(param)}

    def _update(self, param, grad, state, t):
        grad = _l2(grad, param, self.weight_decay)
        mean_sq_grad = self.rho * state["mean_sq_grad"] + (1 - self.rho) * grad**2
        delta = -np.sqrt(state["mean_sq_delta"] + self.eps) / np.sqrt(mean_sq_grad + self.eps) * grad
        mean_sq_delta = self.rho * state["mean_sq_delta"] + (1 - self.rho) * delta**2
        return param + self.lr * delta, {"mean_sq_grad": mean_sq_grad, "mean_sq_delta": mean_sq_delta}


@_keyword_only_after_lr
class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015), as ``torch.optim.Adam``, with optional AMSGrad.

    Update, with ``m₀ = v₀ = 0``, after L2 weight decay ``g_t ← g_t + weight_decay · w_{t-1}``::

        m_t = β₁ m_{t-1} + (1 - β₁) g_t          v_t = β₂ v_{t-1} + (1 - β₂) g_t²
        m̂_t = m_t / (1 - β₁^t)                   v̂_t = v_t / (1 - β₂^t)
        w_t = w_{t-1} - lr · m̂_t / (√v̂_t + ε)    (eps_placement="outside", paper and PyTorch)
        w_t = w_{t-1} - lr · m̂_t / √(v̂_t + ε)    (eps_placement="inside", the lecture notes)

    The bias corrections divide by ``1 - β^t``, which depends on the step ``t``; with them a
    constant gradient gives a step of ``lr`` (up to ε) from the first step on.
    ``amsgrad=True`` (Reddi, Kale and Kumar, 2018) divides by the largest ``v`` seen so far,
    ``v̂_t = max(v_1, …, v_t) / (1 - β₂^t)``, as PyTorch does (the maximum is taken of the
    uncorrected ``v``), so that the per-coordinate rate never grows. PyTorch names the two
    decays ``betas=(beta1, beta2)``; here they are two keywords.
    """

    _former_order = ("lr", "beta1", "beta2", "eps")
    _torch_name = "Adam"
    _decoupled = False

    def __init__(
        self,
        lr: float = 1e-3,
        *,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        eps_placement: EpsPlacement = "outside",
    ) -> None:
        super().__init__(lr)
        self.beta1 = _require_unit_interval(beta1, "beta1")
        self.beta2 = _require_unit_interval(beta2, "beta2")
        self.eps = require_nonnegative_float(eps, "eps")
        self.weight_decay = require_nonnegative_float(weight_decay, "weight_decay")
        if not isinstance(amsgrad, bool):
            raise TypeError(f"amsgrad must be True or False, got {amsgrad!r}")
        self.amsgrad = amsgrad
        require_choice(eps_placement, "eps_placement", EPS_PLACEMENTS)
        self.eps_placement = eps_placement

    def _new_state(self, param: np.ndarray) -> dict:
        state = {"m": np.zeros_like(param), "v": np.zeros_like(param)}
        if self.amsgrad:
            state["v_max"] = np.zeros_like(param)
        return state

    def _update(self, param, grad, state, t):
        if self._decoupled:
            decayed = param * (1 - self.lr * self.weight_decay)
        else:
            decayed = param
            grad = _l2(grad, param, self.weight_decay)
        m = self.beta1 * state["m"] + (1 - self.beta1) * grad
        v = self.beta2 * state["v"] + (1 - self.beta2) * grad**2
        new_state = {"m": m, "v": v}
        if self.amsgrad:
            v = new_state["v_max"] = np.maximum(state["v_max"], v)
        m_hat = m / (1 - self.beta1**t)
        v_hat = v / (1 - self.beta2**t)
        new = decayed - self.lr * m_hat / _root(v_hat, self.eps, self.eps_placement)
        return new, new_state


@_keyword_only_after_lr
class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter, 2019), as ``torch.optim.AdamW``.

    Each step first shrinks the parameters, ``w ← w (1 - lr · weight_decay)``, then takes
    Adam's step with the loss gradient alone; the decay never enters ``m`` or ``v``. In
    :class:`Adam` with ``weight_decay`` the decay is added to the gradient (L2) and is then
    divided by ``√v̂`` like the rest, so coordinates with large gradients are decayed less.
    The default ``weight_decay=0.01`` is PyTorch's; ``amsgrad=True`` works as in :class:`Adam`.
    """

    _torch_name = "AdamW"
    _decoupled = True

    def __init__(
        self,
        lr: float = 1e-3,
        *,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        eps_placement: EpsPlacement = "outside",
    ) -> None:
        super().__init__(
            lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
            eps_placement=eps_placement,
        )
