"""The nine-step graph keeps the ε of its forward run, so backward cannot use another."""

import numpy as np
import pytest

from bnbackprop import batchnorm, stepwise
from bnbackprop.gradcheck import relative_error


def test_backward_uses_the_forward_eps():
    rng = np.random.default_rng(0)
    X, gamma, beta, dY = rng.normal(size=(4, 2)), rng.normal(size=2), rng.normal(size=2), rng.normal(size=(4, 2))
    values = stepwise.forward_steps(X, gamma, beta, eps=0.3)
    assert values["eps"] == 0.3
    grads = stepwise.backward_steps(dY, values)
    dX = batchnorm.backward(dY, batchnorm.forward(X, gamma, beta, eps=0.3)[1])[0]
    assert relative_error(grads["total_dX"], dX) < 1e-12
    assert relative_error(stepwise.backward_steps(dY, values, eps=0.3)["total_dX"], dX) < 1e-12


def test_a_different_eps_raises():
    X = np.arange(6.0).reshape(3, 2)
    values = stepwise.forward_steps(X, np.ones(2), np.zeros(2), eps=0.3)
    with pytest.raises(ValueError, match=r"differs from the eps=0\.3"):
        stepwise.backward_steps(np.ones((3, 2)), values, eps=1e-5)
    with pytest.raises(ValueError, match="forward_steps"):
        stepwise.backward_steps(np.ones((3, 2)), {k: v for k, v in values.items() if k != "eps"})
