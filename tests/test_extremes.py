"""Extreme inputs, in float32 and float64, against PyTorch in the same dtype: every activation,
loss and normalisation at |x| = 1e3 and 1e4 (logits far beyond exp's range), normalisation of
constant channels (zero variance), and probabilities that underflow (log_softmax and
cross-entropy of logits 1e4 apart, binary cross-entropy with sigmoid(x) within 1e-4000 of 0 or
1). Values and gradients must be finite (the README promises it for any finite input) and, where
torch's are finite, equal to torch's up to the dtype's rounding."""
import warnings

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import nn
from tinygrad_lite.nn import functional as F

torch = pytest.importorskip("torch", reason="the differential tests need PyTorch (CPU)")
TF = torch.nn.functional

DTYPES = pytest.mark.parametrize("dtype", ["float32", "float64"])
SCALES = pytest.mark.parametrize("scale", [1e3, 1e4])
# max |ours - torch| <= TOL * max(1, max |torch|): the dtype's rounding, with room for sums
TOL = {"float32": 2e-5, "float64": 1e-11}


def _pair(a, dtype, grad=True):
    a = np.asarray(a, dtype=dtype)
    return tl.Tensor(a, dtype=getattr(tl, dtype), requires_grad=grad), \
        torch.tensor(a, requires_grad=grad)


def check(what, ours, theirs, dtype):
    """ours finite; equal to theirs where theirs is finite."""
    a = ours.numpy() if isinstance(ours, tl.Tensor) else np.asarray(ours)
    b = theirs.detach().numpy()
    assert a.shape == b.shape, f"{what}: shape {a.shape}, torch {b.shape}"
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype}, torch {b.dtype}"
    assert np.isfinite(a).all(), f"{what}: not finite: {a}"
    fin = np.isfinite(b)
    if fin.any():
        scale = max(1.0, float(np.abs(b[fin]).max()))
        diff = float(np.abs(a[fin].astype(np.float64) - b[fin]).max())
        assert diff <= TOL[dtype] * scale, f"{what}: max |diff| {diff:.3g} (scale {scale:.3g})"


def run_both(ours_fn, theirs_fn, arrays, dtype, seed=0):
    """Forward, then backward of a random upstream gradient; checks values and every input's
    gradient, with warnings (overflow in a kernel, ...) turned into errors."""
    pairs = [_pair(a, dtype) for a in arrays]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = ours_fn(*[p for p, _ in pairs])
        tout = theirs_fn(*[q for _, q in pairs])
        check("forward", out, tout, dtype)
        g = np.random.default_rng(seed).standard_normal(tuple(out.shape)).astype(dtype)
        out.backward(tl.Tensor(g, dtype=getattr(tl, dtype)))
        tout.backward(torch.tensor(g))
    for i, (p, q) in enumerate(pairs):
        check(f"gradient of input {i}", p.grad, q.grad, dtype)


def extremes(scale):
    """Both signs, the scale, half of it, and ordinary values, as a (2, 4) batch."""
    return np.array([[-scale, -scale / 2, -1.5, 0.0], [scale, scale / 2, 0.7, -0.3]])


# ----- activations -----
ACTIVATIONS = {
    "relu": (F.relu, TF.relu),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), lambda x: TF.leaky_relu(x, 0.1)),
    "prelu": (lambda x: F.prelu(x, tl.full((1,), 0.2, dtype=x.dtype)),
              lambda x: TF.prelu(x, torch.full((1,), 0.2, dtype=x.dtype))),
    "elu": (F.elu, TF.elu),
    "selu": (F.selu, TF.selu),
    "gelu": (F.gelu, TF.gelu),
    "gelu(tanh)": (lambda x: F.gelu(x, "tanh"), lambda x: TF.gelu(x, approximate="tanh")),
    "sigmoid": (F.sigmoid, torch.sigmoid),
    "tanh": (F.tanh, torch.tanh),
    "silu": (F.silu, TF.silu),
    "swish(2)": (lambda x: F.swish(x, 2.0), lambda x: x * torch.sigmoid(2.0 * x)),
    "softmax": (lambda x: F.softmax(x, 1), lambda x: TF.softmax(x, 1)),
    "log_softmax": (lambda x: F.log_softmax(x, 1), lambda x: TF.log_softmax(x, 1)),
    "logsumexp": (lambda x: x.logsumexp(axis=1), lambda x: torch.logsumexp(x, 1)),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@SCALES
@DTYPES
def test_activation_at_extremes(name, scale, dtype):
    run_both(*ACTIVATIONS[name], [extremes(scale)], dtype)


def test_maxout_at_extremes():
    x = extremes(1e4).reshape(4, 2)
    for dtype in ("float32", "float64"):
        a, _ = _pair(x, dtype)
        out = F.maxout(a, 2)
        out.sum().backward()
        assert np.isfinite(out.numpy()).all() and np.isfinite(a.grad.numpy()).all()
        np.testing.assert_array_equal(out.numpy(), x.max(axis=1, keepdims=True).astype(dtype))


# ----- losses -----
def _labels(y):
    y = np.asarray(y, np.int64)
    return tl.Tensor(y), torch.tensor(y)


LABELS = np.array([0, 3])  # the most and the least likely class of each row of extremes()
CE_KW = [dict(), dict(label_smoothing=0.1), dict(reduction="none"), dict(reduction="sum")]


@pytest.mark.parametrize("kw", CE_KW, ids=[str(k) for k in CE_KW])
@SCALES
@DTYPES
def test_cross_entropy_at_extremes(kw, scale, dtype):
    y, ty = _labels(LABELS)
    run_both(lambda x: F.cross_entropy(x, y, **kw), lambda x: TF.cross_entropy(x, ty, **kw),
             [extremes(scale)], dtype)


@SCALES
@DTYPES
def test_cross_entropy_soft_targets_at_extremes(scale, dtype):
    probs = np.array([[0.0, 0.2, 0.0, 0.8], [1.0, 0.0, 0.0, 0.0]])
    run_both(lambda x, t: F.cross_entropy(x, t, label_smoothing=0.05),
             lambda x, t: TF.cross_entropy(x, t, label_smoothing=0.05),
             [extremes(scale), probs], dtype)


@SCALES
@DTYPES
def test_nll_of_log_softmax_at_extremes(scale, dtype):
    y, ty = _labels(LABELS)
    run_both(lambda x: F.nll_loss(F.log_softmax(x, 1), y),
             lambda x: TF.nll_loss(TF.log_softmax(x, 1), ty), [extremes(scale)], dtype)


@SCALES
@DTYPES
def test_multi_margin_at_extremes(scale, dtype):
    y, ty = _labels(LABELS)
    for p in (1, 2):
        run_both(lambda x: F.multi_margin_loss(x, y, p=p),
                 lambda x: TF.multi_margin_loss(x, ty, p=p), [extremes(scale)], dtype)


PAIR_LOSSES = {
    "mse_loss": (F.mse_loss, TF.mse_loss),
    "l1_loss": (F.l1_loss, TF.l1_loss),
    "smooth_l1_loss": (F.smooth_l1_loss, TF.smooth_l1_loss),
    "huber_loss": (F.huber_loss, TF.huber_loss),
}


@pytest.mark.parametrize("name", list(PAIR_LOSSES))
@SCALES
@DTYPES
def test_regression_losses_at_extremes(name, scale, dtype):
    x = extremes(scale)
    run_both(*PAIR_LOSSES[name], [x, -x[::-1] * 0.5], dtype)


@pytest.mark.parametrize("kw", [{}, {"pos_weight": 3.0}, {"weight": 0.5}])
@SCALES
@DTYPES
def test_bce_with_logits_near_0_and_1(kw, scale, dtype):
    """sigmoid(+-1e4) is 1 or 0 to any precision: the loss of the right label is ~0, of the
    wrong one ~1e4, and both gradients are sigmoid(x) - y, exactly 0 or +-1."""
    x = extremes(scale)
    y = np.array([[0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 1.0, 0.5]])

    def extra(lib, ref):
        return {k: (tl.full((4,), v, dtype=ref.dtype) if lib == "tl" else
                    torch.full((4,), v, dtype=ref.dtype)) for k, v in kw.items()}
    run_both(lambda x, t: F.binary_cross_entropy_with_logits(x, t, **extra("tl", x)),
             lambda x, t: TF.binary_cross_entropy_with_logits(x, t, **extra("torch", x)),
             [x, y], dtype)


@DTYPES
def test_log_softmax_underflow_is_exact(dtype):
    """Logits 1e4 apart: the small probability underflows to 0, its log is exactly -1e4."""
    x, _ = _pair([[0.0, 1e4], [1e4, 1e4]], dtype)
    out = F.log_softmax(x, 1)
    np.testing.assert_array_equal(out.numpy(), np.array([[-1e4, 0.0], [-np.log(2)] * 2], dtype))
    loss = F.cross_entropy(x, tl.Tensor(np.array([0, 1])))
    assert loss.item() == pytest.approx(5e3 + np.log(2) / 2, rel=1e-6)


# ----- normalisation -----
def _norms(lib, dtype):
    kw = {"dtype": getattr(tl if lib is tl.nn else torch, dtype)}
    return {"BatchNorm2d": lib.BatchNorm2d(4, **kw), "LayerNorm": lib.LayerNorm((3, 2), **kw),
            "GroupNorm": lib.GroupNorm(2, 4, **kw),
            "InstanceNorm2d": lib.InstanceNorm2d(4, affine=True, **kw)}


def _module_pair(name, dtype):
    ours, theirs = _norms(tl.nn, dtype)[name], _norms(torch.nn, dtype)[name]
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.linspace(0.5, 1.5, p.numel(), dtype=p.dtype).reshape(p.shape))
    ours.load_state_dict({k: tl.Tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    return ours, theirs


def _check_module(name, x, dtype, train):
    ours, theirs = _module_pair(name, dtype)
    ours.train(train)
    theirs.train(train)
    run_both(ours, theirs, [x], dtype)
    for (k, b), tb in zip(ours.named_buffers(), theirs.buffers()):
        check(f"buffer {k}", b, tb, dtype)
    for (k, p), tp in zip(ours.named_parameters(), theirs.parameters()):
        check(f"gradient of {k}", p.grad, tp.grad, dtype)


NORMS = ["BatchNorm2d", "LayerNorm", "GroupNorm", "InstanceNorm2d"]


@pytest.mark.parametrize("name", NORMS)
@pytest.mark.parametrize("value", [0.0, 3.0, -1e4])
@DTYPES
def test_norm_of_constant_channels(name, value, dtype):
    """Every channel (BN, IN), sample (LN) and group (GN) constant: zero variance, so the exact
    output is the bias. The statistics are rounded, and x - mean is then divided by sqrt(eps)
    (eps = 1e-5), so both libraries miss it by a few ulps of the mean / sqrt(eps) (torch float32
    gives 0.027 at -1e4): the values must be within 4 ulps of that, the gradients finite and
    within the same relative error of torch's float64 gradients (exact here)."""
    x = np.full((2, 4, 3, 2), value)
    ours, _ = _module_pair(name, dtype)
    _, ref = _module_pair(name, "float64")
    a, ta = _pair(x, dtype)[0], torch.tensor(x, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, tout = ours(a), ref(ta)
        g = np.random.default_rng(0).standard_normal(x.shape)
        out.backward(tl.Tensor(g.astype(dtype)))
        tout.backward(torch.tensor(g))
    bound = 4 * np.finfo(dtype).eps * max(1.0, abs(value)) / np.sqrt(1e-5)
    bias = (ours.bias.numpy() if name != "LayerNorm" else ours.bias.numpy()[None, None])
    bias = bias.reshape(-1, 1, 1) if name != "LayerNorm" else bias
    got = out.numpy()
    assert np.isfinite(got).all() and np.isfinite(a.grad.numpy()).all()
    assert np.abs(got - bias).max() <= bound, f"output - bias: {np.abs(got - bias).max():.3g}"
    want = ta.grad.numpy()
    err = np.abs(a.grad.numpy() - want).max()
    assert err <= bound * max(1.0, np.abs(want).max()), f"input gradient: max |diff| {err:.3g}"
    for (k, p), tp in zip(ours.named_parameters(), ref.parameters()):
        err = np.abs(p.grad.numpy() - tp.grad.numpy()).max()
        assert err <= bound * max(1.0, np.abs(tp.grad.numpy()).max()), f"gradient of {k}: {err}"


@pytest.mark.parametrize("name", NORMS)
@SCALES
@DTYPES
def test_norm_at_extremes(name, scale, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 3, 2)) * scale + scale
    _check_module(name, x, dtype, True)


@DTYPES
def test_batch_norm_eval_with_zero_running_var(dtype):
    ours, theirs = _module_pair("BatchNorm2d", dtype)
    with tl.no_grad():
        ours.running_var.zero_()
    with torch.no_grad():
        theirs.running_var.zero_()
    ours.eval()
    theirs.eval()
    run_both(ours, theirs, [np.full((2, 4, 3, 2), 1e4)], dtype)
