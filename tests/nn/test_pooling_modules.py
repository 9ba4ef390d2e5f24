"""Pooling layers (nn/pooling.py): they read as in PyTorch, match their functional forms
(ops/pool.py, whose values and gradients tests/ops/test_pool.py checks), check their arguments
when built and their inputs when called, naming the layer, and FractionalMaxPool2d draws new
regions in training (repeatable under manual_seed) and fixed ones (u = 0.5) in evaluation."""
import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import nn
from tinygrad_lite.nn import functional as F


def _x(*shape, seed=0):
    return tl.tensor(np.random.default_rng(seed).standard_normal(shape), dtype=tl.float64)


def test_reprs():
    assert repr(nn.MaxPool2d(2)) == (
        "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)")
    assert repr(nn.MaxPool2d(3, 1, 1, ceil_mode=True)) == (
        "MaxPool2d(kernel_size=3, stride=1, padding=1, dilation=1, ceil_mode=True)")
    assert repr(nn.AvgPool2d((2, 3), padding=1)) == (
        "AvgPool2d(kernel_size=(2, 3), stride=(2, 3), padding=1)")
    assert repr(nn.AdaptiveAvgPool2d((None, 4))) == "AdaptiveAvgPool2d(output_size=(None, 4))"
    assert repr(nn.AdaptiveMaxPool2d(1)) == "AdaptiveMaxPool2d(output_size=1)"
    assert repr(nn.FractionalMaxPool2d(2, output_ratio=0.5)) == (
        "FractionalMaxPool2d(kernel_size=2, output_ratio=0.5)")
    assert repr(nn.FractionalMaxPool2d(3, output_size=(5, 4))) == (
        "FractionalMaxPool2d(kernel_size=3, output_size=(5, 4))")


@pytest.mark.parametrize("module, fn", [
    (nn.MaxPool2d(3, 2, 1, dilation=1, ceil_mode=True),
     lambda x: F.max_pool2d(x, 3, 2, 1, 1, ceil_mode=True)),
    (nn.MaxPool2d((2, 3), (1, 2), (1, 0), dilation=(2, 1)),
     lambda x: F.max_pool2d(x, (2, 3), (1, 2), (1, 0), (2, 1))),
    (nn.AvgPool2d(3, 2, 1, count_include_pad=False),
     lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)),
    (nn.AvgPool2d(2, divisor_override=3), lambda x: F.avg_pool2d(x, 2, divisor_override=3)),
    (nn.AdaptiveAvgPool2d((3, None)), lambda x: F.adaptive_avg_pool2d(x, (3, None))),
    (nn.AdaptiveMaxPool2d(2), lambda x: F.adaptive_max_pool2d(x, 2))])
def test_modules_match_their_functions_in_both_modes(module, fn):
    x = _x(2, 3, 7, 6)
    assert list(module.parameters()) == []
    for mode in (module.train, module.eval):
        mode()
        np.testing.assert_array_equal(module(x).numpy(), fn(x).numpy())
        np.testing.assert_array_equal(module(x[0]).numpy(), fn(x[0]).numpy())  # unbatched


def test_return_indices():
    x = _x(1, 2, 4, 4)
    out, idx = nn.MaxPool2d(2, return_indices=True)(x)
    ref_out, ref_idx = F.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), ref_idx.numpy())
    out, idx = nn.AdaptiveMaxPool2d(1, return_indices=True)(x)
    flat = x.numpy().reshape(1, 2, 16)
    np.testing.assert_array_equal(idx.numpy().reshape(1, 2), flat.argmax(axis=2))
    assert nn.FractionalMaxPool2d(2, 3, return_indices=True)(x)[1].shape == (1, 2, 3, 3)


def test_fractional_training_draws_new_regions_repeatably():
    pool, x = nn.FractionalMaxPool2d(2, output_ratio=0.6, return_indices=True), _x(2, 3, 10, 10)
    tl.manual_seed(3)
    a = pool(x)[1].numpy()
    b = pool(x)[1].numpy()
    tl.manual_seed(3)
    np.testing.assert_array_equal(pool(x)[1].numpy(), a)  # repeatable
    tl.manual_seed(3)
    np.testing.assert_array_equal(F.fractional_max_pool2d(  # the functional draws the same
        x, 2, output_ratio=0.6, return_indices=True)[1].numpy(), a)
    assert not np.array_equal(a, b)  # a new draw each forward
    assert a.shape == (2, 3, 6, 6)


def test_fractional_evaluation_is_deterministic():
    pool, x = nn.FractionalMaxPool2d(3, output_size=(5, 4)).eval(), _x(2, 3, 9, 8)
    tl.manual_seed(1)
    first = pool(x).numpy()
    tl.manual_seed(2)
    np.testing.assert_array_equal(pool(x).numpy(), first)
    half = np.full((2, 3, 2), 0.5)
    np.testing.assert_array_equal(
        first, F.fractional_max_pool2d(x, 3, (5, 4), _random_samples=half).numpy())
    np.testing.assert_array_equal(pool(x[1]).numpy(), first[1])  # unbatched: one sample
    pool.train()
    tl.manual_seed(1)
    assert not np.array_equal(pool(x).numpy(), first)


def test_fractional_given_samples_fix_the_regions_in_both_modes():
    u = np.random.default_rng(4).random((1, 2, 2))
    pool, x = nn.FractionalMaxPool2d(2, (4, 4), _random_samples=u), _x(1, 2, 6, 6)
    expected = F.fractional_max_pool2d(x, 2, (4, 4), _random_samples=u).numpy()
    np.testing.assert_array_equal(pool(x).numpy(), expected)
    np.testing.assert_array_equal(pool.eval()(x).numpy(), expected)


def test_pooling_in_a_model_backpropagates():
    model = nn.Sequential(nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x = tl.tensor(np.random.default_rng(5).standard_normal((2, 3, 4, 4)), requires_grad=True)
    model(x).sum().backward()
    assert x.grad.shape == x.shape and np.count_nonzero(x.grad.numpy()) == 2 * 3 * 4


@pytest.mark.parametrize("build, message", [
    (lambda: nn.MaxPool2d(2, padding=2), "MaxPool2d: padding should be at most half"),
    (lambda: nn.MaxPool2d(0), "MaxPool2d: kernel_size must be an int >= 1"),
    (lambda: nn.AvgPool2d(2, stride=(1, 0)), "AvgPool2d: stride must be an int >= 1"),
    (lambda: nn.AdaptiveAvgPool2d((2, 0)), "AdaptiveAvgPool2d: output_size must be"),
    (lambda: nn.AdaptiveMaxPool2d("2"), "AdaptiveMaxPool2d: output_size must be"),
    (lambda: nn.FractionalMaxPool2d(2), "FractionalMaxPool2d: give exactly one of"),
    (lambda: nn.FractionalMaxPool2d(2, 3, 0.5), "FractionalMaxPool2d: give exactly one of"),
    (lambda: nn.FractionalMaxPool2d(2, output_ratio=(0.5, 1.0)),
     r"FractionalMaxPool2d: output_ratio must be .* in \(0, 1\)")])
def test_bad_arguments_are_refused_when_built(build, message):
    with pytest.raises(ValueError, match=message):
        build()


@pytest.mark.parametrize("module, x, message", [
    (nn.MaxPool2d(2), _x(4, 4), r"MaxPool2d: expected 3-D or 4-D input, .*got shape \(4, 4\)"),
    (nn.AvgPool2d(2), _x(1, 1, 1, 4, 4), "AvgPool2d: expected 3-D or 4-D input"),
    (nn.MaxPool2d(3), _x(1, 1, 2, 5), "MaxPool2d: kernel of size 3 .* larger than the padded"),
    (nn.AvgPool2d(5, padding=2), _x(1, 0, 4, 4), "AvgPool2d: expected non-zero channels"),
    (nn.FractionalMaxPool2d(2, output_size=5), _x(1, 2, 5, 5),
     "FractionalMaxPool2d: output height 5 with kernel size 2 needs an input height of at "
     "least 6"),
    (nn.FractionalMaxPool2d(2, output_size=4).eval(), _x(3, 6, 6).long(),
     "FractionalMaxPool2d: expected a float32 or float64 input")])
def test_bad_inputs_are_refused_naming_the_layer(module, x, message):
    with pytest.raises((ValueError, TypeError), match=message):
        module(x)
