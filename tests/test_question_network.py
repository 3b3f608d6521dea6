"""The question's network (seed 000): its data, its printed matrices, and the exact gradients
against finite differences, the loop reference, batch norm's own backward pass and PyTorch."""

import numpy as np
import pytest
import torch

from bnbackprop import batchnorm
from bnbackprop import question_as_published as published
from bnbackprop.gradcheck import check_gradient, relative_error
from bnbackprop.question_network import QuestionNetwork, load_question_data

# The question's printed outputs, copied from the source as printed (seed 000).
PRINTED = {
    "drdb": "-0.4460901 0.3899186 1.26758 -0.09589582",
    "loop_drdb": "-0.44609015  0.38991862  1.26758024 -0.09589582",
    "drdG1": """-61.531877  122.66157  360.08132 -51.666215
                  7.047767  -14.04947  -41.24316   5.917769
                124.157678 -247.50384 -726.56422 104.250961
                 44.151682  -88.01478 -258.37333  37.072659
                 22.478082  -44.80924 -131.54056  18.874078
                 22.098857  -44.05327 -129.32135  18.555655
                 79.617345 -158.71430 -465.91653  66.851965""",
    "drdg": """ 0.8580574 -1.125017  -4.876398  0.4611406
               -4.5463304  5.960787  25.837103 -2.4433071
                2.0706860 -2.714919 -11.767849  1.1128364
               -8.5641868 11.228681  48.670853 -4.6025996""",
    "loop_drdg": "0.8580574   5.9607870 -11.7678486  -4.6025996",
}
PRINTED["loop_drdG1"] = PRINTED["drdG1"]  # the question prints the same table twice


def printed_array(text):
    """Values and half-units of the last printed digit of each entry (its rounding bound)."""
    rows = [line.split() for line in text.strip().splitlines()]
    values = np.array([[float(s) for s in row] for row in rows])
    decimals = np.array([[len(s.split(".")[1]) if "." in s else 0 for s in row] for row in rows])
    return values, 0.5 * 10.0**-decimals


@pytest.fixture(scope="module")
def data():
    return load_question_data()


def test_data_have_the_questions_shapes_and_values(data):
    assert data.shape == (10, 7, 4)
    assert data.G2.shape == (4, 1) and data.u.shape == (10, 1) and data.y.shape == (10, 1)
    np.testing.assert_array_equal(data.gamma, [2, 3, 4, 5])
    np.testing.assert_array_equal(data.beta, [-2, -3, -4, -5])
    assert np.all(data.X == np.round(data.X)) and data.X.min() >= -5 and data.X.max() <= 5
    # the first draw after set.seed(1) in R is rnorm's -0.6264538107423324
    assert data.G1[0, 0] == pytest.approx(-0.6264538107423324, abs=1e-16)
    # y was computed by R; the Python network with R's scale() conventions gives it back
    y_hat = QuestionNetwork(ddof=1, eps=0.0).predict(data.X, data.G1, data.G2, data.gamma, data.beta)
    np.testing.assert_allclose(y_hat + data.u, data.y, rtol=0, atol=1e-14)


FUNCTIONS = {
    "drdb": published.drdb_matrix,
    "loop_drdb": published.drdb_loop,
    "drdG1": published.drdG1_matrix,
    "loop_drdG1": published.drdG1_loop,
    "drdg": published.drdg_matrix,
    "loop_drdg": published.drdg_loop,
}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_python_reproduces_every_printed_matrix_to_the_printed_digits(data, name):
    values, half_unit = printed_array(PRINTED[name])
    computed = FUNCTIONS[name](data).reshape(values.shape)
    assert np.all(np.abs(computed - values) <= half_unit * (1 + 1e-9)), name
    # and R's own full-precision result, stored beside the data, to rounding error
    np.testing.assert_allclose(computed, data.r_results[name].reshape(values.shape), rtol=1e-12, atol=1e-13)


def test_question_ap_is_identically_one_so_drdb_ignores_the_network(data):
    B = published.r_b(data.X @ data.G1, data.beta, data.gamma)
    assert np.any(B < 0)
    np.testing.assert_array_equal(published.r_ap(B), np.ones_like(B))
    np.testing.assert_allclose(published.drdb_matrix(data), -2 * data.u.sum() * data.G2.ravel(), rtol=1e-13)


def test_fixed_ap_makes_update1_formula_exact_and_exposes_the_loop_index_bug(data):
    net = QuestionNetwork()
    truth = net.gradients(data.X, data.y, data.G1, data.G2, data.gamma, data.beta).dbeta
    fixed = published.drdb_matrix(data, ap=published.relu_derivative)
    assert relative_error(fixed, truth) < 1e-14
    assert relative_error(published.drdb_loop(data, ap=published.relu_derivative, fix_index=True), truth) < 1e-14
    assert relative_error(published.drdb_loop(data, ap=published.relu_derivative), truth) > 0.5


def test_update3_code_and_text_differ_from_the_gradient(data):
    net = QuestionNetwork()
    args = (data.X, data.y, data.G1, data.G2, data.gamma, data.beta)
    truth = net.gradients(*args).dG1
    frozen = net.gradients(*args, through_statistics=False).dG1
    as_written = published.drdG1_matrix(data, ap=published.relu_derivative, w=published.w_as_written(data))
    assert relative_error(as_written, frozen) < 1e-14  # the text's formula = statistics held constant
    assert relative_error(frozen, truth) > 0.3
    assert relative_error(published.drdG1_matrix(data), truth) > 0.9


def test_update4_has_a_spurious_gamma_and_the_answer_does_not(data):
    net = QuestionNetwork()
    args = (data.X, data.y, data.G1, data.G2, data.gamma, data.beta)
    truth = net.gradients(*args).dgamma
    fixed_loop = published.drdg_loop(data, ap=published.relu_derivative)
    np.testing.assert_allclose(fixed_loop, data.gamma * truth, rtol=1e-13)
    np.testing.assert_allclose(np.diag(published.drdg_matrix(data, ap=published.relu_derivative)), fixed_loop)
    W = net.stub(*args)
    Z = data.X @ data.G1
    assert relative_error(published.answer_dgamma(Z, W), truth) < 1e-14
    assert relative_error(published.answer_dgamma_selection(Z, W), truth) < 1e-14
    assert relative_error(published.answer_dbeta(W), net.gradients(*args).dbeta) < 1e-14


@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "elu"])
def test_gradients_match_finite_differences_and_loop_reference(data, batch_norm, reduction, activation):
    net = QuestionNetwork(batch_norm=batch_norm, activation=activation)
    bn = (data.gamma, data.beta) if batch_norm else (None, None)
    X, y, G1, G2 = data.X, data.y, data.G1, data.G2
    grads = net.gradients(X, y, G1, G2, *bn, reduction=reduction)
    loop = net.gradients_loop(X, y, G1, G2, *bn, reduction=reduction)

    def loss(**change):
        params = {"G1": G1, "G2": G2, "gamma": bn[0], "beta": bn[1]} | change
        return net.loss(X, y, params["G1"], params["G2"], params["gamma"], params["beta"], reduction=reduction)

    check_gradient("dG1", lambda v: loss(G1=v), G1, grads.dG1)
    check_gradient("dG2", lambda v: loss(G2=v), G2, grads.dG2)
    assert relative_error(grads.dG1, loop.dG1) < 1e-12
    assert relative_error(grads.dG2, loop.dG2) < 1e-12
    if batch_norm:
        check_gradient("dgamma", lambda v: loss(gamma=v), data.gamma, grads.dgamma)
        check_gradient("dbeta", lambda v: loss(beta=v), data.beta, grads.dbeta)
        assert relative_error(grads.dgamma, loop.dgamma) < 1e-12
        assert relative_error(grads.dbeta, loop.dbeta) < 1e-12
    else:
        assert grads.dgamma is None and grads.dbeta is None


def test_sum_and_mean_conventions_differ_by_n(data):
    net = QuestionNetwork()
    args = (data.X, data.y, data.G1, data.G2, data.gamma, data.beta)
    total, mean = net.gradients(*args), net.gradients(*args, reduction="mean")
    assert relative_error(total.dG1, 10 * mean.dG1) < 1e-13
    assert relative_error(total.dbeta, 10 * mean.dbeta) < 1e-13


def test_closed_form_dZ_equals_batchnorm_backward(data):
    net = QuestionNetwork()
    args = (data.X, data.y, data.G1, data.G2, data.gamma, data.beta)
    W = net.stub(*args)
    _, cache = batchnorm.forward(data.X @ data.G1, data.gamma, data.beta, eps=0.0, ddof=1)
    dZ, dgamma, _ = batchnorm.backward(W, cache)
    grads = net.gradients(*args)
    assert relative_error(grads.dG1, data.X.T @ dZ) < 1e-13
    assert relative_error(grads.dgamma, dgamma) < 1e-13


def test_frozen_statistics_gradient_is_the_gradient_of_the_frozen_network(data):
    """through_statistics=False differentiates a network whose μ and σ are constants."""
    net = QuestionNetwork()
    X, y, G1, G2, gamma, beta = data.X, data.y, data.G1, data.G2, data.gamma, data.beta
    Z0 = X @ G1
    mu, sd = Z0.mean(axis=0), Z0.std(axis=0, ddof=1)

    def frozen_loss(G):
        B = gamma * (X @ G - mu) / sd + beta
        return float(np.sum((y - np.maximum(B, 0) @ G2) ** 2))

    frozen = net.gradients(X, y, G1, G2, gamma, beta, through_statistics=False).dG1
    check_gradient("dG1 (frozen)", frozen_loss, G1, frozen)


def test_gradients_match_torch_autograd(data):
    net = QuestionNetwork()
    grads = net.gradients(data.X, data.y, data.G1, data.G2, data.gamma, data.beta, reduction="mean")
    X, y = torch.tensor(data.X), torch.tensor(data.y)
    G1, G2, gamma, beta = (torch.tensor(a, requires_grad=True) for a in (data.G1, data.G2, data.gamma, data.beta))
    Z = X @ G1
    B = gamma * (Z - Z.mean(dim=0)) / Z.std(dim=0, correction=1) + beta
    loss = torch.mean((y - torch.relu(B) @ G2) ** 2)
    loss.backward()
    for mine, theirs in [(grads.dG1, G1), (grads.dG2, G2), (grads.dgamma, gamma), (grads.dbeta, beta)]:
        assert relative_error(mine, theirs.grad.numpy()) < 1e-12


def test_float32_gradients_with_looser_tolerance(data):
    net = QuestionNetwork()
    args64 = (data.X, data.y, data.G1, data.G2, data.gamma, data.beta)
    args32 = tuple(a.astype(np.float32) for a in args64)
    g64, g32 = net.gradients(*args64), net.gradients(*args32)
    # float32 rounding in the batch statistics (N = 10) and the products: bound 1e-4 relative
    for name in ("dG1", "dG2", "dgamma", "dbeta"):
        assert relative_error(getattr(g32, name), getattr(g64, name)) < 1e-4, name


def test_update1_matrix_is_the_kronecker_derivative(data):
    M = published.update1_kronecker_matrix(data.beta, 10)
    assert M.shape == (40, 4)
    ones = [r for r in range(40) if M[r].any()]
    assert ones == list(range(40)) and [int(np.argmax(M[r])) for r in (0, 1, 12, 13, 27, 28, 38, 39)] == [
        0, 0, 1, 1, 2, 2, 3, 3]  # the rows the question prints (1-based 1, 2, 13, 14, 28, 29, 39, 40)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda d: QuestionNetwork().predict(d.X, d.G1, d.G2), ValueError, "gamma and beta are required"),
        (lambda d: QuestionNetwork(batch_norm=False).predict(d.X, d.G1, d.G2, d.gamma, d.beta), ValueError,
         "must be None"),
        (lambda d: QuestionNetwork().predict(d.X, d.G1[:5], d.G2, d.gamma, d.beta), ValueError, "G1 must have"),
        (lambda d: QuestionNetwork().predict(d.X, d.G1, d.G2[:3], d.gamma, d.beta), ValueError, "G2 must have"),
        (lambda d: QuestionNetwork().predict(d.X, d.G1, d.G2, d.gamma[:3], d.beta), ValueError, "gamma must have"),
        (lambda d: QuestionNetwork().loss(d.X, d.y[:9], d.G1, d.G2, d.gamma, d.beta), ValueError,
         "y must have shape \\(10, 1\\)"),
        (lambda d: QuestionNetwork().gradients(d.X, d.y, d.G1, d.G2, d.gamma, d.beta, reduction="avg"),
         ValueError, "reduction"),
        (lambda d: QuestionNetwork(batch_norm=1), TypeError, "batch_norm"),
        (lambda d: QuestionNetwork().gradients(d.X, d.y, d.G1, d.G2, d.gamma, d.beta, through_statistics="no"),
         TypeError, "through_statistics"),
        (lambda d: QuestionNetwork(derivative_at_zero="half"), TypeError, "derivative_at_zero"),
        (lambda d: QuestionNetwork(activation="swish"), ValueError, "activation must be one of"),
        (lambda d: QuestionNetwork().predict(d.X[:1], d.G1, d.G2, d.gamma, d.beta), ValueError, "at least 2"),
        (lambda d: QuestionNetwork().predict(np.where(d.X == 3, np.nan, d.X), d.G1, d.G2, d.gamma, d.beta),
         ValueError, "X holds"),
        (lambda d: QuestionNetwork().predict(np.zeros_like(d.X), d.G1, d.G2, d.gamma, d.beta), ValueError,
         "zero variance"),
    ],
)
def test_bad_input_raises_clear_errors(data, call, error, match):
    with pytest.raises(error, match=match):
        call(data)
