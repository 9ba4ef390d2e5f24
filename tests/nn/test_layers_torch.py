"""Differential tests against PyTorch (CPU, float64): every layer, activation, loss and
normalisation the README lists, forward and every gradient (input and parameters), in NCHW
memory and, where the layout matters (conv, pooling, normalisation), in NHWC memory (torch's
channels_last; ours a permuted view of an NHWC array). Running statistics are compared after
training steps and in eval. Tolerances are tight (float64): 1e-10 unless said otherwise.

FractionalMaxPool2d draws its regions at random (and, in eval, we use u = 0.5 where torch keeps
drawing), so the module itself cannot match torch; the functional form is compared with fixed
`_random_samples`, which fixes the regions in both libraries."""
import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import nn
from tinygrad_lite.nn import functional as F

torch = pytest.importorskip("torch", reason="the differential tests need PyTorch (CPU)")
TF = torch.nn.functional
F64 = tl.float64
TOL = 1e-10


def t64(a, grad=False):
    return tl.Tensor(np.asarray(a, dtype=np.float64), dtype=F64, requires_grad=grad)


def nhwc_view(t):
    """The same values as t (N, C, H, W), in NHWC memory: a permuted view, as a conv returns."""
    return t.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)


def _first(out):
    return out[0] if isinstance(out, tuple) else out


def assert_close(ours, theirs, what, tol=TOL):
    a = ours.numpy() if isinstance(ours, tl.Tensor) else np.asarray(ours)
    b = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    assert a.shape == b.shape, f"{what}: shape {a.shape}, torch {b.shape}"
    both_inf = np.isinf(a) & (a == b)
    diff = np.where(both_inf, 0.0, np.abs(a - b))
    assert not diff.size or np.nanmax(diff) <= tol, f"{what}: max |diff| {np.nanmax(diff):.3g}"
    assert (np.isnan(a) == np.isnan(b)).all(), f"{what}: NaNs differ"


def compare(ours, theirs, x, params=(), nhwc=False, tol=TOL, seed=0):
    """Forward and every gradient of ours(x, *params) against theirs(x, *params): x and params
    are float64 arrays; a random upstream gradient is fed to both."""
    rng = np.random.default_rng(seed)
    a = t64(x, True)
    inp = nhwc_view(a) if nhwc else a
    if nhwc:
        assert not inp.is_contiguous()
    ps = [t64(p, True) for p in params]
    out = _first(ours(inp, *ps))
    ta = torch.tensor(x, requires_grad=True)
    tx = ta.contiguous(memory_format=torch.channels_last) if nhwc else ta
    tps = [torch.tensor(p, requires_grad=True) for p in params]
    tout = _first(theirs(tx, *tps))
    assert_close(out, tout, "forward", tol)
    g = rng.standard_normal(tuple(out.shape))
    out.backward(t64(g))
    tout.backward(torch.tensor(g))
    assert_close(a.grad, ta.grad, "input gradient", tol)
    for i, (p, q) in enumerate(zip(ps, tps)):
        assert_close(p.grad, q.grad, f"gradient of parameter {i}", tol)


def copy_from_torch(ours, theirs):
    """Load the torch module's state (float64 and int64 tensors) into ours."""
    state = {k: (t64(v.numpy()) if v.dtype == torch.float64 else tl.Tensor(v.numpy()))
             for k, v in theirs.state_dict().items()}
    ours.load_state_dict(state)


def compare_modules(ours, theirs, x, nhwc=False, steps=1, tol=TOL, seed=0):
    """Copy theirs' state into ours, then `steps` training forwards/backwards (outputs, input and
    parameter gradients, buffers compared each time), then one eval forward."""
    copy_from_torch(ours, theirs)
    rng = np.random.default_rng(seed)
    for step in range(steps):
        xs = x + step  # a different batch each step (the running statistics move)
        a = t64(xs, True)
        ta = torch.tensor(xs, requires_grad=True)
        inp = nhwc_view(a) if nhwc else a
        tin = ta.contiguous(memory_format=torch.channels_last) if nhwc else ta
        out, tout = ours(inp), theirs(tin)
        assert_close(out, tout, f"step {step}: forward", tol)
        g = rng.standard_normal(tuple(out.shape))
        out.backward(t64(g))
        tout.backward(torch.tensor(g))
        assert_close(a.grad, ta.grad, f"step {step}: input gradient", tol)
        tparams = dict(theirs.named_parameters())
        for name, p in ours.named_parameters():
            assert_close(p.grad, tparams[name].grad, f"step {step}: gradient of {name}", tol)
        tbufs = dict(theirs.named_buffers())
        for name, b in ours.named_buffers():
            assert_close(b, tbufs[name], f"step {step}: buffer {name}", tol)
    ours.eval()
    theirs.eval()
    a = t64(x)
    assert_close(ours(nhwc_view(a) if nhwc else a),
                 theirs(torch.tensor(x).contiguous(memory_format=torch.channels_last)
                        if nhwc else torch.tensor(x)), "eval forward", tol)


LAYOUTS = pytest.mark.parametrize("nhwc", [False, True], ids=["nchw", "nhwc"])
RNG = np.random.default_rng(0)
X4 = RNG.standard_normal((2, 4, 7, 6))  # N, C, H, W: odd sizes, so windows do not tile evenly


# ----- activations -----
ACTIVATIONS = {
    "relu": (F.relu, TF.relu),
    "leaky_relu(0.2)": (lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    "elu(0.7)": (lambda x: F.elu(x, 0.7), lambda x: TF.elu(x, 0.7)),
    "selu": (F.selu, TF.selu),
    "gelu": (F.gelu, TF.gelu),
    "gelu(tanh)": (lambda x: F.gelu(x, "tanh"), lambda x: TF.gelu(x, approximate="tanh")),
    "sigmoid": (F.sigmoid, torch.sigmoid),
    "tanh": (F.tanh, torch.tanh),
    "silu": (F.silu, TF.silu),
    "swish(1.7)": (lambda x: F.swish(x, 1.7), lambda x: x * torch.sigmoid(1.7 * x)),
    "softmax(1)": (lambda x: F.softmax(x, 1), lambda x: TF.softmax(x, 1)),
    "log_softmax(1)": (lambda x: F.log_softmax(x, 1), lambda x: TF.log_softmax(x, 1)),
    "softmax(-1)": (lambda x: F.softmax(x, -1), lambda x: TF.softmax(x, -1)),
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation(name):
    ours, theirs = ACTIVATIONS[name]
    x = X4 * 3
    x[0, 0, 0, :3] = 0.0  # the kink of relu-like functions: both give gradient 0 there
    compare(ours, theirs, x)


@pytest.mark.parametrize("name", ["relu", "gelu", "log_softmax(1)"])
def test_activation_nhwc(name):
    ours, theirs = ACTIVATIONS[name]
    compare(ours, theirs, X4 * 3, nhwc=True)


@pytest.mark.parametrize("num_parameters", [1, 4])
def test_prelu(num_parameters):
    w = RNG.random(num_parameters)
    compare(F.prelu, TF.prelu, X4, (w,))
    ours, theirs = nn.PReLU(num_parameters, dtype=F64), torch.nn.PReLU(num_parameters, 0.3,
                                                                      dtype=torch.float64)
    compare_modules(ours, theirs, X4)


@pytest.mark.parametrize("make", [
    lambda lib: lib.ReLU(), lambda lib: lib.LeakyReLU(0.3), lambda lib: lib.ELU(2.0),
    lambda lib: lib.SELU(), lambda lib: lib.SiLU(), lambda lib: lib.GELU("tanh"),
    lambda lib: lib.Sigmoid(), lambda lib: lib.Tanh(), lambda lib: lib.Identity(),
    lambda lib: lib.Flatten(), lambda lib: lib.Flatten(2, 3)],
    ids=["ReLU", "LeakyReLU", "ELU", "SELU", "SiLU", "GELU", "Sigmoid", "Tanh", "Identity",
         "Flatten", "Flatten(2,3)"])
def test_parameterless_modules(make):
    compare_modules(make(nn), make(torch.nn), X4)


def test_maxout_is_linear_then_max():
    """Maxout is not in torch: Linear(in, out * pieces) then a max over each group of pieces."""
    ours = nn.Maxout(5, 3, pieces=2, dtype=F64)
    lin = torch.nn.Linear(5, 6, dtype=torch.float64)
    copy_from_torch(ours.linear, lin)
    x = RNG.standard_normal((4, 5))
    a, ta = t64(x, True), torch.tensor(x, requires_grad=True)
    out, tout = ours(a), lin(ta).reshape(4, 3, 2).amax(-1)
    assert_close(out, tout, "forward")
    g = RNG.standard_normal((4, 3))
    out.backward(t64(g))
    tout.backward(torch.tensor(g))
    assert_close(a.grad, ta.grad, "input gradient")
    assert_close(ours.linear.weight.grad, lin.weight.grad, "weight gradient")


# ----- linear, dropout in eval / p = 0 -----
@pytest.mark.parametrize("shape", [(5,), (3, 5), (2, 3, 5)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear(shape, bias):
    compare_modules(nn.Linear(5, 4, bias=bias, dtype=F64),
                    torch.nn.Linear(5, 4, bias=bias, dtype=torch.float64),
                    RNG.standard_normal(shape))


@pytest.mark.parametrize("layer", ["Dropout", "Dropout2d"])
def test_dropout_is_identity_in_eval_and_at_p0(layer):
    for p, train in ((0.5, False), (0.0, True)):
        ours, theirs = getattr(nn, layer)(p), getattr(torch.nn, layer)(p)
        ours.train(train)
        theirs.train(train)
        compare(ours, theirs, X4)


# ----- convolution -----
CONVS = [  # (out, kernel, stride, padding, dilation, groups, bias)
    (6, 3, 1, 0, 1, 1, True),
    (6, 3, 2, 1, 2, 2, True),
    (8, (3, 2), (1, 2), (2, 0), 1, 4, False),
    (8, 3, 1, "same", 2, 4, True),
    (4, 2, 1, "valid", 1, 4, True),   # depthwise
    (5, 1, 1, 0, 1, 1, False),        # 1x1
    (4, (1, 3), (2, 1), (0, 1), (1, 2), 2, True),
]


@pytest.mark.parametrize("cfg", CONVS, ids=[str(c) for c in CONVS])
@LAYOUTS
def test_conv2d(cfg, nhwc):
    O, k, s, p, d, g, bias = cfg
    kk = (k, k) if isinstance(k, int) else k
    w = RNG.standard_normal((O, 4 // g) + kk)
    params = (w, RNG.standard_normal(O)) if bias else (w,)
    compare(lambda x, *wb: F.conv2d(x, *wb, stride=s, padding=p, dilation=d, groups=g),
            lambda x, *wb: TF.conv2d(x, *wb, stride=s, padding=p, dilation=d, groups=g),
            X4, params, nhwc)


def test_conv2d_unbatched():
    w, b = RNG.standard_normal((3, 4, 3, 3)), RNG.standard_normal(3)
    compare(lambda x, w, b: F.conv2d(x, w, b, padding=1),
            lambda x, w, b: TF.conv2d(x, w, b, padding=1), X4[0], (w, b))


@LAYOUTS
def test_conv2d_module(nhwc):
    args = dict(in_channels=4, out_channels=6, kernel_size=3, stride=2, padding=1, groups=2)
    compare_modules(nn.Conv2d(**args, dtype=F64), torch.nn.Conv2d(**args, dtype=torch.float64),
                    X4, nhwc)


# ----- pooling -----
POOLS = {
    "max_pool2d(2)": (lambda x: F.max_pool2d(x, 2), lambda x: TF.max_pool2d(x, 2)),
    "max_pool2d(3, 2, 1, dilation 2, ceil_mode)": (
        lambda x: F.max_pool2d(x, 3, 2, 1, 2, True), lambda x: TF.max_pool2d(x, 3, 2, 1, 2, True)),
    "max_pool2d((2, 3), (1, 2), (1, 0))": (
        lambda x: F.max_pool2d(x, (2, 3), (1, 2), (1, 0)),
        lambda x: TF.max_pool2d(x, (2, 3), (1, 2), (1, 0))),
    "avg_pool2d(2)": (lambda x: F.avg_pool2d(x, 2), lambda x: TF.avg_pool2d(x, 2)),
    "avg_pool2d(3, 2, 1)": (lambda x: F.avg_pool2d(x, 3, 2, 1),
                            lambda x: TF.avg_pool2d(x, 3, 2, 1)),
    "avg_pool2d(3, 2, 1, ceil_mode, count_include_pad=False)": (
        lambda x: F.avg_pool2d(x, 3, 2, 1, True, False),
        lambda x: TF.avg_pool2d(x, 3, 2, 1, True, False)),
    "avg_pool2d(3, 2, 1, ceil_mode, divisor_override=5)": (
        lambda x: F.avg_pool2d(x, 3, 2, 1, True, True, 5),
        lambda x: TF.avg_pool2d(x, 3, 2, 1, True, True, 5)),
    "adaptive_avg_pool2d((4, 5))": (lambda x: F.adaptive_avg_pool2d(x, (4, 5)),
                                    lambda x: TF.adaptive_avg_pool2d(x, (4, 5))),
    "adaptive_avg_pool2d(1)": (lambda x: F.adaptive_avg_pool2d(x, 1),
                               lambda x: TF.adaptive_avg_pool2d(x, 1)),
    "adaptive_avg_pool2d((None, 3))": (lambda x: F.adaptive_avg_pool2d(x, (None, 3)),
                                       lambda x: TF.adaptive_avg_pool2d(x, (None, 3))),
    "adaptive_max_pool2d((3, 4))": (lambda x: F.adaptive_max_pool2d(x, (3, 4)),
                                    lambda x: TF.adaptive_max_pool2d(x, (3, 4))),
    "adaptive_max_pool2d(1)": (lambda x: F.adaptive_max_pool2d(x, 1),
                               lambda x: TF.adaptive_max_pool2d(x, 1)),
}
_U = RNG.random((2, 4, 2))
POOLS["fractional_max_pool2d(2, (5, 4), fixed samples)"] = (
    lambda x: F.fractional_max_pool2d(x, 2, output_size=(5, 4), _random_samples=t64(_U)),
    lambda x: TF.fractional_max_pool2d(x, 2, output_size=(5, 4),
                                       _random_samples=torch.tensor(_U)))


@pytest.mark.parametrize("name", list(POOLS))
@LAYOUTS
def test_pool(name, nhwc):
    compare(*POOLS[name], X4, nhwc=nhwc)


def test_pool_unbatched():
    compare(lambda x: F.max_pool2d(x, 2, 1), lambda x: TF.max_pool2d(x, 2, 1), X4[0])
    compare(lambda x: F.avg_pool2d(x, 2, 1), lambda x: TF.avg_pool2d(x, 2, 1), X4[0])


@pytest.mark.parametrize("which", ["max", "adaptive_max"])
@LAYOUTS
def test_pool_indices(which, nhwc):
    x = t64(X4)
    x = nhwc_view(x) if nhwc else x
    if which == "max":
        out, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
        tout, tidx = TF.max_pool2d(torch.tensor(X4), 3, 2, 1, return_indices=True)
    else:
        out, idx = F.adaptive_max_pool2d(x, (3, 4), return_indices=True)
        tout, tidx = TF.adaptive_max_pool2d(torch.tensor(X4), (3, 4), return_indices=True)
    assert_close(out, tout, "values", 0)
    assert idx.dtype == tl.int64
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())


@pytest.mark.parametrize("make", [
    lambda lib: lib.MaxPool2d(3, 2, 1, ceil_mode=True), lambda lib: lib.AvgPool2d(3, 1, 1),
    lambda lib: lib.AvgPool2d(2, count_include_pad=False, divisor_override=3),
    lambda lib: lib.AdaptiveAvgPool2d((2, 3)), lambda lib: lib.AdaptiveMaxPool2d(2)],
    ids=["MaxPool2d", "AvgPool2d", "AvgPool2d(divisor_override)", "AdaptiveAvgPool2d",
         "AdaptiveMaxPool2d"])
def test_pool_modules(make):
    compare_modules(make(nn), make(torch.nn), X4)


# ----- normalisation -----
W4, B4 = RNG.random(4) + 0.5, RNG.standard_normal(4)
RM, RV = RNG.standard_normal(4), RNG.random(4) + 0.5


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("relu", [False, True], ids=["plain", "fused-relu"])
@LAYOUTS
def test_batch_norm_function(training, relu, nhwc):
    ours_rm, ours_rv = t64(RM), t64(RV)
    theirs_rm, theirs_rv = torch.tensor(RM), torch.tensor(RV)

    def post(y):
        return TF.relu(y) if relu else y
    compare(lambda x, w, b: F.batch_norm(x, ours_rm, ours_rv, w, b, training, 0.3,
                                         activation="relu" if relu else None),
            lambda x, w, b: post(TF.batch_norm(x, theirs_rm, theirs_rv, w, b, training, 0.3)),
            X4, (W4, B4), nhwc)
    assert_close(ours_rm, theirs_rm, "running_mean")
    assert_close(ours_rv, theirs_rv, "running_var")


@pytest.mark.parametrize("kw", [
    {}, {"momentum": None}, {"affine": False}, {"track_running_stats": False},
    {"momentum": 0.5, "eps": 1e-3}],
    ids=["default", "momentum=None", "affine=False", "no-running-stats", "momentum=0.5"])
@LAYOUTS
def test_batch_norm2d(kw, nhwc):
    theirs = torch.nn.BatchNorm2d(4, dtype=torch.float64, **kw)
    if theirs.affine:
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(W4))
            theirs.bias.copy_(torch.tensor(B4))
    compare_modules(nn.BatchNorm2d(4, dtype=F64, **kw), theirs, X4, nhwc, steps=3)


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5)])
@pytest.mark.parametrize("kw", [{}, {"momentum": None}, {"affine": False}])
def test_batch_norm1d(shape, kw):
    compare_modules(nn.BatchNorm1d(4, dtype=F64, **kw),
                    torch.nn.BatchNorm1d(4, dtype=torch.float64, **kw),
                    RNG.standard_normal(shape), steps=3)


@pytest.mark.parametrize("shape,kw", [
    ((7, 6), {}), ((6, 7), {"elementwise_affine": False}), ((7, 6), {"bias": False}),
    (6, {"eps": 1e-2})], ids=["(H, W)", "no-affine", "no-bias", "W, eps"])
@LAYOUTS
def test_layer_norm(shape, kw, nhwc):
    x = X4 if shape in ((7, 6), 6) else X4.transpose(0, 1, 3, 2).copy()
    theirs = torch.nn.LayerNorm(shape, dtype=torch.float64, **kw)
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn(p.shape, dtype=torch.float64))
    compare_modules(nn.LayerNorm(shape, dtype=F64, **kw), theirs, x, nhwc)


@pytest.mark.parametrize("groups,affine", [(1, True), (2, True), (4, False)])
@LAYOUTS
def test_group_norm(groups, affine, nhwc):
    theirs = torch.nn.GroupNorm(groups, 4, affine=affine, dtype=torch.float64)
    if affine:
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(W4))
            theirs.bias.copy_(torch.tensor(B4))
    compare_modules(nn.GroupNorm(groups, 4, affine=affine, dtype=F64), theirs, X4, nhwc)


@pytest.mark.parametrize("kw", [{}, {"affine": True}, {"track_running_stats": True},
                                {"affine": True, "track_running_stats": True, "momentum": None}],
                         ids=["default", "affine", "running-stats", "all"])
@LAYOUTS
def test_instance_norm2d(kw, nhwc):
    compare_modules(nn.InstanceNorm2d(4, dtype=F64, **kw),
                    torch.nn.InstanceNorm2d(4, dtype=torch.float64, **kw), X4, nhwc, steps=2)


def test_instance_norm2d_unbatched():
    compare_modules(nn.InstanceNorm2d(4, dtype=F64, affine=True),
                    torch.nn.InstanceNorm2d(4, dtype=torch.float64, affine=True), X4[0])


def test_norm_functions():
    compare(lambda x, w, b: F.group_norm(x, 2, w, b, 1e-3),
            lambda x, w, b: TF.group_norm(x, 2, w, b, 1e-3), X4, (W4, B4))
    compare(lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
            lambda x, w, b: TF.instance_norm(x, weight=w, bias=b), X4, (W4, B4))
    w, b = RNG.standard_normal((7, 6)), RNG.standard_normal((7, 6))
    compare(lambda x, w, b: F.layer_norm(x, (7, 6), w, b),
            lambda x, w, b: TF.layer_norm(x, (7, 6), w, b), X4, (w, b))


# ----- losses -----
N, C = 5, 4
LOGITS = RNG.standard_normal((N, C)) * 2
LABELS = np.array([0, 3, 1, 1, 2])
LABELS_IGN = np.array([0, 3, -1, 1, 2])  # -1 ignored when ignore_index=-1
LOGITS_4D = RNG.standard_normal((2, C, 3, 2))
LABELS_4D = RNG.integers(0, C, (2, 3, 2))
PROBS = RNG.dirichlet(np.ones(C), N)
CW = RNG.random(C) + 0.5


def _labels(y):
    return tl.Tensor(np.asarray(y, np.int64)), torch.tensor(np.asarray(y, np.int64))


CE_CASES = [
    dict(), dict(reduction="sum"), dict(reduction="none"), dict(label_smoothing=0.2),
    dict(weight=True), dict(weight=True, label_smoothing=0.3),
    dict(ignore_index=-1, labels=LABELS_IGN), dict(ignore_index=-1, labels=LABELS_IGN,
                                                  weight=True, label_smoothing=0.1),
    dict(ignore_index=3, reduction="none"),
    dict(dims=4), dict(dims=4, weight=True, reduction="sum", label_smoothing=0.1),
    dict(dims=1), dict(dims=1, label_smoothing=0.4, reduction="none"),
    dict(probs=True), dict(probs=True, label_smoothing=0.2, weight=True),
    dict(probs=True, reduction="none"),
]


# nll_loss takes neither class probabilities nor label_smoothing: those cases are CE's only
LOSS_CASES = [("cross_entropy", c) for c in CE_CASES] + [
    ("nll_loss", c) for c in CE_CASES if not c.get("probs") and "label_smoothing" not in c]


@pytest.mark.parametrize("fn,case", LOSS_CASES, ids=[f"{f}-{str(c)[:60]}" for f, c in LOSS_CASES])
def test_cross_entropy_and_nll(fn, case):
    case = dict(case)
    labels, dims, probs = case.pop("labels", LABELS), case.pop("dims", 2), case.pop("probs", 0)
    x = {2: LOGITS, 4: LOGITS_4D, 1: LOGITS[0]}[dims]
    y = {2: labels, 4: LABELS_4D, 1: np.array(labels[1])}[dims]
    kw, tkw = dict(case), dict(case)
    if case.get("weight"):
        kw["weight"], tkw["weight"] = t64(CW), torch.tensor(CW)
    if probs:
        target, ttarget = t64(PROBS), torch.tensor(PROBS)
    else:
        target, ttarget = _labels(y)
    if fn == "nll_loss":
        compare(lambda x: F.nll_loss(x.log_softmax(1 if x.ndim > 1 else 0), target, **kw),
                lambda x: TF.nll_loss(TF.log_softmax(x, 1 if x.ndim > 1 else 0), ttarget, **tkw),
                x)
    else:
        compare(lambda x: F.cross_entropy(x, target, **kw),
                lambda x: TF.cross_entropy(x, ttarget, **tkw), x)


def test_cross_entropy_soft_target_gradient():
    """Gradients reach soft targets (mixup) too."""
    compare(lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1),
            lambda x, t: TF.cross_entropy(x, t, label_smoothing=0.1), LOGITS, (PROBS,))


PAIR_LOSSES = {
    "mse_loss": ({}, F.mse_loss, TF.mse_loss),
    "l1_loss": ({}, F.l1_loss, TF.l1_loss),
    "smooth_l1_loss": ({}, F.smooth_l1_loss, TF.smooth_l1_loss),
    "smooth_l1_loss(beta=0.5)": ({"beta": 0.5}, F.smooth_l1_loss, TF.smooth_l1_loss),
    "smooth_l1_loss(beta=0)": ({"beta": 0.0}, F.smooth_l1_loss, TF.smooth_l1_loss),
    "huber_loss": ({}, F.huber_loss, TF.huber_loss),
    "huber_loss(delta=2.5)": ({"delta": 2.5}, F.huber_loss, TF.huber_loss),
    "binary_cross_entropy_with_logits": ({}, F.binary_cross_entropy_with_logits,
                                         TF.binary_cross_entropy_with_logits),
}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", list(PAIR_LOSSES))
def test_pair_loss(name, reduction):
    kw, ours, theirs = PAIR_LOSSES[name]
    x = RNG.standard_normal((3, 4)) * 2
    t = RNG.random((3, 4)) if "binary" in name else RNG.standard_normal((3, 4)) * 2
    t[0, 0] = x[0, 0]  # d = 0: the kink of l1 and smooth_l1(beta=0); gradient 0 in both
    compare(lambda x, t: ours(x, t, reduction=reduction, **kw),
            lambda x, t: theirs(x, t, reduction=reduction, **kw), x, (t,))


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_bce_with_logits_weights(reduction):
    """weight (per element, broadcast) and pos_weight (per class); torch differentiates
    neither, so they are constants here."""
    x, t = RNG.standard_normal((3, 4)) * 3, RNG.random((3, 4))
    w, pw = RNG.random((3, 1)) + 0.5, RNG.random(4) * 3
    compare(lambda x, t: F.binary_cross_entropy_with_logits(
        x, t, t64(w), reduction=reduction, pos_weight=t64(pw)),
        lambda x, t: TF.binary_cross_entropy_with_logits(
        x, t, torch.tensor(w), reduction=reduction, pos_weight=torch.tensor(pw)), x, (t,))


@pytest.mark.parametrize("kw", [{}, {"p": 2}, {"margin": 0.5, "reduction": "sum"},
                                {"weight": True, "reduction": "none"}, {"unbatched": True}])
def test_multi_margin_loss(kw):
    kw = dict(kw)
    x, y = LOGITS * 0.3, LABELS
    if kw.pop("unbatched", False):
        x, y = x[1], np.array(y[1])
    target, ttarget = _labels(y)
    tkw = dict(kw)
    if kw.get("weight"):
        kw["weight"], tkw["weight"] = t64(CW), torch.tensor(CW)
    compare(lambda x: F.multi_margin_loss(x, target, **kw),
            lambda x: TF.multi_margin_loss(x, ttarget, **tkw), x)


LOSS_MODULES = {
    "CrossEntropyLoss": (lambda lib, w: lib.CrossEntropyLoss(w, ignore_index=1,
                                                             label_smoothing=0.1), True),
    "NLLLoss": (lambda lib, w: lib.NLLLoss(w, reduction="sum"), True),
    "MultiMarginLoss": (lambda lib, w: lib.MultiMarginLoss(p=2, margin=0.7, weight=w), True),
    "MSELoss": (lambda lib, w: lib.MSELoss(reduction="sum"), False),
    "L1Loss": (lambda lib, w: lib.L1Loss(), False),
    "SmoothL1Loss": (lambda lib, w: lib.SmoothL1Loss(beta=0.3), False),
    "HuberLoss": (lambda lib, w: lib.HuberLoss(delta=0.4), False),
    "BCEWithLogitsLoss": (lambda lib, w: lib.BCEWithLogitsLoss(w, pos_weight=w * 2), False),
}


@pytest.mark.parametrize("name", list(LOSS_MODULES))
def test_loss_modules(name):
    make, labels = LOSS_MODULES[name]
    ours, theirs = make(nn, t64(CW)), make(torch.nn, torch.tensor(CW))
    if labels:
        target, ttarget = _labels(LABELS)
    else:
        t = RNG.random((N, C))
        target, ttarget = t64(t), torch.tensor(t)
    compare(lambda x: ours(x, target), lambda x: theirs(x, ttarget), LOGITS)


# ----- gradient clipping -----
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm(norm_type, max_norm):
    grads = [RNG.standard_normal((3, 4)), RNG.standard_normal(5)]
    ps = [nn.Parameter(t64(np.zeros_like(g))) for g in grads]
    tps = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, q, g in zip(ps, tps, grads):
        p.grad, q.grad = t64(g), torch.tensor(g)
    total = nn.utils.clip_grad_norm_(ps, max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tps, max_norm, norm_type)
    assert abs(total.item() - ttotal.item()) <= 1e-12
    for p, q in zip(ps, tps):
        assert_close(p.grad, q.grad, "clipped gradient", 1e-14)


def test_clip_grad_value():
    g = RNG.standard_normal((4, 5)) * 2
    p, q = nn.Parameter(t64(np.zeros_like(g))), torch.zeros(4, 5, dtype=torch.float64,
                                                            requires_grad=True)
    p.grad, q.grad = t64(g), torch.tensor(g)
    nn.utils.clip_grad_value_([p], 0.7)
    torch.nn.utils.clip_grad_value_([q], 0.7)
    assert_close(p.grad, q.grad, "clipped gradient", 0)


# ----- a whole network -----
def test_convnet_training_matches_torch():
    """A conv-BN-ReLU-pool net from the same weights, 4 steps of SGD with Nesterov momentum
    and weight decay on one batch: the losses, then the eval-mode outputs (running
    statistics), agree."""
    def layers(lib, **f64):
        return [lib.Conv2d(3, 4, 3, padding=1, bias=False, **f64), lib.BatchNorm2d(4, **f64),
                lib.ReLU(), lib.MaxPool2d(2), lib.Conv2d(4, 6, 3, padding=1, **f64),
                lib.GroupNorm(2, 6, **f64), lib.ReLU(), lib.AdaptiveAvgPool2d(2), lib.Flatten(),
                lib.Dropout(0.0), lib.Linear(24, 5, **f64)]
    ours = nn.Sequential(*layers(nn, dtype=F64))
    theirs = torch.nn.Sequential(*layers(torch.nn, dtype=torch.float64))
    copy_from_torch(ours, theirs)
    x, y = RNG.standard_normal((8, 3, 8, 8)), RNG.integers(0, 5, 8)
    settings = dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    opt, topt = tl.optim.SGD(ours.parameters(), **settings), torch.optim.SGD(
        theirs.parameters(), **settings)
    for step in range(4):
        loss = F.cross_entropy(ours(t64(x)), tl.Tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        tloss = TF.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
        topt.zero_grad()
        tloss.backward()
        topt.step()
        assert abs(loss.item() - tloss.item()) <= TOL, f"step {step}"
    ours.eval()
    theirs.eval()
    assert_close(ours(t64(x)), theirs(torch.tensor(x)), "eval outputs after training")
