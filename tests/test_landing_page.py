"""The ten lines of NumPy on the landing page (chapters/index.md) compute the library's result.

The code block is read from the page itself, so the snippet cannot drift from what is tested.
"""

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from bnbackprop import batchnorm
from bnbackprop.gradcheck import check_vjp, relative_error

PAGE = Path(__file__).resolve().parents[1] / "chapters" / "index.md"


def landing_snippet():
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)
    assert blocks, "the landing page has no ```python block"
    namespace = {}
    exec(compile(blocks[0], str(PAGE), "exec"), namespace)
    return namespace["bn_forward"], namespace["bn_backward"]


def test_snippet_is_short():
    code = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), flags=re.S)[0]
    lines = [line for line in code.splitlines() if line.strip()]
    assert len(lines) <= 12, len(lines)


@pytest.mark.parametrize("shape", [(2, 3), (5, 1), (16, 8)], ids=str)
def test_snippet_matches_library_finite_differences_and_torch(shape):
    bn_forward, bn_backward = landing_snippet()
    rng = np.random.default_rng(sum(shape))
    X = rng.normal(loc=1.0, scale=3.0, size=shape)
    gamma, beta, dY = rng.normal(size=shape[1]), rng.normal(size=shape[1]), rng.normal(size=shape)
    Y, cache = bn_forward(X, gamma, beta)
    Y_lib, cache_lib = batchnorm.forward(X, gamma, beta)
    assert relative_error(Y, Y_lib) < 1e-13
    for ours, theirs in zip(bn_backward(dY, cache), batchnorm.backward(dY, cache_lib), strict=True):
        assert ours.shape == theirs.shape
        assert relative_error(ours, theirs) < 1e-12 or np.abs(ours - theirs).max() < 1e-12
    dX = bn_backward(dY, cache)[0]
    if shape[0] > 2:  # with N = 2, x̂ = ±1 and dX is of order ε: finite differences see only noise
        check_vjp("landing dX", lambda Z: bn_forward(Z, gamma, beta)[0], X, dY, dX)
    tensors = [torch.tensor(a, requires_grad=True) for a in (X, gamma, beta)]
    Y_t = torch.nn.functional.batch_norm(tensors[0], None, None, tensors[1], tensors[2], training=True, eps=1e-5)
    Y_t.backward(torch.tensor(dY))
    for ours, tensor in zip(bn_backward(dY, cache), tensors, strict=True):
        assert np.abs(ours - tensor.grad.numpy()).max() <= 1e-10 * max(1.0, np.abs(ours).max())
