"""The nine-step graph: every local backward step is the VJP of its forward step, and the chain
reproduces the closed-form backward pass."""

import numpy as np
import pytest

from bnbackprop import batchnorm, stepwise
from bnbackprop.gradcheck import check_vjp, relative_error

EPS = 1e-2
rng = np.random.default_rng(12)
X, GAMMA, BETA, DOUT = rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=3), rng.normal(size=(5, 3))
VALUES = stepwise.forward_steps(X, GAMMA, BETA, eps=EPS)


@pytest.mark.parametrize("step", stepwise.make_steps(EPS), ids=lambda s: f"step{s.number}")
def test_each_step_backward_is_the_vjp_of_its_forward(step):
    inputs = [VALUES[name] for name in step.inputs]
    upstream = np.random.default_rng(step.number).normal(size=np.shape(VALUES[step.output]))
    contributions = step.backward(upstream, *inputs)
    assert len(contributions) == len(inputs)
    for position, (name, gradient) in enumerate(contributions):
        def local(z, position=position):
            arguments = list(inputs)
            arguments[position] = z
            return step.forward(*arguments)

        check_vjp(name, local, inputs[position], upstream, gradient)


def test_chain_reproduces_closed_form_and_series_names():
    grads = stepwise.backward_steps(DOUT, VALUES, eps=EPS)
    Y, cache = batchnorm.forward(X, GAMMA, BETA, eps=EPS)
    dX, dgamma, dbeta = batchnorm.backward(DOUT, cache)
    assert relative_error(VALUES["out"], Y) < 1e-14
    assert relative_error(grads["total_dX"], dX) < 1e-12
    assert relative_error(grads["dgamma"], dgamma) < 1e-14
    assert relative_error(grads["dbeta"], dbeta) < 1e-14
    assert relative_error(grads["dx1"], grads["dxmu1"] + grads["dxmu2"]) < 1e-15
    assert relative_error(grads["total_dX"], grads["dx1"] + grads["dx2"]) < 1e-15
    # the series writes step 5 as 0.5 · ivar · dsqrtvar
    assert relative_error(grads["dvar"], 0.5 * VALUES["ivar"] * grads["dsqrtvar"]) < 1e-15
