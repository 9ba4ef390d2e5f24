"""Optimizer.load_state_dict validates everything before it writes: a refused load (wrong
group count, parameter count, hyperparameter names or values, state shapes, dtypes or
indices) leaves state_dict() exactly as it was. The refusals that torch also makes are
checked against torch."""
import copy

import numpy as np
import pytest
import torch

import tinygrad_lite as tl
from tinygrad_lite import nn, optim


def _params():
    rng = np.random.default_rng(0)
    return [nn.Parameter(tl.tensor(rng.standard_normal(s).astype(np.float32)))
            for s in ((3,), (2, 2), (4,))]


def _trained(cls=optim.Adam, **kw):
    a, b, c = _params()
    opt = cls([{"params": [a, b]}, {"params": [c], "lr": 0.01}], lr=0.1, **kw)
    for seed in range(2):
        rng = np.random.default_rng(seed)
        for p in (a, b, c):
            p.grad = tl.tensor(rng.standard_normal(p.shape).astype(np.float32))
        opt.step()
    return opt


def _frozen(sd):
    """state_dict() as plain comparable values (arrays as lists)."""
    def conv(v):
        if isinstance(v, tl.Tensor):
            return ("T", str(v.dtype), v.numpy().tolist())
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        return v
    return conv(sd)


def _corrupt_state_shape(sd):
    sd["state"][2]["exp_avg"] = tl.zeros(5)


def _corrupt_dtype(sd):
    sd["state"][1]["exp_avg_sq"] = tl.zeros(2, 2, dtype=tl.int64)


def _corrupt_index(sd):
    sd["state"][7] = sd["state"].pop(2)


def _corrupt_hyper(sd):
    sd["param_groups"][1]["betas"] = (1.5, 0.999)


def _corrupt_kind(sd):
    for g in sd["param_groups"]:
        del g["betas"]
        g["momentum"] = 0.9


def _corrupt_group_count(sd):
    sd["param_groups"] = sd["param_groups"][:1]


def _corrupt_param_count(sd):
    sd["param_groups"][0]["params"] = [0]


@pytest.mark.parametrize("corrupt, match", [
    (_corrupt_state_shape, "state 'exp_avg' of parameter 2 has shape \\(5,\\)"),
    (_corrupt_dtype, "state 'exp_avg_sq' of parameter 1 is int64"),
    (_corrupt_index, "refers to parameter 7"),
    (_corrupt_hyper, "beta parameter at index 0"),
    (_corrupt_kind, "not a Adam group \\(missing hyperparameters \\['betas'\\]"),
    (_corrupt_group_count, "the state has 1 parameter groups, this optimiser 2"),
    (_corrupt_param_count, "saved group 0 has 1 parameters, this optimiser's 2"),
])
def test_a_refused_load_changes_nothing(corrupt, match):
    opt = _trained()
    # the good state of another run: a load that failed half-way would leave some of it
    other = _trained(betas=(0.5, 0.9)).state_dict()
    for s in other["state"].values():
        s["exp_avg"] = s["exp_avg"] + 1.0
    other["param_groups"][0]["lr"] = 0.7
    corrupt(other)
    before = _frozen(opt.state_dict())
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(other)
    assert _frozen(opt.state_dict()) == before


def test_a_valid_load_casts_float_state_and_resumes_identically():
    opt = _trained()
    sd = opt.state_dict()
    for s in sd["state"].values():  # a float64 checkpoint into a float32 model: cast
        s["exp_avg"] = s["exp_avg"].double()
    fresh = optim.Adam([{"params": _params()[:2]}, {"params": _params()[2:], "lr": 0.5}])
    fresh.load_state_dict(copy.deepcopy(sd))
    assert _frozen(fresh.state_dict()) == _frozen(opt.state_dict())
    assert all(s["exp_avg"].dtype == tl.float32 for s in fresh.state.values())


def test_torch_refuses_the_same_group_and_parameter_count_mismatches():
    tp = [torch.nn.Parameter(torch.zeros(s)) for s in ((3,), (2, 2), (4,))]
    topt = torch.optim.Adam([{"params": tp[:2]}, {"params": tp[2:]}])
    for corrupt in (_corrupt_group_count, _corrupt_param_count):
        sd = copy.deepcopy(topt.state_dict())
        corrupt(sd)
        with pytest.raises(ValueError):
            topt.load_state_dict(sd)
