"""nn.summary: shapes, parameter counts and multiply-adds against hand counts, frozen layers,
and a model left as it was (modes, hooks, running statistics, the random generator)."""
from collections import OrderedDict

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import nn
from tinygrad_lite.nn.summary import summary


def small_convnet():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, groups=2, bias=False), nn.Flatten(), nn.Dropout(0.5),
        nn.Linear(6 * 2 * 2, 5))


def test_small_convnet_against_hand_counts():
    model = small_convnet()
    s = summary(model, (2, 3, 8, 8))
    assert [(r.name, r.layer, r.depth) for r in s.rows] == [
        ("", "Sequential", 0), ("0", "Conv2d", 1), ("1", "BatchNorm2d", 1), ("2", "ReLU", 1),
        ("3", "MaxPool2d", 1), ("4", "Conv2d", 1), ("5", "Flatten", 1), ("6", "Dropout", 1),
        ("7", "Linear", 1)]
    assert [r.output_shape for r in s.rows] == [
        (2, 5), (2, 4, 8, 8), (2, 4, 8, 8), (2, 4, 8, 8), (2, 4, 4, 4), (2, 6, 2, 2), (2, 24),
        (2, 24), (2, 5)]
    # conv 4x3x3x3 + 4 bias; BN gamma and beta; grouped conv 6 x (4/2) x 3 x 3; linear 24x5 + 5
    assert [r.params for r in s.rows] == [0, 112, 8, 0, 0, 108, 0, 0, 125]
    assert s.total_params == 353 == sum(p.size for p in model.parameters())
    assert s.trainable_params == 353 and s.frozen_params == 0
    # per output element: in_channels / groups * kh * kw; per sample: in x out
    conv1, conv2, linear = 2 * 4 * 8 * 8 * 27, 2 * 6 * 2 * 2 * 18, 2 * 24 * 5
    assert [r.macs for r in s.rows] == [0, conv1, 0, 0, 0, conv2, 0, 0, linear]
    assert s.total_macs == conv1 + conv2 + linear == 14928


def test_mlp_with_a_shared_layer_counts_its_parameters_once_and_its_work_twice():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(4, 8)
            self.body = nn.Sequential(OrderedDict(hidden=nn.Linear(8, 8), act=nn.Tanh()))
            self.out = nn.Linear(8, 3, bias=False)

        def forward(self, x):
            return self.out(self.body(self.body(self.inp(x))))

    model = Net()
    s = summary(model, (5, 4))
    assert [(r.name, r.depth) for r in s.rows] == [
        ("", 0), ("inp", 1), ("body", 1), ("body.hidden", 2), ("body.act", 2), ("body", 1),
        ("body.hidden", 2), ("body.act", 2), ("out", 1)]
    assert [r.params for r in s.rows] == [0, 40, 0, 72, 0, 0, 0, 0, 24]
    assert s.total_params == 136 == sum(p.size for p in model.parameters())
    assert s.total_macs == 5 * (4 * 8 + 8 * 8 + 8 * 8 + 8 * 3)


def test_frozen_and_partly_frozen_layers_are_reported():
    model = small_convnet()
    model[0].weight.requires_grad_(False)  # conv 0: weight frozen, bias trains
    model[4].requires_grad_(False)
    s = summary(model, (1, 3, 8, 8))
    status = {r.name: r.trainable for r in s.rows}
    assert status == {"": "partial", "0": "partial", "1": "trainable", "2": "--", "3": "--",
                      "4": "frozen", "5": "--", "6": "--", "7": "trainable"}
    assert s.frozen_params == 108 + 108 and s.trainable_params == 353 - 216
    table = str(s)
    assert "frozen" in table and "partial" in table and "Frozen params: 216" in table


def test_table_shows_shapes_counts_and_totals():
    s = summary(small_convnet(), (2, 3, 8, 8))
    table = str(s)
    assert repr(s) == table
    for shape in ("(2, 4, 8, 8)", "(2, 4, 4, 4)", "(2, 6, 2, 2)", "(2, 24)", "(2, 5)"):
        assert shape in table
    lines = table.splitlines()
    linear = next(line for line in lines if "Linear (7)" in line)
    assert linear.split()[-3:] == ["125", "trainable", "240"]
    assert "Total params: 353" in table and "Total mult-adds: 14,928" in table


def test_model_modes_hooks_statistics_and_random_generator_are_left_as_they_were():
    model = small_convnet()
    model.train()
    model[6].eval()  # a mixed state must come back as it was, not as all-train
    calls = []
    model.register_forward_hook(lambda m, args, out: calls.append(out.shape))
    model[1].register_forward_pre_hook(lambda m, args: None)
    hooks = {id(m): (list(m._forward_hooks), list(m._forward_pre_hooks))
             for m in model.modules()}
    running = model[1].running_mean.numpy().copy(), model[1].running_var.numpy().copy()
    rng = tl.random.generator().bit_generator.state

    summary(model, (2, 3, 8, 8))
    assert calls == [(2, 5)]  # the user's hook ran once, and still runs
    assert [m.training for m in model.modules()] == [True] * 7 + [False, True]
    assert hooks == {id(m): (list(m._forward_hooks), list(m._forward_pre_hooks))
                     for m in model.modules()}
    np.testing.assert_array_equal(model[1].running_mean.numpy(), running[0])
    np.testing.assert_array_equal(model[1].running_var.numpy(), running[1])
    assert int(model[1].num_batches_tracked.item()) == 0
    assert tl.random.generator().bit_generator.state == rng
    model(tl.zeros(2, 3, 8, 8))
    assert calls == [(2, 5), (2, 5)]


def test_a_failing_forward_pass_restores_the_model_and_says_where():
    model = small_convnet()
    hooks = [len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()]
    with pytest.raises(ValueError, match="Conv2d: expected input with 3 channels") as info:
        summary(model, (2, 5, 8, 8))
    assert "summary's forward pass of Sequential" in "\n".join(info.value.__notes__)
    assert all(m.training for m in model.modules())
    assert [len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()] == hooks


def test_several_inputs_batch_size_dtype_and_device():
    class Pair(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 2), nn.Linear(5, 2)

        def forward(self, x, y):
            return self.a(x) + self.b(y), x

    s = summary(Pair(), [(4, 3), (4, 5)])
    assert s.rows[0].output_shape == [(4, 2), (4, 3)]
    assert "(4, 2), (4, 3)" in str(s)
    assert s.total_macs == 4 * 3 * 2 + 4 * 5 * 2

    mlp = nn.Sequential(nn.Linear(3, 4)).double()
    s = summary(mlp, (3,), batch_size=7)  # a sample's shape, the batch put in front
    assert s.input_shapes == [(7, 3)] and s.rows[-1].output_shape == (7, 4)
    assert s.dtype == tl.float64 and str(s.device) == "cpu"  # the model's own
    assert summary(nn.Sequential(nn.Linear(3, 4)), (2, 3), dtype="float32").dtype == tl.float32


@pytest.mark.parametrize("bad, error", [
    (3, TypeError), ((2, "3"), TypeError), ([(2, 3), 4], TypeError), ((), TypeError),
    ((2, 0), ValueError)])
def test_bad_input_sizes_are_refused_by_name(bad, error):
    with pytest.raises(error, match="summary"):
        summary(nn.Linear(3, 4), bad)
