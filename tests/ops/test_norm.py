"""Normalisation functions (ops/norm.py): values against NumPy references, gradients against
centred differences (input, weight, bias; BN in training and eval, BN+ReLU away from the kink;
cpu and cuda), the normalisation invariants, strided (NHWC, sliced) inputs and the layout of
the result, float32 accuracy on data with a large mean, the parallel CPU path, CPU/CUDA
agreement on a launch of more than one block, running statistics, and the errors."""
import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import tinygrad_lite as tl
from helpers import device_param
from tinygrad_lite.nn import functional as F

F64 = tl.float64


# ----- NumPy reference: the statistics axes of each norm, written out directly -----
def norm_ref(kind, x, w=None, b=None, groups=1, eps=1e-5, relu=False, stats=None):
    """(y, mean, biased var) of `kind` on x (N, C, *S); LN normalises the last 2 dims here."""
    if kind == "gn":
        N, C = x.shape[:2]
        xg = x.reshape(N, groups, -1)
        m, v = xg.mean(2, keepdims=True), xg.var(2, keepdims=True)
        xhat = ((xg - m) / np.sqrt(v + eps)).reshape(x.shape)
    else:
        axes = {"bn": (0,) + tuple(range(2, x.ndim)), "in": tuple(range(2, x.ndim)),
                "ln": (x.ndim - 2, x.ndim - 1)}[kind]
        m, v = (x.mean(axes, keepdims=True), x.var(axes, keepdims=True)) if stats is None \
            else stats
        xhat = (x - m) / np.sqrt(v + eps)
    shape = x.shape[-2:] if kind == "ln" else (1, x.shape[1]) + (1,) * (x.ndim - 2)
    y = xhat * (1 if w is None else w.reshape(shape)) + (0 if b is None else b.reshape(shape))
    return (np.maximum(y, 0) if relu else y), m, v


def call(kind, x, w=None, b=None, groups=1, relu=False):
    if kind == "bn":
        return F.batch_norm(x, None, None, w, b, training=True,
                            activation="relu" if relu else None)
    if kind == "ln":
        return F.layer_norm(x, tuple(x.shape[-2:]), w, b)
    if kind == "gn":
        return F.group_norm(x, groups, w, b)
    return F.instance_norm(x, weight=w, bias=b)


@st.composite
def norm_case(draw, device, kinds=("bn", "ln", "gn", "in")):
    """(kind, x, w, b, groups): small shapes; cuda tiny (the simulator runs threads in Python)."""
    kind = draw(st.sampled_from(kinds))
    big = 3 if device == "cpu" else 2
    N = draw(st.integers(1, big))
    groups = draw(st.sampled_from([1, 2])) if kind == "gn" else 1
    C = groups * draw(st.integers(1, 2 if device == "cpu" else 1))
    S = draw(st.lists(st.integers(1, big), min_size=1, max_size=2 if device == "cpu" else 1))
    shape = (N, C) + tuple(S)
    assume(np.prod(shape) // (C if kind == "bn" else N * C if kind == "in" else 1) > 1)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    scale = draw(st.sampled_from([0.5, 3.0]))
    x = rng.standard_normal(shape) * scale + draw(st.sampled_from([0.0, 2.0]))
    pshape = shape[-2:] if kind == "ln" else (C,)
    affine = draw(st.booleans())
    w = rng.uniform(0.5, 1.5, pshape) * rng.choice([-1, 1], pshape) if affine else None
    b = rng.standard_normal(pshape) if affine else None
    return kind, x, w, b, groups


def _t(a, device, requires_grad=False):
    return None if a is None else tl.tensor(a, dtype=F64, device=device,
                                            requires_grad=requires_grad)


@device_param
@given(data=st.data())
def test_values_and_gradients_match_numpy(device, data):
    kind, x, w, b, groups = data.draw(norm_case(device))
    assume(kind != "ln" or x.ndim >= 3)
    y = call(kind, _t(x, device), _t(w, device), _t(b, device), groups).numpy()
    np.testing.assert_allclose(y, norm_ref(kind, x, w, b, groups)[0], rtol=1e-10, atol=1e-10)
    arrays = [a for a in (x, w, b) if a is not None]

    def fn(*ts):
        return call(kind, ts[0], *(ts[1:] if len(ts) == 3 else (None, None)), groups=groups)
    result = tl.gradcheck(fn, [_t(a, device) for a in arrays])
    assert result, result


@device_param
@given(data=st.data())
def test_batch_norm_relu_values_and_gradients(device, data):
    _, x, w, b, _ = data.draw(norm_case(device, kinds=("bn",)))
    C = x.shape[1]
    w = np.ones(C) if w is None else w
    b = np.zeros(C) if b is None else b
    ref, _, _ = norm_ref("bn", x, w, b)
    assume(np.abs(ref).min() > 1e-3)  # centred differences must not straddle the ReLU kink
    y = call("bn", _t(x, device), _t(w, device), _t(b, device), relu=True).numpy()
    np.testing.assert_allclose(y, np.maximum(ref, 0), rtol=1e-10, atol=1e-10)
    result = tl.gradcheck(lambda *t: call("bn", *t, relu=True),
                          [_t(a, device) for a in (x, w, b)])
    assert result, result


@device_param
@pytest.mark.parametrize("relu", [False, True])
def test_batch_norm_eval_uses_running_stats_with_gradients(device, relu):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 2)) * 2
    w, b = rng.uniform(0.5, 2, 3), rng.standard_normal(3) * 0.1
    rm, rv = rng.standard_normal(3) * 0.1, rng.uniform(0.5, 2, 3)
    stats = (rm.reshape(1, 3, 1), rv.reshape(1, 3, 1))
    ref = norm_ref("bn", x, w, b, relu=relu, stats=stats)[0]

    def fn(x, w, b):
        return F.batch_norm(x, _t(rm, device), _t(rv, device), w, b, training=False,
                            activation="relu" if relu else None)
    np.testing.assert_allclose(fn(*[_t(a, device) for a in (x, w, b)]).numpy(), ref,
                               rtol=1e-12, atol=1e-12)
    result = tl.gradcheck(fn, [_t(a, device) for a in (x, w, b)])
    assert result, result


@device_param
def test_instance_norm_without_input_stats_uses_running_stats(device):
    rng = np.random.default_rng(4)
    x, rm, rv = rng.standard_normal((2, 2, 3)), np.array([0.3, -0.2]), np.array([0.5, 2.0])
    y = F.instance_norm(_t(x, device), _t(rm, device), _t(rv, device), use_input_stats=False)
    ref = (x - rm[:, None]) / np.sqrt(rv[:, None] + 1e-5)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12)


@given(data=st.data())
def test_invariants_mean_zero_variance_one(data):
    kind, x, _, _, groups = data.draw(norm_case("cpu"))
    assume(kind != "ln" or x.ndim >= 3)
    assume(x.std() > 0.1)
    y = call(kind, _t(x, "cpu"), groups=groups).numpy()
    if kind == "gn":
        y = y.reshape(x.shape[0], groups, -1)
        axes = (2,)
    else:
        axes = {"bn": (0,) + tuple(range(2, x.ndim)), "in": tuple(range(2, x.ndim)),
                "ln": (x.ndim - 2, x.ndim - 1)}[kind]
    np.testing.assert_allclose(y.mean(axes), 0, atol=1e-9)
    var = (x.reshape(y.shape).var(axes))
    np.testing.assert_allclose(y.var(axes), var / (var + 1e-5), rtol=1e-9)


@pytest.mark.parametrize("kind", ["bn", "bn_relu", "gn", "in"])
def test_nhwc_and_sliced_inputs_keep_their_layout(kind):
    """Views made by permute and slicing, as the engine makes them; values and gradients
    equal those of a C-contiguous copy, and an NHWC-memory input gives an NHWC-memory output."""
    rng = np.random.default_rng(5)
    cases = {  # name -> (base shape, the view on a Tensor, the same view on a NumPy array)
        "nhwc": ((2, 3, 5, 4), lambda t: t.permute(0, 3, 1, 2),
                 lambda a: a.transpose(0, 3, 1, 2)),
        "sliced_nhwc": ((2, 3, 5, 8), lambda t: t.permute(0, 3, 1, 2)[:, ::2],
                        lambda a: a.transpose(0, 3, 1, 2)[:, ::2]),
        "sliced": ((2, 4, 6, 5), lambda t: t[:, :, ::2], lambda a: a[:, :, ::2])}
    w, b = rng.uniform(0.5, 2, 4), rng.standard_normal(4)
    name, relu = kind.split("_")[0], kind.endswith("relu")
    for label, (shape, view, np_view) in cases.items():
        base_np = rng.standard_normal(shape)
        base = _t(base_np, "cpu", True)
        x = view(base)
        W, B = _t(w, "cpu", True), _t(b, "cpu", True)
        y = call(name, x, W, B, groups=2, relu=relu)
        ref = norm_ref(name, np.ascontiguousarray(np_view(base_np)), w, b, groups=2,
                       relu=relu)[0]
        np.testing.assert_allclose(y.numpy(), ref, rtol=1e-10, atol=1e-12, err_msg=label)
        if label == "nhwc":
            assert not x.array.flags.c_contiguous
            assert y.array.transpose(0, 2, 3, 1).flags.c_contiguous  # NHWC memory kept
        g = rng.standard_normal(y.shape)
        y.backward(_t(g, "cpu"))
        # the same gradients as a C-contiguous copy of the input
        x2 = _t(np.ascontiguousarray(np_view(base_np)), "cpu", True)
        W2, B2 = _t(w, "cpu", True), _t(b, "cpu", True)
        call(name, x2, W2, B2, groups=2, relu=relu).backward(_t(g, "cpu"))
        expected = np.zeros(shape)
        np_view(expected)[...] = x2.grad.numpy()
        for a, c in ((base.grad.numpy(), expected), (W.grad.numpy(), W2.grad.numpy()),
                     (B.grad.numpy(), B2.grad.numpy())):
            np.testing.assert_allclose(a, c, rtol=1e-10, atol=1e-12, err_msg=label)


def test_float32_statistics_are_accurate_on_a_large_mean():
    rng = np.random.default_rng(6)
    # 32768 elements: the parallel float32 kernels, which the other float32 tests compile too
    x = (1000.0 + rng.standard_normal((1024, 4, 8))).astype(np.float32)
    for view in (tl.tensor(x), tl.tensor(x.transpose(0, 2, 1)).permute(0, 2, 1)):
        y = F.batch_norm(view, None, None, training=True).numpy()
        ref = norm_ref("bn", x.astype(np.float64))[0]
        np.testing.assert_allclose(y, ref, atol=2e-3)  # naive E[x^2]-E[x]^2 in f32: garbage


def grad_ref(kind, x, w, groups, relu, upstream):
    """(dx, dw) of sum(norm(x) * upstream) in NumPy: per group, with g the upstream gradient
    (masked by the ReLU) and h = g * w, dx = rstd * (h - mean(h) - xhat * mean(h * xhat)).
    The upstream must vary: for a constant one, batch and instance norm's dx and dw are 0."""
    y, _, _ = norm_ref(kind, x, w, None, groups, relu=relu)
    g = upstream * (y > 0) if relu else upstream
    shape = x.shape[-2:] if kind == "ln" else (1, x.shape[1]) + (1,) * (x.ndim - 2)
    h = g * w.reshape(shape)
    if kind == "gn":
        xs, hs, axes = x.reshape(x.shape[0], groups, -1), h.reshape(x.shape[0], groups, -1), (2,)
    else:
        xs, hs = x, h
        axes = {"bn": (0,) + tuple(range(2, x.ndim)), "in": tuple(range(2, x.ndim)),
                "ln": (x.ndim - 2, x.ndim - 1)}[kind]
    m, v = xs.mean(axes, keepdims=True), xs.var(axes, keepdims=True)
    rstd = 1 / np.sqrt(v + 1e-5)
    xhat = (xs - m) * rstd
    dx = rstd * (hs - hs.mean(axes, keepdims=True)
                 - xhat * (hs * xhat).mean(axes, keepdims=True))
    param_axes = tuple(range(x.ndim - 2)) if kind == "ln" else (0,) + tuple(range(2, x.ndim))
    return dx.reshape(x.shape), (g * xhat.reshape(x.shape)).sum(param_axes)


@pytest.mark.parametrize("kind", ["bn", "bn_relu", "ln", "gn", "in"])
def test_parallel_path_on_large_float32_input(kind):
    """(8, 16, 16, 16) has 32768 elements: the parallel kernels, in both memory layouts,
    against NumPy in float64."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((8, 16, 16, 16)).astype(np.float32)
    name, relu = kind.split("_")[0], kind.endswith("relu")
    w = rng.uniform(0.5, 2, (16, 16) if name == "ln" else 16).astype(np.float32)
    upstream = rng.standard_normal(x.shape).astype(np.float32)  # fixed, random: see grad_ref
    ref, _, _ = norm_ref(name, x.astype(np.float64), w, groups=4, relu=relu)
    dx_ref, dw_ref = grad_ref(name, x.astype(np.float64), w.astype(np.float64), 4, relu,
                              upstream.astype(np.float64))
    # the gradients are far from 0, so a kernel returning zeros fails the checks below
    assert np.abs(dx_ref).mean() > 0.1 and np.abs(dw_ref).mean() > 1.0
    for nhwc in (False, True):
        xt = tl.tensor(x.transpose(0, 2, 3, 1) if nhwc else x, requires_grad=True)
        wt = tl.tensor(w, requires_grad=True)
        y = call(name, xt.permute(0, 3, 1, 2) if nhwc else xt, wt, None, groups=4, relu=relu)
        np.testing.assert_allclose(y.numpy(), ref, rtol=1e-4, atol=1e-4)
        (y * tl.tensor(upstream)).sum().backward()
        dx = xt.grad.numpy().transpose(0, 3, 1, 2) if nhwc else xt.grad.numpy()
        np.testing.assert_allclose(dx, dx_ref, atol=1e-4)
        np.testing.assert_allclose(wt.grad.numpy(), dw_ref, rtol=1e-4, atol=1e-2)


@pytest.mark.parametrize("kind", ["bn", "bn_relu", "ln", "gn", "in"])
def test_grad_ref_matches_torch(kind):
    """The NumPy reference of the parallel-path test, checked against torch's autograd."""
    rng = np.random.default_rng(11)
    x, upstream = rng.standard_normal((3, 4, 5, 6)), rng.standard_normal((3, 4, 5, 6))
    name, relu = kind.split("_")[0], kind.endswith("relu")
    w = rng.uniform(0.5, 2, (5, 6) if name == "ln" else 4)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    TF = torch.nn.functional
    y = {"bn": lambda: TF.batch_norm(xt, None, None, wt, None, training=True),
         "ln": lambda: TF.layer_norm(xt, (5, 6), wt),
         "gn": lambda: TF.group_norm(xt, 2, wt),
         "in": lambda: TF.instance_norm(xt, weight=wt)}[name]()
    (torch.relu(y) if relu else y).backward(torch.tensor(upstream))
    dx_ref, dw_ref = grad_ref(name, x, w, 2, relu, upstream)
    np.testing.assert_allclose(dx_ref, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dw_ref, wt.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["bn_relu", "ln", "gn"])
def test_cpu_and_cuda_agree_beyond_one_block(kind):
    """(2, 2, 130): groups of 260 elements (BN, GN: a full block looping twice), a 520-thread
    apply launch; LN's channels-last memory. (IN shares GN's per-sample path.)"""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 2, 130)) * 3 + 1
    name, relu = kind.split("_")[0], kind.endswith("relu")
    if name == "ln":
        x = x.reshape(2, 26, 10)
    w = rng.uniform(0.5, 2, x.shape[-2:] if name == "ln" else 2)
    g = rng.standard_normal(x.shape)
    results = []
    for device in ("cpu", "cuda"):
        xt, wt, bt = _t(x, device, True), _t(w, device, True), _t(w * 0.1, device, True)
        y = call(name, xt, wt, bt, groups=2 if name == "gn" else 1, relu=relu)
        y.backward(_t(g, device))
        results.append([y.numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()])
    for a, c in zip(*results):
        np.testing.assert_allclose(a, c, rtol=1e-9, atol=1e-10)


@device_param
def test_running_stats_update_in_place_outside_the_graph(device):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4, 2, 3)) * 2 + 1
    rm, rv = _t(np.zeros(2), device), _t(np.ones(2), device)
    arrays, versions = (rm.array, rv.array), (rm.version, rv.version)
    y = F.batch_norm(_t(x, device, True), rm, rv, training=True, momentum=0.25)
    assert (rm.array, rv.array) == arrays and rm.version == versions[0] + 1
    assert rm._ctx is None and not rm.requires_grad and y._ctx is not None
    mean, var = x.mean((0, 2)), x.var((0, 2), ddof=1)  # unbiased in the running average
    np.testing.assert_allclose(rm.numpy(), 0.25 * mean, rtol=1e-12)
    np.testing.assert_allclose(rv.numpy(), 0.75 + 0.25 * var, rtol=1e-12)
    rm2, rv2 = _t(np.zeros(2), device), _t(np.ones(2), device)
    F.instance_norm(_t(x, device), rm2, rv2, momentum=0.5)
    np.testing.assert_allclose(rm2.numpy(), 0.5 * x.mean(2).mean(0), rtol=1e-12)
    np.testing.assert_allclose(rv2.numpy(), 0.5 + 0.5 * x.var(2, ddof=1).mean(0), rtol=1e-12)


def test_graph_has_one_node():
    x = tl.tensor(np.ones((2, 3)) + np.arange(6).reshape(2, 3), requires_grad=True)
    w = tl.tensor(np.ones(3), requires_grad=True)
    y = F.batch_norm(x, None, None, w, training=True, activation="relu")
    assert type(y._ctx).__name__ == "BatchNorm"
    assert all(e is None or e[0] is None for e in y._ctx.edges)  # straight to the leaves


def test_errors():
    x = tl.tensor(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="batch_norm: expected more than 1 value per channel"):
        F.batch_norm(tl.tensor(np.ones((1, 3))), None, None, training=True)
    with pytest.raises(ValueError, match=r"batch_norm: expected weight of shape \(3,\)"):
        F.batch_norm(x, None, None, tl.tensor(np.ones(2)), training=True)
    with pytest.raises(ValueError, match="running_mean and running_var are required"):
        F.batch_norm(x, None, None)
    with pytest.raises(ValueError, match="activation must be None or 'relu'"):
        F.batch_norm(x, None, None, training=True, activation="gelu")
    with pytest.raises(ValueError, match=r"group_norm: expected the number of channels \(3\)"):
        F.group_norm(x, 2)
    with pytest.raises(ValueError, match="layer_norm: expected an input whose last dims"):
        F.layer_norm(x, (3,))
    with pytest.raises(ValueError, match="instance_norm: expected more than 1 spatial"):
        F.instance_norm(tl.tensor(np.ones((2, 3, 1))))
    with pytest.raises(TypeError, match="batch_norm: expected a float32 or float64 input"):
        F.batch_norm(tl.tensor(np.ones((2, 3), np.int64)), None, None, training=True)
    with pytest.raises(TypeError, match="expected weight of dtype float64"):
        F.layer_norm(x, (4,), tl.tensor(np.ones(4), dtype=tl.float32))
