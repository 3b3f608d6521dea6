"""The blog post's (seed 004) digits network exactly as published, kept to be judged.

The classes below are the post's code with two changes that do not alter any number:
the random initialisation draws from a ``numpy.random.RandomState`` passed in (the post
uses the global generator, unseeded, so its printed numbers cannot be reproduced bit for
bit), and ``Dense`` and ``BatchNormalization`` also keep the gradients they compute
(``grad_w``, ``grad_b``, ``grad_gamma``, ``grad_beta``) so that the book can compare them
with the exact ones. The optimizer is the post's ``Adam``
(:class:`bnbackprop.optim_as_published.BlogAdam`), whose bias correction has no step
count ``t``.

What the post does, and this module reproduces: batch norm after every linear layer
including the last, Keras-style ``momentum=0.99`` (keeps 99 % of the old running value) and
``eps=0.01``; running statistics initialised from the first batch; the loss is the per-class
binary cross-entropy of the softmax output; the softmax "gradient" is its Jacobian's
diagonal ``p (1 - p)``; every forward pass, including the ones that measure validation
accuracy, runs in training mode (``forward_pass(X, training=True)`` is the default the post
never changes), so validation images are normalised with their own batch statistics.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from bnbackprop.optim_as_published import BlogAdam

__all__ = [
    "ELU",
    "Activation",
    "BatchNormalization",
    "BlogNetwork",
    "CrossEntropyLoss",
    "Dense",
    "LeakyReLU",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "one_hot",
    "train_as_published",
]


def one_hot(labels, class_num=10):
    return np.eye(class_num, dtype=float)[labels]


class CrossEntropyLoss:
    def __call__(self, y, y_pred):
        y_pred = np.clip(y_pred, 1e-15, 1 - 1e-15)
        return -y * np.log(y_pred) - (1 - y) * np.log(1 - y_pred)

    def gradient(self, y, y_pred):
        y_pred = np.clip(y_pred, 1e-15, 1 - 1e-15)
        return -(y / y_pred) + (1 - y) / (1 - y_pred)


class Softmax:
    def __call__(self, x):
        e_x = np.exp(x - np.max(x, axis=-1, keepdims=True))
        return e_x / np.sum(e_x, axis=-1, keepdims=True)

    def gradient(self, x):
        p = self.__call__(x)
        return p * (1 - p)


class Sigmoid:
    def __call__(self, x):
        return 1 / (1 + np.exp(-x))

    def gradient(self, x):
        return self.__call__(x) * (1 - self.__call__(x))


class Tanh:
    def __call__(self, x):
        return 2 / (1 + np.exp(-2 * x)) - 1

    def gradient(self, x):
        return 1 - np.power(self.__call__(x), 2)


class ReLU:
    def __call__(self, x):
        return np.where(x >= 0, x, 0)

    def gradient(self, x):
        return np.where(x >= 0, 1, 0)


class LeakyReLU:
    def __init__(self, alpha=0.2):
        self.alpha = alpha

    def __call__(self, x):
        return np.where(x >= 0, x, self.alpha * x)

    def gradient(self, x):
        return np.where(x >= 0, 1, self.alpha)


class ELU:
    def __init__(self, alpha=0.1):
        self.alpha = alpha

    def __call__(self, x):
        return np.where(x >= 0.0, x, self.alpha * (np.exp(x) - 1))

    def gradient(self, x):
        return np.where(x >= 0.0, 1, self.__call__(x) + self.alpha)


class BatchNorm:
    def __init__(self, insize, momentum=0.99, eps=0.01, trainable=True):
        self.insize = insize
        self.mm = momentum
        self.eps = eps
        self.trainable = trainable
        self._mean = None
        self._var = None

    def initialize(self, optimizer):
        self.gamma = np.ones(self.insize)
        self.beta = np.zeros(self.insize)
        self.gamma_opt = copy.copy(optimizer)
        self.beta_opt = copy.copy(optimizer)

    def parameters(self):
        return np.prod(self.gamma.shape) + np.prod(self.beta.shape)

    def forward_pass(self, X, training=True):
        if self._mean is None:
            self._mean = np.mean(X, axis=0)
            self._var = np.var(X, axis=0)
        if training and self.trainable:
            mean = np.mean(X, axis=0)
            var = np.var(X, axis=0)
            self._mean = self.mm * self._mean + (1 - self.mm) * mean
            self._var = self.mm * self._var + (1 - self.mm) * var
        else:
            mean = self._mean
            var = self._var
        self.X_centered = X - mean
        self.stddev_inv = 1 / np.sqrt(var + self.eps)
        X_norm = self.X_centered * self.stddev_inv
        return self.gamma * X_norm + self.beta


class BatchNormalization(BatchNorm):
    def backward_pass(self, accum_grad):
        gamma = self.gamma
        if self.trainable:
            X_norm = self.X_centered * self.stddev_inv
            grad_gamma = np.sum(accum_grad * X_norm, axis=0)  # ... [A]
            grad_beta = np.sum(accum_grad, axis=0)  # ... [B]
            self.grad_gamma, self.grad_beta = grad_gamma, grad_beta  # kept for the book
            self.gamma = self.gamma_opt.update(self.gamma, grad_gamma)
            self.beta = self.beta_opt.update(self.beta, grad_beta)
        batch_size = accum_grad.shape[0]
        accum_grad = (1 / batch_size) * gamma * self.stddev_inv * (
            batch_size * accum_grad
            - np.sum(accum_grad, axis=0)
            - self.X_centered * self.stddev_inv**2 * np.sum(accum_grad * self.X_centered, axis=0)
        )  # ... [C]
        return accum_grad


class dense:
    def __init__(self, insize, outsize):
        self.insize = insize
        self.outsize = outsize
        self.w, self.b = None, None
        self.layer_input = None

    def initialize(self, optimizer, rng: np.random.RandomState):
        limit = 1 / np.sqrt(self.insize)
        self.b = np.zeros((1, self.outsize))
        self.w = rng.uniform(-limit, limit, (self.insize, self.outsize))
        self.w_opt = copy.copy(optimizer)
        self.b_opt = copy.copy(optimizer)

    def parameters(self):
        return np.prod(self.w.shape) + np.prod(self.b.shape)

    def forward_pass(self, X, training=True):
        self.layer_input = X
        return X.dot(self.w) + self.b


class Dense(dense):
    def __init__(self, insize, outsize, trainable=True):
        super().__init__(insize, outsize)
        self.trainable = trainable

    def backward_pass(self, accum_grad):
        w = self.w
        if self.trainable:
            grad_w = self.layer_input.T.dot(accum_grad)  # ... [D]
            grad_b = np.sum(accum_grad, axis=0, keepdims=True)  # ... [E]
            self.grad_w, self.grad_b = grad_w, grad_b  # kept for the book
            self.w = self.w_opt.update(self.w, grad_w)
            self.b = self.b_opt.update(self.b, grad_b)
        return accum_grad.dot(w.T)  # ... (6)


class Activation:
    def __init__(self, func):
        self.function = func
        self.trainable = True

    def forward_pass(self, X, training=True):
        self.layer_input = X
        return self.function(X)

    def backward_pass(self, accum_grad):
        return accum_grad * self.function.gradient(self.layer_input)


@dataclass
class BlogNetwork:
    """The post's 64-32-16-10 network: (Dense, BatchNormalization, activation) × 3."""

    layers: list

    @classmethod
    def build(cls, seed: int, optimizer=None) -> BlogNetwork:
        """The post's "Network Construction", weights from ``RandomState(seed)``.

        ``optimizer`` (default: the post's ``Adam(learning_rate=0.001)``) is copied per array.
        """
        rng = np.random.RandomState(seed)
        layers = []
        for insize, outsize, function in ((64, 32, Sigmoid()), (32, 16, ReLU()), (16, 10, Softmax())):
            linear = Dense(insize, outsize)
            linear.initialize(optimizer or BlogAdam(learning_rate=0.001, b1=0.9, b2=0.999), rng)
            bn = BatchNormalization(outsize, momentum=0.99, eps=0.01)
            bn.initialize(optimizer or BlogAdam(learning_rate=0.001, b1=0.9, b2=0.999))
            layers += [linear, bn, Activation(function)]
        return cls(layers)

    def forward(self, data, training=True):
        x = data
        for layer in self.layers:
            x = layer.forward_pass(x, training=training) if not isinstance(layer, Activation) else layer.forward_pass(x)
        return x

    def backward(self, loss_grad):
        grad = loss_grad
        for layer in reversed(self.layers):
            grad = layer.backward_pass(grad)
        return grad

    def parameter_counts(self) -> list[int]:
        """``parameters()`` of each Dense and BatchNormalization layer, in order."""
        return [int(layer.parameters()) for layer in self.layers if not isinstance(layer, Activation)]

    def accuracy(self, X, y, training=True) -> float:
        """Percent of rows classified correctly; ``training=True`` is what the post does."""
        return float(100 * np.sum(np.argmax(self.forward(X, training=training), axis=1) == y) / len(y))


def train_as_published(
    seed: int, X_train, y_train, X_val, y_val, *, steps: int = 5000, print_every: int = 500,
    eval_every: int | None = None,
) -> dict:
    """The post's "Train & Predict", from ``RandomState(seed)``.

    Returns the accuracy before training and after, both measured as the post does (training
    mode, which also moves the running statistics) and, from a copy of the network, in
    inference mode; the ``loss sum`` the post prints every ``print_every`` steps (its value
    on the batch of that step, before the update); and, every ``eval_every`` steps, the
    validation accuracy both ways. Not in the post, added so that the corrected run can be
    compared on the same loss: at every print, ``ce_sum_running``, the categorical
    cross-entropy summed over the training images, from a copy in inference mode.
    """
    net = BlogNetwork.build(seed)
    ce = CrossEntropyLoss()
    y = one_hot(y_train, class_num=10)
    result = {"seed": seed, "accuracy_before": net.accuracy(X_val, y_val), "loss_sum": [], "loss_step": [],
              "ce_sum_running": []}
    curve = {"step": [], "val_accuracy_as_published": [], "val_accuracy_inference": []}
    for i in range(steps):
        y_pred = net.forward(X_train)
        loss_grad = ce.gradient(y, y_pred)
        net.backward(loss_grad)
        if i % print_every == 0:
            result["loss_step"].append(i)
            result["loss_sum"].append(float(np.sum(ce(y, y_pred))))
            p_running = copy.deepcopy(net).forward(X_train, training=False)
            result["ce_sum_running"].append(float(-np.sum(y * np.log(np.clip(p_running, 1e-15, 1)))))
        if eval_every is not None and (i + 1) % eval_every == 0:
            probe = copy.deepcopy(net)
            curve["step"].append(i + 1)
            curve["val_accuracy_inference"].append(probe.accuracy(X_val, y_val, training=False))
            curve["val_accuracy_as_published"].append(probe.accuracy(X_val, y_val, training=True))
    result["accuracy_after_inference_mode"] = copy.deepcopy(net).accuracy(X_val, y_val, training=False)
    result["accuracy_after"] = net.accuracy(X_val, y_val)
    result["parameter_counts"] = net.parameter_counts()
    if eval_every is not None:
        result["curve"] = curve
    return result
