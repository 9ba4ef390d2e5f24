"""Losses: values against NumPy references written from PyTorch's formulas, gradients against
centred differences (every loss, every reduction, cpu and cuda), cross-entropy's options
(probability targets, label smoothing, class weights, ignore_index, extra dims), stability at
logits of +-1e4, and the errors.

Hypothesis draws the case (reduction, shape, options) and a seed for the values; on cuda the
space is a few tiny cases, so hypothesis runs each once (the simulator runs kernels in Python)."""
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite as tl
from helpers import device_param
from tinygrad_lite.ops import loss as L

REDUCTIONS = ["mean", "sum", "none"]


def reduce_ref(loss, reduction):
    return loss if reduction == "none" else (loss.sum() if reduction == "sum" else loss.mean())


# ----- NumPy references (PyTorch's formulas, written independently of ops/loss.py) -----
def log_softmax_ref(x):
    shifted = x - x.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def cross_entropy_ref(x, target, weight=None, ignore_index=-100, reduction="mean",
                      label_smoothing=0.0):
    """torch's cross_entropy: nll_loss of log_softmax, plus the smoothing term, each
    normalised as aten/native/LossNLL.cpp does."""
    C = x.shape[1]
    lp = log_softmax_ref(x)
    w = np.ones(C) if weight is None else weight
    w_b = w.reshape((1, C) + (1,) * (x.ndim - 2))
    if np.issubdtype(target.dtype, np.floating):
        t = target * (1 - label_smoothing) + label_smoothing / C
        loss = -(lp * t * w_b).sum(axis=1)
        return loss.sum() / (x.size / C) if reduction == "mean" else reduce_ref(loss, reduction)
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    picked = np.take_along_axis(lp, safe[:, None], axis=1)[:, 0]
    wy = w[safe] * valid
    nll = -wy * picked
    smooth = -(lp * w_b).sum(axis=1) * valid
    if reduction == "mean":
        nll, smooth = nll.sum() / wy.sum(), smooth.sum() / wy.sum()
    elif reduction == "sum":
        nll, smooth = nll.sum(), smooth.sum()
    return (1 - label_smoothing) * nll + label_smoothing / C * smooth


def nll_loss_ref(lp, target, weight=None, ignore_index=-100, reduction="mean"):
    w = np.ones(lp.shape[1]) if weight is None else weight
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    wy = w[safe] * valid
    loss = -wy * np.take_along_axis(lp, safe[:, None], axis=1)[:, 0]
    return loss.sum() / wy.sum() if reduction == "mean" else reduce_ref(loss, reduction)


def bce_with_logits_ref(x, y, weight=None, pos_weight=None):
    """-w * (pw * y * log sigmoid(x) + (1 - y) * log(1 - sigmoid(x))), the logs by logaddexp."""
    pw = 1.0 if pos_weight is None else pos_weight
    loss = pw * y * np.logaddexp(0, -x) + (1 - y) * np.logaddexp(0, x)
    return loss * (1.0 if weight is None else weight)


def multi_margin_ref(x, y, p=1, margin=1.0, weight=None):
    N, C = x.shape
    loss = np.zeros(N)
    for n in range(N):
        for j in range(C):
            if j != y[n]:
                h = max(0.0, margin - x[n, y[n]] + x[n, j]) ** p
                loss[n] += (1.0 if weight is None else weight[y[n]]) * h / C
    return loss


ELEMENTWISE = {  # name -> (function, reference of (x, y), keyword)
    "mse_loss": (L.mse_loss, lambda x, y, k: (x - y) ** 2, {}),
    "l1_loss": (L.l1_loss, lambda x, y, k: np.abs(x - y), {}),
    "smooth_l1_loss": (L.smooth_l1_loss, lambda x, y, k: np.where(
        np.abs(x - y) < k["beta"], 0.5 * (x - y) ** 2 / k["beta"],
        np.abs(x - y) - 0.5 * k["beta"]), {"beta": 0.7}),
    "huber_loss": (L.huber_loss, lambda x, y, k: np.where(
        np.abs(x - y) < k["delta"], 0.5 * (x - y) ** 2,
        k["delta"] * (np.abs(x - y) - 0.5 * k["delta"])), {"delta": 1.3}),
    "binary_cross_entropy_with_logits": (L.binary_cross_entropy_with_logits,
                                         lambda x, y, k: bce_with_logits_ref(x, y), {}),
}


# ----- strategies -----
def case(device, shapes_cpu, shapes_cuda, reductions=REDUCTIONS):
    """(reduction, shape, seed): on cpu every reduction with every listed shape and many
    seeds; on cuda each reduction once (seed = its position, which also picks the options),
    paired with one of the tiny shapes in turn."""
    if device == "cpu":
        return st.tuples(st.sampled_from(REDUCTIONS), st.sampled_from(shapes_cpu),
                         st.integers(0, 2 ** 16))
    return st.sampled_from([(r, shapes_cuda[i % len(shapes_cuda)], i)
                            for i, r in enumerate(reductions)])


def check(fn, ref, arrays, device):
    """Value against the reference, then the gradient of every float input (float arrays
    become float64 tensors, integer labels int64 ones)."""
    inputs = [tl.tensor(a, dtype=tl.float64 if a.dtype.kind == "f" else tl.int64,
                        device=device) for a in arrays]
    np.testing.assert_allclose(fn(*inputs).numpy(), ref, rtol=1e-10, atol=1e-12)
    result = tl.gradcheck(fn, inputs)
    assert result, result


def labels(rng, shape, C, ignore_index=None):
    y = rng.integers(0, C, shape)
    if ignore_index is not None:  # ignore about a third, never all
        y = np.where(rng.random(shape) < 0.35, ignore_index, y)
        y.flat[0] = 1 if ignore_index == 0 else 0
    return y


# ----- cross-entropy -----
@device_param
@given(data=st.data())
def test_cross_entropy_with_labels(device, data):
    reduction, (N, C), seed = data.draw(case(device, [(1, 2), (2, 3), (3, 4), (4, 3)],
                                             [(2, 2), (1, 2), (1, 3)]))
    rng = np.random.default_rng(seed)
    # options vary with the seed on cpu; on cuda the three cases cover them all
    smoothing = [0.0, 0.2, 0.1][seed % 3]
    weight = rng.uniform(0.5, 2.0, C) if seed % 2 == 0 else None
    ignore = [None, 1, -100][seed % 3]
    x, y = rng.standard_normal((N, C)) * 2, labels(rng, (N,), C, ignore)
    kw = dict(reduction=reduction, label_smoothing=smoothing,
              ignore_index=-100 if ignore is None else ignore)
    w = None if weight is None else tl.tensor(weight, dtype=tl.float64, device=device)
    check(lambda a, t: L.cross_entropy(a, t, weight=w, **kw),
          cross_entropy_ref(x, y, weight=weight, **kw), [x, y], device)


@device_param
@given(data=st.data())
def test_cross_entropy_with_probability_targets(device, data):
    reduction, (N, C), seed = data.draw(case(device, [(1, 2), (2, 3), (3, 4)],
                                             [(1, 2)]))
    rng = np.random.default_rng(seed)
    x, t = rng.standard_normal((N, C)) * 2, rng.dirichlet(np.ones(C), N)
    smoothing = [0.0, 0.15][seed % 2]
    weight = rng.uniform(0.5, 2.0, C) if seed % 3 != 1 else None
    w = None if weight is None else tl.tensor(weight, dtype=tl.float64, device=device)
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    # both logits and target are checked: d/dt = -(1 - eps) * w * log_softmax(x)
    check(lambda a, b: L.cross_entropy(a, b, weight=w, **kw),
          cross_entropy_ref(x, t, weight=weight, **kw), [x, t], device)


@device_param
@given(data=st.data())
def test_cross_entropy_over_extra_dims(device, data):
    """(N, C, d1, d2) logits with (N, d1, d2) labels, as for segmentation."""
    reduction, shape, seed = data.draw(case(device, [(2, 3, 2), (1, 2, 2, 2), (2, 2, 1, 3)],
                                            [(1, 2, 1, 2)], reductions=["mean"]))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    y = labels(rng, shape[:1] + shape[2:], shape[1], ignore_index=0 if seed % 2 else None)
    weight = rng.uniform(0.5, 2.0, shape[1])
    w = tl.tensor(weight, dtype=tl.float64, device=device)
    kw = dict(reduction=reduction, label_smoothing=0.1, ignore_index=0 if seed % 2 else -100)
    check(lambda a, t: L.cross_entropy(a, t, weight=w, **kw),
          cross_entropy_ref(x, y, weight=weight, **kw), [x, y], device)
    t = rng.dirichlet(np.ones(shape[1]), shape[:1] + shape[2:]).transpose(
        (0, len(shape) - 1) + tuple(range(1, len(shape) - 1)))
    np.testing.assert_allclose(
        L.cross_entropy(tl.tensor(x, dtype=tl.float64, device=device),
                        tl.tensor(t, dtype=tl.float64, device=device), reduction=reduction
                        ).numpy(), cross_entropy_ref(x, t, reduction=reduction), rtol=1e-10)


@device_param
def test_cross_entropy_gradient_is_softmax_minus_smoothed_onehot(device):
    x = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    y = np.array([2, 1])
    logits = tl.tensor(x, dtype=tl.float64, device=device, requires_grad=True)
    L.cross_entropy(logits, tl.tensor(y, device=device), reduction="sum",
                    label_smoothing=0.3).backward()
    p = np.exp(log_softmax_ref(x))
    smoothed = 0.7 * np.eye(3)[y] + 0.3 / 3
    np.testing.assert_allclose(logits.grad.numpy(), p - smoothed, rtol=1e-12, atol=1e-15)


@device_param
def test_uniform_logits_give_log_c(device):
    for C in (2, 5):
        x = tl.zeros(3, C, dtype=tl.float64, device=device)
        y = tl.tensor([0, C - 1, 1], device=device)
        for smoothing in (0.0, 0.4):
            assert np.isclose(L.cross_entropy(x, y, label_smoothing=smoothing).item(),
                              np.log(C), rtol=1e-6)


@pytest.mark.parametrize("device, dtype", [("cpu", tl.float64), ("cuda", tl.float32)])
def test_cross_entropy_is_stable_for_huge_logits(device, dtype):
    """exp(1e4) overflows float64 as it does float32: only the shift by the row max keeps the
    loss finite. (float32 on the simulator: the same scalar math, no CPU compile.)"""
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [-1e4, 1e4, 1e4]])
    y = np.array([1, 0, 2])
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        logits = tl.tensor(x, dtype=dtype, device=device, requires_grad=True)
        loss = L.cross_entropy(logits, tl.tensor(y, device=device), reduction="none")
        loss.sum().backward()
        got, grad = loss.numpy(), logits.grad.numpy()
    assert np.all(np.isfinite(got)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(got, [2e4, np.log(3), np.log(2)], rtol=1e-6)
    np.testing.assert_allclose(grad, [[1, -1, 0], [-2 / 3, 1 / 3, 1 / 3], [0, 0.5, -0.5]],
                               atol=1e-6)


def test_cross_entropy_unbatched_and_label_device():
    x = np.array([0.5, -1.0, 2.0])
    got = L.cross_entropy(tl.tensor(x, dtype=tl.float64), tl.tensor(2))
    assert got.shape == () and np.isclose(got.item(), -log_softmax_ref(x[None])[0, 2])
    probs = L.cross_entropy(tl.tensor(x), tl.tensor([0.2, 0.3, 0.5], dtype=tl.float64),
                            reduction="none")
    assert probs.shape == ()
    with pytest.raises(RuntimeError, match="cross_entropy: expected target on"):
        L.cross_entropy(tl.zeros(2, 3, device="cuda"), tl.tensor([0, 1]))


# ----- nll_loss -----
@device_param
@given(data=st.data())
def test_nll_loss(device, data):
    reduction, (N, C), seed = data.draw(case(device, [(1, 2), (2, 3), (4, 3)], [(1, 2), (2, 2)]))
    rng = np.random.default_rng(seed)
    lp = log_softmax_ref(rng.standard_normal((N, C)))
    ignore = [None, 1][seed % 2]
    y = labels(rng, (N,), C, ignore)
    weight = rng.uniform(0.5, 2.0, C) if seed % 3 else None
    w = None if weight is None else tl.tensor(weight, dtype=tl.float64, device=device)
    kw = dict(reduction=reduction, ignore_index=-100 if ignore is None else ignore)
    check(lambda a, t: L.nll_loss(a, t, weight=w, **kw),
          nll_loss_ref(lp, y, weight=weight, **kw), [lp, y], device)


def test_nll_of_log_softmax_is_cross_entropy():
    rng = np.random.default_rng(1)
    x = tl.tensor(rng.standard_normal((4, 5)), dtype=tl.float64)
    y = tl.tensor([0, 4, 2, 2])
    np.testing.assert_allclose(L.nll_loss(x.log_softmax(1), y, reduction="none").numpy(),
                               L.cross_entropy(x, y, reduction="none").numpy(), rtol=1e-12)


# ----- the element-wise losses -----
@device_param
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
@given(data=st.data())
def test_elementwise_losses(device, name, data):
    fn, ref, kw = ELEMENTWISE[name]
    reduction, shape, seed = data.draw(case(device, [(3,), (2, 3), (1, 2, 2)], [(1,), (2,)]))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 2
    y = rng.random(shape) if name.startswith("binary") else rng.standard_normal(shape) * 2
    want = reduce_ref(ref(x, y, kw), reduction)
    if device == "cpu":  # the target's gradient too
        check(lambda a, b: fn(a, b, reduction=reduction, **kw), want, [x, y], device)
    else:  # the simulator is slow: the input's gradient only (the target's is -1 times it)
        target = tl.tensor(y, dtype=tl.float64, device=device)
        check(lambda a: fn(a, target, reduction=reduction, **kw), want, [x], device)


@device_param
@given(data=st.data())
def test_bce_with_logits_weights(device, data):
    # on cuda one case: the reductions are covered by test_elementwise_losses
    reduction, (N, C), seed = data.draw(case(device, [(2, 3), (3, 2)], [(1, 2)], ["sum"]))
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((N, C)) * 3, (rng.random((N, C)) < 0.5).astype(np.float64)
    weight, pos_weight = rng.uniform(0.5, 2, (N, 1)), rng.uniform(0.5, 3, C)
    w, pw = (tl.tensor(a, dtype=tl.float64, device=device) for a in (weight, pos_weight))
    check(lambda a: L.binary_cross_entropy_with_logits(a, tl.tensor(y, dtype=tl.float64,
                                                                     device=device),
                                                       w, reduction=reduction, pos_weight=pw),
          reduce_ref(bce_with_logits_ref(x, y, weight, pos_weight), reduction), [x], device)


@device_param
def test_bce_with_logits_is_stable_for_huge_logits(device):
    x = np.array([1e4, -1e4, 1e4, -1e4, 0.0])
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.5])
    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        logits = tl.tensor(x, device=device, requires_grad=True)
        loss = L.binary_cross_entropy_with_logits(logits, tl.tensor(y, device=device),
                                                  reduction="none")
        loss.sum().backward()
        got, grad = loss.numpy(), logits.grad.numpy()
    np.testing.assert_allclose(got, [0, 0, 1e4, 1e4, np.log(2)], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(grad, [0, 0, 1, -1, 0], atol=1e-6)  # sigmoid(x) - y


def test_smooth_l1_with_beta_zero_is_l1_and_huber_is_scaled_smooth_l1():
    rng = np.random.default_rng(2)
    x, y = (tl.tensor(rng.standard_normal(6), dtype=tl.float64) for _ in range(2))
    np.testing.assert_allclose(L.smooth_l1_loss(x, y, beta=0.0).item(), L.l1_loss(x, y).item())
    np.testing.assert_allclose(L.huber_loss(x, y, delta=0.6).item(),
                               0.6 * L.smooth_l1_loss(x, y, beta=0.6).item(), rtol=1e-12)


# ----- multi_margin_loss -----
@device_param
@given(data=st.data())
def test_multi_margin_loss(device, data):
    reduction, (N, C), seed = data.draw(case(device, [(1, 2), (2, 3), (4, 3)],
                                             [(1, 2), (1, 3)]))
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((N, C)), labels(rng, (N,), C)
    p, margin = [(1, 1.0), (2, 0.5), (1, 1.5)][seed % 3]
    weight = rng.uniform(0.5, 2.0, C) if seed % 2 else None
    w = None if weight is None else tl.tensor(weight, dtype=tl.float64, device=device)
    check(lambda a, t: L.multi_margin_loss(a, t, p=p, margin=margin, weight=w,
                                           reduction=reduction),
          reduce_ref(multi_margin_ref(x, y, p, margin, weight), reduction), [x, y], device)


def test_multi_margin_unbatched():
    x = tl.tensor([0.1, 0.2, 0.4, 0.8], dtype=tl.float64)
    assert np.isclose(L.multi_margin_loss(x, tl.tensor(3)).item(),
                      multi_margin_ref(np.array([[0.1, 0.2, 0.4, 0.8]]), [3])[0], rtol=1e-6)


# ----- errors name the loss -----
def zeros(*shape):
    return tl.zeros(*shape, dtype=tl.float64)


ALL = {
    "cross_entropy": lambda r: L.cross_entropy(zeros(2, 3), tl.tensor([0, 1]), reduction=r),
    "nll_loss": lambda r: L.nll_loss(zeros(2, 3), tl.tensor([0, 1]), reduction=r),
    "mse_loss": lambda r: L.mse_loss(zeros(2), zeros(2), reduction=r),
    "l1_loss": lambda r: L.l1_loss(zeros(2), zeros(2), reduction=r),
    "smooth_l1_loss": lambda r: L.smooth_l1_loss(zeros(2), zeros(2), reduction=r),
    "huber_loss": lambda r: L.huber_loss(zeros(2), zeros(2), reduction=r),
    "binary_cross_entropy_with_logits": lambda r: L.binary_cross_entropy_with_logits(
        zeros(2), zeros(2), reduction=r),
    "multi_margin_loss": lambda r: L.multi_margin_loss(zeros(2, 3), tl.tensor([0, 1]),
                                                       reduction=r),
}


@pytest.mark.parametrize("name", sorted(ALL))
def test_bad_reduction_names_the_loss(name):
    for bad in ("avg", "elementwise_mean", None):
        with pytest.raises(ValueError, match=f"{name}: reduction must be one of 'mean', "
                                             f"'sum' or 'none', got {bad!r}"):
            ALL[name](bad)
    assert ALL[name]("none").shape in ((2,), ())


@device_param
@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss", "multi_margin_loss"])
def test_label_out_of_range_names_the_loss_label_and_classes(device, name):
    fn = getattr(L, name)
    x = tl.zeros(3, 4, device=device)
    for bad in (4, -1, 7):
        with pytest.raises(IndexError, match=f"{name}: target label {bad} is out of range "
                                             f"for 4 classes"):
            fn(x, tl.tensor([0, bad, 1], device=device))


def test_ignore_index_may_lie_outside_the_classes():
    x = zeros(2, 3)
    assert np.isclose(L.cross_entropy(x, tl.tensor([-100, 2])).item(), np.log(3), rtol=1e-6)
    assert np.isclose(L.cross_entropy(x, tl.tensor([5, 2]), ignore_index=5).item(), np.log(3),
                      rtol=1e-6)


def test_shape_mismatches_name_the_loss_and_both_shapes():
    x = tl.zeros(2, 3)
    with pytest.raises(ValueError, match=r"cross_entropy: target has shape \(3,\), expected "
                                         r"\(2, 3\) \(class probabilities\) or \(2,\)"):
        L.cross_entropy(x, tl.zeros(3))
    with pytest.raises(ValueError, match=r"cross_entropy: target has shape \(3,\), "
                                         r"expected \(2,\)"):
        L.cross_entropy(x, tl.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"cross_entropy: weight has shape \(2,\), "
                                         r"expected \(3,\)"):
        L.cross_entropy(x, tl.tensor([0, 1]), weight=tl.ones(2))
    with pytest.raises(ValueError, match=r"nll_loss: target has shape \(2, 1\), "
                                         r"expected \(2,\)"):
        L.nll_loss(x, tl.tensor([[0], [1]]))
    for name in ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
                 "binary_cross_entropy_with_logits"):
        with pytest.raises(ValueError, match=rf"{name}: target has shape \(3, 2\), expected "
                                             r"\(2, 3\)"):
            getattr(L, name)(x, tl.zeros(3, 2))
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: pos_weight has "
                                         r"shape \(2,\), expected a shape that broadcasts"):
        L.binary_cross_entropy_with_logits(x, x, pos_weight=tl.ones(2))
    with pytest.raises(ValueError, match=r"multi_margin_loss: input has shape \(2, 3, 1\), "
                                         r"expected \(C,\) or \(N, C\)"):
        L.multi_margin_loss(tl.zeros(2, 3, 1), tl.tensor([0, 1]))
    with pytest.raises(TypeError, match=r"nll_loss: expected target to hold int64 class "
                                        r"indices of shape \(2,\), got a bool"):
        L.nll_loss(x, tl.tensor([True, False]))
    with pytest.raises(ValueError, match=r"cross_entropy: label_smoothing must be in \[0, 1\]"):
        L.cross_entropy(x, tl.tensor([0, 1]), label_smoothing=1.5)
