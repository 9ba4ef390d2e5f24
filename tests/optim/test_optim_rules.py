"""The update rules (SGD, Adagrad, RMSprop, Adam, AdamW): hand-checked first steps, a plain
NumPy loop of PyTorch's algorithm over several steps with every switch (hypothesis draws the
switches), the same numbers on cpu and on the CUDA simulator (one launch over several
blocks), float32 and the parallel kernel, convergence on a convex quadratic, Adam's first step,
AdaGrad's decaying step, and step() leaving .grad alone."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite as tl
from helpers import device_param
from tinygrad_lite import nn, optim
from tinygrad_lite.kernels.cpu.jit import PARALLEL_MIN_SIZE


# ----- PyTorch's algorithms as plain NumPy loops (torch/optim/*.py, single-tensor paths) -----
def ref_sgd(theta, grads, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
            nesterov=False, maximize=False):
    theta, buf = theta.copy(), None
    for g in grads:
        g = -g if maximize else g.copy()
        if weight_decay:
            g = g + weight_decay * theta
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        theta = theta - lr * g
    return theta


def ref_adagrad(theta, grads, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                initial_accumulator_value=0.0, eps=1e-10, maximize=False):
    theta = theta.copy()
    s = np.full_like(theta, initial_accumulator_value)
    for t, g in enumerate(grads, 1):
        g = -g if maximize else g
        if weight_decay:
            g = g + weight_decay * theta
        clr = lr / (1 + (t - 1) * lr_decay)
        s = s + g * g
        theta = theta - clr * g / (np.sqrt(s) + eps)
    return theta


def ref_rmsprop(theta, grads, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                centered=False, maximize=False):
    theta = theta.copy()
    v, m, b = np.zeros_like(theta), np.zeros_like(theta), np.zeros_like(theta)
    for g in grads:
        g = -g if maximize else g
        if weight_decay:
            g = g + weight_decay * theta
        v = alpha * v + (1 - alpha) * g * g
        if centered:
            m = alpha * m + (1 - alpha) * g
            avg = np.sqrt(v - m * m) + eps
        else:
            avg = np.sqrt(v) + eps
        if momentum > 0:
            b = momentum * b + g / avg
            theta = theta - lr * b
        else:
            theta = theta - lr * g / avg
    return theta


def ref_adam(theta, grads, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
             amsgrad=False, maximize=False, decoupled=False):
    theta = theta.copy()
    b1, b2 = betas
    m, v, vmax = np.zeros_like(theta), np.zeros_like(theta), np.zeros_like(theta)
    for t, g in enumerate(grads, 1):
        g = -g if maximize else g
        if decoupled:
            theta = theta * (1 - lr * weight_decay)
        elif weight_decay:
            g = g + weight_decay * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if amsgrad:
            vmax = np.maximum(vmax, v)
        denom = np.sqrt(vmax if amsgrad else v) / math.sqrt(1 - b2 ** t) + eps
        theta = theta - lr / (1 - b1 ** t) * m / denom
    return theta


def ref_adamw(theta, grads, weight_decay=1e-2, **kw):
    return ref_adam(theta, grads, weight_decay=weight_decay, decoupled=True, **kw)


SWITCHES = {
    "SGD": (optim.SGD, ref_sgd, st.fixed_dictionaries({
        "lr": st.sampled_from([0.1, 0.01]), "momentum": st.sampled_from([0.0, 0.9]),
        "weight_decay": st.sampled_from([0.0, 0.1]), "maximize": st.booleans(),
        # Nesterov needs momentum and no dampening: draw one of the two, used only with momentum
        "extra": st.sampled_from([{"nesterov": True}, {"dampening": 0.5}])}).map(
        lambda d: {**{k: v for k, v in d.items() if k != "extra"},
                   **(d["extra"] if d["momentum"] else {})})),
    "Adagrad": (optim.Adagrad, ref_adagrad, st.fixed_dictionaries({
        "lr": st.sampled_from([0.1, 0.5]), "lr_decay": st.sampled_from([0.0, 0.3]),
        "weight_decay": st.sampled_from([0.0, 0.1]),
        "initial_accumulator_value": st.sampled_from([0.0, 0.5]), "maximize": st.booleans()})),
    "RMSprop": (optim.RMSprop, ref_rmsprop, st.fixed_dictionaries({
        "lr": st.sampled_from([0.01, 0.1]), "alpha": st.sampled_from([0.99, 0.5]),
        "weight_decay": st.sampled_from([0.0, 0.1]), "momentum": st.sampled_from([0.0, 0.9]),
        "centered": st.booleans(), "maximize": st.booleans()})),
    "Adam": (optim.Adam, ref_adam, st.fixed_dictionaries({
        "lr": st.sampled_from([1e-3, 0.1]), "betas": st.sampled_from([(0.9, 0.999),
                                                                      (0.5, 0.9)]),
        "weight_decay": st.sampled_from([0.0, 0.1]), "amsgrad": st.booleans(),
        "maximize": st.booleans()})),
    "AdamW": (optim.AdamW, ref_adamw, st.fixed_dictionaries({
        "lr": st.sampled_from([1e-3, 0.1]), "weight_decay": st.sampled_from([0.0, 0.1]),
        "amsgrad": st.booleans(), "maximize": st.booleans()})),
}


def run_steps(cls, kw, theta, grads, device, dtype=tl.float64):
    """theta after one step per gradient, with each gradient set on .grad by hand."""
    p = nn.Parameter(tl.tensor(theta, dtype=dtype, device=device))
    opt = cls([p], **kw)
    for g in grads:
        p.grad = tl.tensor(g, dtype=dtype, device=device)
        opt.step()
    return p.numpy()


def draws(seed, n, steps=4):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n), [rng.standard_normal(n) for _ in range(steps)]


@pytest.mark.parametrize("rule", sorted(SWITCHES))
@given(data=st.data())
def test_rule_matches_reference_loop_cpu(rule, data):
    cls, ref, switches = SWITCHES[rule]
    kw = data.draw(switches)
    theta, grads = draws(data.draw(st.integers(0, 100)), data.draw(st.integers(1, 7)))
    np.testing.assert_allclose(run_steps(cls, kw, theta, grads, "cpu"),
                               ref(theta, grads, **kw), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("rule", sorted(SWITCHES))
def test_rule_on_cuda_matches_cpu_and_reference(rule):
    """Every switch on, over 300 elements: the launch spans two blocks of 256 threads."""
    cls, ref, _ = SWITCHES[rule]
    kw = {"SGD": dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
          "Adagrad": dict(lr=0.1, lr_decay=0.1, weight_decay=0.1,
                          initial_accumulator_value=0.1),
          "RMSprop": dict(lr=0.01, momentum=0.5, centered=True, weight_decay=0.1),
          "Adam": dict(lr=0.1, amsgrad=True, weight_decay=0.1),
          "AdamW": dict(lr=0.1, amsgrad=True, maximize=True)}[rule]
    theta, grads = draws(3, 300, steps=2)
    on_cuda = run_steps(cls, kw, theta, grads, "cuda")
    np.testing.assert_allclose(on_cuda, run_steps(cls, kw, theta, grads, "cpu"), rtol=1e-12)
    np.testing.assert_allclose(on_cuda, ref(theta, grads, **kw), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("rule", sorted(SWITCHES))
def test_float32_and_the_parallel_kernel(rule):
    """float32 parameters over more elements than the parallel threshold: the state and the
    parameter round to float32 once per step, so the reference in float64 agrees to ~1e-6."""
    cls, ref, _ = SWITCHES[rule]
    theta, grads = draws(5, PARALLEL_MIN_SIZE + 3, steps=2)
    theta, grads = theta.astype(np.float32), [g.astype(np.float32) for g in grads]
    out = run_steps(cls, dict(lr=0.01), theta, grads, "cpu", tl.float32)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref(theta.astype(np.float64),
                                        [g.astype(np.float64) for g in grads], lr=0.01),
                               rtol=1e-5, atol=1e-6)


# ----- hand-checked steps -----
def test_sgd_momentum_by_hand():
    # theta 1, grads 1 then 1; momentum 0.9, lr 0.1: b1 = 1, theta 0.9; b2 = 1.9, theta 0.71
    assert run_steps(optim.SGD, dict(lr=0.1, momentum=0.9), np.array([1.0]),
                     [np.array([1.0])] * 2, "cpu")[0] == pytest.approx(0.71)
    # Nesterov: step 1 moves g + 0.9 * b1 = 1.9 -> 0.81; step 2: b2 = 1.9, g + 0.9 * 1.9 = 2.71
    assert run_steps(optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True), np.array([1.0]),
                     [np.array([1.0])] * 2, "cpu")[0] == pytest.approx(1 - 0.19 - 0.271)
    # dampening 0.5 leaves the first buffer undamped: b2 = 0.9 + 0.5 = 1.4
    assert run_steps(optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.5), np.array([1.0]),
                     [np.array([1.0])] * 2, "cpu")[0] == pytest.approx(1 - 0.1 - 0.14)


def test_adagrad_rmsprop_by_hand():
    # Adagrad: s = 4, step = lr * 2 / 2 = lr; then s = 4 + 4, step = lr * 2 / sqrt(8)
    out = run_steps(optim.Adagrad, dict(lr=0.5), np.array([0.0]), [np.array([2.0])] * 2, "cpu")
    assert out[0] == pytest.approx(-0.5 - 0.5 * 2 / math.sqrt(8))
    # RMSprop alpha 0.75: v = 0.25 * 4 = 1, step = lr * 2 / 1
    out = run_steps(optim.RMSprop, dict(lr=0.1, alpha=0.75, eps=0.0), np.array([0.0]),
                    [np.array([2.0])], "cpu")
    assert out[0] == pytest.approx(-0.2)
    # centred: m = 0.25 * 2 = 0.5, v - m^2 = 0.75
    out = run_steps(optim.RMSprop, dict(lr=0.1, alpha=0.75, eps=0.0, centered=True),
                    np.array([0.0]), [np.array([2.0])], "cpu")
    assert out[0] == pytest.approx(-0.2 / math.sqrt(0.75))


def test_adam_first_step_is_about_lr_whatever_the_gradient_scale():
    theta = np.zeros(4)
    grads = [np.array([1e-4, -3.0, 50.0, -1e3])]
    out = run_steps(optim.Adam, dict(lr=0.01), theta, grads, "cpu")
    np.testing.assert_allclose(out, -0.01 * np.sign(grads[0]), rtol=1e-3)


def test_adamw_decay_is_decoupled():
    # zero gradient: Adam's L2 term moves theta through the moments (a step of ~lr), AdamW's
    # decay only shrinks it by (1 - lr * wd)
    theta, grads = np.array([2.0]), [np.array([0.0])]
    assert run_steps(optim.AdamW, dict(lr=0.1, weight_decay=0.5), theta, grads, "cpu")[0] == \
        pytest.approx(2.0 * (1 - 0.05))
    assert run_steps(optim.Adam, dict(lr=0.1, weight_decay=0.5), theta, grads, "cpu")[0] == \
        pytest.approx(1.9, rel=1e-6)


def test_adagrad_effective_step_decays():
    p = nn.Parameter(tl.tensor(np.zeros(1), dtype=tl.float64))
    opt, moves, last = optim.Adagrad([p], lr=1.0), [], 0.0
    for _ in range(6):
        p.grad = tl.tensor(np.ones(1), dtype=tl.float64)
        opt.step()
        now = p.numpy()[0]
        moves.append(last - now)
        last = now
    np.testing.assert_allclose(moves, [1 / math.sqrt(t) for t in range(1, 7)], rtol=1e-9)
    assert all(a > b for a, b in zip(moves, moves[1:]))


# ----- behaviour on a problem -----
@pytest.mark.parametrize("cls, kw", [
    (optim.SGD, dict(lr=0.05)), (optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    (optim.Adagrad, dict(lr=0.5)), (optim.RMSprop, dict(lr=0.05)),
    (optim.Adam, dict(lr=0.1)), (optim.AdamW, dict(lr=0.1, weight_decay=0.0))])
def test_converges_on_a_convex_quadratic(cls, kw):
    A = np.array([[3.0, 0.5], [0.5, 1.0]])
    b = np.array([1.0, -2.0])
    x_star = np.linalg.solve(A, b)
    At, bt = tl.tensor(A), tl.tensor(b)
    x = nn.Parameter(tl.tensor(np.array([3.0, 3.0])))
    opt = cls([x], **kw)
    losses = []
    for _ in range(300):
        opt.zero_grad()
        loss = 0.5 * (x * (At @ x)).sum() - (bt * x).sum()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[20] < losses[0]
    np.testing.assert_allclose(x.numpy(), x_star, atol=2e-2)


@device_param
@pytest.mark.parametrize("cls", [optim.SGD, optim.Adagrad, optim.RMSprop, optim.Adam])
def test_step_never_modifies_grad_and_bumps_the_version(cls, device):
    p = nn.Parameter(tl.tensor(np.array([1.0, -1.0]), dtype=tl.float64, device=device))
    g = np.array([0.5, 2.0])
    p.grad = tl.tensor(g, dtype=tl.float64, device=device)
    grad_before, version = p.grad, p.version
    opt = cls([p], lr=0.1, weight_decay=0.3)
    opt.step()
    assert p.grad is grad_before and p.version == version + 1
    np.testing.assert_array_equal(p.grad.numpy(), g)
    assert not np.array_equal(p.numpy(), [1.0, -1.0])


def test_a_graph_that_saved_the_parameter_sees_the_update_as_an_error():
    w = nn.Parameter(tl.tensor(np.array([1.0, 2.0])))
    out = (w * w).sum()  # Mul saves w
    w.grad = tl.tensor(np.ones(2))
    optim.SGD([w], lr=0.1).step()
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        out.backward()
