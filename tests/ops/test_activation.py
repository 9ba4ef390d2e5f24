"""Activation functions (ops/activation.py): forward values against NumPy, gradients against
centred differences on the CPU and the (simulated) CUDA device, finiteness far out, PReLU's
slope gradient, Maxout, and the errors."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_lite as tl
from tinygrad_lite.ops import activation as A
from helpers import (DEVICES, assert_gradcheck, away_from_zero, device_param, max_side, run,
                     separated, shapes, values)

SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(z):
    return np.exp(-np.logaddexp(0.0, -z))


def _np_elu(x, alpha):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


ACTIVATIONS = {  # name: (function, NumPy reference, values to draw)
    "elu": (lambda t: A.elu(t, alpha=0.7), lambda x: _np_elu(x, 0.7), away_from_zero),
    "selu": (A.selu, lambda x: SELU_SCALE * _np_elu(x, SELU_ALPHA), away_from_zero),
    "gelu": (A.gelu, lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))), values),
    "gelu_tanh": (lambda t: A.gelu(t, approximate="tanh"),
                  lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (
                      x + 0.044715 * x ** 3))), values),
    "silu": (A.silu, lambda x: x * _sigmoid(x), values),
    "swish": (lambda t: A.swish(t, beta=1.7), lambda x: x * _sigmoid(1.7 * x), values),
}


# half the profile's examples: the simulator's share dominates this file's run time
@settings(settings.default, max_examples=max(1, settings.default.max_examples // 2))
@device_param
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@given(data=st.data())
def test_forward_and_gradient(device, name, data):
    fn, reference, strategy = ACTIVATIONS[name]
    x = data.draw(strategy(data.draw(shapes(device))))
    np.testing.assert_allclose(run(fn, [x], device), reference(x), rtol=1e-12, atol=1e-12)
    assert_gradcheck(fn, [x], device)


def test_known_values():
    x = tl.tensor([-1.0, 0.0, 1.0], dtype=tl.float64)
    np.testing.assert_allclose(A.gelu(x).numpy(), [-0.15865525393145707, 0, 0.8413447460685429],
                               rtol=1e-14)
    np.testing.assert_allclose(A.selu(x).numpy(), [-1.1113307378125628, 0, 1.0507009873554805],
                               rtol=1e-14)
    np.testing.assert_allclose(A.elu(x).numpy(), [math.expm1(-1), 0, 1], rtol=1e-15)
    np.testing.assert_allclose(A.elu(x, 2.0).numpy(), [2 * math.expm1(-1), 0, 1], rtol=1e-15)
    np.testing.assert_array_equal(A.silu(x).numpy(), A.swish(x, 1.0).numpy())  # SiLU = Swish 1


def _all_activations():
    weight = lambda t: tl.tensor([0.25], dtype=t.dtype, device=t.device)  # noqa: E731
    return [A.elu, A.selu, A.gelu, lambda t: A.gelu(t, "tanh"), A.silu,
            lambda t: A.swish(t, 2.0), lambda t: A.elu(t, 0.5),
            lambda t: A.prelu(t, weight(t)), lambda t: A.maxout(t, 1)]


@device_param
def test_finite_far_out_without_warnings(device):
    # float64 on the CPU (its kernels are compiled for the gradient checks already), float32
    # (the default dtype) on the simulator, where every scalar op is a NumPy one that would
    # raise under errstate on an overflow
    dtype = tl.float64 if device == "cpu" else tl.float32
    x = tl.tensor([-1e4, -1.0, 0.0, 1.0, 1e4], dtype=dtype, device=device, requires_grad=True)
    with np.errstate(all="raise"):
        for fn in _all_activations():
            x.grad = None
            y = fn(x)
            y.sum().backward()
            assert np.all(np.isfinite(y.numpy())) and np.all(np.isfinite(x.grad.numpy()))
    # far out each one is the identity (slope 1; SELU's is its scale) or 0
    for fn, right, left in [(A.elu, 1, 0), (A.gelu, 1, 0), (lambda t: A.gelu(t, "tanh"), 1, 0),
                            (A.silu, 1, 0), (A.selu, SELU_SCALE, 0)]:
        x.grad = None
        fn(x).sum().backward()
        assert x.grad.numpy()[4] == pytest.approx(right) and x.grad.numpy()[0] == left


def test_gradient_at_zero_follows_pytorch():
    x = tl.tensor([0.0], dtype=tl.float64, requires_grad=True)
    for fn, expected in [(A.elu, 1.0), (lambda t: A.elu(t, 0.5), 0.5), (A.gelu, 0.5),
                         (A.silu, 0.5), (A.selu, SELU_SCALE * SELU_ALPHA),
                         (lambda t: A.prelu(t, tl.tensor([0.25], dtype=tl.float64)), 0.25)]:
        x.grad = None
        fn(x).sum().backward()
        assert x.grad.item() == pytest.approx(expected, rel=1e-14)


def test_integer_inputs_promote_to_float32():
    i = tl.tensor([-2, 0, 3], device="cuda")  # the simulator: no float32 CPU kernels to compile
    for fn in (A.elu, A.selu, A.gelu, A.silu, lambda t: A.maxout(t, 3)):
        assert fn(i).dtype == tl.float32
    np.testing.assert_allclose(A.elu(i).numpy(), [math.expm1(-2), 0, 3], rtol=1e-6)


@st.composite
def prelu_operands(draw, device):
    """x of shape (n, c, *rest) (or fewer dims with a shared slope), and the slope: one element,
    or one per channel."""
    side = max_side(device)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=side))
    shared = len(shape) < 2 or draw(st.booleans())
    x = draw(away_from_zero(shape))
    weight = draw(values((1,) if shared else (shape[1],), -1.0, 1.0))
    return x, weight


def _np_prelu(x, w):
    w = w.reshape(w.shape + (1,) * (x.ndim - 2)) if w.size > 1 else w.reshape(())
    return np.where(x > 0, x, w * x)


@device_param
@given(data=st.data())
def test_prelu_forward_and_gradients(device, data):
    x, w = data.draw(prelu_operands(device))
    np.testing.assert_allclose(run(A.prelu, [x, w], device), _np_prelu(x, w), rtol=1e-12,
                               atol=1e-12)
    assert_gradcheck(A.prelu, [x, w], device)


@device_param
def test_prelu_slope_gradient_sums_over_batch_and_space(device):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 2))
    g = rng.standard_normal((2, 3, 2))
    for w0 in (np.array([0.1, 0.2, 0.3]), np.array([0.25])):
        xt = tl.tensor(x, dtype=tl.float64, device=device, requires_grad=True)
        wt = tl.tensor(w0, dtype=tl.float64, device=device, requires_grad=True)
        (A.prelu(xt, wt) * tl.tensor(g, dtype=tl.float64, device=device)).sum().backward()
        slope_grad = np.where(x > 0, 0.0, g * x)
        expected = slope_grad.sum(axis=(0, 2)) if w0.size > 1 else [slope_grad.sum()]
        np.testing.assert_allclose(wt.grad.numpy(), expected, rtol=1e-12)
        slope = w0.reshape(3, 1) if w0.size > 1 else w0[0]
        np.testing.assert_allclose(xt.grad.numpy(), np.where(x > 0, g, slope * g), rtol=1e-12)


@device_param
@given(data=st.data())
def test_maxout_forward_and_gradient(device, data):
    pieces = data.draw(st.integers(1, 3))
    lead = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1,
                                      max_side=max_side(device)))
    out = data.draw(st.integers(1, max_side(device)))
    x = data.draw(separated(lead + (out * pieces,)))  # no near-ties
    fn = lambda t: A.maxout(t, pieces)  # noqa: E731
    y = run(fn, [x], device)
    assert y.shape == lead + (out,)
    np.testing.assert_array_equal(y, x.reshape(lead + (out, pieces)).max(axis=-1))
    assert_gradcheck(fn, [x], device)


@pytest.mark.parametrize("device", DEVICES)
def test_maxout_tie_shares_the_gradient(device):
    x = tl.tensor([[1.0, 1.0, 0.0, 2.0]], dtype=tl.float64, device=device, requires_grad=True)
    A.maxout(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0.5, 0.5, 0.0, 1.0]])


def test_errors_name_the_function_and_what_it_got():
    x = tl.zeros(2, 3, 4)
    with pytest.raises(ValueError, match=r"gelu: approximate must be 'none' or 'tanh', got 'erf'"):
        A.gelu(x, approximate="erf")
    with pytest.raises(ValueError,
                       match=r"maxout: .*multiple of pieces \(3\), got shape \(2, 3, 4\)"):
        A.maxout(x, 3)
    with pytest.raises(ValueError, match="maxout: pieces must be a positive int, got 0"):
        A.maxout(x, 0)
    with pytest.raises(ValueError, match=r"prelu: weight has 2 elements .* shape \(2, 3, 4\) has 3 "
                                         r"channels in dim 1"):
        A.prelu(x, tl.ones(2))
    with pytest.raises(ValueError, match=r"prelu: expected a 1-D weight, got shape \(3, 1\)"):
        A.prelu(x, tl.ones(3, 1))
    with pytest.raises(TypeError, match="elu: expected a Tensor, got list"):
        A.elu([1.0, 2.0])
