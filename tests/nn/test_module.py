"""Module, Parameter and the containers: registration, walking, train/eval, state_dict round
trips, to(device), hooks, and the errors a user meets."""
import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import nn
from helpers import assert_gradcheck


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.scale = nn.Parameter(tl.ones(4))
        self.register_buffer("seen", tl.zeros(4))
        self.register_buffer("scratch", tl.zeros(1), persistent=False)
        self.plain = 3  # not a parameter

    def forward(self, x):
        return self.fc(x).relu() * self.scale


def test_parameters_buffers_and_modules_are_found_by_walking():
    net = nn.Sequential(Block(), nn.Linear(4, 2))
    assert [n for n, _ in net.named_parameters()] == [
        "0.scale", "0.fc.weight", "0.fc.bias", "1.weight", "1.bias"] or sorted(
        n for n, _ in net.named_parameters()) == sorted(
        ["0.fc.weight", "0.fc.bias", "0.scale", "1.weight", "1.bias"])
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in net.parameters())
    assert [n for n, _ in net.named_buffers()] == ["0.seen", "0.scratch"]
    assert [n for n, _ in net.named_modules()] == ["", "0", "0.fc", "1"]
    assert len(list(net.children())) == 2 and len(net) == 2 and isinstance(net[1], nn.Linear)
    shared = nn.Linear(2, 2)
    tied = nn.Sequential(shared, shared)
    assert len(list(tied.parameters())) == 2  # a shared module counts once


def test_train_eval_recurse_and_requires_grad_freezes():
    net = nn.Sequential(Block(), nn.ModuleList([nn.Linear(4, 4), nn.Identity()]))
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    net[0].requires_grad_(False)  # freeze the feature layers
    assert [p.requires_grad for p in net.parameters()] == [False] * 3 + [True] * 2


def test_state_dict_round_trip_and_strict_loading():
    a, b = Block(), Block()
    with tl.no_grad():
        a.seen.add_(5.0)
    state = a.state_dict()
    assert list(state) == ["scale", "seen", "fc.weight", "fc.bias"] or set(state) == {
        "scale", "seen", "fc.weight", "fc.bias"}
    assert "scratch" not in state and not any(t.requires_grad for t in state.values())
    weight = b.fc.weight
    result = b.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert b.fc.weight is weight  # loaded in place: an optimiser's references stay valid
    for key in state:
        np.testing.assert_array_equal(b.state_dict()[key].numpy(), state[key].numpy())
    partial = {"fc.weight": state["fc.weight"], "extra": tl.zeros(1)}
    with pytest.raises(RuntimeError, match="Missing key(.|\n)*Unexpected key\\(s\\) in "
                                           "state_dict: 'extra'"):
        b.load_state_dict(partial)
    missing, unexpected = b.load_state_dict(partial, strict=False)
    assert "fc.bias" in missing and unexpected == ["extra"]
    with pytest.raises(RuntimeError, match="size mismatch for 'fc.weight': copying a param "
                                           "with shape \\(4, 2\\) from checkpoint"):
        b.load_state_dict({"fc.weight": tl.zeros(4, 2)}, strict=False)


def test_gradients_flow_to_parameters_and_zero_grad():
    net = Block()
    x = tl.randn(5, 3)
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    w, b = np.random.default_rng(0).standard_normal((2, 4, 3))
    assert_gradcheck(lambda x_, w_: nn.functional.linear(x_, w_, tl.ones(4, dtype=tl.float64)),
                     [w[:2], w], "cpu")


def test_to_moves_parameters_in_place():
    net = Block()
    params = list(net.parameters())
    net.to("cuda")
    assert [p is q for p, q in zip(params, net.parameters())] == [True] * len(params)
    assert all(p.device == "cuda" for p in net.parameters()) and net.seen.device == "cuda"
    out = net(tl.randn(2, 3, device="cuda"))
    assert out.device == "cuda"
    net.cpu()
    assert net.fc.weight.device == "cpu"


def test_forward_hooks_fire_and_can_be_removed():
    net = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))
    seen = []
    handle = net[0].register_forward_hook(lambda m, inputs, out: seen.append(out.shape))
    net[1].register_forward_hook(lambda m, inputs, out: out * 0.0)  # replaces the output
    out = net(tl.randn(4, 3))
    assert seen == [(4, 3)] and np.all(out.numpy() == 0)
    handle.remove()
    net(tl.randn(4, 3))
    assert seen == [(4, 3)]


def test_apply_and_repr():
    net = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2)))
    visited = []
    net.apply(lambda m: visited.append(type(m).__name__))
    assert visited == ["Linear", "Linear", "Sequential", "Sequential"]
    assert "(1): Sequential(\n    (0): Linear(in_features=2" in repr(net)
    assert repr(nn.Parameter(tl.zeros(1))).startswith("Parameter containing:")


def test_errors_name_the_layer():
    with pytest.raises(ValueError, match="Linear: expected input with last dimension 3"):
        nn.Linear(3, 2)(tl.zeros(4, 2))

    class Forgot(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(tl.zeros(1))

    with pytest.raises(AttributeError, match="super\\(\\).__init__\\(\\)"):
        Forgot()
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'nope'"):
        nn.Linear(1, 1).nope
    with pytest.raises(TypeError, match="cannot assign 'float' as buffer 'seen'"):
        Block().seen = 3.0
    with pytest.raises(NotImplementedError, match="Module has no forward"):
        nn.Module()(1)


def test_operations_on_parameters_give_plain_tensors():
    p = nn.Parameter(tl.ones(2))
    assert type(p * 2) is tl.Tensor and type(p.detach()) is tl.Tensor
    assert type(p.long()) is tl.Tensor and type(p + tl.ones(2)) is tl.Tensor
