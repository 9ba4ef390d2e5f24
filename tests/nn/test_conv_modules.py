"""nn.Conv2d (nn/conv.py): PyTorch's default init (statistics of U(+-1/sqrt(fan_in))), its
forward is F.conv2d with its parameters, gradients reach the parameters, state_dict round trip,
unbatched input, the repr, and the errors that name the layer."""
import math

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import nn
from tinygrad_lite.nn import functional as F

F64 = tl.float64


def test_default_init_statistics():
    """weight and bias uniform on +-1/sqrt(fan_in), fan_in = in_channels / groups * kh * kw:
    inside the bound, mean ~ 0, std ~ bound / sqrt(3) (a uniform's)."""
    tl.manual_seed(0)
    for args, kwargs, fan_in in (((16, 64, 3), {}, 16 * 9), ((8, 32, (5, 3)), dict(groups=4),
                                                             2 * 15)):
        conv = nn.Conv2d(*args, **kwargs)
        bound = 1 / math.sqrt(fan_in)
        w, b = conv.weight.numpy(), conv.bias.numpy()
        assert conv.weight.shape == (args[1], args[0] // kwargs.get("groups", 1)) + (
            args[2] if isinstance(args[2], tuple) else (args[2],) * 2)
        assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
        assert abs(w.mean()) < 0.05 * bound
        assert abs(w.std() / (bound / math.sqrt(3)) - 1) < 0.05
        assert np.abs(b).max() > 0.5 * bound  # spread over the range, not all near 0
        assert conv.weight.dtype == np.float32 and conv.weight.requires_grad


def test_reset_parameters_is_seeded():
    tl.manual_seed(5)
    a = nn.Conv2d(3, 4, 3)
    tl.manual_seed(5)
    b = nn.Conv2d(3, 4, 3)
    np.testing.assert_array_equal(a.weight.numpy(), b.weight.numpy())
    before = a.weight.numpy().copy()
    a.reset_parameters()
    assert not np.array_equal(before, a.weight.numpy())


def test_forward_is_functional_conv_and_gradients_reach_parameters():
    tl.manual_seed(1)
    conv = nn.Conv2d(4, 6, 3, stride=(2, 1), padding=1, dilation=(1, 2), groups=2, dtype=F64)
    x = tl.randn(2, 4, 7, 6, dtype=F64)
    out = conv(x)
    expect = F.conv2d(x, conv.weight, conv.bias, (2, 1), 1, (1, 2), 2)
    np.testing.assert_array_equal(out.numpy(), expect.numpy())
    out.sum().backward()
    assert conv.weight.grad.shape == conv.weight.shape
    np.testing.assert_allclose(conv.bias.grad.numpy(), np.full(6, out.shape[2] * out.shape[3] * 2))
    nobias = nn.Conv2d(4, 6, 1, bias=False)
    assert nobias.bias is None and [n for n, _ in nobias.named_parameters()] == ["weight"]


def test_state_dict_round_trip():
    tl.manual_seed(2)
    a, b = nn.Conv2d(3, 5, 3, padding="same"), nn.Conv2d(3, 5, 3, padding="same")
    x = tl.randn(2, 3, 6, 6)
    assert not np.allclose(a(x).numpy(), b(x).numpy())
    b.load_state_dict(a.state_dict())
    assert list(a.state_dict()) == ["weight", "bias"]
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


def test_unbatched_input():
    tl.manual_seed(3)
    conv = nn.Conv2d(2, 3, 2, padding="valid", dtype=F64)
    x = tl.randn(2, 5, 4, dtype=F64)
    out = conv(x)
    assert out.shape == (3, 4, 3)
    np.testing.assert_allclose(out.numpy(), conv(x.reshape(1, 2, 5, 4)).numpy()[0], rtol=1e-12)


def test_cuda_module_matches_cpu():
    tl.manual_seed(4)
    conv = nn.Conv2d(2, 2, 2, padding=1, dtype=F64)
    x = tl.randn(1, 2, 2, 3, dtype=F64)
    expect = conv(x).numpy()
    conv.to("cuda")
    np.testing.assert_allclose(conv(x.to("cuda")).numpy(), expect, rtol=1e-12)


def test_repr():
    assert repr(nn.Conv2d(3, 16, 3)) == "Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1))"
    assert repr(nn.Conv2d(4, 8, (3, 1), stride=2, padding=1, dilation=2, groups=2,
                          bias=False)) == ("Conv2d(4, 8, kernel_size=(3, 1), stride=(2, 2), "
                                           "padding=(1, 1), dilation=(2, 2), groups=2, "
                                           "bias=False)")
    assert repr(nn.Conv2d(1, 1, 3, padding="same")) == (
        "Conv2d(1, 1, kernel_size=(3, 3), stride=(1, 1), padding='same')")


@pytest.mark.parametrize("make, x_shape, match", [
    (lambda: nn.Conv2d(3, 8, 3), (2, 1, 8, 8),
     r"^Conv2d: expected input with 3 channels, got 1 \(input shape \(2, 1, 8, 8\)\)$"),
    (lambda: nn.Conv2d(3, 8, 3), (3, 8), r"Conv2d: expected 3-D \(unbatched\) or 4-D input"),
    (lambda: nn.Conv2d(3, 8, 3), (1, 3, 2, 2, 2), "Conv2d: expected 3-D"),
    (lambda: nn.Conv2d(3, 8, 5), (1, 3, 4, 4), "kernel size 5x5 .* larger than the padded"),
])
def test_input_errors(make, x_shape, match):
    with pytest.raises(ValueError, match=match):
        make()(tl.zeros(*x_shape))


@pytest.mark.parametrize("args, kwargs, match", [
    ((3, 8, 3), dict(groups=2), r"Conv2d: in_channels \(3\) must be divisible by groups \(2\)"),
    ((4, 6, 3), dict(groups=4), r"Conv2d: out_channels \(6\) must be divisible by groups"),
    ((0, 8, 3), {}, "Conv2d: in_channels must be a positive int"),
    ((3, 8, 0), {}, "Conv2d: kernel_size must be an int >= 1"),
    ((3, 8, 3), dict(stride=2, padding="same"), "Conv2d: padding='same' needs stride 1"),
    ((3, 8, 3), dict(padding="full"), "Conv2d: padding must be"),
    ((3, 8, 3), dict(padding_mode="reflect"), "Conv2d: only padding_mode='zeros'"),
])
def test_construction_errors(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        nn.Conv2d(*args, **kwargs)
