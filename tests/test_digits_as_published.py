"""The blog's digits network as published, against the library and exact gradients."""

import numpy as np
import pytest

from bnbackprop import digits_as_published as blog
from bnbackprop.data import load_digits_as_blog
from bnbackprop.experiments import digits_network_corrected
from bnbackprop.gradcheck import numerical_jacobian, relative_error
from bnbackprop.losses import binary_cross_entropy_per_class, softmax, softmax_cross_entropy


def test_loss_gradient_times_diagonal_softmax_is_p_minus_y():
    """The blog's backward pass starts from (-y/p + (1-y)/(1-p)) ⊙ p(1-p) = p - y."""
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(6, 10))
    y = blog.one_hot(rng.integers(0, 10, 6))
    p = blog.Softmax()(Z)
    start = blog.Softmax().gradient(Z) * blog.CrossEntropyLoss().gradient(y, p)
    np.testing.assert_allclose(start, p - y, atol=1e-14)
    # That is the gradient of the categorical cross-entropy (summed) ...
    np.testing.assert_allclose(start, softmax_cross_entropy(Z, y, reduction="sum")[1], atol=1e-14)
    # ... not of the loss the blog prints.
    printed = numerical_jacobian(lambda z: np.array([np.sum(binary_cross_entropy_per_class(y, softmax(z)))]), Z)
    assert relative_error(start, printed.reshape(Z.shape, order="F")) > 0.05


def test_blog_activation_derivatives_as_coded():
    x = np.linspace(-3, 3, 13)
    x = x[x != 0]
    h = 1e-6
    for f in (blog.Sigmoid(), blog.Tanh(), blog.ReLU(), blog.LeakyReLU(0.2)):
        np.testing.assert_allclose(f.gradient(x), (f(x + h) - f(x - h)) / (2 * h), atol=1e-8)
    elu = blog.ELU(0.1)
    np.testing.assert_allclose(elu.gradient(x), (elu(x + h) - elu(x - h)) / (2 * h), atol=1e-8)


def test_blog_backward_equals_library_backward_from_the_same_weights():
    """Same initial weights, same data: the blog's gradients are the library's (sum CE)."""
    data = load_digits_as_blog()
    X, y = data.X_train[:200], data.y_train[:200]
    net = blog.BlogNetwork.build(seed=3)
    ours = digits_network_corrected(seed=3)
    p = net.forward(X)
    net.backward(blog.CrossEntropyLoss().gradient(blog.one_hot(y), p))
    _, dZ = softmax_cross_entropy(ours.forward(X), y, reduction="sum")
    ours.backward(dZ)
    grads = ours.gradients()
    dense = [layer for layer in net.layers if isinstance(layer, blog.Dense)]
    norms = [layer for layer in net.layers if isinstance(layer, blog.BatchNormalization)]
    for k, index in enumerate((0, 3, 6)):
        assert relative_error(dense[k].grad_w, grads[f"{index}.W"]) < 1e-9
        # The bias before batch norm has gradient 0 in exact arithmetic: compare absolutely.
        np.testing.assert_allclose(dense[k].grad_b.ravel(), grads[f"{index}.b"], atol=1e-9)
        assert relative_error(norms[k].grad_gamma, grads[f"{index + 1}.gamma"]) < 1e-9
        assert relative_error(norms[k].grad_beta, grads[f"{index + 1}.beta"]) < 1e-9


def test_parameter_counts_and_short_run():
    data = load_digits_as_blog()
    result = blog.train_as_published(0, data.X_train, data.y_train, data.X_test, data.y_test, steps=30,
                                     print_every=10)
    assert result["parameter_counts"] == [64 * 32 + 32, 64, 32 * 16 + 16, 32, 16 * 10 + 10, 20]
    assert result["loss_step"] == [0, 10, 20]
    assert result["loss_sum"][2] < result["loss_sum"][0]
    rerun = blog.train_as_published(0, data.X_train, data.y_train, data.X_test, data.y_test, steps=30,
                                    print_every=10)
    assert rerun == result


@pytest.mark.parametrize("seed", [0, 1])
def test_initial_weights_are_shared(seed):
    net, ours = blog.BlogNetwork.build(seed), digits_network_corrected(seed)
    np.testing.assert_array_equal(net.layers[3].w, ours.layers[3].W)
