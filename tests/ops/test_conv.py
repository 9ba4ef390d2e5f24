"""conv2d (ops/conv.py, kernels/*/conv.py): forward against a plain NumPy convolution written
here, gradients of input, weight and bias against centred differences, on cpu and cuda, over
hypothesis-drawn shapes, strides, paddings (ints, pairs, "same", "valid"), dilations and
groups; inputs that are NCHW views over NHWC memory and sliced views; the CPU output's NHWC
memory; the im2col chunk boundary and the 1x1 fast path; CPU/CUDA agreement on a launch of
many blocks; float32 against float64; the errors.

On cuda (Numba's simulator runs every GPU thread in Python) the cases are a few tiny fixed ones,
drawn each once."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tinygrad_lite as tl
from helpers import device_param
from tinygrad_lite.kernels.cpu import conv as cpu_conv
from tinygrad_lite.ops.conv import conv2d

F64 = tl.float64


# ----- the NumPy reference -----
def conv_ref(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Direct definition: zero-pad, then for every tap (i, j) add w[:, :, i, j] times the
    strided window of the padded input, group by group."""
    two = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    (sh, sw), (dh, dw) = two(stride), two(dilation)
    O, Cg, kh, kw = w.shape
    if padding == "valid":
        pads = ((0, 0), (0, 0))
    elif padding == "same":
        th, tw = dh * (kh - 1), dw * (kw - 1)
        pads = ((th // 2, th - th // 2), (tw // 2, tw - tw // 2))
    else:
        ph, pw = two(padding)
        pads = ((ph, ph), (pw, pw))
    xp = np.pad(x, ((0, 0), (0, 0)) + pads)
    OH = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    OW = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((x.shape[0], O, OH, OW))
    Og = O // groups
    for g in range(groups):
        xg = xp[:, g * Cg:(g + 1) * Cg]
        for i in range(kh):
            for j in range(kw):
                win = xg[:, :, i * dh:i * dh + sh * (OH - 1) + 1:sh,
                         j * dw:j * dw + sw * (OW - 1) + 1:sw]
                out[:, g * Og:(g + 1) * Og] += np.einsum("nchw,oc->nohw", win,
                                                         w[g * Og:(g + 1) * Og, :, i, j])
    return out if b is None else out + b[None, :, None, None]


# ----- strategies -----
@st.composite
def conv_case(draw, max_side=5):
    """(x shape, w shape, bias?, kwargs) with the padded input at least the dilated kernel."""
    groups = draw(st.integers(1, 3))
    Cg, Og = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dilation = draw(st.sampled_from([1, 2, (1, 2)]))
    padding = draw(st.sampled_from([0, 1, 2, (0, 1), "same", "valid"]))
    stride = 1 if padding == "same" else draw(st.sampled_from([1, 2, (2, 1), 3]))
    N, H, W = draw(st.integers(1, 2)), draw(st.integers(1, max_side)), draw(
        st.integers(1, max_side))
    d = (dilation, dilation) if isinstance(dilation, int) else dilation
    p = (0, 0) if isinstance(padding, str) else (
        (padding, padding) if isinstance(padding, int) else padding)
    if padding != "same":
        assume(H + 2 * p[0] >= d[0] * (kh - 1) + 1 and W + 2 * p[1] >= d[1] * (kw - 1) + 1)
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return (N, Cg * groups, H, W), (Og * groups, Cg, kh, kw), draw(st.booleans()), kwargs


# Tiny cases for the simulator, each with one input layout: groups, stride, dilation, "same"
# with an even kernel, no bias. (On the device every array is dense: a strided view reaches
# the kernel materialised, so the layouts test the gradient's path back through the view.)
CUDA_CASES = [((1, 2, 3, 3), (2, 1, 2, 2), True, dict(stride=2, padding=1, dilation=(1, 2),
                                                      groups=2), "nchw"),
              ((1, 1, 3, 2), (2, 1, 2, 2), False, dict(padding="same"), "nhwc"),
              ((1, 2, 2, 2), (1, 2, 1, 2), True, dict(stride=(1, 2), padding=(1, 0)), "slice")]


def arrays(xs, ws, has_bias, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(xs), rng.standard_normal(ws), (
        rng.standard_normal(ws[0]) if has_bias else None)


def check_case(device, xs, ws, has_bias, kwargs, seed=0, layout="nchw"):
    """Forward against the reference, then gradcheck of every input. `layout` is how the
    input reaches conv2d: C-contiguous, an NCHW view over NHWC memory, or a sliced view of a
    bigger array."""
    x, w, b = arrays(xs, ws, has_bias, seed)
    if layout == "nhwc":  # x is handed over as NHWC memory, permuted to NCHW inside
        given_x, view = x.transpose(0, 2, 3, 1).copy(), lambda t: t.permute(0, 3, 1, 2)
    elif layout == "slice":  # x is every other row and column of a bigger array
        big = np.random.default_rng(seed + 1).standard_normal(xs[:2] + (2 * xs[2], 2 * xs[3]))
        big[:, :, ::2, 1::2] = x
        given_x, view = big, lambda t: t[:, :, ::2, 1::2]
    else:
        given_x, view = x, lambda t: t

    def fn(xt, wt, *bt):
        return conv2d(view(xt), wt, bt[0] if bt else None, **kwargs)

    inputs = [tl.tensor(a, dtype=F64, device=device) for a in (given_x, w, b) if a is not None]
    out = fn(*inputs)
    np.testing.assert_allclose(out.numpy(), conv_ref(x, w, b, **kwargs), rtol=1e-10,
                               atol=1e-12)
    if device == "cpu":  # the output is an NCHW view over NHWC memory
        assert out.array.transpose(0, 2, 3, 1).flags.c_contiguous
    result = tl.gradcheck(fn, inputs)
    assert result, result


# ----- forward and gradients -----
@given(case=conv_case(), layout=st.sampled_from(["nchw", "nhwc", "slice"]),
       seed=st.integers(0, 2 ** 16))
def test_conv2d_cpu(case, layout, seed):
    check_case("cpu", *case, seed=seed, layout=layout)


@given(case=st.sampled_from(CUDA_CASES))
def test_conv2d_cuda(case):
    check_case("cuda", *case[:4], layout=case[4])


@device_param
def test_only_the_gradients_asked_for(device):
    x, w, b = arrays((1, 2, 3, 3), (2, 2, 2, 2), True, 3)
    xt, wt = tl.tensor(x, dtype=F64, device=device), tl.tensor(w, dtype=F64, device=device,
                                                               requires_grad=True)
    bt = tl.tensor(b, dtype=F64, device=device)
    conv2d(xt, wt, bt, padding=1).sum().backward()
    assert xt.grad is None and bt.grad is None
    # d sum / d w[o, c, i, j] = sum of the input window that tap (i, j) reads
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expect = np.stack([xp[0, :, i:i + 4, j:j + 4].sum(axis=(1, 2)) for i in range(2)
                       for j in range(2)], -1).reshape(2, 2, 2)
    np.testing.assert_allclose(wt.grad.numpy(), np.broadcast_to(expect, (2, 2, 2, 2)),
                               rtol=1e-12)


def test_chunks_and_the_1x1_path(monkeypatch):
    """The batch split into several im2col chunks (one image row each) gives the same forward
    and gradients as one chunk, with and without im2col (the 1x1 stride-1 path)."""
    rng = np.random.default_rng(0)
    for ws, kwargs in (((4, 3, 3, 3), dict(padding=1, stride=(2, 1))),
                       ((4, 3, 1, 1), dict()), ((3, 1, 1, 1), dict(groups=3, bias=None))):
        x, w = rng.standard_normal((3, 3, 5, 4)), rng.standard_normal(ws)
        b = rng.standard_normal(ws[0])
        kw = dict(kwargs)
        bias = kw.pop("bias", b)
        results, proj = [], None
        for limit in (1 << 30, 1):
            monkeypatch.setattr(cpu_conv, "COLS_BYTES", limit)
            xt, wt = tl.tensor(x, requires_grad=True, dtype=F64), tl.tensor(w, requires_grad=True,
                                                                            dtype=F64)
            out = conv2d(xt, wt, None if bias is None else tl.tensor(bias, dtype=F64), **kw)
            proj = rng.standard_normal(out.shape) if proj is None else proj
            (out * tl.tensor(proj, dtype=F64)).sum().backward()
            results.append((out.numpy(), xt.grad.numpy(), wt.grad.numpy()))
        np.testing.assert_allclose(results[0][0], conv_ref(x, w, bias, **kw), rtol=1e-10)
        for a, c in zip(*results):
            np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-12)
        assert len(cpu_conv._chunks(3, 100)) == 3


def test_cpu_and_cuda_agree_on_a_launch_of_many_blocks():
    """Forward and both gradients, float32, with every GEMM grid several blocks wide (more
    than 256 simulated threads per launch)."""
    from tinygrad_lite.kernels import cuda as cuda_backend
    from tinygrad_lite.kernels.cuda import conv as cuda_conv
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 6, 6), dtype=np.float32)
    w = rng.standard_normal((6, 3, 3, 3), dtype=np.float32)
    b = rng.standard_normal(6, dtype=np.float32)
    g = rng.standard_normal((2, 6, 6, 6), dtype=np.float32)
    params = ((1, 1), (1, 1), (1, 1), 2)
    tile = cuda_conv.TILE
    assert 2 * 6 * 6 // tile * tile * tile > 256  # forward and input-gradient grids
    expect = [cpu_conv.conv2d(x, w, b, *params, (6, 6)),
              *cpu_conv.conv2d_backward(g, x, w, *params, True, True)]
    d = cuda_backend.from_numpy
    got = [cuda_conv.conv2d(d(x), d(w), d(b), *params, (6, 6)),
           *cuda_conv.conv2d_backward(d(g), d(x), d(w), *params, True, True)]
    for e, a in zip(expect, got):
        np.testing.assert_allclose(a.copy_to_host(), e, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(expect[0], conv_ref(x.astype(np.float64), w, b, padding=1,
                                                   groups=2), rtol=1e-4, atol=1e-4)


@device_param
def test_float32_close_to_float64(device):
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((2, 4, 5, 5)), rng.standard_normal((4, 2, 3, 3)), \
        rng.standard_normal(4)
    outs = [conv2d(*[tl.tensor(a, dtype=dtype, device=device) for a in (x, w, b)], padding=1,
                   groups=2) for dtype in (tl.float32, F64)]
    assert outs[0].dtype == np.float32 and outs[1].dtype == np.float64
    np.testing.assert_allclose(outs[0].numpy(), outs[1].numpy(), rtol=1e-5, atol=1e-5)


def test_unbatched_input_is_the_batch_of_one():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((3, 4, 5)), rng.standard_normal((2, 3, 2, 2))
    xt = tl.tensor(x, dtype=F64, requires_grad=True)
    out = conv2d(xt, tl.tensor(w, dtype=F64), stride=2, padding=1)
    np.testing.assert_allclose(out.numpy(), conv_ref(x[None], w, stride=2, padding=1)[0],
                               rtol=1e-12)
    out.sum().backward()
    assert xt.grad.shape == (3, 4, 5)


def test_gradient_reaches_an_nhwc_leaf():
    """A leaf stored as NHWC and viewed as NCHW gets its gradient in its own (NHWC) shape."""
    rng = np.random.default_rng(4)
    xh, w = rng.standard_normal((2, 4, 4, 3)), rng.standard_normal((2, 3, 3, 3))
    leaf = tl.tensor(xh, dtype=F64, requires_grad=True)
    conv2d(leaf.permute(0, 3, 1, 2), tl.tensor(w, dtype=F64), padding=1).sum().backward()
    xt = tl.tensor(xh.transpose(0, 3, 1, 2).copy(), dtype=F64, requires_grad=True)
    conv2d(xt, tl.tensor(w, dtype=F64), padding=1).sum().backward()
    expect = xt.grad.numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(leaf.grad.numpy(), expect, rtol=1e-12)


# ----- errors -----
def _t(*shape, dtype=F64):
    return tl.zeros(*shape, dtype=dtype)


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((_t(2, 1, 8, 8), _t(4, 3, 3, 3)), {}, ValueError,
     r"conv2d: expected input with 3 channels .* got 1 \(input shape \(2, 1, 8, 8\)\)"),
    ((_t(8, 8), _t(4, 3, 3, 3)), {}, ValueError, "expected 3-D .* or 4-D input"),
    ((_t(1, 3, 8, 8), _t(4, 3, 3)), {}, ValueError, "expected a 4-D weight"),
    ((_t(1, 4, 8, 8), _t(3, 2, 3, 3)), dict(groups=2), ValueError,
     r"out_channels \(3\) must be divisible by groups \(2\)"),
    ((_t(1, 3, 8, 8), _t(4, 1, 3, 3)), dict(groups=2), ValueError,
     "expected input with 2 channels"),
    ((_t(1, 3, 8, 8), _t(4, 3, 3, 3), _t(3)), {}, ValueError, r"bias of shape \(4,\)"),
    ((_t(1, 3, 2, 8), _t(4, 3, 3, 3)), {}, ValueError,
     "kernel size 3x3 .* larger than the padded input 2x8"),
    ((_t(1, 3, 4, 8), _t(4, 3, 3, 3)), dict(dilation=2), ValueError,
     "kernel size 5x5 .* larger than the padded input 4x8"),
    ((_t(1, 3, 8, 8), _t(4, 3, 3, 3)), dict(padding="same", stride=2), ValueError,
     "padding='same' needs stride 1"),
    ((_t(1, 3, 8, 8), _t(4, 3, 3, 3)), dict(padding="full"), ValueError, "padding must be"),
    ((_t(1, 3, 8, 8), _t(4, 3, 3, 3)), dict(padding=-1), ValueError,
     "padding must be an int >= 0"),
    ((_t(1, 3, 8, 8), _t(4, 3, 3, 3)), dict(stride=0), ValueError, "stride must be an int >= 1"),
    ((_t(1, 3, 8, 8), _t(4, 3, 3, 3)), dict(stride=(1, 2, 3)), ValueError, "stride"),
    ((_t(1, 3, 8, 8), _t(4, 3, 3, 3)), dict(groups=0), ValueError, "groups must be"),
    ((_t(1, 3, 8, 8), _t(4, 3, 3, 3, dtype=tl.float32)), {}, TypeError, "one dtype"),
    ((_t(1, 3, 8, 8, dtype=tl.int64), _t(4, 3, 3, 3)), {}, TypeError, "float32 or float64"),
    ((np.zeros((1, 3, 8, 8)), _t(4, 3, 3, 3)), {}, TypeError, "to be a Tensor"),
])
def test_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        conv2d(*args, **kwargs)


# ----- the CPU backward's paths (input gradient as an im2col of grad, weight gradient from it) --
@pytest.mark.parametrize("limit", [1 << 30, 1])
@pytest.mark.parametrize("ws, kwargs", [
    ((6, 2, 3, 3), dict(stride=2, padding=1, dilation=(1, 2), groups=3)),
    ((4, 3, 2, 3), dict(stride=(3, 1), padding=(2, 0))),       # padding past the kernel extent
    ((3, 1, 3, 3), dict(padding="same", dilation=2, groups=3)),  # depthwise
    ((4, 3, 1, 1), dict(stride=2)),
])
def test_each_gradient_alone_equals_both(monkeypatch, limit, ws, kwargs):
    """The weight gradient without the input's (from forward's im2col of x) equals the one
    computed beside the input gradient (from the im2col of grad), chunked or not, and both
    match centred differences through the full op."""
    monkeypatch.setattr(cpu_conv, "COLS_BYTES", limit)
    rng = np.random.default_rng(5)
    groups = kwargs.get("groups", 1)
    x = rng.standard_normal((3, ws[1] * groups, 7, 6))
    w = rng.standard_normal(ws)
    params = []
    out = conv2d(tl.tensor(x, dtype=F64), tl.tensor(w, dtype=F64), **kwargs)
    proj = rng.standard_normal(out.shape)
    for need_x, need_w in ((True, True), (True, False), (False, True)):
        xt = tl.tensor(x, dtype=F64, requires_grad=need_x)
        wt = tl.tensor(w, dtype=F64, requires_grad=need_w)
        (conv2d(xt, wt, **kwargs) * tl.tensor(proj, dtype=F64)).sum().backward()
        params.append((xt.grad, wt.grad))
    np.testing.assert_allclose(params[1][0].numpy(), params[0][0].numpy(), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(params[2][1].numpy(), params[0][1].numpy(), rtol=1e-12,
                               atol=1e-12)
    assert params[1][1] is None and params[2][0] is None
    # the reference: d <proj, conv(x, w)> / d w by the definition, one tap at a time
    eps = 1e-6
    flat = w.reshape(-1)
    for k in rng.choice(flat.size, 4, replace=False):
        wp, wm = flat.copy(), flat.copy()
        wp[k] += eps
        wm[k] -= eps
        num = ((conv_ref(x, wp.reshape(ws), **kwargs) - conv_ref(x, wm.reshape(ws), **kwargs))
               * proj).sum() / (2 * eps)
        np.testing.assert_allclose(params[0][1].numpy().reshape(-1)[k], num, rtol=1e-6,
                                   atol=1e-8)


@pytest.mark.parametrize("G, k, m", [(1, 5, 2), (1, 2, 5), (3, 4, 1), (2, 1, 3)])
def test_weight_product_in_either_orientation(G, k, m):
    """_weight_product computes per-group a^T b, or with swap its transpose (the larger side
    first for BLAS): both are the definition's numbers."""
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((7, G * k)), rng.standard_normal((7, G * m))
    expect = np.einsum("rgk,rgm->gkm", a.reshape(-1, G, k), b.reshape(-1, G, m))
    np.testing.assert_allclose(cpu_conv._weight_product(a, b, G, False), expect, rtol=1e-12)
    np.testing.assert_allclose(cpu_conv._weight_product(a, b, G, True),
                               expect.transpose(0, 2, 1), rtol=1e-12)


@pytest.mark.parametrize("ws, kwargs", [((5, 3, 3, 3), dict(padding=1)),
                                        ((4, 2, 1, 1), dict()),  # direct: no im2col
                                        ((6, 2, 3, 2), dict(stride=2, groups=3))])
def test_chunks_shared_among_threads_match_one_thread(monkeypatch, ws, kwargs):
    """With a budget of several threads the chunks are shared out among them (the calling
    thread and the pool take items of a few chunks in turn, BLAS single-threaded meanwhile):
    forward and both gradients are bitwise the one-thread results (the weight gradient sums
    its items in their order whoever computed them), and BLAS gets the budget back."""
    from tinygrad_lite import threads
    if threads.max_threads() < 2:
        pytest.skip("needs Numba's pool to allow 2 threads (NUMBA_NUM_THREADS >= 2)")
    monkeypatch.setattr(cpu_conv, "COLS_BYTES", 300)  # many chunks
    rng = np.random.default_rng(8)
    groups = kwargs.get("groups", 1)
    x = rng.standard_normal((3, ws[1] * groups, 7, 6))
    w = rng.standard_normal(ws)
    previous = threads.get_num_threads()

    def run(n):
        threads.set_num_threads(n)
        xt, wt = tl.tensor(x, dtype=F64, requires_grad=True), tl.tensor(w, dtype=F64,
                                                                        requires_grad=True)
        out = conv2d(xt, wt, **kwargs)
        (out * out).sum().backward()
        only_w = tl.tensor(w, dtype=F64, requires_grad=True)
        (conv2d(tl.tensor(x, dtype=F64), only_w, **kwargs) ** 2).sum().backward()
        return out.numpy(), xt.grad.numpy(), wt.grad.numpy(), only_w.grad.numpy()

    try:
        one = run(1)
        shared, again = run(2), run(2)
        blas = threads.blas_num_threads()
    finally:
        threads.set_num_threads(previous)
    for a, b, c in zip(one, shared, again):
        assert np.array_equal(b, a) and np.array_equal(c, a)
    assert blas in (None, 2)


def test_im2col_scratch_is_kept_per_thread(monkeypatch):
    """The im2col chunks live in a per-thread buffer kept between calls (no fresh pages every
    step): a second conv of the same size reuses it, and convs running in several threads at
    once, chunked, give exactly what each gives alone."""
    import threading
    monkeypatch.setattr(cpu_conv, "COLS_BYTES", 2000)  # several chunks per call
    rng = np.random.default_rng(7)
    cases = [(rng.standard_normal((4, 3, 9, 7)).astype(dt), rng.standard_normal(ws).astype(dt))
             for dt, ws in ((np.float64, (5, 3, 3, 3)), (np.float32, (2, 3, 2, 2)),
                            (np.float64, (4, 3, 3, 1)))]

    def run(x, w):
        xt, wt = tl.Tensor(x, requires_grad=True), tl.Tensor(w, requires_grad=True)
        out = conv2d(xt, wt, padding=1)
        (out * out).sum().backward()
        return out.numpy(), xt.grad.numpy(), wt.grad.numpy()

    alone = [run(x, w) for x, w in cases]
    buffer = cpu_conv._workspace.buffer
    run(*cases[0])
    assert cpu_conv._workspace.buffer is buffer
    together = [None] * len(cases)

    def worker(i):
        for _ in range(5):
            together[i] = run(*cases[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(cases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(alone, together):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)


def test_conv_in_a_forked_child_after_the_parent_used_its_threads(monkeypatch):
    """The parent's conv pool threads do not survive a fork: a child (a search's process pool
    forks) must make its own instead of queueing work for threads that do not exist, and must
    not inherit a held BLAS switch."""
    import multiprocessing
    from tinygrad_lite import threads
    if threads.max_threads() < 2 or "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs 2 threads and the fork start method")
    monkeypatch.setattr(cpu_conv, "COLS_BYTES", 2000)  # several chunks: both threads work
    previous = threads.get_num_threads()
    threads.set_num_threads(2)
    try:
        rng = np.random.default_rng(9)
        x, w = rng.standard_normal((4, 3, 9, 9)), rng.standard_normal((5, 3, 3, 3))
        expect = conv2d(tl.tensor(x), tl.tensor(w), padding=1).numpy()  # the pool exists now
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()

        def child():
            out = conv2d(tl.tensor(x), tl.tensor(w), padding=1).numpy()
            queue.put((out, threads.blas_num_threads()))

        proc = ctx.Process(target=child, daemon=True)
        proc.start()
        try:
            got, blas = queue.get(timeout=60)  # a child waiting on the parent's threads: Empty
        finally:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    finally:
        threads.set_num_threads(previous)
    np.testing.assert_allclose(got, expect, rtol=1e-12)
    assert blas in (None, 2)
