"""Differential tests against PyTorch (CPU, float64): every optimiser rule with every switch it
has (momentum, dampening, Nesterov, weight decay, maximize, centred RMSprop, AMSGrad, ...),
parameter groups with their own hyperparameters, a state_dict round trip in the middle of
training, and L-BFGS with and without the strong-Wolfe line search. The learning-rate
schedules are compared in tests/optim/test_lr_scheduler_torch.py."""
import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import nn, optim

torch = pytest.importorskip("torch", reason="the differential tests need PyTorch (CPU)")
F64 = tl.float64


def t64(a):
    return tl.Tensor(np.asarray(a, dtype=np.float64), dtype=F64)


RULES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=1e-2)),
    ("SGD", dict(lr=0.1, momentum=0.5, weight_decay=0.1, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.2)),
    ("Adagrad", dict(lr=0.1, eps=1e-3, maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, centered=True, eps=1e-4)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.9), amsgrad=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, eps=1e-3, maximize=True, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, amsgrad=True, maximize=True, weight_decay=0.3)),
]


def _pairs(rng, shapes):
    w0 = [rng.standard_normal(s) for s in shapes]
    ours = [nn.Parameter(t64(w)) for w in w0]
    theirs = [torch.tensor(w, requires_grad=True) for w in w0]
    return ours, theirs


def _feed(ours, theirs, rng):
    for p, q in zip(ours, theirs):
        g = rng.standard_normal(tuple(p.shape))
        p.grad, q.grad = t64(g), torch.tensor(g)


def _assert_same(ours, theirs, what, tol=1e-12):
    for i, (p, q) in enumerate(zip(ours, theirs)):
        diff = np.abs(p.numpy() - q.detach().numpy()).max()
        assert diff <= tol, f"{what}: parameter {i} differs by {diff:.3g}"


@pytest.mark.parametrize("name,kw", RULES, ids=[f"{n}({', '.join(k)})" for n, k in RULES])
def test_rule_matches_torch(name, kw):
    rng = np.random.default_rng(0)
    ours, theirs = _pairs(rng, [(3, 4), (5,)])
    opt, topt = getattr(optim, name)(ours, **kw), getattr(torch.optim, name)(theirs, **kw)
    for step in range(6):
        _feed(ours, theirs, rng)
        opt.step()
        topt.step()
        _assert_same(ours, theirs, f"step {step}")


@pytest.mark.parametrize("name,kw,group_kw", [
    ("SGD", dict(lr=0.1, momentum=0.9), dict(lr=0.01, nesterov=True, weight_decay=0.1)),
    ("Adam", dict(lr=0.01), dict(betas=(0.5, 0.6), amsgrad=True)),
    ("RMSprop", dict(lr=0.01), dict(centered=True, momentum=0.3)),
    ("Adagrad", dict(lr=0.1), dict(lr_decay=0.1)),
    ("AdamW", dict(lr=0.01), dict(weight_decay=0.0))], ids=["SGD", "Adam", "RMSprop",
                                                            "Adagrad", "AdamW"])
def test_param_groups_and_state_dict(name, kw, group_kw):
    """Two groups with their own hyperparameters, a third added later with add_param_group,
    and the optimiser rebuilt from its state_dict halfway: the same trajectory as torch."""
    rng = np.random.default_rng(1)
    ours, theirs = _pairs(rng, [(2, 3), (4,), (3,)])
    opt = getattr(optim, name)([{"params": ours[:1]}, {"params": ours[1:2], **group_kw}], **kw)
    topt = getattr(torch.optim, name)([{"params": theirs[:1]},
                                       {"params": theirs[1:2], **group_kw}], **kw)
    for step in range(6):
        if step == 2:
            opt.add_param_group({"params": ours[2:], "lr": 0.05})
            topt.add_param_group({"params": theirs[2:], "lr": 0.05})
        if step == 4:
            state = opt.state_dict()
            opt = getattr(optim, name)([{"params": ours[:1]}, {"params": ours[1:2]},
                                        {"params": ours[2:]}], **kw)
            opt.load_state_dict(state)
        _feed(ours, theirs, rng)
        opt.step()
        topt.step()
        _assert_same(ours, theirs, f"step {step}")


def test_zero_grad_and_frozen_parameters():
    """A parameter without a gradient is skipped by both; zero_grad() sets grads to None."""
    rng = np.random.default_rng(2)
    ours, theirs = _pairs(rng, [(3,), (3,)])
    opt = optim.Adam(ours, lr=0.1, weight_decay=0.1)
    topt = torch.optim.Adam(theirs, lr=0.1, weight_decay=0.1)
    for step in range(3):
        g = rng.standard_normal(3)
        ours[0].grad, theirs[0].grad = t64(g), torch.tensor(g)
        opt.step()
        topt.step()
        _assert_same(ours, theirs, f"step {step}")
        opt.zero_grad()
        topt.zero_grad()
        assert ours[0].grad is None and theirs[0].grad is None


def _lbfgs_path(lib, search, problem, steps=3, **kw):
    if problem == "rosenbrock":
        start = np.array([-1.5, 2.0])
    else:
        start = np.linspace(-1, 1, 6)
    if lib == "tl":
        p = nn.Parameter(t64(start))
        opt = optim.LBFGS([p], line_search_fn=search, **kw)
    else:
        p = torch.tensor(start, requires_grad=True)
        opt = torch.optim.LBFGS([p], line_search_fn=search, **kw)
    A = np.arange(36.0).reshape(6, 6) % 7 / 7 + np.eye(6)
    b = np.arange(6.0)
    A_, b_ = (t64(A), t64(b)) if lib == "tl" else (torch.tensor(A), torch.tensor(b))

    def closure():
        opt.zero_grad()
        if problem == "rosenbrock":
            loss = (1 - p[0]) ** 2 + 100 * (p[1] - p[0] * p[0]) ** 2
        else:  # a least-squares problem plus a quartic term
            r = A_ @ p - b_
            loss = (r * r).sum() + (p * p * p * p).sum() * 0.1
        loss.backward()
        return loss
    path, losses = [], []
    for _ in range(steps):
        losses.append(opt.step(closure).item())
        path.append(p.detach().numpy().copy())
    return np.array(path), np.array(losses)


@pytest.mark.parametrize("search", [None, "strong_wolfe"])
@pytest.mark.parametrize("problem,kw", [
    ("rosenbrock", dict(history_size=10)),
    ("quartic", dict(history_size=3, max_iter=5, tolerance_grad=1e-9)),
    ("quartic", dict(history_size=2, max_iter=4, max_eval=6, lr=0.5))],
    ids=["rosenbrock", "quartic-short-history", "quartic-max-eval"])
def test_lbfgs(search, problem, kw):
    kw = dict(kw)
    kw.setdefault("lr", 1 if search else 0.1)
    path, losses = _lbfgs_path("tl", search, problem, **kw)
    tpath, tlosses = _lbfgs_path("torch", search, problem, **kw)
    assert np.abs(losses - tlosses).max() <= 1e-9 * max(1.0, np.abs(tlosses).max())
    assert np.abs(path - tpath).max() <= 1e-9
