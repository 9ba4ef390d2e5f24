"""Layers inside graphs with reuse: a residual block whose input reaches the loss along paths of
different depth (through conv, batch norm and ReLU, and directly), then pooling, gradchecked
whole in float64 on NCHW and NHWC memory, and the same gradients on CUDA."""
import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite.nn import functional as F


def residual_block(x, w1, w2, gamma, beta):
    h = F.conv2d(x, w1, padding=1)
    h = F.batch_norm(h, None, None, gamma, beta, training=True, activation="relu")
    h = F.conv2d(h, w2, padding=1) + x          # x reused: the skip connection
    h = F.group_norm(h, 2, gamma, beta) * h     # h reused
    return F.max_pool2d(h, 2).sum() + F.avg_pool2d(x * x, 2).sum()


def _arrays():
    rng = np.random.default_rng(7)
    return [rng.standard_normal((2, 4, 4, 4)), rng.standard_normal((4, 4, 3, 3)) * 0.3,
            rng.standard_normal((4, 4, 3, 3)) * 0.3, rng.random(4) + 0.5, rng.standard_normal(4)]


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_residual_block_gradients_match_finite_differences(layout):
    arrays = _arrays()
    inputs = [tl.Tensor(a, dtype=tl.float64) for a in arrays]
    if layout == "nhwc":  # the same values, stored channels-last
        inputs[0] = tl.Tensor(np.ascontiguousarray(arrays[0].transpose(0, 2, 3, 1)),
                              dtype=tl.float64).permute(0, 3, 1, 2).detach()
    result = tl.gradcheck(residual_block, inputs)
    assert result, result


def test_residual_block_gradients_agree_on_cpu_and_cuda():
    """Finite differences on the simulator would take minutes; the CPU gradients, checked
    above, are the reference instead."""
    grads = []
    for device in ("cpu", "cuda"):
        inputs = [tl.Tensor(a, dtype=tl.float64, device=device, requires_grad=True)
                  for a in _arrays()]
        residual_block(*inputs).backward()
        grads.append([t.grad.numpy() for t in inputs])
    for cpu, cuda in zip(*grads):
        np.testing.assert_allclose(cuda, cpu, rtol=1e-10, atol=1e-12)
