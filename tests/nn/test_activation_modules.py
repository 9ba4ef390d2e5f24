"""Activation modules (nn/activation.py): each matches its functional form, PReLU learns its
slope (shared or per channel) and checks its input, Maxout holds a Linear and max-reduces it,
SELU keeps a deep network normalised, and the reprs and errors read as in PyTorch."""
import math

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import nn
from tinygrad_lite.nn import activation as NA
from tinygrad_lite.ops import activation as A
from helpers import device_param

F64 = tl.float64  # the dtype the gradient checks compiled already: no new kernels here


def _x(*shape, seed=0, device="cpu", requires_grad=False):
    rng = np.random.default_rng(seed)
    return tl.tensor(rng.standard_normal(shape), dtype=F64, device=device,
                     requires_grad=requires_grad)


def test_modules_match_their_functions():
    x = _x(2, 3, device="cuda")  # the simulator: nothing to compile for the older activations
    for module, fn in [
            (NA.ReLU(), lambda t: t.relu()),
            (NA.LeakyReLU(), lambda t: nn.functional.leaky_relu(t, 0.01)),
            (NA.LeakyReLU(0.2), lambda t: nn.functional.leaky_relu(t, 0.2)),
            (NA.ELU(), A.elu), (NA.ELU(alpha=0.5), lambda t: A.elu(t, 0.5)),
            (NA.SELU(), A.selu), (NA.SiLU(), A.silu), (NA.Swish(), A.silu),
            (NA.Swish(beta=2.0), lambda t: A.swish(t, 2.0)), (NA.GELU(), A.gelu),
            (NA.GELU(approximate="tanh"), lambda t: A.gelu(t, "tanh")),
            (NA.Sigmoid(), lambda t: t.sigmoid()), (NA.Tanh(), lambda t: t.tanh())]:
        np.testing.assert_array_equal(module(x).numpy(), fn(x).numpy())
        assert list(module.parameters()) == []


def test_relu_module_gradient_at_zero_is_zero():  # the CPU kernel: tests/ops/test_elementwise
    x = tl.tensor([-1.0, 0.0, 2.0], dtype=F64, device="cuda", requires_grad=True)
    NA.ReLU()(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 1])


def test_reprs_follow_pytorch():
    assert repr(NA.ReLU()) == "ReLU()"
    assert repr(NA.LeakyReLU()) == "LeakyReLU(negative_slope=0.01)"
    assert repr(NA.PReLU(3)) == "PReLU(num_parameters=3)"
    assert repr(NA.ELU()) == "ELU(alpha=1.0)"
    assert repr(NA.SELU()) == "SELU()" and repr(NA.SiLU()) == "SiLU()"
    assert repr(NA.Swish(0.5)) == "Swish(beta=0.5)"
    assert repr(NA.GELU()) == "GELU(approximate='none')"
    assert repr(NA.GELU("tanh")) == "GELU(approximate='tanh')"
    assert repr(NA.Sigmoid()) == "Sigmoid()" and repr(NA.Tanh()) == "Tanh()"
    assert repr(NA.Maxout(4, 3, 2, dtype=F64)) == (
        "Maxout(in_features=4, out_features=3, pieces=2\n"
        "  (linear): Linear(in_features=4, out_features=6, bias=True)\n)")


@device_param
@pytest.mark.parametrize("num_parameters", [1, 3])
def test_prelu_learns_its_slope(device, num_parameters):
    m = NA.PReLU(num_parameters, dtype=F64).to(device)
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    np.testing.assert_array_equal(m.weight.numpy(), [0.25] * num_parameters)
    x = _x(2, 3, 2, device=device, requires_grad=True)
    xs = x.numpy()
    y = m(x)
    np.testing.assert_allclose(y.numpy(), np.where(xs > 0, xs, 0.25 * xs), rtol=1e-15)
    y.sum().backward()
    slope = np.where(xs > 0, 0.0, xs)
    expected = slope.sum(axis=(0, 2)) if num_parameters == 3 else [slope.sum()]
    np.testing.assert_allclose(m.weight.grad.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), np.where(xs > 0, 1.0, 0.25))


def test_prelu_per_channel_slopes_apply_to_their_channel():
    m = NA.PReLU(2, dtype=F64)
    with tl.no_grad():
        m.weight.copy_(tl.tensor([0.5, -1.0], dtype=F64))
    x = tl.tensor([[[-2.0, 1.0], [-2.0, 3.0]]], dtype=F64)  # (1, 2 channels, 2)
    np.testing.assert_array_equal(m(x).numpy(), [[[-1.0, 1.0], [2.0, 3.0]]])
    assert NA.PReLU(init=0.1).weight.item() == pytest.approx(0.1)


def test_prelu_checks_the_channel_count():
    with pytest.raises(ValueError, match=r"^PReLU: expected 3 channels in dim 1 "
                                         r"\(num_parameters\), got input of shape \(2, 4, 5\)$"):
        NA.PReLU(3)(tl.zeros(2, 4, 5))
    with pytest.raises(ValueError, match=r"PReLU: expected 3 channels .* shape \(3,\)"):
        NA.PReLU(3)(tl.zeros(3))
    with pytest.raises(ValueError, match="PReLU: num_parameters must be a positive int, got 0"):
        NA.PReLU(0)


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError,
                       match="GELU: approximate must be 'none' or 'tanh', got 'erf'"):
        NA.GELU("erf")


@device_param
def test_maxout_holds_a_linear_and_takes_the_max_of_its_pieces(device):
    tl.manual_seed(0)
    m = NA.Maxout(3, 2, pieces=3, dtype=F64).to(device)
    assert [(n, p.shape) for n, p in m.named_parameters()] == [
        ("linear.weight", (6, 3)), ("linear.bias", (6,))]
    x = _x(2, 3, device=device, requires_grad=True)
    y = m(x)
    assert y.shape == (2, 2)
    w, b, xs = m.linear.weight.numpy(), m.linear.bias.numpy(), x.numpy()
    z = (xs @ w.T + b).reshape(2, 2, 3)  # unit j uses rows j*3 .. j*3+2 of W
    np.testing.assert_allclose(y.numpy(), z.max(axis=-1), rtol=1e-12)
    y.sum().backward()
    winner = (z == z.max(axis=-1, keepdims=True)).reshape(2, 6).astype(np.float64)
    np.testing.assert_allclose(m.linear.weight.grad.numpy(), winner.T @ xs, rtol=1e-12)
    np.testing.assert_allclose(m.linear.bias.grad.numpy(), winner.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), winner @ w, rtol=1e-12)


def test_maxout_errors():
    with pytest.raises(ValueError, match=r"Maxout: expected input with last dimension 3 "
                                         r"\(in_features\), got shape \(2, 4\)"):
        NA.Maxout(3, 2, dtype=F64)(tl.zeros(2, 4))
    with pytest.raises(ValueError, match="Maxout: pieces must be a positive int, got 0"):
        NA.Maxout(3, 2, 0)


def test_selu_keeps_a_deep_network_normalised():
    """20 linear layers of width 256 with weights N(0, 1/fan_in) and no bias, each followed by
    SELU, on N(0, 1) input: the activations stay at mean ~0 and variance ~1 (SELU's fixed
    point). A batch of 64 keeps each layer under the parallel kernels' threshold."""
    rng = np.random.default_rng(0)
    width, selu = 256, NA.SELU()
    h = tl.tensor(rng.standard_normal((64, width)), dtype=F64)
    with tl.no_grad():
        for _ in range(20):
            w = tl.tensor(rng.standard_normal((width, width)) / math.sqrt(width), dtype=F64)
            h = selu(nn.functional.linear(h, w))
    h = h.numpy()
    assert abs(h.mean()) < 0.1 and abs(h.var() - 1) < 0.15, (h.mean(), h.var())


def test_modules_in_a_sequential_train_end_to_end():
    tl.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4, dtype=F64), NA.PReLU(dtype=F64),
                        NA.Maxout(4, 2, 2, dtype=F64), NA.GELU(), nn.Linear(2, 1, dtype=F64))
    net(_x(5, 3)).sum().backward()
    assert all(p.grad is not None and np.all(np.isfinite(p.grad.numpy()))
               for p in net.parameters())
