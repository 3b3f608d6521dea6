"""The training loop: determinism, history, mini-batches, inference-mode evaluation, bad input."""

import copy

import numpy as np
import pytest

from bnbackprop.losses import softmax_cross_entropy
from bnbackprop.network import mlp
from bnbackprop.optim import SGD, Adam
from bnbackprop.training import accuracy, evaluate, fit


def blobs(seed=0, N=60, p=4, C=3):
    """Three Gaussian blobs: separable enough that a few epochs must reduce the loss."""
    rng = np.random.default_rng(seed)
    y = np.arange(N) % C
    centres = rng.normal(scale=3.0, size=(C, p))
    return centres[y] + rng.normal(size=(N, p)), y


def test_fit_is_deterministic_and_learns():
    X, y = blobs()
    runs = []
    for _ in range(2):
        net = mlp([4, 8, 3], batchnorm=True, seed=1)
        history = fit(net, SGD(lr=0.1), X, y, epochs=5, batch_size=16, seed=3, X_test=X[:30], y_test=y[:30])
        runs.append((history, net))
    (h1, n1), (h2, n2) = runs
    assert h1.as_dict() == h2.as_dict()
    for key, value in n1.parameters().items():
        np.testing.assert_array_equal(value, n2.parameters()[key])
    assert h1.epoch == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert h1.step == [0, 4, 8, 12, 16, 20]  # 60 samples in batches of 16: 4 steps per epoch
    assert h1.train_loss[-1] < 0.5 * h1.train_loss[0]
    assert h1.train_accuracy[-1] > 0.9


def test_history_matches_an_independent_evaluation_in_inference_mode():
    X, y = blobs(1)
    net = mlp([4, 8, 3], batchnorm=True, seed=2)
    history = fit(net, Adam(lr=0.01), X, y, epochs=3, batch_size=20, seed=0)
    net.eval()
    logits = net.forward(X)
    assert history.train_loss[-1] == pytest.approx(softmax_cross_entropy(logits, y)[0], rel=1e-12)
    assert history.train_accuracy[-1] == float(np.mean(logits.argmax(axis=1) == y))
    assert net.training is False
    net.train()


def test_full_batch_and_log_every():
    X, y = blobs(2, N=30)
    net = mlp([4, 3], seed=0)
    history = fit(net, SGD(lr=0.05), X, y, epochs=10, log_every=5, log_initial=False)
    assert history.step == [5, 10]
    assert history.test_accuracy == []


def test_a_last_batch_of_one_is_dropped():
    X, y = blobs(3, N=33)
    net = mlp([4, 5, 3], batchnorm=True, seed=0)
    history = fit(net, SGD(lr=0.05), X, y, epochs=1, batch_size=16)  # batches 16, 16, (1 dropped)
    assert history.step == [0, 2]


def test_evaluate_restores_mode_and_training_mode_batches_differ():
    X, y = blobs(4)
    net = mlp([4, 8, 3], batchnorm=True, seed=0)
    fit(net, SGD(lr=0.1), X, y, epochs=3, batch_size=10)
    loss_eval, acc_eval = evaluate(net, X, y)
    assert net.training
    probe = copy.deepcopy(net)
    _, acc_pairs = evaluate(probe, X, y, batch_size=2, training_mode=True)
    assert acc_pairs != acc_eval or loss_eval > 0
    with pytest.raises(ValueError, match="batch of 1 sample in training mode"):
        evaluate(copy.deepcopy(net), X, y, batch_size=1, training_mode=True)
    assert accuracy(np.eye(3), np.array([0, 1, 0])) == pytest.approx(2 / 3)


def test_bad_input():
    X, y = blobs(5)
    net = mlp([4, 3], seed=0)
    with pytest.raises(TypeError, match="Sequential"):
        fit("net", SGD(lr=0.1), X, y, epochs=1)
    with pytest.raises(TypeError, match="optimizer"):
        fit(net, "sgd", X, y, epochs=1)
    with pytest.raises(ValueError, match="60 integer class labels"):
        fit(net, SGD(lr=0.1), X, y[:-1], epochs=1)
    with pytest.raises(ValueError, match="integer class labels"):
        fit(net, SGD(lr=0.1), X, y.astype(float), epochs=1)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        fit(net, SGD(lr=0.1), X, y, epochs=0)
    with pytest.raises(ValueError, match="exceeds"):
        fit(net, SGD(lr=0.1), X, y, epochs=1, batch_size=61)
    with pytest.raises(ValueError, match="both X_test and y_test"):
        fit(net, SGD(lr=0.1), X, y, epochs=1, X_test=X)
    with pytest.raises(ValueError, match="non-finite"):
        fit(net, SGD(lr=0.1), np.where(X > 2, np.nan, X), y, epochs=1)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        fit(net, SGD(lr=0.1), X, y + 1, epochs=1)


def test_progress_bar_is_silent_under_tests_and_shown_on_request(capsys):
    from bnbackprop.training import _progress_bar

    assert _progress_bar(100, "auto", "x") is None  # pytest sets PYTEST_CURRENT_TEST
    assert _progress_bar(100, False, "x") is None
    bar = _progress_bar(100, True, "x")
    assert bar is not None and bar.total == 100
    bar.close()
    X, y = blobs(6, N=30)
    fit(mlp([4, 3], seed=0), SGD(lr=0.05), X, y, epochs=2)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
