"""Learning-rate schedules against torch.optim.lr_scheduler itself, step by step: every
scheduler alone over 40+ steps, two schedulers on one optimiser (they multiply: the chainable
forms), SequentialLR, a hand-made lr change mid-run, step(epoch) (the closed forms), a state_dict
round trip of optimiser + scheduler, and that a refused load changes nothing."""
import math
import warnings

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as TS

import tinygrad_lite as tl
from tinygrad_lite import nn, optim
from tinygrad_lite.optim import lr_scheduler as S

LRS = (0.1, 0.03)  # two parameter groups, so per-group base lrs are checked too


def _ours(momentum=0.9, cls=optim.SGD, **kw):
    groups = [{"params": [nn.Parameter(tl.zeros(2))], "lr": lr} for lr in LRS]
    return cls(groups, lr=LRS[0], momentum=momentum, **kw) if cls is optim.SGD else \
        cls(groups, lr=LRS[0], **kw)


def _theirs(momentum=0.9, cls=torch.optim.SGD, **kw):
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": lr} for lr in LRS]
    return cls(groups, lr=LRS[0], momentum=momentum, **kw) if cls is torch.optim.SGD else \
        cls(groups, lr=LRS[0], **kw)


def _run(opt, scheds, steps, metrics=None, hook=None, extra=()):
    """lrs (and group "momentum"/beta1 in extra) of both groups before each of `steps`
    optimiser steps; every scheduler in scheds steps after the optimiser."""
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's warnings about step(epoch) and the like
        for t in range(steps):
            row = [g["lr"] for g in opt.param_groups]
            for key in extra:
                row += [g[key][0] if key == "betas" else g[key] for g in opt.param_groups]
            rows.append(row)
            if hook is not None:
                hook(t, opt, scheds)
            opt.step()
            for s in scheds:
                if isinstance(s, (S.ReduceLROnPlateau, TS.ReduceLROnPlateau)):
                    s.step(metrics[t])
                else:
                    s.step()
    return np.array(rows)


def _compare(make_ours, make_theirs, steps=40, rtol=1e-13, **kw):
    o, t = _ours(), _theirs()
    ours = _run(o, make_ours(o), steps, **kw)
    theirs = _run(t, make_theirs(t), steps, **kw)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=0)
    return ours


PLATEAU = [5, 4, 4, 4, 4, 4, 3.9999, 4, 4, 4, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2] * 3

ALONE = {
    "StepLR": (lambda o: [S.StepLR(o, 7, gamma=0.5)], lambda o: [TS.StepLR(o, 7, gamma=0.5)]),
    "MultiStepLR": (lambda o: [S.MultiStepLR(o, [25, 5, 12, 12], gamma=0.3)],
                    lambda o: [TS.MultiStepLR(o, [25, 5, 12, 12], gamma=0.3)]),
    "ExponentialLR": (lambda o: [S.ExponentialLR(o, 0.93)],
                      lambda o: [TS.ExponentialLR(o, 0.93)]),
    "CosineAnnealingLR": (lambda o: [S.CosineAnnealingLR(o, T_max=12, eta_min=0.002)],
                          lambda o: [TS.CosineAnnealingLR(o, T_max=12, eta_min=0.002)]),
    "CosineAnnealingWarmRestarts": (
        lambda o: [S.CosineAnnealingWarmRestarts(o, T_0=4, T_mult=2, eta_min=0.001)],
        lambda o: [TS.CosineAnnealingWarmRestarts(o, T_0=4, T_mult=2, eta_min=0.001)]),
    "LinearLR": (lambda o: [S.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=9)],
                 lambda o: [TS.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=9)]),
    "OneCycleLR": (lambda o: [S.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=41)],
                   lambda o: [TS.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=41)]),
    "OneCycleLR3": (lambda o: [S.OneCycleLR(o, max_lr=1.0, total_steps=45, three_phase=True,
                                            anneal_strategy="linear", pct_start=0.25)],
                    lambda o: [TS.OneCycleLR(o, max_lr=1.0, total_steps=45, three_phase=True,
                                             anneal_strategy="linear", pct_start=0.25)]),
    "LambdaLR": (lambda o: [S.LambdaLR(o, [lambda t: 1 / (1 + t), lambda t: 0.9 ** t])],
                 lambda o: [TS.LambdaLR(o, [lambda t: 1 / (1 + t), lambda t: 0.9 ** t])]),
    # not in torch: its chainable form is torch's MultiplicativeLR with the per-step ratio
    "InverseSqrtLR": (lambda o: [S.InverseSqrtLR(o, timescale=6)],
                      lambda o: [TS.MultiplicativeLR(
                          o, lambda t: math.sqrt(max(t - 1, 6) / max(t, 6)))]),
    "SequentialLR": (
        lambda o: [S.SequentialLR(o, [S.LinearLR(o, 0.1, total_iters=5),
                                      S.ExponentialLR(o, 0.9),
                                      S.CosineAnnealingLR(o, T_max=10)], [5, 20])],
        lambda o: [TS.SequentialLR(o, [TS.LinearLR(o, 0.1, total_iters=5),
                                       TS.ExponentialLR(o, 0.9),
                                       TS.CosineAnnealingLR(o, T_max=10)], [5, 20])]),
    "ReduceLROnPlateau": (
        lambda o: [S.ReduceLROnPlateau(o, factor=0.5, patience=2, cooldown=1, min_lr=0.01)],
        lambda o: [TS.ReduceLROnPlateau(o, factor=0.5, patience=2, cooldown=1,
                                        min_lr=0.01)]),
}


@pytest.mark.parametrize("name", sorted(ALONE))
def test_each_scheduler_alone_matches_torch(name):
    make_ours, make_theirs = ALONE[name]
    extra = ("momentum",) if name.startswith("OneCycle") else ()
    lrs = _compare(make_ours, make_theirs, steps=41 if name == "OneCycleLR" else 40,
                   metrics=PLATEAU, extra=extra)
    assert len(np.unique(lrs[:, 0])) > 2  # the schedule moved: the comparison means something


def test_inverse_sqrt_alone_matches_its_closed_form():
    o = _ours()
    lrs = _run(o, [S.InverseSqrtLR(o, timescale=6)], 40)
    want = [[lr * math.sqrt(6 / max(t, 6)) for lr in LRS] for t in range(40)]
    np.testing.assert_allclose(lrs, want, rtol=1e-13)


def test_exponential_and_step_multiply_as_in_the_issue():
    o = _ours()
    lrs = _run(o, [S.ExponentialLR(o, 0.9), S.StepLR(o, step_size=3, gamma=0.5)], 5)[:, 0]
    np.testing.assert_allclose(lrs, [0.1, 0.09, 0.081, 0.03645, 0.032805], rtol=1e-13)


CHAINS = {
    "Exponential+Step": (lambda o: [S.ExponentialLR(o, 0.9), S.StepLR(o, 3, gamma=0.5)],
                         lambda o: [TS.ExponentialLR(o, 0.9), TS.StepLR(o, 3, gamma=0.5)]),
    "Step+MultiStep": (lambda o: [S.StepLR(o, 4), S.MultiStepLR(o, [3, 10, 10], 0.5)],
                       lambda o: [TS.StepLR(o, 4), TS.MultiStepLR(o, [3, 10, 10], 0.5)]),
    "Linear+Cosine": (lambda o: [S.LinearLR(o, 0.25, total_iters=6),
                                 S.CosineAnnealingLR(o, T_max=15, eta_min=1e-3)],
                      lambda o: [TS.LinearLR(o, 0.25, total_iters=6),
                                 TS.CosineAnnealingLR(o, T_max=15, eta_min=1e-3)]),
    "Cosine+Exponential": (lambda o: [S.CosineAnnealingLR(o, T_max=9),
                                      S.ExponentialLR(o, 0.97)],
                           lambda o: [TS.CosineAnnealingLR(o, T_max=9),
                                      TS.ExponentialLR(o, 0.97)]),
    "InverseSqrt+Exponential": (
        lambda o: [S.InverseSqrtLR(o, timescale=3), S.ExponentialLR(o, 0.95)],
        lambda o: [TS.MultiplicativeLR(o, lambda t: math.sqrt(max(t - 1, 3) / max(t, 3))),
                   TS.ExponentialLR(o, 0.95)]),
    "Exponential+Plateau": (
        lambda o: [S.ExponentialLR(o, 0.98), S.ReduceLROnPlateau(o, factor=0.5, patience=1)],
        lambda o: [TS.ExponentialLR(o, 0.98), TS.ReduceLROnPlateau(o, factor=0.5,
                                                                   patience=1)]),
    "Exponential+Lambda": (  # LambdaLR sets absolute values: the last one wins, in both
        lambda o: [S.ExponentialLR(o, 0.9), S.LambdaLR(o, lambda t: 1 / (1 + t))],
        lambda o: [TS.ExponentialLR(o, 0.9), TS.LambdaLR(o, lambda t: 1 / (1 + t))]),
    "Sequential+Exponential": (
        lambda o: [S.SequentialLR(o, [S.LinearLR(o, 0.1, total_iters=4),
                                      S.StepLR(o, 5, 0.5)], [4]), S.ExponentialLR(o, 0.95)],
        lambda o: [TS.SequentialLR(o, [TS.LinearLR(o, 0.1, total_iters=4),
                                       TS.StepLR(o, 5, 0.5)], [4]),
                   TS.ExponentialLR(o, 0.95)]),
}


@pytest.mark.parametrize("name", sorted(CHAINS))
def test_two_schedulers_on_one_optimiser_match_torch(name):
    make_ours, make_theirs = CHAINS[name]
    _compare(make_ours, make_theirs, steps=35, metrics=PLATEAU)


def _halve_at_10(t, opt, scheds):
    if t == 10:
        for g in opt.param_groups:
            g["lr"] = g["lr"] * 0.5


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "ExponentialLR", "LinearLR",
                                  "CosineAnnealingLR", "InverseSqrtLR", "LambdaLR",
                                  "CosineAnnealingWarmRestarts", "ReduceLROnPlateau",
                                  "SequentialLR"])
def test_a_hand_made_lr_change_mid_run_carries_on_as_in_torch(name):
    # chainable schedules scale the halved lr from then on; absolute ones overwrite it
    make_ours, make_theirs = ALONE[name]
    lrs = _compare(make_ours, make_theirs, steps=30, hook=_halve_at_10, metrics=PLATEAU)
    o = _ours()
    plain = _run(o, make_ours(o), 30, metrics=PLATEAU)
    # rows are recorded before the change at t = 10, so row 11 is the first to show it
    np.testing.assert_array_equal(lrs[:11], plain[:11])
    if name in ("LambdaLR", "CosineAnnealingWarmRestarts"):
        np.testing.assert_allclose(lrs[11:], plain[11:], rtol=1e-13)  # overwritten
    else:
        assert np.all(lrs[11] < plain[11])  # carried on (scaled, not overwritten)
        if name in ("StepLR", "MultiStepLR", "ExponentialLR", "LinearLR", "InverseSqrtLR"):
            np.testing.assert_allclose(lrs[11:], plain[11:] * 0.5, rtol=1e-13)


def _jump_at_12(t, opt, scheds):
    if t == 12:
        for s in scheds:
            s.step(3)  # step(epoch): the closed form of epoch 3, as in torch


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "ExponentialLR", "LinearLR",
                                  "CosineAnnealingLR", "LambdaLR",
                                  "CosineAnnealingWarmRestarts"])
def test_step_with_an_epoch_uses_the_closed_form_as_torch(name):
    make_ours, make_theirs = ALONE[name]
    _compare(make_ours, make_theirs, steps=30, hook=_jump_at_12)


@pytest.mark.parametrize("name", sorted(set(ALONE) - {"InverseSqrtLR"}) + [
    "chain:Exponential+Step", "chain:Linear+Cosine"])
def test_state_dict_round_trip_continues_as_torch(name):
    make_ours, make_theirs = CHAINS[name[6:]] if name.startswith("chain:") else ALONE[name]
    total, cut = (41, 17) if name.startswith("OneCycle") else (40, 17)
    t = _theirs()
    theirs = _run(t, make_theirs(t), total, metrics=PLATEAU)
    o1 = _ours()
    scheds = make_ours(o1)
    first = _run(o1, scheds, cut, metrics=PLATEAU)
    saved_opt, saved = o1.state_dict(), [s.state_dict() for s in scheds]
    o2 = _ours()
    resumed = make_ours(o2)  # build the schedulers first, then load (PyTorch's order)
    o2.load_state_dict(saved_opt)
    for s, state in zip(resumed, saved):
        s.load_state_dict(state)
    rest = _run(o2, resumed, total - cut, metrics=PLATEAU[cut:])
    np.testing.assert_allclose(np.vstack([first, rest]), theirs, rtol=1e-13, atol=0)


def test_step_per_says_which_schedules_count_batches():
    o = _ours()
    assert S.OneCycleLR(o, max_lr=1.0, total_steps=10).step_per == "batch"
    assert S.InverseSqrtLR(_ours()).step_per == "batch"
    for make in (lambda p: S.StepLR(p, 2), lambda p: S.CosineAnnealingLR(p, 5),
                 lambda p: S.ReduceLROnPlateau(p), lambda p: S.LambdaLR(p, lambda t: 1.0)):
        assert make(_ours()).step_per == "epoch"
    o = _ours()
    assert S.SequentialLR(o, [S.LinearLR(o, total_iters=2),
                              S.OneCycleLR(o, max_lr=1.0, total_steps=10)], [2]).step_per == \
        "batch"
    o = _ours()
    assert S.SequentialLR(o, [S.LinearLR(o, total_iters=2), S.StepLR(o, 3)], [2]).step_per == \
        "epoch"


def _frozen(state):
    """A comparable copy of a scheduler state (SequentialLR's nested ones too)."""
    return repr(sorted((k, _frozen(v) if isinstance(v, dict) else
                        [_frozen(x) for x in v] if k == "_schedulers" else repr(v))
                       for k, v in state.items()))


@pytest.mark.parametrize("bad, match", [
    (lambda o: S.ExponentialLR(o, 0.5).state_dict(), "not the state of a StepLR"),
    (lambda o: {**S.StepLR(o, 2).state_dict(), "base_lrs": [0.1]},
     "'base_lrs' has 1 entries, the optimiser 2"),
    (lambda o: 3, "expected a dict"),
])
def test_a_refused_scheduler_load_changes_nothing(bad, match):
    o = _ours()
    sched = S.StepLR(o, step_size=2, gamma=0.5)
    for _ in range(3):
        sched.step()
    before, lrs = _frozen(sched.state_dict()), [g["lr"] for g in o.param_groups]
    with pytest.raises((ValueError, TypeError), match=match):
        sched.load_state_dict(bad(_ours()))
    assert _frozen(sched.state_dict()) == before
    assert [g["lr"] for g in o.param_groups] == lrs


def test_a_refused_sequential_load_changes_none_of_its_schedules():
    def make(o):
        return S.SequentialLR(o, [S.LinearLR(o, 0.5, total_iters=3), S.StepLR(o, 2)], [3])
    o = _ours()
    sched = make(o)
    for _ in range(5):
        sched.step()
    before = _frozen(sched.state_dict())
    other = make(_ours()).state_dict()
    other["_schedulers"][1] = S.ExponentialLR(_ours(), 0.5).state_dict()  # the second is bad
    with pytest.raises(ValueError, match="not the state of a StepLR"):
        sched.load_state_dict(other)
    assert _frozen(sched.state_dict()) == before  # the first schedule was not loaded either
    plateau = S.ReduceLROnPlateau(_ours())
    before = _frozen(plateau.state_dict())
    with pytest.raises(ValueError, match="'min_lrs' has 3 entries"):
        plateau.load_state_dict({**plateau.state_dict(), "min_lrs": [0, 0, 0]})
    assert _frozen(plateau.state_dict()) == before


def test_sequential_refuses_reduce_on_plateau_as_torch():
    o = _ours()
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        S.SequentialLR(o, [S.StepLR(o, 2), S.ReduceLROnPlateau(o)], [2])
    t = _theirs()
    with pytest.raises(ValueError):
        TS.SequentialLR(t, [TS.StepLR(t, 2), TS.ReduceLROnPlateau(t)], [2])
