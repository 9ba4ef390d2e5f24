"""Learning-rate schedules: each one's lr against its formula at chosen steps (written here from
the papers / PyTorch docs, not from the code), per-group base lrs, warm-up composed with every
schedule through SequentialLR, per-iteration stepping with fractional epochs (SGDR), OneCycle's
momentum, ReduceLROnPlateau's patience and cooldown, state_dict round trips, and the errors."""
import math

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import nn, optim
from tinygrad_lite.optim import lr_scheduler as S


def _opt(lr=0.1, groups=1, cls=optim.SGD, **kw):
    params = [{"params": [nn.Parameter(tl.zeros(2))], "lr": lr * (i + 1)} for i in range(groups)]
    return cls(params, lr=lr, **kw)


def _lrs(scheduler, steps):
    """lr of group 0 at epochs 0 .. steps-1 (the scheduler sets epoch 0's on creation)."""
    out = []
    for _ in range(steps):
        out.append(scheduler.optimizer.param_groups[0]["lr"])
        assert scheduler.get_last_lr()[0] == out[-1]
        scheduler.optimizer.step()
        scheduler.step()
    return np.array(out)


def cosine(base, t, T, eta_min=0.0):
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / T)) / 2


FORMULAS = [
    (lambda o: S.StepLR(o, step_size=30), lambda t: 0.1 * 0.1 ** (t // 30)),
    (lambda o: S.MultiStepLR(o, [60, 30, 90]),
     lambda t: 0.1 * 0.1 ** sum(t >= m for m in (30, 60, 90))),
    (lambda o: S.ExponentialLR(o, 0.95), lambda t: 0.1 * 0.95 ** t),
    (lambda o: S.CosineAnnealingLR(o, T_max=40, eta_min=0.001),
     lambda t: cosine(0.1, t, 40, 0.001)),
    (lambda o: S.LinearLR(o, start_factor=0.25, end_factor=0.5, total_iters=8),
     lambda t: 0.1 * (0.25 + 0.25 * min(t, 8) / 8)),
    (lambda o: S.LambdaLR(o, lambda t: 1 / (1 + t)), lambda t: 0.1 / (1 + t)),
    (lambda o: S.InverseSqrtLR(o), lambda t: 0.1 / math.sqrt(max(t, 1))),
    (lambda o: S.InverseSqrtLR(o, timescale=4), lambda t: 0.1 * math.sqrt(4 / max(t, 4))),
]


@pytest.mark.parametrize("make, formula", FORMULAS)
def test_schedule_values_match_their_formulas(make, formula):
    lrs = _lrs(make(_opt()), 100)
    np.testing.assert_allclose(lrs, [formula(t) for t in range(100)], rtol=1e-12)


def test_step_decay_at_the_resnet_epochs_and_group_base_lrs():
    scheduler = S.MultiStepLR(_opt(0.1, groups=2), milestones=[30, 60, 90])
    lrs = []
    for epoch in range(100):
        lrs.append(scheduler.get_last_lr())
        scheduler.step()
    assert lrs[29] == [0.1, 0.2] and lrs[30] == pytest.approx([0.01, 0.02])
    assert lrs[60] == pytest.approx([1e-3, 2e-3]) and lrs[99] == pytest.approx([1e-4, 2e-4])


def test_sgdr_restarts_and_fractional_epochs():
    opt = _opt(1.0)
    sched = S.CosineAnnealingWarmRestarts(opt, T_0=10, T_mult=2, eta_min=0.0)
    lrs = _lrs(sched, 71)
    # periods of 10, 20, 40 epochs starting at 0, 10, 30, 70
    for start, T in ((0, 10), (10, 20), (30, 40)):
        for t in (0, 3, T - 1):
            assert lrs[start + t] == pytest.approx(cosine(1.0, t, T))
    assert lrs[70] == 1.0
    # per iteration: step(epoch + i / iters) gives the same curve at fractional epochs
    sched = S.CosineAnnealingWarmRestarts(_opt(1.0), T_0=10, T_mult=2)
    for epoch in range(12):
        for i in range(4):
            sched.step(epoch + i / 4)
            t, T = (epoch + i / 4, 10) if epoch < 10 else (epoch + i / 4 - 10, 20)
            assert sched.get_last_lr()[0] == pytest.approx(cosine(1.0, t, T))


@pytest.mark.parametrize("after", range(len(FORMULAS)))
def test_linear_warmup_then_any_schedule(after):
    opt = _opt()
    make, formula = FORMULAS[after]
    warmup = S.LinearLR(opt, start_factor=0.01, total_iters=5)
    sched = S.SequentialLR(opt, [warmup, make(opt)], milestones=[5])
    lrs = _lrs(sched, 60)
    np.testing.assert_allclose(lrs[:5], [0.1 * (0.01 + 0.99 * t / 5) for t in range(5)])
    np.testing.assert_allclose(lrs[5:], [formula(t) for t in range(55)], rtol=1e-12)


def test_one_cycle_lr_and_momentum():
    opt = _opt(0.1, momentum=0.9)
    sched = S.OneCycleLR(opt, max_lr=1.0, total_steps=100)
    lrs, moms = [], []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        moms.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step()
    # up from max_lr / 25 to max_lr over 30% of the steps (end step 29), then cosine down to
    # initial / 1e4 at step 99; momentum the other way between 0.95 and 0.85
    assert lrs[0] == pytest.approx(0.04) and lrs[29] == pytest.approx(1.0)
    assert lrs[14] == pytest.approx(1.0 + (0.04 - 1.0) / 2 * (math.cos(math.pi * 14 / 29) + 1))
    assert lrs[99] == pytest.approx(0.04 / 1e4)
    assert lrs[64] == pytest.approx(4e-6 + (1.0 - 4e-6) / 2 * (math.cos(math.pi * 35 / 70) + 1))
    assert moms[0] == pytest.approx(0.95) and moms[29] == pytest.approx(0.85)
    assert moms[99] == pytest.approx(0.95)
    with pytest.raises(ValueError, match="more than total_steps"):
        sched.step()
        sched.step()


def test_one_cycle_three_phase_linear_and_adam_betas():
    opt = _opt(0.1, cls=optim.Adam)
    sched = S.OneCycleLR(opt, max_lr=1.0, epochs=2, steps_per_epoch=50, three_phase=True,
                         anneal_strategy="linear")
    lrs = _lrs(sched, 100)
    assert lrs[0] == pytest.approx(0.04) and lrs[29] == pytest.approx(1.0)
    assert lrs[58] == pytest.approx(0.04) and lrs[99] == pytest.approx(4e-6)
    assert lrs[44] == pytest.approx(1.0 + (0.04 - 1.0) * 15 / 29)
    assert opt.param_groups[0]["betas"][1] == 0.999


def test_reduce_on_plateau():
    opt = _opt(1.0)
    sched = S.ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=1, min_lr=0.2)
    seen = []
    for loss in [5, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4]:
        sched.step(loss)
        seen.append(sched.get_last_lr()[0])
    # no improvement after epoch 1: the 3rd bad epoch cuts (epoch 4), one cooldown epoch, three
    # more bad ones (epoch 8), then again (epoch 12), but never below min_lr
    assert seen == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.2]
    up = S.ReduceLROnPlateau(_opt(1.0), mode="max", patience=0, threshold=0.1,
                             threshold_mode="abs")
    for acc in [0.5, 0.55]:  # +0.05 is below the 0.1 threshold: not an improvement
        up.step(acc)
    assert up.get_last_lr() == [pytest.approx(0.1)]


@pytest.mark.parametrize("make", [
    lambda o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2),
    lambda o: S.SequentialLR(o, [S.LinearLR(o, 0.1, total_iters=3),
                                 S.StepLR(o, step_size=2)], milestones=[3]),
    lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=20),
    lambda o: S.StepLR(o, step_size=3, gamma=0.5)])
def test_state_dict_round_trip_resumes_identically(make):
    opt = _opt(momentum=0.9)
    sched = make(opt)
    for _ in range(5):
        sched.step()
    # As in PyTorch, the current lr lives in the optimiser (the chainable schedules scale it),
    # so a checkpoint holds both states: build the scheduler, then load both.
    saved, saved_opt = sched.state_dict(), opt.state_dict()
    rest = _lrs(sched, 8)
    opt2 = _opt(momentum=0.9)
    resumed = make(opt2)
    opt2.load_state_dict(saved_opt)
    resumed.load_state_dict(saved)
    np.testing.assert_allclose(_lrs(resumed, 8), rest, rtol=1e-12)


def test_errors():
    opt = _opt()
    with pytest.raises(TypeError, match="expected an Optimizer"):
        S.StepLR([1, 2], step_size=2)
    with pytest.raises(ValueError, match="positive integer step_size"):
        S.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="start_factor"):
        S.LinearLR(opt, start_factor=0)
    with pytest.raises(ValueError, match="len\\(milestones\\) = len\\(schedulers\\) - 1"):
        S.SequentialLR(opt, [S.StepLR(opt, 2), S.StepLR(opt, 3)], milestones=[])
    with pytest.raises(ValueError, match="another optimiser"):
        S.SequentialLR(opt, [S.StepLR(opt, 2), S.StepLR(_opt(), 3)], milestones=[2])
    with pytest.raises(ValueError, match="factor should be < 1.0"):
        S.ReduceLROnPlateau(opt, factor=2.0)
    with pytest.raises(ValueError, match="total_steps, or epochs and steps_per_epoch"):
        S.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(KeyError, match="initial_lr"):
        S.StepLR(_opt(), step_size=2, last_epoch=3)


def test_one_cycle_refuses_only_a_phase_a_step_lands_in():
    """A step that lands in a phase of no length would divide by zero (PyTorch raises
    ZeroDivisionError): a ValueError naming both numbers, before anything is changed. A warm-up
    shorter than one step is skipped, as in PyTorch, and the lrs match PyTorch's there."""
    torch = pytest.importorskip("torch")
    import tinygrad_lite as tl
    from tinygrad_lite import optim
    w = tl.Tensor([1.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"OneCycleLR: pct_start=0.25 of total_steps=4 leaves"):
        optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=4, pct_start=0.25)
    assert opt.param_groups[0]["lr"] == 0.1 and "initial_lr" not in opt.param_groups[0]
    with pytest.raises(ValueError, match=r"phase 3 without steps .* step 5 lands"):
        # the last phase runs from step 4 to step 4; the total_steps-th step() lands there
        optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=5, pct_start=0.6,
                                      three_phase=True)
    for total, pct, three in [(2, 0.25, False), (1, 0.3, False), (3, 0.9, False),
                              (8, 0.25, False), (9, 0.1, True)]:
        w = tl.Tensor([1.0], requires_grad=True)
        opt = optim.SGD([w], lr=0.1, momentum=0.9)
        ours = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=total, pct_start=pct,
                                             three_phase=three)
        tw = torch.zeros(1, requires_grad=True)
        topt = torch.optim.SGD([tw], lr=0.1, momentum=0.9)
        theirs = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.1, total_steps=total,
                                                     pct_start=pct, three_phase=three)
        for _ in range(total):
            assert opt.param_groups[0]["lr"] == pytest.approx(topt.param_groups[0]["lr"])
            assert opt.param_groups[0]["momentum"] == pytest.approx(
                topt.param_groups[0]["momentum"])
            opt.step(); ours.step(); topt.step(); theirs.step()
