"""A sequential network built from the library's own layers, with forward and backward passes.

``Sequential([Linear(W1), BatchNorm(h1), ActivationLayer("relu"), Linear(W2, b2)])`` applies
its layers in order to ``X`` (N × p, samples in rows) and returns the logits. Its
``backward(dZ)`` takes ``∂L/∂logits`` and stores every parameter's gradient; ``parameters()``
and ``gradients()`` return dicts with the same keys (``"0.W"``, ``"1.gamma"``, …) holding
the layers' own arrays, so an optimizer of :mod:`bnbackprop.optim` updates the network in
place: ``opt.step(net.parameters(), net.gradients())``.

``train()`` and ``eval()`` switch every batch-norm layer between batch statistics and running
statistics. Layer sizes are checked when the network is built: a layer whose input width
does not match the previous layer's output width raises, naming both layers and shapes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np

from bnbackprop._validation import (
    as_float_array,
    require_bool,
    require_finite,
    require_int,
    require_nonnegative_float,
    require_shape,
)
from bnbackprop.batchnorm import BatchNorm
from bnbackprop.layers import ACTIVATIONS, Activation, Linear, activation

__all__ = ["ActivationLayer", "Sequential", "check_network_gradients", "mlp"]


class ActivationLayer:
    """An element-wise activation as a layer: it keeps its input for the backward pass."""

    def __init__(self, name: str | Activation, **options: float) -> None:
        self.activation = name if isinstance(name, Activation) else activation(name, **options)
        self.name = self.activation.name
        self._Z: np.ndarray | None = None

    def forward(self, Z: np.ndarray) -> np.ndarray:
        """``a(Z)``; remembers ``Z``."""
        self._Z = np.array(as_float_array(Z, "Z"))  # a copy: the caller may change Z before backward
        return self.activation.forward(self._Z)

    __call__ = forward

    def backward(self, dA: np.ndarray) -> np.ndarray:
        """``dZ = dA ⊙ a'(Z)`` for the ``Z`` of the last forward pass."""
        if self._Z is None:
            raise RuntimeError("ActivationLayer.backward called before forward")
        return self.activation.backward(dA, self._Z)

    def __repr__(self) -> str:
        return f"ActivationLayer({self.name!r})"


def _describe(index: int, layer: object) -> str:
    if isinstance(layer, Linear):
        kind = "Linear" if layer.b is not None else "Linear (no bias)"
        return f"layer {index} ({kind}, W {layer.W.shape})"
    if isinstance(layer, BatchNorm):
        return f"layer {index} (BatchNorm, gamma {layer.gamma.shape})"
    return f"layer {index} ({type(layer).__name__})"


class Sequential:
    """Layers applied in order; see the module docstring."""

    def __init__(self, layers: Sequence[object]) -> None:
        if not isinstance(layers, (list, tuple)):
            raise TypeError(f"layers must be a list or tuple of layers, got {type(layers).__name__}")
        layers = list(layers)
        if not layers:
            raise ValueError("a Sequential network needs at least one layer")
        width: int | None = None
        source = ""
        for index, layer in enumerate(layers):
            if isinstance(layer, Linear):
                W = as_float_array(layer.W, f"layer {index} W", ndim=2)
                require_finite(W, f"layer {index} W")
                if layer.b is not None and np.shape(layer.b) != (W.shape[1],):
                    raise ValueError(
                        f"{_describe(index, layer)}: bias b must have shape ({W.shape[1]},), "
                        f"got {np.shape(layer.b)}"
                    )
                if width is not None and W.shape[0] != width:
                    raise ValueError(
                        f"{_describe(index, layer)} expects {W.shape[0]} input features, but "
                        f"{source} outputs {width}: W {W.shape} cannot follow an output of shape (N, {width})"
                    )
                width, source = W.shape[1], _describe(index, layer)
            elif isinstance(layer, BatchNorm):
                if layer.axis != 0:
                    raise ValueError(f"{_describe(index, layer)}: Sequential needs samples in rows (axis=0)")
                if width is not None and layer.num_features != width:
                    raise ValueError(
                        f"{_describe(index, layer)} normalises {layer.num_features} features, but "
                        f"{source} outputs {width}: gamma {layer.gamma.shape} vs output (N, {width})"
                    )
                width, source = layer.num_features, _describe(index, layer)
            elif not isinstance(layer, ActivationLayer):
                raise TypeError(
                    f"layers: layer {index} must be a Linear, BatchNorm or ActivationLayer, got {type(layer).__name__}"
                )
        if width is None:
            raise ValueError("a Sequential network needs at least one Linear or BatchNorm layer to fix its sizes")
        self.layers = layers
        self.training = True
        self._output_shape: tuple[int, ...] | None = None

    @property
    def input_features(self) -> int | None:
        """The number of input features (None if the first sized layer is not known)."""
        for layer in self.layers:
            if isinstance(layer, Linear):
                return int(layer.W.shape[0])
            if isinstance(layer, BatchNorm):
                return layer.num_features
        return None  # pragma: no cover - the constructor guarantees a sized layer

    def train(self, mode: bool = True) -> Sequential:
        """Training mode: batch norm uses (and updates) batch statistics; ``mode=False``: inference."""
        self.training = require_bool(mode, "mode")
        for layer in self.layers:
            if isinstance(layer, BatchNorm):
                layer.train(self.training)
        return self

    def eval(self) -> Sequential:
        """Inference mode: batch norm uses its running statistics."""
        return self.train(False)

    def forward(self, X: np.ndarray) -> np.ndarray:
        """The logits for ``X`` (N × p)."""
        X = as_float_array(X, "X", ndim=2)
        require_finite(X, "X")
        if X.shape[1] != self.input_features:
            raise ValueError(f"X must have {self.input_features} columns (input features), got shape {X.shape}")
        if self.training and X.shape[0] < 2 and any(isinstance(layer, BatchNorm) for layer in self.layers):
            raise ValueError(
                f"a batch of {X.shape[0]} sample in training mode: batch norm needs at least 2 samples "
                "to estimate a variance; call eval() to use the running statistics"
            )
        out = X
        for layer in self.layers:
            out = layer.forward(out)
        require_finite(out, "the network's output")
        self._output_shape = out.shape
        return out

    __call__ = forward

    def backward(self, dY: np.ndarray) -> np.ndarray:
        """Back-propagate ``dY = ∂L/∂output``; store all parameter gradients; return ``∂L/∂X``."""
        if self._output_shape is None:
            raise RuntimeError("Sequential.backward called before forward")
        grad = as_float_array(dY, "dY", ndim=2)
        require_shape(grad, self._output_shape, "dY", "the shape of the last forward pass's output")
        require_finite(grad, "dY")
        for layer in reversed(self.layers):
            if isinstance(layer, BatchNorm):
                grad = layer.backward(grad)[0]
            else:
                grad = layer.backward(grad)
        return grad

    def parameters(self) -> dict[str, np.ndarray]:
        """The learnable arrays themselves (not copies), keyed ``"<layer index>.<name>"``."""
        params: dict[str, np.ndarray] = {}
        for index, layer in enumerate(self.layers):
            if isinstance(layer, Linear):
                params[f"{index}.W"] = layer.W
                if layer.b is not None:
                    params[f"{index}.b"] = layer.b
            elif isinstance(layer, BatchNorm):
                params[f"{index}.gamma"] = layer.gamma
                params[f"{index}.beta"] = layer.beta
        return params

    def gradients(self) -> dict[str, np.ndarray]:
        """The gradients of the last backward pass, with the keys of :meth:`parameters`."""
        grads: dict[str, np.ndarray] = {}
        for index, layer in enumerate(self.layers):
            pairs: list[tuple[str, np.ndarray | None]] = []
            if isinstance(layer, Linear):
                pairs = [("W", layer.dW)] + ([("b", layer.db)] if layer.b is not None else [])
            elif isinstance(layer, BatchNorm):
                pairs = [("gamma", layer.dgamma), ("beta", layer.dbeta)]
            for name, value in pairs:
                if value is None:
                    raise RuntimeError("gradients() called before backward()")
                grads[f"{index}.{name}"] = value
        return grads

    def num_parameters(self) -> int:
        """The number of learnable scalars."""
        return int(sum(value.size for value in self.parameters().values()))

    def astype(self, dtype: type | np.dtype) -> Sequential:
        """Convert every parameter and running statistic to ``dtype`` (float32 or float64), in place."""
        try:
            dtype = np.dtype(dtype)
        except TypeError as exc:
            raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from exc
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        for layer in self.layers:
            if isinstance(layer, Linear):
                layer.W = layer.W.astype(dtype)
                layer.b = None if layer.b is None else layer.b.astype(dtype)
            elif isinstance(layer, BatchNorm):
                for name in ("gamma", "beta", "running_mean", "running_var"):
                    setattr(layer, name, getattr(layer, name).astype(dtype))
        return self

    def __repr__(self) -> str:
        return "Sequential([" + ", ".join(_describe(i, layer) for i, layer in enumerate(self.layers)) + "])"


def mlp(
    sizes: Sequence[int],
    *,
    activation: str = "relu",
    batchnorm: bool = False,
    bias: bool | Sequence[bool] | None = None,
    batchnorm_last: bool = False,
    init: str = "normal",
    seed: int = 0,
    dtype: type = np.float64,
    momentum: float = 0.1,
    eps: float = 1e-5,
    running_var_ddof: int = 1,
) -> Sequential:
    """A multilayer perceptron ``sizes[0] → … → sizes[-1]`` returning logits.

    Each hidden layer is Linear, then BatchNorm if ``batchnorm``, then the activation; the
    last layer is Linear (followed by BatchNorm if ``batchnorm_last``). ``bias`` (one flag per
    Linear, or one for all) defaults to no bias where batch norm follows and a bias elsewhere.
    ``init="normal"`` draws W from N(0, 1/fan_in); ``init="uniform"`` from U(±1/√fan_in), as
    the blog does. Biases start at 0, γ at 1, β at 0. Deterministic given ``seed``.
    """
    if not isinstance(sizes, (list, tuple)):
        raise TypeError(f"sizes must be a list or tuple of layer widths, got {type(sizes).__name__}")
    sizes = [require_int(size, "sizes entry", minimum=1) for size in sizes]
    batchnorm = require_bool(batchnorm, "batchnorm")
    batchnorm_last = require_bool(batchnorm_last, "batchnorm_last")
    seed = require_int(seed, "seed", minimum=0)
    if len(sizes) < 2:
        raise ValueError(f"sizes must name at least an input and an output width, got {sizes}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if init not in ("normal", "uniform"):
        raise ValueError(f"init must be 'normal' or 'uniform', got {init!r}")
    n_linear = len(sizes) - 1
    followed_by_bn = [batchnorm] * (n_linear - 1) + [batchnorm_last]
    if bias is None:
        biases = [not bn for bn in followed_by_bn]
    elif isinstance(bias, (bool, np.bool_)):
        biases = [bool(bias)] * n_linear
    elif isinstance(bias, (list, tuple)):
        biases = [require_bool(flag, "bias entry") for flag in bias]
    else:
        raise TypeError(f"bias must be True, False, None or one flag per linear layer, got {type(bias).__name__}")
    if len(biases) != n_linear:
        raise ValueError(f"bias must have one flag per linear layer ({n_linear}), got {len(biases)}")
    rng = np.random.default_rng(seed)
    layers: list[object] = []
    for k, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        if init == "normal":
            W = rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)
        else:
            limit = 1 / np.sqrt(fan_in)
            W = rng.uniform(-limit, limit, (fan_in, fan_out))
        layers.append(Linear(W, np.zeros(fan_out) if biases[k] else None))
        if followed_by_bn[k]:
            layers.append(BatchNorm(fan_out, momentum=momentum, eps=eps, running_var_ddof=running_var_ddof))
        if k < n_linear - 1:
            layers.append(ActivationLayer(activation))
    return Sequential(layers).astype(dtype)


def check_network_gradients(
    model: Sequential,
    X: np.ndarray,
    labels: np.ndarray,
    *,
    loss: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]] | None = None,
    step: float = 1e-6,
    bound: float = 1e-6,
) -> dict[str, float]:
    """Every parameter's back-propagated gradient against central differences, in float64.

    The loss (default: mean softmax cross-entropy) is evaluated in training mode, as in a
    training step; the running statistics are restored afterwards. Prints one line per
    parameter, ``<key>: relative error: <value> (bound <bound>)``, and raises
    ``AssertionError`` if any exceeds ``bound``. Returns the relative errors by key.
    """
    from bnbackprop.gradcheck import numerical_gradient, relative_error
    from bnbackprop.losses import softmax_cross_entropy

    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a Sequential, got {type(model).__name__}")
    loss = softmax_cross_entropy if loss is None else loss
    if not callable(loss):
        raise TypeError(f"loss must be a function (logits, labels) -> (value, dlogits), got {type(loss).__name__}")
    bound = require_nonnegative_float(bound, "bound")
    if any(value.dtype != np.float64 for value in model.parameters().values()):
        raise ValueError("check_network_gradients needs a float64 network: call model.astype(np.float64)")
    saved = [
        (layer, layer.running_mean.copy(), layer.running_var.copy())
        for layer in model.layers
        if isinstance(layer, BatchNorm)
    ]
    was_training = model.training
    model.train()
    try:
        _, dZ = loss(model.forward(X), labels)
        model.backward(dZ)
        analytic = {key: value.copy() for key, value in model.gradients().items()}
        errors: dict[str, float] = {}
        for key, param in model.parameters().items():
            original = param.copy()

            def value_at(candidate: np.ndarray, param: np.ndarray = param) -> float:
                param[...] = candidate
                return loss(model.forward(X), labels)[0]

            try:
                numeric = numerical_gradient(value_at, original, step=step)
            finally:
                param[...] = original
            errors[key] = relative_error(analytic[key], numeric)
            print(f"{key}: relative error: {errors[key]:.2e} (bound {bound:g})")
    finally:
        for layer, mean, var in saved:
            layer.running_mean, layer.running_var = mean, var
        model.train(was_training)
    worst = max(errors, key=errors.get)
    if errors[worst] > bound:
        raise AssertionError(f"{worst}: relative error {errors[worst]:.2e} exceeds {bound:g}")
    return errors
