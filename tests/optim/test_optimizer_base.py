"""The Optimizer base: parameter groups with their own hyperparameters, add_param_group,
frozen and gradient-less parameters skipped, zero_grad, step(closure), state_dict round trips
that resume identically (cpu and cuda), and the errors."""
import numpy as np
import pytest

import tinygrad_lite as tl
from helpers import device_param
from tinygrad_lite import nn, optim

RULES = [(optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
         (optim.Adagrad, dict(lr=0.1)),
         (optim.RMSprop, dict(lr=0.01, momentum=0.5, centered=True)),
         (optim.Adam, dict(lr=0.1, amsgrad=True)),
         (optim.AdamW, dict(lr=0.1))]


def _param(values, device="cpu", requires_grad=True):
    return nn.Parameter(tl.tensor(np.asarray(values, float), dtype=tl.float64, device=device),
                        requires_grad=requires_grad)


def _set_grads(params, seed):
    rng = np.random.default_rng(seed)
    for p in params:
        p.grad = tl.tensor(rng.standard_normal(p.shape), dtype=p.dtype, device=p.device)


def test_param_groups_have_their_own_hyperparameters():
    backbone, head, bias = _param([1.0, 1.0]), _param([1.0]), _param([1.0])
    opt = optim.SGD([{"params": [backbone], "lr": 0.01},
                     {"params": [head]},
                     {"params": bias, "weight_decay": 0.0}], lr=0.1, weight_decay=0.5)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.1, 0.1]
    assert [g["weight_decay"] for g in opt.param_groups] == [0.5, 0.5, 0.0]
    for p in (backbone, head, bias):
        p.grad = tl.tensor(np.zeros(p.shape), dtype=tl.float64)
    opt.step()  # zero gradient: only the weight decay moves them
    np.testing.assert_allclose(backbone.numpy(), 1 - 0.01 * 0.5)
    np.testing.assert_allclose(head.numpy(), 1 - 0.1 * 0.5)
    np.testing.assert_array_equal(bias.numpy(), 1.0)


def test_add_param_group_and_module_parameters():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    opt = optim.Adam(model[0].parameters(), lr=1e-3)
    opt.add_param_group({"params": model[1].parameters(), "lr": 1e-4})
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["betas"] == (0.9, 0.999)
    assert opt.param_groups[1]["lr"] == 1e-4
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [model[1].weight]})


def test_frozen_and_gradless_parameters_are_skipped():
    frozen, gradless, live = _param([1.0]), _param([2.0]), _param([3.0])
    opt = optim.Adam([frozen, gradless, live], lr=0.1)
    frozen.grad = tl.tensor(np.ones(1), dtype=tl.float64)
    frozen.requires_grad = False
    live.grad = tl.tensor(np.ones(1), dtype=tl.float64)
    opt.step()
    assert frozen.numpy()[0] == 1.0 and gradless.numpy()[0] == 2.0 and frozen.version == 0
    assert live.numpy()[0] == pytest.approx(2.9)
    assert frozen not in opt.state and gradless not in opt.state and live in opt.state


def test_zero_grad_and_closure():
    p = _param([1.0, 2.0])
    opt = optim.SGD([p], lr=0.1)
    p.grad = tl.tensor(np.ones(2), dtype=tl.float64)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.numpy(), 0.0)
    opt.zero_grad()
    assert p.grad is None

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with tl.no_grad():  # the closure gets grad mode back, as in PyTorch
        loss = opt.step(closure)
    assert loss.item() == pytest.approx(5.0)
    np.testing.assert_allclose(p.numpy(), [0.8, 1.6])


@device_param
@pytest.mark.parametrize("cls, kw", RULES)
def test_state_dict_round_trip_resumes_identically(cls, kw, device):
    def fresh():
        return [_param([1.0, -2.0, 0.5], device), _param([[0.3, 0.1]], device)]

    params = fresh()
    opt = cls(params, **kw)
    for seed in range(2):
        _set_grads(params, seed)
        opt.step()
    saved = opt.state_dict()
    snapshot = [p.numpy().copy() for p in params]  # numpy() on the cpu is the storage
    for seed in (2, 3):  # keep training the original: the checkpoint must not change
        _set_grads(params, seed)
        opt.step()
    expected = [p.numpy().copy() for p in params]

    resumed = fresh()
    for p, values in zip(resumed, snapshot):
        with tl.no_grad():
            p.copy_(tl.tensor(values, dtype=tl.float64, device=device))
    opt2 = cls(resumed, lr=123.0)
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == kw["lr"]
    for seed in (2, 3):
        _set_grads(resumed, seed)
        opt2.step()
    for p, values in zip(resumed, expected):
        np.testing.assert_array_equal(p.numpy(), values)


def test_state_dict_layout_and_load_errors():
    a, b = _param([1.0]), _param([2.0, 3.0])
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.9)
    _set_grads([a, b], 0)
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert set(sd["state"]) == {0, 1} and sd["state"][1]["momentum_buffer"].shape == (2,)
    with pytest.raises(ValueError, match="2 parameter groups, this optimiser 1"):
        optim.SGD([a], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="state 'momentum_buffer' of parameter 0 has shape"):
        optim.SGD([{"params": [b]}, {"params": [a]}], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="expected a dict with 'state'"):
        opt.load_state_dict({"param_groups": []})


@pytest.mark.parametrize("make, error, match", [
    (lambda p: optim.SGD([p], lr=-0.1), ValueError, "Invalid learning rate: -0.1"),
    (lambda p: optim.SGD([p], lr=0.1, momentum=-1), ValueError, "Invalid momentum"),
    (lambda p: optim.SGD([p], lr=0.1, nesterov=True), ValueError, "Nesterov momentum requires"),
    (lambda p: optim.SGD([p], lr=0.1, weight_decay=-1), ValueError, "Invalid weight_decay"),
    (lambda p: optim.Adam([p], betas=(1.0, 0.999)), ValueError, "beta parameter at index 0"),
    (lambda p: optim.Adam([p], betas=(0.9, -0.1)), ValueError, "beta parameter at index 1"),
    (lambda p: optim.Adam([p], betas=0.9), ValueError, "betas must be a pair"),
    (lambda p: optim.Adam([p], eps=-1e-8), ValueError, "Invalid epsilon"),
    (lambda p: optim.RMSprop([p], alpha=-0.5), ValueError, "Invalid alpha"),
    (lambda p: optim.Adagrad([p], lr_decay=-1), ValueError, "Invalid lr_decay"),
    (lambda p: optim.SGD(p, lr=0.1), TypeError, "iterable of Tensors"),
    (lambda p: optim.SGD(3, lr=0.1), TypeError, "iterable of Tensors.* got int"),
    (lambda p: optim.SGD([], lr=0.1), ValueError, "empty parameter list"),
    (lambda p: optim.SGD([p, p], lr=0.1), ValueError, "appears twice"),
    (lambda p: optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1), ValueError,
     "more than one parameter group"),
    (lambda p: optim.SGD([np.zeros(2)], lr=0.1), TypeError, "can only optimise Tensors"),
    (lambda p: optim.SGD([p * 2], lr=0.1), ValueError, "non-leaf"),
    (lambda p: optim.SGD([{"params": [p], "lr": -1}], lr=0.1), ValueError,
     "Invalid learning rate"),
    (lambda p: optim.SGD([{"params": [p], "mommentum": 0.9}], lr=0.1), ValueError,
     "unknown hyperparameter"),
    (lambda p: optim.SGD([{"lr": 0.1}], lr=0.1), ValueError, "no 'params' entry"),
])
def test_errors(make, error, match):
    with pytest.raises(error, match=match):
        make(_param([1.0, 2.0]))


def test_gradient_of_the_wrong_shape_is_an_error():
    p = _param([1.0, 2.0])
    p.grad = tl.tensor(np.ones(3), dtype=tl.float64)
    with pytest.raises(RuntimeError, match=r"SGD.step: a parameter of shape \(2,\)"):
        optim.SGD([p], lr=0.1).step()
