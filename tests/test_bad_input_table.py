"""Every public entry point of the library, fed bad input: a clear ValueError or TypeError
that names the argument, never a NumPy error from deep inside or a silent NaN.

The entry points are listed programmatically (every public function and class of every
module of ``bnbackprop``, and every public method or property of those classes); each
must have a row in ``TABLE`` or a justified entry in ``EXEMPT``, so a new function cannot
slip past this test.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import numpy as np
import pytest
import sympy as sp

import bnbackprop
from bnbackprop import (
    batchnorm,
    benchmarking,
    bias_example,
    canon,
    data,
    distributed,
    experiments,
    figures,
    gradcheck,
    layers,
    loops,
    losses,
    matcalc,
    network,
    optim,
    question_network,
    stepwise,
    symbolic,
    training,
    welford,
)

# ---------------------------------------------------------------------------------------
# small valid inputs, spoiled one argument at a time below

X = np.arange(12.0).reshape(4, 3) ** 1.5
GAMMA, BETA = np.array([1.0, 2.0, 0.5]), np.array([0.0, 1.0, -1.0])
DY = np.linspace(-1.0, 1.0, 12).reshape(4, 3)
NAN_X = np.where(X == X[1, 1], np.nan, X)
W = np.ones((3, 2))
x_sym, y_sym = sp.symbols("x y", positive=True)
DATA = question_network.load_question_data()
NET = question_network.QuestionNetwork()
PARAMS = (DATA.G1, DATA.G2, DATA.gamma, DATA.beta)
U = np.array([1.0, 2.0, 4.0])


def trained_cache():
    return batchnorm.forward(X, GAMMA, BETA)[1]


def bn_layer():
    layer = batchnorm.BatchNorm(3)
    layer.forward(X)
    return layer


def sync_layer_in_eval():
    layer = distributed.SyncBatchNorm(3).eval()
    layer.forward(X)
    return layer


def linear_layer():
    layer = layers.Linear(W.copy())
    layer.forward(X)
    return layer


def set_lr(value):
    optimizer = optim.SGD(lr=0.1)
    optimizer.lr = value


def step(params, grads, optimizer=None):
    (optimizer or optim.SGD(lr=0.1)).step(params, grads)


shared = np.zeros(4)


def set_bn(name, value):
    setattr(batchnorm.BatchNorm(3), name, value)


# classification: N = 2 samples, C = 3 classes
Z = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
LABELS = np.array([0, 2])
S = np.full((2, 3), 1 / 3)
P = np.array([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]])
WIDE = np.array([[1e308, 0.0, -1e308], [0.0, 0.0, 0.0]])
Y4 = np.array([0, 1, 1, 0])
SPLIT = data.Split(X, Y4, X, Y4)
INPUTS = {"X": X, "dY": DY, "gamma": GAMMA, "beta": BETA}


def small_net(**options):
    return network.mlp([3, 4, 2], batchnorm=True, seed=0, **options)


def ran_net():
    net = small_net()
    net.forward(X)
    return net


def activation_layer():
    layer = network.ActivationLayer("tanh")
    layer.forward(X)
    return layer


def fit(**options):
    arguments = {"model": small_net(), "optimizer": optim.SGD(lr=0.1), "X": X, "y": Y4, "epochs": 1}
    return training.fit(**{**arguments, **options})

# (entry point, what is wrong, call, exception type, the argument the message must name)
TABLE = [
    # batchnorm
    ("batchnorm.batch_statistics", "ddof too large", lambda: batchnorm.batch_statistics(X, ddof=4), ValueError, "ddof"),
    ("batchnorm.batch_statistics", "1-D X", lambda: batchnorm.batch_statistics(np.ones(3)), ValueError, "X"),
    # welford
    ("welford.welford", "ddof too large", lambda: welford.welford(X, ddof=4), ValueError, "ddof"),
    ("welford.welford", "NaN in X", lambda: welford.welford(NAN_X), ValueError, "X"),
    ("welford.welford_update", "negative count",
     lambda: welford.welford_update(-1, np.zeros(3), np.zeros(3), X[0]), ValueError, "count"),
    ("batchnorm.forward", "batch of one", lambda: batchnorm.forward(X[:1], GAMMA, BETA), ValueError, "X"),
    ("batchnorm.forward", "NaN in X", lambda: batchnorm.forward(NAN_X, GAMMA, BETA), ValueError, "X"),
    ("batchnorm.forward", "NaN in X, fused kernel", lambda: batchnorm.forward(NAN_X, GAMMA, BETA, engine="auto"),
     ValueError, "X"),
    ("batchnorm.forward", "unknown engine", lambda: batchnorm.forward(X, GAMMA, BETA, engine="fast"), ValueError,
     "engine"),
    ("batchnorm.forward", "engine a bool", lambda: batchnorm.forward(X, GAMMA, BETA, engine=True), ValueError,
     "engine"),
    ("batchnorm.forward", "masked X", lambda: batchnorm.forward(np.ma.masked_invalid(NAN_X), GAMMA, BETA),
     TypeError, "X"),
    ("batchnorm.forward", "masked gamma", lambda: batchnorm.forward(X, np.ma.masked_equal(GAMMA, 2.0), BETA),
     TypeError, "gamma"),
    ("batchnorm.forward", "gamma shape", lambda: batchnorm.forward(X, GAMMA[:2], BETA), ValueError, "gamma"),
    ("batchnorm.forward", "negative eps", lambda: batchnorm.forward(X, GAMMA, BETA, eps=-1.0), ValueError, "eps"),
    ("batchnorm.forward", "unknown placement", lambda: batchnorm.forward(X, GAMMA, BETA, eps_placement="x"),
     ValueError, "eps_placement"),
    ("batchnorm.forward_inference", "negative var",
     lambda: batchnorm.forward_inference(X, GAMMA, BETA, np.zeros(3), -np.ones(3)), ValueError, "var"),
    ("batchnorm.forward_inference", "mean shape",
     lambda: batchnorm.forward_inference(X, GAMMA, BETA, np.zeros(2), np.ones(3)), ValueError, "mean"),
    ("batchnorm.backward", "not a cache", lambda: batchnorm.backward(DY, {}), TypeError, "cache"),
    ("batchnorm.backward", "unknown engine", lambda: batchnorm.backward(DY, trained_cache(), engine="numba"),
     ValueError, "engine"),
    ("batchnorm.backward", "masked dY",
     lambda: batchnorm.backward(np.ma.masked_greater(DY, 0.5), trained_cache()), TypeError, "dY"),
    ("batchnorm.backward", "dY shape", lambda: batchnorm.backward(DY.T, trained_cache()), ValueError, "dY"),
    ("batchnorm.BatchNorm", "momentum above 1", lambda: batchnorm.BatchNorm(3, momentum=2.0), ValueError, "momentum"),
    ("batchnorm.BatchNorm", "num_features 0", lambda: batchnorm.BatchNorm(0), ValueError, "num_features"),
    ("batchnorm.BatchNorm.forward", "wrong width", lambda: batchnorm.BatchNorm(2).forward(X), ValueError, "gamma"),
    ("batchnorm.BatchNorm.forward", "batch of one", lambda: batchnorm.BatchNorm(3).forward(X[:1]), ValueError, "X"),
    ("batchnorm.BatchNorm.forward", "masked X", lambda: batchnorm.BatchNorm(3).forward(np.ma.masked_array(X)),
     TypeError, "X"),
    ("batchnorm.BatchNorm.backward", "dY shape", lambda: bn_layer().backward(DY[:2]), ValueError, "dY"),
    ("batchnorm.BatchNorm.train", "mode a string", lambda: batchnorm.BatchNorm(3).train("no"), TypeError, "mode"),
    ("batchnorm.BatchNorm.gamma", "set to the wrong shape", lambda: set_bn("gamma", np.ones(2)), ValueError, "gamma"),
    ("batchnorm.BatchNorm.gamma", "set to NaN", lambda: set_bn("gamma", [1.0, np.nan, 1.0]), ValueError, "gamma"),
    ("batchnorm.BatchNorm.beta", "set to strings", lambda: set_bn("beta", np.array(["a", "b", "c"])), TypeError,
     "beta"),
    ("batchnorm.BatchNorm.beta", "set to inf", lambda: set_bn("beta", [0.0, np.inf, 0.0]), ValueError, "beta"),
    ("batchnorm.BatchNorm.running_mean", "set to a column", lambda: set_bn("running_mean", np.ones((3, 1))),
     ValueError, "running_mean"),
    ("batchnorm.BatchNorm.running_mean", "set to NaN", lambda: set_bn("running_mean", np.full(3, np.nan)),
     ValueError, "running_mean"),
    ("batchnorm.BatchNorm.running_var", "set negative", lambda: set_bn("running_var", [1.0, -1.0, 1.0]), ValueError,
     "running_var"),
    ("batchnorm.BatchNorm.running_var", "set to inf", lambda: set_bn("running_var", np.full(3, np.inf)), ValueError,
     "running_var"),
    # distributed (no process group in this process: what is checked before any communication)
    ("distributed.forward", "no process group", lambda: distributed.forward(X, GAMMA, BETA), RuntimeError, "group"),
    ("distributed.forward", "group not a ProcessGroup", lambda: distributed.forward(X, GAMMA, BETA, group="world"),
     TypeError, "group"),
    ("distributed.backward", "not a cache", lambda: distributed.backward(DY, trained_cache()), TypeError, "cache"),
    ("distributed.SyncBatchNorm", "momentum above 1", lambda: distributed.SyncBatchNorm(3, momentum=2.0), ValueError,
     "momentum"),
    ("distributed.SyncBatchNorm", "group a string", lambda: distributed.SyncBatchNorm(3, group="world"), TypeError,
     "group"),
    ("distributed.SyncBatchNorm.forward", "no process group", lambda: distributed.SyncBatchNorm(3).forward(X),
     RuntimeError, "group"),
    ("distributed.SyncBatchNorm.forward", "wrong width in eval mode", lambda: distributed.SyncBatchNorm(2).eval()(X),
     ValueError, "gamma"),
    ("distributed.SyncBatchNorm.backward", "dY shape", lambda: sync_layer_in_eval().backward(DY[:2]), ValueError, "dY"),
    ("distributed.run_processes", "a lambda", lambda: distributed.run_processes(lambda r, k: r, 2), TypeError,
     "function"),
    ("distributed.run_processes", "no processes", lambda: distributed.run_processes(np.sum, 0), ValueError,
     "world_size"),
    ("distributed.run_processes", "negative timeout", lambda: distributed.run_processes(np.sum, 2, timeout=-1.0),
     ValueError, "timeout"),
    # canon
    ("canon.ioffe_szegedy_backward", "dY shape", lambda: canon.ioffe_szegedy_backward(DY[:3], X, GAMMA), ValueError,
     "dY"),
    ("canon.ioffe_szegedy_backward", "zero variance, eps=0",
     lambda: canon.ioffe_szegedy_backward(DY, np.ones((4, 3)), GAMMA, eps=0.0), ValueError, "eps"),
    ("canon.ioffe_szegedy_backward", "variance overflows (silently dX = 0 before)",
     lambda: canon.ioffe_szegedy_backward(DY, X * 1e200, GAMMA), ValueError, "X"),
    ("canon.ioffe_szegedy_backward", "dY overflows the sums",
     lambda: canon.ioffe_szegedy_backward(DY * 1e308, X, GAMMA * 10), ValueError, "ioffe_szegedy_backward"),
    ("canon.torch_autograd_backward", "variance overflows (silently Y = beta before)",
     lambda: canon.torch_autograd_backward(DY, X * 1e200, GAMMA, BETA), ValueError, "X"),
    ("canon.ioffe_szegedy_backward", "term flag a string",
     lambda: canon.ioffe_szegedy_backward(DY, X, GAMMA, include_variance_mean_term="no"), TypeError,
     "include_variance_mean_term"),
    ("canon.cs231n_backward_alt", "batch of one", lambda: canon.cs231n_backward_alt(DY[:1], X[:1], GAMMA),
     ValueError, "x"),
    ("canon.cs231n_backward_alt", "NaN in dout", lambda: canon.cs231n_backward_alt(NAN_X, X, GAMMA), ValueError,
     "dout"),
    ("canon.cs231n_backward_alt", "gamma shape", lambda: canon.cs231n_backward_alt(DY, X, GAMMA[:2]), ValueError,
     "gamma"),
    ("canon.makemore_forward", "strings", lambda: canon.makemore_forward(np.array([["a"], ["b"]]), [1.0], [0.0]),
     TypeError, "hprebn"),
    ("canon.makemore_forward", "batch of one", lambda: canon.makemore_forward(X[:1], GAMMA, BETA), ValueError,
     "hprebn"),
    ("canon.makemore_forward", "bngain shape", lambda: canon.makemore_forward(X, GAMMA[:2], BETA), ValueError,
     "bngain"),
    ("canon.makemore_forward", "NaN in bnbias", lambda: canon.makemore_forward(X, GAMMA, [0.0, np.nan, 0.0]),
     ValueError, "bnbias"),
    ("canon.makemore_forward", "zero variance, eps=0",
     lambda: canon.makemore_forward(np.ones((4, 3)), GAMMA, BETA, eps=0.0), ValueError, "eps"),
    ("canon.makemore_backward", "not a cache", lambda: canon.makemore_backward(DY, {}), TypeError, "cache"),
    ("canon.makemore_backward", "dhpreact shape",
     lambda: canon.makemore_backward(DY.T, canon.makemore_forward(X, GAMMA, BETA)[1]), ValueError, "dhpreact"),
    ("canon.torch_autograd_backward", "ddof too large",
     lambda: canon.torch_autograd_backward(DY, X, GAMMA, BETA, ddof=4), ValueError, "ddof"),
    ("canon.torch_autograd_backward", "beta shape", lambda: canon.torch_autograd_backward(DY, X, GAMMA, BETA[:2]),
     ValueError, "beta"),
    ("canon.torch_autograd_backward", "unknown placement",
     lambda: canon.torch_autograd_backward(DY, X, GAMMA, BETA, eps_placement="around"), ValueError, "eps_placement"),
    # figures
    ("figures.graph_edges", "negative eps", lambda: figures.graph_edges(-1.0), ValueError, "eps"),
    ("figures.graph_edges", "eps a string", lambda: figures.graph_edges("1e-5"), TypeError, "eps"),
    ("figures.backward_order", "eps NaN", lambda: figures.backward_order(float("nan")), ValueError, "eps"),
    ("figures.computation_graph", "ax not an Axes", lambda: figures.computation_graph(ax=3), TypeError, "ax"),
    # data
    ("data.load_digits_as_blog", "train_size 0", lambda: data.load_digits_as_blog(train_size=0), ValueError,
     "train_size"),
    ("data.load_digits_as_blog", "train_size everything", lambda: data.load_digits_as_blog(train_size=1797),
     ValueError, "train_size"),
    ("data.load_digits_as_blog", "train_size a float", lambda: data.load_digits_as_blog(train_size=1500.0),
     TypeError, "train_size"),
    ("data.load_mnist_subset", "train_per_class 500", lambda: data.load_mnist_subset(train_per_class=500),
     ValueError, "train_per_class"),
    ("data.load_mnist_subset", "train_per_class a string", lambda: data.load_mnist_subset(train_per_class="400"),
     TypeError, "train_per_class"),
    # loops
    ("loops.forward", "batch of one", lambda: loops.forward(X[:1], GAMMA, BETA), ValueError, "X"),
    ("loops.forward", "gamma shape", lambda: loops.forward(X, GAMMA[:2], BETA), ValueError, "gamma"),
    ("loops.forward", "beta shape", lambda: loops.forward(X, GAMMA, BETA[:1]), ValueError, "beta"),
    ("loops.forward", "negative eps", lambda: loops.forward(X, GAMMA, BETA, eps=-0.1), ValueError, "eps"),
    ("loops.forward", "ddof too large", lambda: loops.forward(X, GAMMA, BETA, ddof=4), ValueError, "ddof"),
    ("loops.forward", "ddof not an integer", lambda: loops.forward(X, GAMMA, BETA, ddof=0.5), TypeError, "ddof"),
    ("loops.forward", "unknown axis", lambda: loops.forward(X, GAMMA, BETA, axis=2), ValueError, "axis"),
    ("loops.forward", "zero variance, eps=0",
     lambda: loops.forward(np.ones((3, 3)), GAMMA, BETA, eps=0.0), ValueError, "eps"),
    ("loops.forward", "NaN in X", lambda: loops.forward(NAN_X, GAMMA, BETA), ValueError, "X"),
    ("loops.backward", "dY shape", lambda: loops.backward(DY.T, X, GAMMA), ValueError, "dY"),
    ("loops.backward", "NaN in dY", lambda: loops.backward(NAN_X, X, GAMMA), ValueError, "dY"),
    ("loops.backward", "unknown placement", lambda: loops.backward(DY, X, GAMMA, eps_placement="no"),
     ValueError, "eps_placement"),
    # stepwise
    ("stepwise.make_steps", "negative eps", lambda: stepwise.make_steps(-1.0), ValueError, "eps"),
    ("stepwise.make_steps", "eps a string", lambda: stepwise.make_steps("1e-5"), TypeError, "eps"),
    ("stepwise.forward_steps", "batch of one", lambda: stepwise.forward_steps(X[:1], GAMMA, BETA), ValueError, "X"),
    ("stepwise.forward_steps", "gamma shape", lambda: stepwise.forward_steps(X, GAMMA[:2], BETA), ValueError, "gamma"),
    ("stepwise.forward_steps", "zero variance, eps=0",
     lambda: stepwise.forward_steps(np.ones((3, 3)), GAMMA, BETA, eps=0.0), ValueError, "eps"),
    ("stepwise.backward_steps", "another eps",
     lambda: stepwise.backward_steps(DY, stepwise.forward_steps(X, GAMMA, BETA, eps=1e-5), eps=0.1), ValueError, "eps"),
    ("stepwise.backward_steps", "values not from forward_steps",
     lambda: stepwise.backward_steps(DY, {"X": X}), ValueError, "values"),
    ("stepwise.backward_steps", "dout shape",
     lambda: stepwise.backward_steps(DY.T, stepwise.forward_steps(X, GAMMA, BETA)), ValueError, "dout"),
    # symbolic
    ("symbolic.matrix_symbols", "rows 0", lambda: symbolic.matrix_symbols("x", 0, 2), ValueError, "rows"),
    ("symbolic.matrix_symbols", "name not a string", lambda: symbolic.matrix_symbols(3, 2, 2), TypeError, "name"),
    ("symbolic.vector_symbols", "n not an integer", lambda: symbolic.vector_symbols("g", 2.0), TypeError, "n"),
    ("symbolic.vec", "NumPy input", lambda: symbolic.vec(np.ones((2, 2))), TypeError, "M"),
    ("symbolic.gradient", "matrix f", lambda: symbolic.gradient(sp.ones(2, 2), sp.Matrix([x_sym])), TypeError, "f"),
    ("symbolic.gradient", "NumPy X", lambda: symbolic.gradient(x_sym, np.ones(2)), TypeError, "X"),
    ("symbolic.jacobian", "list F", lambda: symbolic.jacobian([x_sym], sp.Matrix([x_sym])), TypeError, "F"),
    ("symbolic.batchnorm_forward", "NumPy X", lambda: symbolic.batchnorm_forward(X, [1] * 3, [0] * 3),
     TypeError, "X"),
    ("symbolic.batchnorm_forward", "batch of one",
     lambda: symbolic.batchnorm_forward(sp.ones(1, 2), [1, 1], [0, 0]), ValueError, "X"),
    ("symbolic.batchnorm_forward", "negative eps",
     lambda: symbolic.batchnorm_forward(sp.ones(2, 1), [1], [0], eps=-1), ValueError, "eps"),
    ("symbolic.batchnorm_forward", "ddof negative",
     lambda: symbolic.batchnorm_forward(sp.ones(2, 1), [1], [0], ddof=-1), ValueError, "ddof"),
    ("symbolic.batchnorm_forward", "gamma a string",
     lambda: symbolic.batchnorm_forward(sp.ones(2, 1), "g", [0]), TypeError, "gamma"),
    ("symbolic.prove_zero", "a string", lambda: symbolic.prove_zero("x - x"), TypeError, "expr"),
    ("symbolic.prove_zero", "a matrix", lambda: symbolic.prove_zero(sp.zeros(2, 2)), TypeError, "expr"),
    ("symbolic.prove_matrix_zero", "NumPy input", lambda: symbolic.prove_matrix_zero(np.zeros(2)), TypeError, "M"),
    ("symbolic.nonzero_witness", "missing symbol",
     lambda: symbolic.nonzero_witness(x_sym - y_sym, [x_sym]), ValueError, "symbols"),
    ("symbolic.nonzero_witness", "symbols as strings",
     lambda: symbolic.nonzero_witness(x_sym, ["x"]), TypeError, "symbols"),
    ("symbolic.nonzero_witness", "tries 0", lambda: symbolic.nonzero_witness(x_sym, [x_sym], tries=0),
     ValueError, "tries"),
    ("symbolic.nonzero_witness", "low above high",
     lambda: symbolic.nonzero_witness(x_sym, [x_sym], low=3, high=1), ValueError, "low"),
    ("symbolic.to_numpy", "a string", lambda: symbolic.to_numpy("x", [x_sym]), TypeError, "expr"),
    ("symbolic.to_numpy", "missing symbol", lambda: symbolic.to_numpy(x_sym + y_sym, [x_sym]), ValueError, "symbols"),
    # gradcheck
    ("gradcheck.relative_error", "shapes differ", lambda: gradcheck.relative_error(np.ones(3), np.ones(4)),
     ValueError, "b"),
    ("gradcheck.relative_error", "NaN", lambda: gradcheck.relative_error(np.array([np.nan]), np.ones(1)),
     ValueError, "a"),
    ("gradcheck.numerical_gradient", "step 0", lambda: gradcheck.numerical_gradient(np.sum, np.ones(2), step=0.0),
     ValueError, "step"),
    ("gradcheck.numerical_gradient", "step True",
     lambda: gradcheck.numerical_gradient(np.sum, np.ones(2), step=True), TypeError, "step"),
    ("gradcheck.numerical_gradient", "f not callable", lambda: gradcheck.numerical_gradient(3, np.ones(2)),
     TypeError, "f"),
    ("gradcheck.numerical_gradient", "f returns NaN",
     lambda: gradcheck.numerical_gradient(lambda v: np.nan if v[0] < 0 else v[0], np.zeros(1)), ValueError, "f"),
    ("gradcheck.numerical_gradient", "f returns an array",
     lambda: gradcheck.numerical_gradient(lambda v: v, np.ones(2)), ValueError, "f"),
    ("gradcheck.numerical_jacobian", "f returns inf",
     lambda: gradcheck.numerical_jacobian(lambda v: np.where(v > 1, np.inf, v), np.ones(2)), ValueError, "f"),
    ("gradcheck.numerical_jacobian", "NaN in x", lambda: gradcheck.numerical_jacobian(np.sin, NAN_X), ValueError, "x"),
    ("gradcheck.compare", "name not a string", lambda: gradcheck.compare(1, np.ones(2), np.ones(2)), TypeError, "name"),
    ("gradcheck.compare", "negative bound", lambda: gradcheck.compare("c", np.ones(2), np.ones(2), bound=-1),
     ValueError, "bound"),
    ("gradcheck.compare", "reference shape", lambda: gradcheck.compare("c", np.ones(2), np.ones(3)),
     ValueError, "reference"),
    ("gradcheck.compare", "NaN analytic", lambda: gradcheck.compare("c", np.array([np.nan]), np.ones(1)),
     ValueError, "analytic"),
    ("gradcheck.check_gradient", "f not callable", lambda: gradcheck.check_gradient("c", None, np.ones(2), np.ones(2)),
     TypeError, "f"),
    ("gradcheck.check_vjp", "NaN upstream",
     lambda: gradcheck.check_vjp("c", np.sin, np.ones(2), np.array([np.nan, 1.0]), np.ones(2)), ValueError, "upstream"),
    # matcalc
    ("matcalc.vec", "1-D", lambda: matcalc.vec(np.ones(3)), ValueError, "M"),
    ("matcalc.unvec", "wrong size", lambda: matcalc.unvec(np.ones(5), 2, 3), ValueError, "v"),
    ("matcalc.commutation_matrix", "m 0", lambda: matcalc.commutation_matrix(0, 2), ValueError, "m"),
    ("matcalc.left_product_jacobian", "cols 0", lambda: matcalc.left_product_jacobian(W, 0), ValueError, "cols"),
    ("matcalc.right_product_jacobian", "rows float", lambda: matcalc.right_product_jacobian(W, 2.0), TypeError,
     "rows"),
    ("matcalc.sandwich_jacobian", "NaN in B", lambda: matcalc.sandwich_jacobian(W, NAN_X), ValueError, "B"),
    ("matcalc.sandwich_jacobian", "overflow", lambda: matcalc.sandwich_jacobian(W * 1e200, W.T * 1e200),
     ValueError, "sandwich_jacobian"),
    ("matcalc.sandwich_product", "shapes", lambda: matcalc.sandwich_product(W, W, W), ValueError, "X"),
    ("matcalc.sandwich_product", "overflow", lambda: matcalc.sandwich_product(W.T * 1e200, W * 1e200, W.T),
     ValueError, "sandwich_product"),
    ("matcalc.hadamard_jacobian", "strings", lambda: matcalc.hadamard_jacobian(np.array([["a"]])), TypeError, "M"),
    ("matcalc.kronecker_permutation", "not a pair", lambda: matcalc.kronecker_permutation(3, (1, 1)), TypeError,
     "A_shape"),
    ("matcalc.kronecker_jacobians", "1-D B", lambda: matcalc.kronecker_jacobians(W, np.ones(2)), ValueError, "B"),
    ("matcalc.selection_matrix", "index out of range", lambda: matcalc.selection_matrix([0, 5], 3), ValueError,
     "indices"),
    ("matcalc.diagonal_selection_matrix", "p negative", lambda: matcalc.diagonal_selection_matrix(-1), ValueError,
     "p"),
    ("matcalc.row_broadcast_jacobian", "N 0", lambda: matcalc.row_broadcast_jacobian(0, 2), ValueError, "N"),
    ("matcalc.gradient_from_jacobian", "jacobian shape",
     lambda: matcalc.gradient_from_jacobian(np.ones((2, 2)), np.ones((4, 5)), (2, 2)), ValueError, "jacobian"),
    # layers
    ("layers.linear_forward", "W rows", lambda: layers.linear_forward(X, np.ones((2, 2))), ValueError, "W"),
    ("layers.linear_forward", "b shape", lambda: layers.linear_forward(X, W, np.ones(3)), ValueError, "b"),
    ("layers.linear_forward", "overflow", lambda: layers.linear_forward(X * 1e300, W * 1e300), ValueError,
     "linear_forward"),
    ("layers.linear_backward", "dY shape", lambda: layers.linear_backward(np.ones((4, 3)), X, W), ValueError, "dY"),
    ("layers.linear_backward", "overflow", lambda: layers.linear_backward(np.full((4, 2), 1e300), X, W * 1e300),
     ValueError, "linear_backward"),
    ("layers.Linear", "W 1-D", lambda: layers.Linear(np.ones(3)).forward(X), ValueError, "W"),
    ("layers.Linear.forward", "NaN in X", lambda: layers.Linear(W).forward(NAN_X), ValueError, "X"),
    ("layers.Linear.backward", "dY shape", lambda: linear_layer().backward(np.ones((4, 3))), ValueError, "dY"),
    ("layers.Activation.forward", "NaN in Z", lambda: layers.activation("relu").forward(NAN_X), ValueError, "Z"),
    ("layers.Activation.derivative", "strings", lambda: layers.activation("tanh").derivative(np.array(["a"])),
     TypeError, "Z"),
    ("layers.Activation.backward", "dA shape", lambda: layers.activation("elu").backward(np.ones(2), X), ValueError,
     "dA"),
    ("layers.Activation.backward", "overflow",
     lambda: layers.activation("leaky_relu", negative_slope=1e10).backward(np.full(2, -1e300), np.full(2, -1.0)),
     ValueError, "leaky_relu backward"),
    ("layers.activation", "unknown name", lambda: layers.activation("swish"), ValueError, "name"),
    ("layers.activation", "negative slope", lambda: layers.activation("leaky_relu", negative_slope=-1), ValueError,
     "negative_slope"),
    ("layers.activation", "derivative_at_zero NaN", lambda: layers.activation("relu", derivative_at_zero=np.nan),
     ValueError, "derivative_at_zero"),
    ("layers.relu", "strings", lambda: layers.relu(["a"]), TypeError, "Z"),
    ("layers.leaky_relu", "slope a string", lambda: layers.leaky_relu(X, "0.1"), TypeError, "negative_slope"),
    ("layers.elu", "alpha negative", lambda: layers.elu(X, alpha=-1.0), ValueError, "alpha"),
    ("layers.sigmoid", "inf", lambda: layers.sigmoid(np.array([np.inf])), ValueError, "Z"),
    ("layers.tanh", "complex", lambda: layers.tanh(np.array([1j])), TypeError, "Z"),
    # losses
    ("losses.squared_error", "shapes", lambda: losses.squared_error(np.ones(3), np.ones(4)), ValueError, "y_hat"),
    ("losses.squared_error", "reduction", lambda: losses.squared_error(np.ones(3), np.ones(3), reduction="max"),
     ValueError, "reduction"),
    ("losses.squared_error", "empty", lambda: losses.squared_error(np.ones(0), np.ones(0)), ValueError, "y"),
    ("losses.squared_error", "overflow", lambda: losses.squared_error(np.array([1e200]), np.array([-1e200])),
     ValueError, "squared_error"),
    ("losses.squared_error_gradient", "NaN", lambda: losses.squared_error_gradient(np.ones(1), np.array([np.nan])),
     ValueError, "y_hat"),
    ("losses.squared_error_gradient", "overflow",
     lambda: losses.squared_error_gradient(np.array([1.7e308]), np.array([-1.7e308])), ValueError,
     "squared_error_gradient"),
    ("losses.one_hot", "label out of range", lambda: losses.one_hot([0, 3], 3), ValueError, "labels"),
    ("losses.one_hot", "negative label", lambda: losses.one_hot([-1, 0], 3), ValueError, "labels"),
    ("losses.one_hot", "fractional labels", lambda: losses.one_hot([0.5, 1.0], 3), TypeError, "labels"),
    ("losses.one_hot", "2-D labels", lambda: losses.one_hot([[0, 1]], 3), ValueError, "labels"),
    ("losses.one_hot", "num_classes 0", lambda: losses.one_hot([0], 0), ValueError, "num_classes"),
    ("losses.log_softmax", "1-D Z", lambda: losses.log_softmax(np.ones(3)), ValueError, "Z"),
    ("losses.log_softmax", "one class", lambda: losses.log_softmax(np.ones((2, 1))), ValueError, "Z"),
    ("losses.log_softmax", "NaN in Z", lambda: losses.log_softmax(NAN_X), ValueError, "Z"),
    ("losses.log_softmax", "logits spread past the float range", lambda: losses.log_softmax(WIDE), ValueError, "Z"),
    ("losses.softmax", "strings", lambda: losses.softmax(np.array([["a", "b"]])), TypeError, "Z"),
    ("losses.softmax", "inf in Z", lambda: losses.softmax(np.where(Z > 2, np.inf, Z)), ValueError, "Z"),
    ("losses.softmax_cross_entropy", "label out of range", lambda: losses.softmax_cross_entropy(Z, [0, 3]),
     ValueError, "labels"),
    ("losses.softmax_cross_entropy", "one label per sample", lambda: losses.softmax_cross_entropy(Z, [0, 1, 2]),
     ValueError, "labels"),
    ("losses.softmax_cross_entropy", "one-hot with two 1s",
     lambda: losses.softmax_cross_entropy(Z, [[1, 1, 0], [0, 0, 1]]), ValueError, "labels"),
    ("losses.softmax_cross_entropy", "reduction", lambda: losses.softmax_cross_entropy(Z, LABELS, reduction="max"),
     ValueError, "reduction"),
    ("losses.softmax_cross_entropy", "logits spread past the float range",
     lambda: losses.softmax_cross_entropy(WIDE, LABELS), ValueError, "Z"),
    ("losses.softmax_vjp", "S not a softmax output", lambda: losses.softmax_vjp(np.ones((2, 3)), DY[:2]), ValueError,
     "S"),
    ("losses.softmax_vjp", "dS shape", lambda: losses.softmax_vjp(S, np.ones((3, 2))), ValueError, "dS"),
    ("losses.softmax_vjp", "NaN in dS", lambda: losses.softmax_vjp(S, NAN_X[:2]), ValueError, "dS"),
    ("losses.softmax_vjp", "overflow",
     lambda: losses.softmax_vjp(np.array([[0.9, 0.1]]), np.array([[1.7e308, -1.7e308]])), ValueError, "dS"),
    ("losses.binary_cross_entropy_per_class", "clip 0 with P at 0 and 1",
     lambda: losses.binary_cross_entropy_per_class(LABELS, P, clip=0.0), ValueError, "clip"),
    ("losses.binary_cross_entropy_per_class", "float32 P at 1 that the default clip cannot move",
     lambda: losses.binary_cross_entropy_per_class(LABELS, P.astype(np.float32)), ValueError, "clip"),
    ("losses.binary_cross_entropy_per_class", "P above 1", lambda: losses.binary_cross_entropy_per_class(LABELS, P + 1),
     ValueError, "P"),
    ("losses.binary_cross_entropy_per_class", "label out of range",
     lambda: losses.binary_cross_entropy_per_class([0, 3], P), ValueError, "Y"),
    ("losses.binary_cross_entropy_per_class", "one-hot of the wrong width",
     lambda: losses.binary_cross_entropy_per_class(np.eye(4)[:2], P), ValueError, "Y"),
    ("losses.binary_cross_entropy_per_class_gradient", "clip 0 with P at 0 and 1",
     lambda: losses.binary_cross_entropy_per_class_gradient(LABELS, P, clip=0.0), ValueError, "clip"),
    ("losses.binary_cross_entropy_per_class_gradient", "clip 0.5",
     lambda: losses.binary_cross_entropy_per_class_gradient(LABELS, P, clip=0.5), ValueError, "clip"),
    ("losses.binary_cross_entropy_per_class_gradient", "NaN in P",
     lambda: losses.binary_cross_entropy_per_class_gradient(LABELS, np.where(P == 0, np.nan, P)), ValueError, "P"),
    # network
    ("network.ActivationLayer", "unknown name", lambda: network.ActivationLayer("swish"), ValueError, "name"),
    ("network.ActivationLayer.forward", "NaN in Z", lambda: network.ActivationLayer("relu").forward(NAN_X), ValueError,
     "Z"),
    ("network.ActivationLayer.backward", "dA shape", lambda: activation_layer().backward(DY.T), ValueError, "dA"),
    ("network.Sequential", "a layer, not a list", lambda: network.Sequential(layers.Linear(W)), TypeError, "layers"),
    ("network.Sequential", "widths do not chain",
     lambda: network.Sequential([layers.Linear(W), layers.Linear(np.ones((3, 2)))]), ValueError, "W"),
    ("network.Sequential", "not a layer", lambda: network.Sequential([layers.Linear(W), "relu"]), TypeError, "layers"),
    ("network.Sequential.train", "mode a string", lambda: small_net().train("eval"), TypeError, "mode"),
    ("network.Sequential.forward", "wrong width", lambda: small_net().forward(X[:, :2]), ValueError, "X"),
    ("network.Sequential.forward", "NaN in X", lambda: small_net().forward(NAN_X), ValueError, "X"),
    ("network.Sequential.backward", "dY shape", lambda: ran_net().backward(DY), ValueError, "dY"),
    ("network.Sequential.backward", "NaN in dY", lambda: ran_net().backward(NAN_X[:, :2]), ValueError, "dY"),
    ("network.Sequential.astype", "float16", lambda: small_net().astype(np.float16), ValueError, "dtype"),
    ("network.Sequential.astype", "not a dtype", lambda: small_net().astype("nonsense"), TypeError, "dtype"),
    ("network.mlp", "sizes an integer", lambda: network.mlp(3), TypeError, "sizes"),
    ("network.mlp", "one size", lambda: network.mlp([3]), ValueError, "sizes"),
    ("network.mlp", "size 0", lambda: network.mlp([3, 0, 2]), ValueError, "sizes"),
    ("network.mlp", "negative seed", lambda: network.mlp([3, 2], seed=-1), ValueError, "seed"),
    ("network.mlp", "batchnorm a string", lambda: network.mlp([3, 2], batchnorm="yes"), TypeError, "batchnorm"),
    ("network.mlp", "unknown init", lambda: network.mlp([3, 2], init="he"), ValueError, "init"),
    ("network.mlp", "unknown activation", lambda: network.mlp([3, 2], activation="swish"), ValueError, "activation"),
    ("network.mlp", "bias flags", lambda: network.mlp([3, 4, 2], bias=[True]), ValueError, "bias"),
    ("network.mlp", "float16", lambda: network.mlp([3, 2], dtype=np.float16), ValueError, "dtype"),
    ("network.check_network_gradients", "not a network",
     lambda: network.check_network_gradients(layers.Linear(W), X, Y4), TypeError, "model"),
    ("network.check_network_gradients", "negative bound",
     lambda: network.check_network_gradients(small_net(), X, Y4, bound=-1.0), ValueError, "bound"),
    ("network.check_network_gradients", "loss not callable",
     lambda: network.check_network_gradients(small_net(), X, Y4, loss="mse"), TypeError, "loss"),
    ("network.check_network_gradients", "label out of range",
     lambda: network.check_network_gradients(small_net(), X, Y4 + 1), ValueError, "labels"),
    ("network.check_network_gradients", "float32 network",
     lambda: network.check_network_gradients(small_net(dtype=np.float32), X, Y4), ValueError, "model"),
    # training
    ("training.accuracy", "NaN logits", lambda: training.accuracy(NAN_X, Y4), ValueError, "logits"),
    ("training.accuracy", "1-D logits", lambda: training.accuracy(np.ones(4), Y4), ValueError, "logits"),
    ("training.accuracy", "label out of range", lambda: training.accuracy(X, Y4 + 2), ValueError, "y"),
    ("training.accuracy", "float labels", lambda: training.accuracy(X, Y4 * 1.0), ValueError, "y"),
    ("training.evaluate", "not a network", lambda: training.evaluate(layers.Linear(W), X, Y4), TypeError, "model"),
    ("training.evaluate", "training_mode a string",
     lambda: training.evaluate(small_net(), X, Y4, training_mode="yes"), TypeError, "training_mode"),
    ("training.evaluate", "batch_size 0", lambda: training.evaluate(small_net(), X, Y4, batch_size=0), ValueError,
     "batch_size"),
    ("training.evaluate", "label out of range", lambda: training.evaluate(small_net(), X, Y4 + 1), ValueError, "y"),
    ("training.fit", "not an optimizer", lambda: fit(optimizer="sgd"), TypeError, "optimizer"),
    ("training.fit", "epochs 0", lambda: fit(epochs=0), ValueError, "epochs"),
    ("training.fit", "negative seed", lambda: fit(seed=-1), ValueError, "seed"),
    ("training.fit", "batch_size 1 with batch norm", lambda: fit(batch_size=1), ValueError, "batch_size"),
    ("training.fit", "batch_size above N", lambda: fit(batch_size=5), ValueError, "batch_size"),
    ("training.fit", "label out of range", lambda: fit(y=Y4 + 1), ValueError, "y"),
    ("training.fit", "X_test width", lambda: fit(X_test=X[:, :2], y_test=Y4), ValueError, "X_test"),
    ("training.fit", "y_test out of range", lambda: fit(X_test=X, y_test=Y4 - 1), ValueError, "y_test"),
    ("training.fit", "NaN in X_test", lambda: fit(X_test=NAN_X, y_test=Y4), ValueError, "X_test"),
    ("training.fit", "unknown progress", lambda: fit(progress="sometimes"), ValueError, "progress"),
    ("training.fit", "loss not callable", lambda: fit(loss="cross-entropy"), TypeError, "loss"),
    # experiments
    ("experiments.digits_network_corrected", "negative seed", lambda: experiments.digits_network_corrected(-1),
     ValueError, "seed"),
    ("experiments.digits_network_corrected", "seed too large", lambda: experiments.digits_network_corrected(2**32),
     ValueError, "seed"),
    ("experiments.digits_network_corrected", "seed a string", lambda: experiments.digits_network_corrected("0"),
     TypeError, "seed"),
    ("experiments.digits_corrected", "data not a Split", lambda: experiments.digits_corrected(0, (X, Y4)), TypeError,
     "data"),
    ("experiments.digits_corrected", "steps 0", lambda: experiments.digits_corrected(0, SPLIT, steps=0), ValueError,
     "steps"),
    ("experiments.digits_corrected", "log_every 0", lambda: experiments.digits_corrected(0, SPLIT, log_every=0),
     ValueError, "log_every"),
    ("experiments.digits_run", "data not a Split", lambda: experiments.digits_run(0, (X, Y4)), TypeError, "data"),
    ("experiments.digits_run", "steps 0", lambda: experiments.digits_run(0, SPLIT, steps=0), ValueError, "steps"),
    ("experiments.digits_run", "negative seed", lambda: experiments.digits_run(-1, SPLIT, steps=1), ValueError,
     "seed"),
    ("experiments.mnist_network", "batchnorm a string", lambda: experiments.mnist_network(0, batchnorm="yes"),
     TypeError, "batchnorm"),
    ("experiments.mnist_network", "negative seed", lambda: experiments.mnist_network(-1, batchnorm=True), ValueError,
     "seed"),
    ("experiments.mnist_network", "last_bias a string",
     lambda: experiments.mnist_network(0, batchnorm=True, last_bias="no"), TypeError, "last_bias"),
    ("experiments.mnist_network", "float16", lambda: experiments.mnist_network(0, batchnorm=False, dtype=np.float16),
     ValueError, "dtype"),
    ("experiments.mnist_run", "data not a Split", lambda: experiments.mnist_run(0, None, batchnorm=True, epochs=1),
     TypeError, "data"),
    ("experiments.mnist_run", "epochs 0", lambda: experiments.mnist_run(0, SPLIT, batchnorm=True, epochs=0),
     ValueError, "epochs"),
    ("experiments.mnist_run", "lr 0", lambda: experiments.mnist_run(0, SPLIT, batchnorm=True, epochs=1, lr=0),
     ValueError, "lr"),
    ("experiments.mnist_run", "lr a string",
     lambda: experiments.mnist_run(0, SPLIT, batchnorm=True, epochs=1, lr="0.1"), TypeError, "lr"),
    # benchmarking
    ("benchmarking.make_inputs", "batch of one", lambda: benchmarking.make_inputs(1, 3), ValueError, "n"),
    ("benchmarking.make_inputs", "p 0", lambda: benchmarking.make_inputs(4, 0), ValueError, "p"),
    ("benchmarking.make_inputs", "n a float", lambda: benchmarking.make_inputs(4.0, 3), TypeError, "n"),
    ("benchmarking.make_inputs", "float16", lambda: benchmarking.make_inputs(4, 3, "float16"), ValueError, "dtype"),
    ("benchmarking.make_inputs", "negative seed", lambda: benchmarking.make_inputs(4, 3, seed=-1), ValueError, "seed"),
    ("benchmarking.loop_case", "no dY", lambda: benchmarking.loop_case({"X": X, "gamma": GAMMA, "beta": BETA}),
     ValueError, "inputs"),
    ("benchmarking.loop_case", "a list", lambda: benchmarking.loop_case([X, DY, GAMMA, BETA]), TypeError, "inputs"),
    ("benchmarking.matrix_case", "no gamma", lambda: benchmarking.matrix_case({"X": X, "dY": DY}), ValueError,
     "inputs"),
    ("benchmarking.matrix_case", "unknown engine", lambda: benchmarking.matrix_case(INPUTS, "jit"), ValueError,
     "engine"),
    ("benchmarking.matrix_case", "threads 0", lambda: benchmarking.matrix_case(INPUTS, threads=0), ValueError,
     "threads"),
    ("benchmarking.graph_case", "no dY", lambda: benchmarking.graph_case({"X": X, "gamma": GAMMA, "beta": BETA}),
     ValueError, "inputs"),
    ("benchmarking.other_load", "not a snapshot", lambda: benchmarking.other_load({}, {}), TypeError, "start"),
    ("benchmarking.to_torch", "a list", lambda: benchmarking.to_torch([X]), TypeError, "inputs"),
    ("benchmarking.to_torch", "device a number", lambda: benchmarking.to_torch(INPUTS, 0), TypeError, "device"),
    ("benchmarking.torch_case", "threads 0", lambda: benchmarking.torch_case(INPUTS, threads=0), ValueError, "threads"),
    ("benchmarking.torch_case", "no beta", lambda: benchmarking.torch_case({"X": X, "dY": DY, "gamma": GAMMA}),
     ValueError, "inputs"),
    ("benchmarking.copy_case", "no X", lambda: benchmarking.copy_case({}), ValueError, "inputs"),
    ("benchmarking.copy_case", "X a list", lambda: benchmarking.copy_case({"X": [1.0, 2.0]}), TypeError,
     "inputs['X']"),
    ("benchmarking.interleaved_times", "repeats 0", lambda: benchmarking.interleaved_times({"a": int}, repeats=0),
     ValueError, "repeats"),
    ("benchmarking.interleaved_times", "no cases", lambda: benchmarking.interleaved_times({}, repeats=1), ValueError,
     "cases"),
    ("benchmarking.interleaved_times", "a case not callable",
     lambda: benchmarking.interleaved_times({"a": 3}, repeats=1), TypeError, "cases['a']"),
    ("benchmarking.interleaved_times", "synchronize not callable",
     lambda: benchmarking.interleaved_times({"a": int}, repeats=1, synchronize=1), TypeError, "synchronize"),
    ("benchmarking.summarise", "empty", lambda: benchmarking.summarise([]), ValueError, "seconds"),
    ("benchmarking.summarise", "NaN", lambda: benchmarking.summarise([1.0, float("nan")]), ValueError, "seconds"),
    ("benchmarking.summarise", "a string", lambda: benchmarking.summarise("1 2"), TypeError, "seconds"),
    ("benchmarking.copy_bandwidth", "nbytes 0", lambda: benchmarking.copy_bandwidth(0), ValueError, "nbytes"),
    ("benchmarking.copy_bandwidth", "repeats 0", lambda: benchmarking.copy_bandwidth(1024, repeats=0), ValueError,
     "repeats"),
    ("benchmarking.mmap_large_allocations", "negative threshold", lambda: benchmarking.mmap_large_allocations(-1),
     ValueError, "threshold"),
    ("benchmarking.mmap_large_allocations", "threshold a string",
     lambda: benchmarking.mmap_large_allocations("64k"), TypeError, "threshold"),
    ("benchmarking.peak_rss_increase", "case not callable", lambda: benchmarking.peak_rss_increase(None), TypeError,
     "case"),
    ("benchmarking.peak_traced_increase", "case not callable", lambda: benchmarking.peak_traced_increase(3), TypeError,
     "case"),
    ("benchmarking.count_traffic", "case not callable", lambda: benchmarking.count_traffic("f"), TypeError, "case"),
    # optim
    ("optim.Optimizer", "negative lr", lambda: optim.Optimizer(-1.0), ValueError, "lr"),
    ("optim.Optimizer.lr", "set to a string", lambda: set_lr("fast"), TypeError, "lr"),
    ("optim.Optimizer.step", "keys differ", lambda: step({"w": np.ones(2)}, {"v": np.ones(2)}), ValueError, "grads"),
    ("optim.Optimizer.step", "not a dict", lambda: step([np.ones(2)], {}), TypeError, "params"),
    ("optim.Optimizer.step", "integer parameter", lambda: step({"w": np.ones(2, dtype=int)}, {"w": np.ones(2)}),
     TypeError, "params['w']"),
    ("optim.Optimizer.step", "float16 parameter",
     lambda: step({"w": np.ones(2, dtype=np.float16)}, {"w": np.ones(2)}), TypeError, "params['w']"),
    ("optim.Optimizer.step", "same array twice", lambda: step({"a": shared, "b": shared}, {"a": DY[0], "b": DY[0]}),
     ValueError, "params['a']"),
    ("optim.Optimizer.step", "overlapping views",
     lambda: step({"a": shared[:3], "b": shared[2:]}, {"a": np.ones(3), "b": np.ones(2)}), ValueError, "params['a']"),
    ("optim.Optimizer.step", "grad shape", lambda: step({"w": np.ones(2)}, {"w": np.ones(3)}), ValueError,
     "grads['w']"),
    ("optim.Optimizer.step", "state overflows",
     lambda: step({"w": np.ones(1)}, {"w": np.array([1e200])}, optim.Adam()), ValueError, "params['w']"),
    ("optim.SGD", "momentum 1", lambda: optim.SGD(lr=0.1, momentum=1.0), ValueError, "momentum"),
    ("optim.SGD", "nesterov not a bool", lambda: optim.SGD(lr=0.1, momentum=0.9, nesterov=1), TypeError, "nesterov"),
    ("optim.AdaGrad", "placement", lambda: optim.AdaGrad(lr=0.1, eps_placement="x"), ValueError, "eps_placement"),
    ("optim.RMSprop", "rho negative", lambda: optim.RMSprop(lr=0.1, rho=-0.5), ValueError, "rho"),
    ("optim.Adadelta", "eps NaN", lambda: optim.Adadelta(eps=float("nan")), ValueError, "eps"),
    ("optim.Adam", "beta2 1", lambda: optim.Adam(beta2=1.0), ValueError, "beta2"),
    ("optim.Adam", "hyper-parameter by position", lambda: optim.Adam(0.1, 0.9), TypeError, "beta1"),
    ("optim.AdamW", "negative weight decay", lambda: optim.AdamW(weight_decay=-0.1), ValueError, "weight_decay"),
    # bias_example
    ("bias_example.layer", "batch of one", lambda: bias_example.layer(np.ones(1), 1.0, 0.0), ValueError, "u"),
    ("bias_example.layer", "w a string", lambda: bias_example.layer(U, "1", 0.0), TypeError, "w"),
    ("bias_example.squared_loss", "target shape", lambda: bias_example.squared_loss(U, np.ones(2)), ValueError,
     "target"),
    ("bias_example.gradients", "negative eps",
     lambda: bias_example.gradients(U, U, 1.0, 0.0, through_statistics=True, eps=-1.0), ValueError, "eps"),
    ("bias_example.gradient_descent", "negative steps",
     lambda: bias_example.gradient_descent(U, U, lr=0.1, steps=-1, through_statistics=False), ValueError, "steps"),
    # question_network
    ("question_network.QuestionNetwork", "batch_norm not a bool",
     lambda: question_network.QuestionNetwork(batch_norm=1), TypeError, "batch_norm"),
    ("question_network.QuestionNetwork", "unknown activation",
     lambda: question_network.QuestionNetwork(activation="softsign"), ValueError, "activation"),
    ("question_network.QuestionNetwork.forward", "G1 rows",
     lambda: NET.forward(DATA.X, DATA.G1[:2], DATA.G2, DATA.gamma, DATA.beta), ValueError, "G1"),
    ("question_network.QuestionNetwork.predict", "gamma missing",
     lambda: NET.predict(DATA.X, DATA.G1, DATA.G2), ValueError, "gamma"),
    ("question_network.QuestionNetwork.loss", "reduction", lambda: NET.loss(DATA.X, DATA.y, *PARAMS, reduction="avg"),
     ValueError, "reduction"),
    ("question_network.QuestionNetwork.stub", "y shape", lambda: NET.stub(DATA.X, DATA.y[:3], *PARAMS), ValueError,
     "y"),
    ("question_network.QuestionNetwork.gradients", "through_statistics not a bool",
     lambda: NET.gradients(DATA.X, DATA.y, *PARAMS, through_statistics="yes"), TypeError, "through_statistics"),
    ("question_network.QuestionNetwork.gradients_loop", "G2 shape",
     lambda: NET.gradients_loop(DATA.X, DATA.y, DATA.G1, np.ones(3), DATA.gamma, DATA.beta), ValueError, "G2"),
]

AS_PUBLISHED = "the sources' code as printed, kept to be judged (module docstring: nothing here is meant for use)"
RECORD = "a frozen record the library returns, not an entry point that takes the reader's input"
STORED = "a property that returns a value the object already holds (a former name, or a layer size); no input"
EXEMPT = {
    "batchnorm_as_published": AS_PUBLISHED,
    "question_as_published": AS_PUBLISHED,
    "optim_as_published": AS_PUBLISHED,
    "digits_as_published": AS_PUBLISHED,
    "distributed_pitfalls": "historical bugs reconstructed on purpose, for the chapter to catch (module docstring: "
    "nothing here is meant for use)",
    "batchnorm.BatchNormCache": RECORD,
    "batchnorm.BatchNormCache.batch_size": RECORD,
    "batchnorm.BatchNormCache.inv_std": STORED,
    "batchnorm.BatchNormCache.xc": "computed from the cache's own arrays (x̂ / inv_denom); takes no argument",
    "batchnorm.BatchNorm.eval": "takes no argument",
    "benchmarking.cpu_model": "takes no argument: it reads /proc/cpuinfo",
    "benchmarking.cpu_snapshot": "takes no argument: it reads /proc/stat and the process's CPU times",
    "fused.available": "takes no argument: it says whether Numba is installed",
    "benchmarking.machine_info": "takes no argument: it reports the machine and library versions",
    "distributed.Collective": RECORD,
    "distributed.DistributedCache": RECORD + "; distributed.backward checks that it gets one (in the table)",
    "distributed.DistributedCache.batch_size": RECORD,
    "distributed.record_collectives": "takes no argument: it yields the list it records into",
    "distributed.free_port": "takes no argument: the system picks the port",
    "canon.IoffeSzegedyGradients": RECORD,
    "canon.MakemoreCache": RECORD + "; makemore_backward checks that it gets one (in the table)",
    "data.Split": RECORD + " (the loaders build it from their own arrays)",
    "figures.use_book_style": "takes no argument: it sets matplotlib's style for the book's figures",
    "experiments.machine_info": "takes no argument: it reports the machine and library versions",
    "network.Sequential.input_features": STORED,
    "network.Sequential.eval": "takes no argument",
    "network.Sequential.parameters": "takes no argument: it returns the layers' own arrays",
    "network.Sequential.gradients": "takes no argument: it returns the last backward pass's gradients",
    "network.Sequential.num_parameters": "takes no argument",
    "question_network.ForwardCache.inv_std": STORED,
    "training.History": "a record that fit() fills in, not an entry point that takes the reader's input",
    "training.History.as_dict": "takes no argument: it copies the record into plain lists",
    "bias_example.DescentHistory": RECORD,
    "gradcheck.CheckResult": RECORD,
    "gradcheck.CheckResult.passed": RECORD,
    "layers.Activation": "built by layers.activation(), which validates its options (in the table)",
    "question_network.QuestionData": RECORD,
    "question_network.QuestionData.shape": RECORD,
    "question_network.NetworkGradients": RECORD,
    "question_network.ForwardCache": RECORD,
    "question_network.load_question_data": "takes no argument: it reads the package's own data file",
    "stepwise.Step": RECORD,
    "symbolic.Proof": RECORD,
}


def public_entry_points() -> list[str]:
    """``module.function``, ``module.Class`` and ``module.Class.member`` for every public name."""
    names = []
    for info in pkgutil.iter_modules(bnbackprop.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"bnbackprop.{info.name}")
        for name, value in vars(module).items():
            if name.startswith("_") or getattr(value, "__module__", None) != module.__name__ or not callable(value):
                continue
            names.append(f"{info.name}.{name}")
            if inspect.isclass(value):
                names += [
                    f"{info.name}.{name}.{member}"
                    for member, attribute in vars(value).items()
                    if not member.startswith("_") and (callable(attribute) or isinstance(attribute, property))
                ]
    return names


def _exempt(entry: str) -> bool:
    return entry in EXEMPT or entry.split(".")[0] in EXEMPT


def test_every_public_entry_point_is_in_the_table_or_exempt():
    covered = {row[0] for row in TABLE}
    missing = [entry for entry in public_entry_points() if entry not in covered and not _exempt(entry)]
    assert not missing, f"public entry points with no bad-input case and no exemption: {missing}"


def test_the_table_and_exemptions_name_real_entry_points():
    entries = set(public_entry_points())
    modules = {entry.split(".")[0] for entry in entries}
    stale = [row[0] for row in TABLE if row[0] not in entries]
    stale += [name for name in EXEMPT if name not in entries and name not in modules]
    assert not stale, f"rows or exemptions for names that do not exist: {stale}"


@pytest.mark.parametrize(
    ("entry", "call", "error", "argument"),
    [pytest.param(entry, call, error, argument, id=f"{entry}: {what}") for entry, what, call, error, argument in TABLE],
)
def test_bad_input_raises_a_clear_error_naming_the_argument(entry, call, error, argument):
    # a NumPy floating-point warning from deep inside surfaces as FloatingPointError and fails
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        with pytest.raises(error) as info:
            call()
    message = str(info.value)
    pattern = re.escape(argument) if not argument.isidentifier() else rf"(?<![\w]){re.escape(argument)}(?![\w])"
    assert re.search(pattern, message), f"{entry}: the message does not name {argument!r}: {message}"
