"""Softmax, fused softmax cross-entropy, the softmax VJP and the blog's per-class BCE."""

import numpy as np
import pytest
import torch

from bnbackprop import losses
from bnbackprop.gradcheck import check_gradient, check_vjp, numerical_jacobian, relative_error


def logits(seed=0, shape=(5, 4), scale=3.0):
    return np.random.default_rng(seed).normal(scale=scale, size=shape)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_softmax_cross_entropy_matches_torch_and_finite_differences(reduction):
    Z, y = logits(), np.array([0, 3, 1, 1, 2])
    loss, dZ = losses.softmax_cross_entropy(Z, y, reduction=reduction)
    Zt = torch.tensor(Z, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(Zt, torch.tensor(y), reduction=reduction)
    ref.backward()
    assert abs(loss - ref.item()) <= 1e-12 * abs(ref.item())
    assert relative_error(dZ, Zt.grad.numpy()) < 1e-12
    check_gradient("dZ", lambda V: losses.softmax_cross_entropy(V, y, reduction=reduction)[0], Z, dZ)


def test_softmax_cross_entropy_accepts_one_hot_and_is_stable_for_huge_logits():
    Z, y = logits(), np.array([0, 3, 1, 1, 2])
    loss_labels, grad_labels = losses.softmax_cross_entropy(Z, y)
    loss_onehot, grad_onehot = losses.softmax_cross_entropy(Z, losses.one_hot(y, 4))
    assert loss_labels == loss_onehot
    np.testing.assert_array_equal(grad_labels, grad_onehot)
    # A shift of every logit by 1000 overflows a naive exp but changes nothing mathematically.
    loss_shifted, grad_shifted = losses.softmax_cross_entropy(Z + 1000.0, y)
    assert np.isfinite(loss_shifted)
    assert abs(loss_shifted - loss_labels) < 1e-10
    assert relative_error(grad_shifted, grad_labels) < 1e-10
    # Float32 logits keep their dtype.
    assert losses.softmax_cross_entropy(Z.astype(np.float32), y)[1].dtype == np.float32


def test_softmax_rows_sum_to_one_and_vjp_is_the_full_jacobian():
    Z = logits(1, (3, 5))
    S = losses.softmax(Z)
    np.testing.assert_allclose(S.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    dS = np.random.default_rng(2).normal(size=S.shape)
    check_vjp("softmax", losses.softmax, Z, dS, losses.softmax_vjp(S, dS))
    # Per row the Jacobian is diag(s) - s sᵀ.
    J = numerical_jacobian(lambda z: losses.softmax(z.reshape(1, -1)).ravel(), Z[0])
    np.testing.assert_allclose(J, np.diag(S[0]) - np.outer(S[0], S[0]), atol=1e-9)
    # The diagonal alone (the blog's p(1-p)) is not the VJP.
    assert relative_error(S * (1 - S) * dS, losses.softmax_vjp(S, dS)) > 0.1


def test_binary_cross_entropy_per_class_and_gradient():
    P = np.random.default_rng(3).uniform(0.05, 0.95, size=(4, 3))  # BCE needs no simplex
    Y = losses.one_hot([0, 2, 1, 1], 3)
    value = losses.binary_cross_entropy_per_class(Y, P)
    expected = -(Y * np.log(P) + (1 - Y) * np.log(1 - P))
    np.testing.assert_allclose(value, expected, rtol=1e-14)
    ref = torch.nn.functional.binary_cross_entropy(torch.tensor(P), torch.tensor(Y), reduction="none")
    np.testing.assert_allclose(value, ref.numpy(), rtol=1e-9)
    grad = losses.binary_cross_entropy_per_class_gradient(Y, P)
    check_gradient("dP", lambda Q: float(np.sum(losses.binary_cross_entropy_per_class(Y, Q))), P, grad)
    # Clipping keeps log(0) away, as the blog's code does.
    assert np.isfinite(losses.binary_cross_entropy_per_class(Y, np.round(P))).all()


@pytest.mark.parametrize(
    ("Z", "labels", "error", "message"),
    [
        (np.zeros((2, 3)), np.array([0, 3]), ValueError, r"labels must lie in \[0, 3\)"),
        (np.zeros((2, 3)), np.array([0, -1]), ValueError, "labels must lie"),
        (np.zeros((2, 3)), np.array([0.5, 1.0]), TypeError, "integer class indices"),
        (np.zeros((2, 3)), np.array([0, 1, 2]), ValueError, "2 class indices"),
        (np.zeros((2, 3)), np.eye(4)[:2], ValueError, "one-hot row of width C = 3"),
        (np.zeros((2, 3)), np.array([[1, 1, 0], [0, 1, 0]]), ValueError, "single 1 per row"),
        (np.array([[0.0, np.nan, 1.0], [0, 0, 0]]), np.array([0, 1]), ValueError, "non-finite"),
        (np.array([[0.0, np.inf, 1.0], [0, 0, 0]]), np.array([0, 1]), ValueError, "non-finite"),
        (np.zeros(3), np.array([0]), ValueError, "2-D"),
        (np.zeros((2, 1)), np.array([0, 0]), ValueError, "C >= 2"),
    ],
)
def test_softmax_cross_entropy_rejects_bad_input(Z, labels, error, message):
    with pytest.raises(error, match=message):
        losses.softmax_cross_entropy(Z, labels)


def test_other_bad_input():
    with pytest.raises(ValueError, match="reduction"):
        losses.softmax_cross_entropy(np.zeros((2, 3)), [0, 1], reduction="max")
    with pytest.raises(ValueError, match="softmax output"):
        losses.softmax_vjp(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        losses.softmax_vjp(np.full((2, 3), 1 / 3), np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        losses.binary_cross_entropy_per_class(np.eye(2), np.array([[1.5, -0.5], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="clip"):
        losses.binary_cross_entropy_per_class(np.eye(2), np.full((2, 2), 0.5), clip=0.5)
    with pytest.raises(ValueError, match="num_classes"):
        losses.one_hot([0], 0)
