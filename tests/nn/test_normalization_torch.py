"""Normalisation layers against torch.nn itself: InstanceNorm2d's buffers and running
statistics (it never counts batches), BatchNorm counting only accepted inputs, and folding a
batch norm with a fused ReLU (the function must stay bn(conv(x)), negatives clipped)."""
import numpy as np
import pytest
import torch

import tinygrad_lite as tl
from tinygrad_lite import nn

F64 = tl.float64


def _x(*shape, seed=0, loc=0.0):
    return np.random.default_rng(seed).standard_normal(shape) + loc


@pytest.mark.parametrize("momentum", [0.1, 0.3, None])
def test_instance_norm_running_stats_and_buffers_match_torch(momentum):
    ours = nn.InstanceNorm2d(3, momentum=momentum, affine=True, track_running_stats=True,
                             dtype=F64)
    theirs = torch.nn.InstanceNorm2d(3, momentum=momentum, affine=True,
                                     track_running_stats=True).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for seed in range(3):
        x = _x(2, 3, 4, 5, seed=seed, loc=seed)
        np.testing.assert_allclose(ours(tl.tensor(x, dtype=F64)).numpy(),
                                   theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10,
                                   atol=1e-12)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key].numpy(), value.numpy(), rtol=1e-12)
    assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item() == 0
    ours.eval(), theirs.eval()
    x = _x(2, 3, 4, 5, seed=9)
    np.testing.assert_allclose(ours(tl.tensor(x, dtype=F64)).numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls, tcls", [(nn.BatchNorm1d, torch.nn.BatchNorm1d),
                                       (nn.BatchNorm2d, torch.nn.BatchNorm2d),
                                       (nn.InstanceNorm2d, torch.nn.InstanceNorm2d)])
def test_norm_buffers_and_state_dict_keys_match_torch(cls, tcls):
    for track in (True, False):
        ours, theirs = cls(4, track_running_stats=track), tcls(4, track_running_stats=track)
        assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
        assert list(ours.state_dict()) == list(theirs.state_dict())


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_norm_counts_a_batch_only_when_it_accepted_the_input(momentum):
    bn = nn.BatchNorm2d(3, momentum=momentum)  # float32
    good = tl.tensor(_x(4, 3, 2, 2), dtype=tl.float32)
    bn(good)
    before = {k: v.numpy().copy() for k, v in bn.state_dict().items()}
    with pytest.raises(TypeError, match="batch_norm: expected running_mean of dtype float64"):
        bn(tl.tensor(_x(4, 3, 2, 2), dtype=F64))  # a float64 batch into a float32 layer
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn(tl.tensor(_x(1, 3, 1, 1), dtype=tl.float32))
    with pytest.raises(ValueError, match="expected 3 channels"):
        bn(tl.tensor(_x(4, 2, 2, 2), dtype=tl.float32))
    for key, value in bn.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[key])
    assert bn.num_batches_tracked.item() == 1
    # the next accepted batch is the second one, also for the cumulative average
    theirs = torch.nn.BatchNorm2d(3, momentum=momentum)
    for x in (_x(4, 3, 2, 2), _x(4, 3, 2, 2, seed=1, loc=2.0)):
        theirs(torch.tensor(x, dtype=torch.float32))
    bn(tl.tensor(_x(4, 3, 2, 2, seed=1, loc=2.0), dtype=tl.float32))
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(bn.state_dict()[key].numpy(), value.numpy(), rtol=1e-5,
                                   atol=1e-6)


def _trained(bn, x):
    bn(x)
    with tl.no_grad():
        bn.weight.copy_(tl.tensor(np.linspace(0.5, 2, bn.num_features), dtype=F64))
        bn.bias.copy_(tl.tensor(np.linspace(-1, 1, bn.num_features), dtype=F64))
    return bn.eval()


def test_fusing_a_conv_into_a_batch_norm_with_relu_keeps_the_relu():
    tl.manual_seed(5)
    conv = nn.Conv2d(2, 4, 3, padding=1, dtype=F64).eval()
    x = tl.tensor(_x(2, 2, 5, 5, seed=5), dtype=F64)
    bn = _trained(nn.BatchNorm2d(4, activation="relu", dtype=F64), conv(x) * 2 + 1)
    want = bn(conv(x)).numpy()
    assert (want == 0).mean() > 0.2  # the ReLU clips a good part: the check means something
    fused = nn.utils.fuse_conv_bn_eval(conv, bn)
    got = fused(x).numpy()
    assert got.min() >= 0
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert isinstance(fused, nn.Sequential) and isinstance(fused[0], nn.Conv2d)
    assert isinstance(fused[1], nn.ReLU)


def test_fusing_a_linear_into_a_batch_norm_with_relu_keeps_the_relu():
    linear = nn.Linear(5, 3, dtype=F64).eval()
    x = tl.tensor(_x(8, 5, seed=6), dtype=F64)
    bn = _trained(nn.BatchNorm1d(3, activation="relu", dtype=F64), linear(x) * 3)
    want = bn(linear(x)).numpy()
    assert (want == 0).any()
    np.testing.assert_allclose(nn.utils.fuse_linear_bn_eval(linear, bn)(x).numpy(), want,
                               rtol=1e-10, atol=1e-12)
