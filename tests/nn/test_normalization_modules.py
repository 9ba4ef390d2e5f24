"""Normalisation modules (nn/normalization.py): BatchNorm1d/2d in training and eval (batch vs
running statistics, in-place running updates outside the graph, momentum=None as a cumulative
average, convergence to the data's mean and unbiased variance), LayerNorm, GroupNorm,
InstanceNorm2d against their functions, buffers in state_dict, reprs, resets, errors, and the
BN fold helpers against conv/linear then BN in eval."""
import numpy as np
import pytest

import tinygrad_lite as tl
from helpers import device_param
from tinygrad_lite import nn
from tinygrad_lite.nn import functional as F

F64 = tl.float64


def _x(*shape, seed=0, loc=0.0, scale=1.0, device="cpu"):
    rng = np.random.default_rng(seed)
    return tl.tensor(rng.standard_normal(shape) * scale + loc, dtype=F64, device=device)


def test_reprs_and_parameters():
    assert repr(nn.BatchNorm2d(16)) == (
        "BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)")
    assert repr(nn.BatchNorm1d(4, activation="relu", momentum=None)) == (
        "BatchNorm1d(4, eps=1e-05, momentum=None, affine=True, track_running_stats=True, "
        "activation=relu)")
    assert repr(nn.LayerNorm([2, 3])) == "LayerNorm((2, 3), eps=1e-05, elementwise_affine=True)"
    assert repr(nn.GroupNorm(2, 4)) == "GroupNorm(2, 4, eps=1e-05, affine=True)"
    assert repr(nn.InstanceNorm2d(3)) == (
        "InstanceNorm2d(3, eps=1e-05, momentum=0.1, affine=False, track_running_stats=False)")
    bn = nn.BatchNorm2d(3)
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in bn.named_buffers()] == ["running_mean", "running_var",
                                                  "num_batches_tracked"]
    assert list(nn.InstanceNorm2d(3).parameters()) == []
    assert nn.LayerNorm(3, bias=False).bias is None


@device_param
def test_batch_norm_train_then_eval(device):
    bn = nn.BatchNorm2d(3, dtype=F64, device=device)
    x = _x(4, 3, 2, 2, loc=2.0, scale=3.0, device=device)
    xn = x.numpy()
    y = bn(x).numpy()
    m, v = xn.mean((0, 2, 3), keepdims=True), xn.var((0, 2, 3), keepdims=True)
    np.testing.assert_allclose(y, (xn - m) / np.sqrt(v + 1e-5), rtol=1e-10, atol=1e-12)
    rm = 0.1 * m.ravel()
    rv = 0.9 + 0.1 * xn.var((0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_mean.numpy(), rm, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), rv, rtol=1e-12)
    assert bn.num_batches_tracked.item() == 1
    bn.eval()
    ref = (xn - rm.reshape(1, 3, 1, 1)) / np.sqrt(rv.reshape(1, 3, 1, 1) + 1e-5)
    np.testing.assert_allclose(bn(x).numpy(), ref, rtol=1e-10)
    np.testing.assert_allclose(bn.running_mean.numpy(), rm, rtol=1e-12)  # eval: no update
    assert bn.num_batches_tracked.item() == 1
    assert np.allclose(bn(x[:1, :, :1, :1]).numpy(), ref[:1, :, :1, :1])  # one value is fine


def test_running_buffers_are_updated_in_place_and_not_in_the_graph():
    bn = nn.BatchNorm1d(3, dtype=F64)
    buffers = [bn.running_mean, bn.running_var, bn.num_batches_tracked]
    arrays = [b.array for b in buffers]
    x = _x(5, 3, seed=1)
    x.requires_grad_()
    y = bn(x)
    assert [b.array for b in buffers] == arrays
    assert [bn.running_mean, bn.running_var, bn.num_batches_tracked] == buffers
    assert all(b._ctx is None and not b.requires_grad for b in buffers)
    y.sum().backward()  # the update is not part of what backward walks
    assert bn.running_mean.grad is None


def test_running_stats_converge_to_the_data_statistics():
    rng = np.random.default_rng(2)
    loc, scale = np.array([1.0, -2.0]), np.array([0.5, 3.0])
    data = rng.standard_normal((200, 16, 2, 5)) * scale[:, None] + loc[:, None]
    cumulative = nn.BatchNorm1d(2, momentum=None, dtype=F64)
    ema = nn.BatchNorm1d(2, momentum=0.1, dtype=F64)
    for batch in data:
        t = tl.tensor(batch, dtype=F64)
        cumulative(t)
        ema(t)
    # momentum=None: the exact average of the batch means and unbiased batch variances
    np.testing.assert_allclose(cumulative.running_mean.numpy(), data.mean((1, 3)).mean(0),
                               rtol=1e-10)
    np.testing.assert_allclose(cumulative.running_var.numpy(),
                               data.transpose(0, 2, 1, 3).reshape(200, 2, -1).var(
                                   2, ddof=1).mean(0), rtol=1e-10)
    # ... which converge to the data's mean and variance (16000 values per channel)
    np.testing.assert_allclose(cumulative.running_mean.numpy(), loc, atol=0.1)
    np.testing.assert_allclose(cumulative.running_var.numpy(), scale ** 2, rtol=0.05)
    # momentum=0.1: the exponential moving average, step by step
    rm, rv = np.zeros(2), np.ones(2)
    for batch in data:
        rm = 0.9 * rm + 0.1 * batch.mean((0, 2))
        rv = 0.9 * rv + 0.1 * batch.transpose(1, 0, 2).reshape(2, -1).var(1, ddof=1)
    np.testing.assert_allclose(ema.running_mean.numpy(), rm, rtol=1e-10)
    np.testing.assert_allclose(ema.running_var.numpy(), rv, rtol=1e-10)


def test_reset_and_state_dict_round_trip():
    bn = nn.BatchNorm2d(2, dtype=F64)
    bn(_x(3, 2, 2, 2, loc=1.0))
    with tl.no_grad():
        bn.weight.fill_(2.0)
    other = nn.BatchNorm2d(2, dtype=F64)
    other.load_state_dict(bn.state_dict())
    for key, value in bn.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[key].numpy(), value.numpy())
    assert other.num_batches_tracked.item() == 1
    other.reset_running_stats()
    assert other.running_mean.numpy().tolist() == [0, 0] and other.num_batches_tracked.item() == 0
    assert other.running_var.numpy().tolist() == [1, 1] and other.weight.numpy()[0] == 2
    other.reset_parameters()
    assert other.weight.numpy().tolist() == [1, 1]


def test_batch_norm_without_running_stats_uses_batch_stats_in_eval():
    bn = nn.BatchNorm1d(3, track_running_stats=False, affine=False, dtype=F64).eval()
    x = _x(4, 3, 2)
    np.testing.assert_allclose(bn(x).numpy(), F.batch_norm(x, None, None, training=True).numpy())
    assert bn.running_mean is None and list(bn.state_dict()) == []


@device_param
def test_fused_relu_module_equals_batch_norm_then_relu(device):
    x = _x(4, 3, 2, 2, device=device)
    a, b = nn.BatchNorm2d(3, activation="relu", dtype=F64, device=device), \
        nn.BatchNorm2d(3, dtype=F64, device=device)
    np.testing.assert_allclose(a(x).numpy(), b(x).relu().numpy(), atol=1e-12)
    np.testing.assert_allclose(a.running_var.numpy(), b.running_var.numpy())
    a.eval()
    b.eval()
    np.testing.assert_allclose(a(x).numpy(), b(x).relu().numpy(), atol=1e-12)


@device_param
def test_other_norms_match_their_functions_in_train_and_eval(device):
    x = _x(2, 4, 3, 3, loc=1.0, device=device)
    ln, gn, inorm = nn.LayerNorm((3, 3), dtype=F64, device=device), \
        nn.GroupNorm(2, 4, dtype=F64, device=device), nn.InstanceNorm2d(4)
    for mode in (True, False):
        for m in (ln, gn, inorm):
            m.train(mode)
        np.testing.assert_allclose(ln(x).numpy(), F.layer_norm(x, (3, 3)).numpy())
        np.testing.assert_allclose(gn(x).numpy(), F.group_norm(x, 2).numpy())
        np.testing.assert_allclose(inorm(x).numpy(), F.instance_norm(x).numpy())
        np.testing.assert_allclose(inorm(x[0]).numpy(), F.instance_norm(x[:1]).numpy()[0])


def test_instance_norm_with_running_stats_uses_them_in_eval():
    m = nn.InstanceNorm2d(2, track_running_stats=True, affine=True, dtype=F64)
    x = _x(3, 2, 2, 2, loc=1.0)
    m(x)
    assert m.num_batches_tracked.item() == 0  # PyTorch's InstanceNorm never counts batches
    m.eval()
    ref = F.instance_norm(x, m.running_mean, m.running_var, m.weight, m.bias,
                          use_input_stats=False)
    np.testing.assert_allclose(m(x).numpy(), ref.numpy())


def test_errors_name_the_layer():
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected 4-D input \(got 3-D input\)"):
        nn.BatchNorm2d(16)(_x(2, 16, 3))
    with pytest.raises(ValueError, match="BatchNorm2d: expected 16 channels, got 8"):
        nn.BatchNorm2d(16)(_x(2, 8, 3, 3))
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected 2-D or 3-D input"):
        nn.BatchNorm1d(3)(_x(2, 3, 1, 1))
    with pytest.raises(ValueError, match="BatchNorm1d: expected more than 1 value per channel"):
        nn.BatchNorm1d(3)(_x(1, 3))
    nn.BatchNorm1d(3, dtype=F64).eval()(_x(1, 3))  # fine in eval
    with pytest.raises(ValueError, match=r"GroupNorm: num_channels \(6\) must be divisible"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"LayerNorm: expected input with shape \[\*, 4\]"):
        nn.LayerNorm(4)(_x(2, 3))
    with pytest.raises(ValueError, match="InstanceNorm2d: expected 3-D or 4-D input"):
        nn.InstanceNorm2d(3)(_x(2, 3))


# ----- folding -----
def _trained_bn(bn, x):
    bn(x)
    with tl.no_grad():
        bn.weight.copy_(tl.tensor(np.linspace(0.5, 2, bn.num_features), dtype=F64))
        bn.bias.copy_(tl.tensor(np.linspace(-1, 1, bn.num_features), dtype=F64))
    return bn.eval()


@pytest.mark.parametrize("with_bias", [True, False])
def test_fuse_conv_bn_eval(with_bias):
    tl.manual_seed(3)
    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1, bias=with_bias, dtype=F64)
    x = tl.tensor(np.random.default_rng(3).standard_normal((2, 2, 7, 6)), dtype=F64)
    bn = _trained_bn(nn.BatchNorm2d(3, dtype=F64), conv(x) * 2 + 1)
    conv.eval()
    original = conv.weight.numpy().copy()
    fused = nn.utils.fuse_conv_bn_eval(conv, bn)
    assert isinstance(fused, nn.Conv2d) and fused.bias is not None
    assert (fused.stride, fused.padding) == (conv.stride, conv.padding)
    np.testing.assert_allclose(fused(x).numpy(), bn(conv(x)).numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(conv.weight.numpy(), original)  # the original is unchanged


def test_fuse_linear_bn_eval():
    rng = np.random.default_rng(4)
    linear = nn.Linear(5, 3, dtype=F64)
    x = tl.tensor(rng.standard_normal((6, 5)), dtype=F64)
    bn = _trained_bn(nn.BatchNorm1d(3, dtype=F64), linear(x) * 3)
    linear.eval()
    fused = nn.utils.fuse_linear_bn_eval(linear, bn)
    assert isinstance(fused, nn.Linear)
    np.testing.assert_allclose(fused(x).numpy(), bn(linear(x)).numpy(), rtol=1e-10)
    with pytest.raises(ValueError, match="fuse_linear_bn_eval: both modules must be in eval"):
        nn.utils.fuse_linear_bn_eval(linear.train(), bn)
    with pytest.raises(ValueError, match="fuse_linear_bn_eval: the layer has 3 output"):
        nn.utils.fuse_linear_bn_eval(linear.eval(), nn.BatchNorm1d(4).eval())
