"""optim.swa_utils against torch.optim.swa_utils itself: AveragedModel (SWA and EMA, through
avg_fn and multi_avg_fn, with and without use_buffers) on the same sequence of weights, SWALR's
learning rates step by step, and update_bn's running statistics on the same batches."""
import copy
import warnings

import numpy as np
import pytest
import torch
from torch.optim import swa_utils as TSWA

import tinygrad_lite as tl
from tinygrad_lite import nn, optim
from tinygrad_lite.optim import lr_scheduler as S
from tinygrad_lite.optim import swa_utils as SWA


def _pair():
    """The same tiny float64 net in both libraries, with the same weights: a linear layer, a
    batch norm (buffers, one of them an int64 counter) and another linear layer."""
    ours = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    ours.double()
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4),
                                 torch.nn.ReLU(), torch.nn.Linear(4, 2)).double()
    _load(ours, theirs, {k: v.numpy() for k, v in ours.state_dict().items()})
    return ours, theirs


def _load(ours, theirs, arrays):
    ours.load_state_dict({k: tl.Tensor(a, dtype=a.dtype) for k, a in arrays.items()})
    theirs.load_state_dict({k: torch.tensor(a) for k, a in arrays.items()})


def _random_state(model, rng, step):
    """New values for every parameter and buffer, as training would leave them (the counter
    grows by a few batches)."""
    state = {}
    for k, v in model.state_dict().items():
        a = v.numpy()
        state[k] = (np.array(7 * step + 3, np.int64) if a.dtype == np.int64 else
                    rng.normal(size=a.shape) + (1.5 if k.endswith("running_var") else 0.0))
    return state


def _assert_same_state(ours, theirs, rtol=1e-12):
    mine = {k: v.numpy() for k, v in ours.state_dict().items()}
    other = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    assert list(mine) == list(other)
    for k in mine:
        assert mine[k].dtype == other[k].dtype, k
        np.testing.assert_allclose(mine[k], other[k], rtol=rtol, atol=1e-14, err_msg=k)


AVERAGES = {
    "swa (default)": ({}, {}),
    "swa avg_fn": (dict(avg_fn=SWA.get_swa_avg_fn()), dict(avg_fn=TSWA.get_swa_avg_fn())),
    "ema multi_avg_fn": (dict(multi_avg_fn=SWA.get_ema_multi_avg_fn(0.9)),
                         dict(multi_avg_fn=TSWA.get_ema_multi_avg_fn(0.9))),
    "ema avg_fn": (dict(avg_fn=SWA.get_ema_avg_fn(0.7)), dict(avg_fn=TSWA.get_ema_avg_fn(0.7))),
}


@pytest.mark.parametrize("use_buffers", [False, True])
@pytest.mark.parametrize("average", list(AVERAGES))
def test_averaged_model_matches_torch_on_the_same_weights(average, use_buffers):
    ours_kw, theirs_kw = AVERAGES[average]
    model, tmodel = _pair()
    avg = SWA.AveragedModel(model, use_buffers=use_buffers, **ours_kw)
    tavg = TSWA.AveragedModel(tmodel, use_buffers=use_buffers, **theirs_kw)
    rng = np.random.default_rng(0)
    for step in range(5):
        _load(model, tmodel, _random_state(model, rng, step))
        avg.update_parameters(model)
        tavg.update_parameters(tmodel)
        _assert_same_state(avg, tavg)
    assert int(avg.n_averaged.item()) == 5
    # the average differs from the last weights (not a copy), and forward runs the average
    last = model[0].weight.numpy()
    assert not np.allclose(avg.module[0].weight.numpy(), last)
    x = rng.normal(size=(6, 3))
    avg.eval(), tavg.eval()
    np.testing.assert_allclose(avg(tl.Tensor(x, dtype=tl.float64)).numpy(),
                               tavg(torch.tensor(x)).detach().numpy(), rtol=1e-12)


def test_default_average_is_the_mean_of_the_weights_and_written_in_place():
    model = nn.Linear(2, 2).double()
    avg = SWA.AveragedModel(model)
    weight = avg.module.weight
    seen = []
    for step in range(4):
        with tl.no_grad():
            model.weight.copy_(tl.Tensor(np.full((2, 2), float(step ** 2)), dtype=tl.float64))
        seen.append(step ** 2)
        version = weight.version
        avg.update_parameters(model)
        assert avg.module.weight is weight and weight.version > version  # in place, counted
        np.testing.assert_allclose(weight.numpy(), np.mean(seen), rtol=1e-15)
    assert avg.module is not model and avg.module.weight is not model.weight
    # PyTorch's keys and order: a module's own buffers, then its children's entries
    assert list(avg.state_dict()) == list(TSWA.AveragedModel(torch.nn.Linear(2, 2)).state_dict())
    assert list(avg.state_dict()) == ["n_averaged", "module.weight", "module.bias"]


def test_averaged_model_refuses_what_it_cannot_average():
    model = nn.Linear(2, 3)
    with pytest.raises(ValueError, match="AveragedModel: give avg_fn or multi_avg_fn"):
        SWA.AveragedModel(model, avg_fn=SWA.get_swa_avg_fn(),
                          multi_avg_fn=SWA.get_swa_multi_avg_fn())
    with pytest.raises(TypeError, match="AveragedModel: expected a Module"):
        SWA.AveragedModel(lambda x: x)
    avg = SWA.AveragedModel(model)
    with pytest.raises(ValueError, match=r"update_parameters: parameters number 0 has shape "
                                         r"\(2, 2\) in the model, \(3, 2\)"):
        avg.update_parameters(nn.Linear(2, 2))
    assert int(avg.n_averaged.item()) == 0
    with pytest.raises(ValueError, match=r"get_ema_multi_avg_fn: decay must be a number in "
                                         r"\[0, 1\], got 1.5"):
        SWA.get_ema_multi_avg_fn(1.5)


LRS = (0.1, 0.03)


def _optimisers():
    ours = optim.SGD([{"params": [nn.Parameter(tl.zeros(2))], "lr": lr} for lr in LRS],
                     lr=LRS[0], momentum=0.9)
    theirs = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": lr}
                              for lr in LRS], lr=LRS[0], momentum=0.9)
    return ours, theirs


def _lrs(opt, schedulers, switch, steps):
    """Group lrs before each step: `schedulers[0]` steps until `switch`, then SWALR
    (`schedulers[1]`), as in an SWA run."""
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t in range(steps):
            rows.append([g["lr"] for g in opt.param_groups])
            opt.step()
            (schedulers[1] if t >= switch else schedulers[0]).step()
    return np.array(rows)


@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("anneal_epochs", [0, 1, 4, 10])
def test_swalr_matches_torch(strategy, anneal_epochs):
    rows = []
    for lib, (make_sched, make_swalr) in {
        "ours": (lambda o: S.CosineAnnealingLR(o, T_max=20),
                 lambda o: SWA.SWALR(o, [0.02, 0.005], anneal_epochs, strategy)),
        "torch": (lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20),
                  lambda o: TSWA.SWALR(o, [0.02, 0.005], anneal_epochs, strategy)),
    }.items():
        opt = _optimisers()[0 if lib == "ours" else 1]
        # SWALR is built at the start, as in PyTorch's recipe: its initial step leaves the lr
        # as it is (its first step is at progress 0), and the cosine takes over first.
        sched = make_sched(opt)
        swalr = make_swalr(opt)
        rows.append(_lrs(opt, (sched, swalr), switch=6, steps=25))
    np.testing.assert_allclose(rows[0], rows[1], rtol=1e-13, atol=0)
    # it ends at swa_lr (after the anneal), and the anneal passes between the two
    np.testing.assert_allclose(rows[0][-1], [0.02, 0.005], rtol=1e-12)
    assert len(set(rows[0][:, 0].round(12))) > 6


def test_swalr_alone_and_after_a_hand_made_lr_change_matches_torch():
    out = []
    for lib in ("ours", "torch"):
        opt = _optimisers()[0 if lib == "ours" else 1]
        sched = SWA.SWALR(opt, 0.5, anneal_epochs=5, anneal_strategy="linear") if lib == "ours" \
            else TSWA.SWALR(opt, 0.5, anneal_epochs=5, anneal_strategy="linear")
        rows = []
        for t in range(9):
            if t == 2:
                for g in opt.param_groups:
                    g["lr"] *= 3  # chainable: the anneal carries on from the new lr
            rows.append([g["lr"] for g in opt.param_groups] + sched.get_last_lr())
            opt.step()
            sched.step()
        out.append(np.array(rows))
    np.testing.assert_allclose(out[0], out[1], rtol=1e-13)


def test_swalr_checks_its_arguments_and_round_trips_its_state():
    opt = _optimisers()[0]
    with pytest.raises(ValueError, match="SWALR: anneal_strategy must be 'cos' or 'linear'"):
        SWA.SWALR(opt, 0.1, anneal_strategy="step")
    with pytest.raises(ValueError, match="SWALR: anneal_epochs must be an int >= 0, got -1"):
        SWA.SWALR(opt, 0.1, anneal_epochs=-1)
    with pytest.raises(ValueError, match=r"SWALR: expected one swa_lr or 2 .*got 3"):
        SWA.SWALR(opt, [0.1, 0.1, 0.1])
    sched = SWA.SWALR(opt, 0.01, anneal_epochs=3)
    for _ in range(2):
        sched.step()
    state = sched.state_dict()
    again = SWA.SWALR(_optimisers()[0], 0.01, anneal_epochs=3)
    again.load_state_dict(state)
    assert again.state_dict() == state


def _bn_pair():
    """A conv + BN2d + linear + BN1d net in both libraries (float64, same weights)."""
    ours = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3, momentum=0.3),
                         nn.ReLU(), nn.Flatten(), nn.Linear(48, 4), nn.BatchNorm1d(4))
    ours.double()
    theirs = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3, padding=1),
                                 torch.nn.BatchNorm2d(3, momentum=0.3), torch.nn.ReLU(),
                                 torch.nn.Flatten(), torch.nn.Linear(48, 4),
                                 torch.nn.BatchNorm1d(4)).double()
    _load(ours, theirs, {k: v.numpy() for k, v in ours.state_dict().items()})
    return ours, theirs


@pytest.mark.parametrize("training", [True, False])
def test_update_bn_matches_torch(training):
    model, tmodel = _bn_pair()
    rng = np.random.default_rng(1)
    # running statistics far from the data's, so a reset that did not happen would show
    stale = {k: (np.full(v.shape, 5.0) if "running" in k else np.array(10, np.int64)
                 if "num_batches" in k else v.numpy()) for k, v in model.state_dict().items()}
    _load(model, tmodel, stale)
    batches = [rng.normal(2.0, 3.0, size=(n, 2, 4, 4)) for n in (5, 3, 8)]
    ours_loader = [(tl.Tensor(x, dtype=tl.float64), tl.Tensor(np.zeros(len(x), np.int64)))
                   for x in batches]
    theirs_loader = [(torch.tensor(x), torch.zeros(len(x))) for x in batches]
    model.train(training), tmodel.train(training)
    other = copy.deepcopy(model)
    SWA.update_bn(ours_loader, model)
    TSWA.update_bn(theirs_loader, tmodel)
    _assert_same_state(model, tmodel, rtol=1e-12)
    assert model.training is training and model[1].training is training
    assert model[1].momentum == 0.3 and model[5].momentum == 0.1  # momenta put back
    assert int(model[1].num_batches_tracked.item()) == 3
    # an input-only loader (tensors, not pairs) gives the same statistics
    SWA.update_bn([x for x, _ in ours_loader], other)
    np.testing.assert_array_equal(other[1].running_var.numpy(), model[1].running_var.numpy())


def test_update_bn_after_averaging_gives_the_averaged_model_its_own_statistics():
    model, tmodel = _bn_pair()
    avg, tavg = SWA.AveragedModel(model), TSWA.AveragedModel(tmodel)
    rng = np.random.default_rng(2)
    for step in range(3):
        _load(model, tmodel, _random_state(model, rng, step))
        avg.update_parameters(model)
        tavg.update_parameters(tmodel)
    x = rng.normal(size=(6, 2, 4, 4))
    SWA.update_bn([tl.Tensor(x, dtype=tl.float64)], avg)
    TSWA.update_bn([torch.tensor(x)], tavg)
    _assert_same_state(avg, tavg)


def test_an_optimizer_saved_under_swalr_loads_into_a_fresh_one():
    """SWALR writes swa_lr into the param groups, as torch does; a fresh optimiser (no SWALR
    yet) loads that state, as torch's does, instead of calling it a foreign group."""
    from tinygrad_lite.optim.swa_utils import SWALR
    w = tl.Tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    SWALR(opt, swa_lr=0.05, anneal_epochs=2)
    fresh = optim.SGD([tl.Tensor(np.ones(3), requires_grad=True)], lr=0.3, momentum=0.9)
    fresh.load_state_dict(opt.state_dict())
    assert fresh.param_groups[0]["swa_lr"] == 0.05
    assert fresh.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
