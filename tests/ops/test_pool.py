"""Pooling ops (ops/pool.py, kernels/*/pool.py): forward values and max indices against NumPy
references written here from PyTorch's definitions, gradients against centred differences on
cpu and cuda, the CPU layouts (NHWC-strided and sliced inputs, outputs and input gradients that
keep NHWC memory, both sides of the parallel threshold), CPU/CUDA agreement on a launch of more
than one block, the fractional pooling sequence, and the errors.

Max-pooling gradchecks use distinct values 0.1 apart (a shuffled grid), so no window has a
near-tie that centred differences would straddle."""
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import tinygrad_lite as tl
from helpers import assert_gradcheck, device_param
from tinygrad_lite.kernels import cpu as cpu_backend
from tinygrad_lite.nn import functional as F
from tinygrad_lite.ops import pool as P


# ----- NumPy references -----
def out_size(n, k, s, p, d, ceil_mode):
    span = n + 2 * p - d * (k - 1) - 1
    o = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (o - 1) * s >= n + p:  # the last window may not start in the padding
        o -= 1
    return o


def max_pool_ref(x, k, s, p, d, ceil_mode):
    """Max and first argmax (row-major in the window, h * W + w) of every window; -inf pad."""
    N, C, H, W = x.shape
    OH, OW = (out_size(x.shape[2 + a], k[a], s[a], p[a], d[a], ceil_mode) for a in (0, 1))
    out, idx = np.empty((N, C, OH, OW)), np.empty((N, C, OH, OW), np.int64)
    for i in range(OH):
        for j in range(OW):
            best, arg = np.full((N, C), -np.inf), np.full((N, C), -1)
            for a in range(k[0]):
                for b in range(k[1]):
                    h, w = i * s[0] - p[0] + a * d[0], j * s[1] - p[1] + b * d[1]
                    if 0 <= h < H and 0 <= w < W:
                        better = (arg < 0) | (x[:, :, h, w] > best)
                        best = np.where(better, x[:, :, h, w], best)
                        arg = np.where(better, h * W + w, arg)
            out[:, :, i, j], idx[:, :, i, j] = best, arg
    return out, idx


def avg_pool_windows(shape, k, s, p, ceil_mode, count_include_pad, divisor_override):
    """(output shape, [(i, j, h0, h1, w0, w1, divisor)]) as PyTorch's avg_pool2d computes
    them: the window clipped to the input plus padding gives the padded size, then to the
    input."""
    H, W = shape[-2:]
    OH, OW = (out_size(shape[-2 + a], k[a], s[a], p[a], 1, ceil_mode) for a in (0, 1))
    windows = []
    for i in range(OH):
        for j in range(OW):
            h0, w0 = i * s[0] - p[0], j * s[1] - p[1]
            h1, w1 = min(h0 + k[0], H + p[0]), min(w0 + k[1], W + p[1])
            padded = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
            div = divisor_override or (padded if count_include_pad else (h1 - h0) * (w1 - w0))
            windows.append((i, j, h0, h1, w0, w1, div))
    return (OH, OW), windows


def avg_pool_ref(x, *args):
    (OH, OW), windows = avg_pool_windows(x.shape, *args)
    out = np.zeros(x.shape[:2] + (OH, OW))
    for i, j, h0, h1, w0, w1, div in windows:
        out[:, :, i, j] = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / div
    return out


def avg_pool_ref_backward(shape, g, *args):
    dx = np.zeros(shape)
    for i, j, h0, h1, w0, w1, div in avg_pool_windows(shape, *args)[1]:
        dx[:, :, h0:h1, w0:w1] += g[:, :, i, j, None, None] / div
    return dx


def max_pool_ref_backward(shape, g, idx):
    N, C, H, W = shape
    dx = np.zeros((N, C, H * W))
    n, c = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    for i in range(g.shape[2]):
        for j in range(g.shape[3]):
            np.add.at(dx, (n, c, idx[:, :, i, j]), g[:, :, i, j])
    return dx.reshape(shape)


def adaptive_ref(x, oh, ow, reduce):
    H, W = x.shape[-2:]
    out = np.empty(x.shape[:-2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            h0, h1 = math.floor(i * H / oh), math.ceil((i + 1) * H / oh)
            w0, w1 = math.floor(j * W / ow), math.ceil((j + 1) * W / ow)
            out[..., i, j] = reduce(x[..., h0:h1, w0:w1], axis=(-2, -1))
    return out


def fractional_sequence(u, n, k, o):
    """PyTorch's generate_intervals."""
    if o == 1:
        return [n - k]
    alpha = (n - k) / (o - 1)
    return [int((i + u) * alpha) - int(u * alpha) for i in range(o - 1)] + [n - k]


def fractional_ref(x, k, oh, ow, samples):
    N, C = x.shape[:2]
    out = np.empty((N, C, oh, ow))
    for n in range(N):
        for c in range(C):
            hs = fractional_sequence(samples[n, c, 1], x.shape[2], k[0], oh)
            ws = fractional_sequence(samples[n, c, 0], x.shape[3], k[1], ow)
            for i in range(oh):
                for j in range(ow):
                    out[n, c, i, j] = x[n, c, hs[i]:hs[i] + k[0], ws[j]:ws[j] + k[1]].max()
    return out


# ----- strategies -----
def distinct(seed, shape):
    """Values 0.1 apart in a random order: no near-ties anywhere."""
    size = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(size) - size / 2).reshape(shape) / 10


@st.composite
def sliding_case(draw, device, avg=False):
    """(input shape, kernel, stride, padding, dilation, ceil_mode) with an output of at least
    one element; tiny on cuda (the simulator runs every thread in Python)."""
    cuda = device == "cuda"
    side = 3 if cuda else 7
    shape = (draw(st.integers(1, 1 if cuda else 2)), draw(st.integers(1, 2 if cuda else 3)),
             draw(st.integers(1, side)), draw(st.integers(1, side)))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = (1, 1) if avg else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    for a in (0, 1):
        assume(d[a] * (k[a] - 1) + 1 <= shape[2 + a] + 2 * p[a])
    return shape, k, s, p, d, draw(st.booleans())


def tensor(a, device="cpu", dtype=tl.float64, requires_grad=False):
    return tl.Tensor(a, dtype=dtype, device=device, requires_grad=requires_grad)


# ----- forward values -----
@given(case=sliding_case("cpu"), seed=st.integers(0, 2**16))
def test_max_pool2d_matches_reference(case, seed):
    shape, k, s, p, d, ceil_mode = case
    x = np.random.default_rng(seed).integers(-3, 4, shape).astype(np.float64)  # many ties
    out, idx = F.max_pool2d(tensor(x), k, s, p, d, ceil_mode, return_indices=True)
    ref, ref_idx = max_pool_ref(x, k, s, p, d, ceil_mode)
    np.testing.assert_array_equal(out.numpy(), ref)
    np.testing.assert_array_equal(idx.numpy(), ref_idx)  # ties: the first maximal element
    assert idx.dtype == tl.int64 and not idx.requires_grad


@given(case=sliding_case("cpu", avg=True), include_pad=st.booleans(),
       divisor=st.sampled_from([None, None, 3, -2]), seed=st.integers(0, 2**16))
def test_avg_pool2d_matches_reference(case, include_pad, divisor, seed):
    shape, k, s, p, _, ceil_mode = case
    x = np.random.default_rng(seed).standard_normal(shape)
    out = F.avg_pool2d(tensor(x), k, s, p, ceil_mode, include_pad, divisor)
    np.testing.assert_allclose(out.numpy(), avg_pool_ref(x, k, s, p, ceil_mode, include_pad,
                                                         divisor), rtol=1e-12, atol=1e-12)


@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 7), st.integers(1, 7)),
       size=st.tuples(st.integers(1, 8), st.integers(1, 8)), seed=st.integers(0, 2**16))
def test_adaptive_pools_match_reference(shape, size, seed):
    """Also unbatched (C, H, W) inputs, and output sizes larger than the input."""
    x = np.random.default_rng(seed).standard_normal(shape)
    np.testing.assert_allclose(F.adaptive_avg_pool2d(tensor(x), size).numpy(),
                               adaptive_ref(x, *size, np.mean), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(F.adaptive_max_pool2d(tensor(x), size).numpy(),
                                  adaptive_ref(x, *size, np.max))


def test_adaptive_output_size_forms():
    x = tensor(np.random.default_rng(0).standard_normal((1, 2, 5, 6)))
    assert F.adaptive_avg_pool2d(x, 3).shape == (1, 2, 3, 3)
    assert F.adaptive_avg_pool2d(x, (None, 4)).shape == (1, 2, 5, 4)
    assert F.adaptive_max_pool2d(x, [2, None]).shape == (1, 2, 2, 6)
    np.testing.assert_allclose(F.adaptive_avg_pool2d(x, 1).numpy(),
                               x.numpy().mean(axis=(2, 3), keepdims=True))


@given(shape=st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(2, 9),
                       st.integers(2, 9)),
       k=st.tuples(st.integers(1, 3), st.integers(1, 3)), data=st.data())
def test_fractional_max_pool2d_matches_reference(shape, k, data):
    assume(k[0] <= shape[2] and k[1] <= shape[3])
    oh = data.draw(st.integers(1, shape[2] - k[0] + 1))
    ow = data.draw(st.integers(1, shape[3] - k[1] + 1))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x, u = rng.standard_normal(shape), rng.random(shape[:2] + (2,))
    out = F.fractional_max_pool2d(tensor(x), k, (oh, ow), _random_samples=tensor(u))
    np.testing.assert_array_equal(out.numpy(), fractional_ref(x, k, oh, ow, u))


def test_unbatched_inputs_and_int_arguments():
    x = np.random.default_rng(1).standard_normal((3, 6, 5))
    out, idx = F.max_pool2d(tensor(x), 2, return_indices=True)
    ref, ref_idx = max_pool_ref(x[None], (2, 2), (2, 2), (0, 0), (1, 1), False)
    np.testing.assert_array_equal(out.numpy(), ref[0])
    np.testing.assert_array_equal(idx.numpy(), ref_idx[0])
    np.testing.assert_allclose(F.avg_pool2d(tensor(x), 3, 1, 1).numpy(), avg_pool_ref(
        x[None], (3, 3), (1, 1), (1, 1), False, True, None)[0])
    u = np.full((1, 3, 2), 0.5)
    np.testing.assert_array_equal(
        F.fractional_max_pool2d(tensor(x), 2, output_ratio=0.5, _random_samples=u).numpy(),
        fractional_ref(x[None], (2, 2), 3, 2, u)[0])


def test_max_pool_propagates_nan_and_handles_all_inf_windows():
    x = np.array([[[[1.0, np.nan, -np.inf, -np.inf], [0.0, 2.0, -np.inf, -np.inf]]]])
    out, idx = F.max_pool2d(tensor(x), 2, return_indices=True)
    assert np.isnan(out.numpy()[0, 0, 0, 0]) and idx.numpy()[0, 0, 0, 0] == 1
    assert out.numpy()[0, 0, 0, 1] == -np.inf and idx.numpy()[0, 0, 0, 1] == 2


# ----- gradients -----
# The CUDA simulator runs every thread of every launch in Python, and a gradcheck launches the
# op twice per input element: on cuda, tiny inputs and a few examples.
EXAMPLES = {"cpu": 15, "cuda": 4}


@device_param
def test_max_pool2d_gradcheck(device):
    @settings(max_examples=EXAMPLES[device])
    @given(data=st.data())
    def check(data):
        shape, k, s, p, d, ceil_mode = data.draw(sliding_case(device))
        x = distinct(data.draw(st.integers(0, 2**16)), shape)
        # a dilated window may hold only padding: its -inf output has no derivative to check
        # (test_windows_of_padding_only covers it)
        assume(np.isfinite(max_pool_ref(x, k, s, p, d, ceil_mode)[0]).all())
        assert_gradcheck(lambda t: F.max_pool2d(t, k, s, p, d, ceil_mode), [x], device)
    check()


@device_param
def test_avg_pool2d_gradcheck(device):
    @settings(max_examples=EXAMPLES[device])
    @given(data=st.data())
    def check(data):
        shape, k, s, p, _, ceil_mode = data.draw(sliding_case(device, avg=True))
        include_pad, divisor = data.draw(st.booleans()), data.draw(st.sampled_from([None, 2]))
        x = np.random.default_rng(data.draw(st.integers(0, 2**16))).standard_normal(shape)
        assert_gradcheck(lambda t: F.avg_pool2d(t, k, s, p, ceil_mode, include_pad, divisor),
                         [x], device)
    check()


@device_param
def test_adaptive_and_fractional_gradcheck(device):
    side, batch = (3, 1) if device == "cuda" else (6, 2)

    @settings(max_examples=EXAMPLES[device] // 2)
    @given(data=st.data())
    def check(data):
        shape = (data.draw(st.integers(1, batch)), 2, data.draw(st.integers(2, side)),
                 data.draw(st.integers(2, side)))
        size = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
        seed = data.draw(st.integers(0, 2**16))
        x, u = distinct(seed, shape), np.random.default_rng(seed).random(shape[:2] + (2,))
        assert_gradcheck(lambda t: F.adaptive_avg_pool2d(t, size), [x], device)
        assert_gradcheck(lambda t: F.adaptive_max_pool2d(t, size), [x], device)
        out = (shape[2] - 1, shape[3] - 1)  # kernel 2: overlapping windows
        assert_gradcheck(lambda t: F.fractional_max_pool2d(t, 2, out, _random_samples=u), [x],
                         device)
    check()


@device_param
def test_max_gradient_goes_to_the_first_maximal_element(device):
    x = tensor(np.ones((1, 1, 3, 3)), device, requires_grad=True)
    F.max_pool2d(x, 2, stride=1).sum().backward()  # every window is a tie
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])


@device_param
def test_windows_of_padding_only(device):
    """kernel 2, dilation 2, padding 1 on a 1x1 input: the one window's taps (-1 and 1) are
    both padding, so the output is -inf with no index, and no gradient flows."""
    x = tensor(np.ones((1, 1, 1, 1)), device, requires_grad=True)
    out, idx = F.max_pool2d(x, 2, 1, 1, dilation=2, return_indices=True)
    assert out.numpy().tolist() == [[[[-np.inf]]]] and idx.numpy().tolist() == [[[[-1]]]]
    out.sum().backward()
    assert x.grad.numpy().tolist() == [[[[0.0]]]]


# ----- CPU layouts and the parallel threshold -----
def nhwc(a):
    """An NCHW-shaped tensor over NHWC memory, as the conv returns its activations."""
    return tl.Tensor(np.ascontiguousarray(a.transpose(0, 2, 3, 1)), dtype=a.dtype).permute(
        0, 3, 1, 2)


def nhwc_strides(shape):
    N, C, H, W = shape
    return (H * W * C, 1, W * C, C)


@pytest.mark.parametrize("shape", [(2, 3, 7, 6), (2, 16, 32, 32)],
                         ids=["serial", "parallel"])  # 2*16*32*32 = 2**15: the parallel twin
def test_nhwc_input_gives_nhwc_output_and_gradient(shape):
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    g = np.random.default_rng(3).standard_normal(shape[:2] + (shape[2] // 2, shape[3] // 2))
    g = g.astype(np.float32)
    for t in (nhwc(x), tl.Tensor(x)):
        channels_last = t.stride(1) == 1
        out, idx = F.max_pool2d(t, 2, return_indices=True)
        ref, ref_idx = max_pool_ref(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
        np.testing.assert_array_equal(out.numpy(), ref.astype(np.float32))
        np.testing.assert_array_equal(idx.numpy(), ref_idx)
        if channels_last:
            assert out.stride() == idx.stride() == nhwc_strides(out.shape)
        else:
            assert out.array.flags.c_contiguous and idx.array.flags.c_contiguous
        # the input gradient comes back in the input's layout
        dx = cpu_backend.pool2d_backward(g, shape, idx.array, P._sliding_plan(
            "t", shape, (2, 2), (2, 2), (0, 0), (1, 1), False, False, True, None), True,
            channels_last)
        assert dx.strides == t.array.strides
        np.testing.assert_array_equal(dx, max_pool_ref_backward(shape, g, ref_idx))
        args = ((3, 3), (2, 2), (1, 1), False, True, None)
        avg = F.avg_pool2d(t, *args[:3])
        np.testing.assert_allclose(avg.numpy(), avg_pool_ref(x.astype(np.float64), *args),
                                   rtol=1e-5, atol=1e-6)
        assert avg.stride() == nhwc_strides(avg.shape) if channels_last else \
            avg.array.flags.c_contiguous
        leaf = tensor(x, dtype=tl.float32, requires_grad=True)
        src = leaf.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2) if channels_last \
            else leaf
        ga = np.random.default_rng(4).standard_normal(avg.shape).astype(np.float32)
        (F.avg_pool2d(src, *args[:3]) * tl.Tensor(ga)).sum().backward()
        np.testing.assert_allclose(leaf.grad.numpy(), avg_pool_ref_backward(shape, ga, *args),
                                   rtol=1e-5, atol=1e-6)
        dxa = cpu_backend.pool2d_backward(ga, shape, None, P._sliding_plan(
            "t", shape, (3, 3), (2, 2), (1, 1), (1, 1), False, True, True, None), False,
            channels_last)
        assert dxa.strides == t.array.strides
        np.testing.assert_allclose(dxa, leaf.grad.numpy(), rtol=1e-6)


@given(case=sliding_case("cpu"), avg=st.booleans(), include_pad=st.booleans(),
       seed=st.integers(0, 2**16))
def test_nhwc_inputs_match_the_references(case, avg, include_pad, seed):
    """The channels-inner loops (NHWC memory, C > 1) against the references, forward and
    backward, with dilation, padding and ceil_mode."""
    shape, k, s, p, d, ceil_mode = case
    assume(shape[1] > 1)
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, shape).astype(np.float64)  # ties: the first maximum must win
    leaf = nhwc(x).detach().requires_grad_()
    if avg:
        args = (k, s, p, ceil_mode, include_pad, None)
        out = F.avg_pool2d(leaf, *args)
        g = rng.standard_normal(out.shape)
        out.backward(tl.Tensor(g, dtype=tl.float64))
        np.testing.assert_allclose(out.numpy(), avg_pool_ref(x, *args), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(leaf.grad.numpy(), avg_pool_ref_backward(shape, g, *args),
                                   rtol=1e-12, atol=1e-12)
    else:
        out, idx = F.max_pool2d(leaf, k, s, p, d, ceil_mode, return_indices=True)
        ref, ref_idx = max_pool_ref(x, k, s, p, d, ceil_mode)
        assume(np.isfinite(ref).all())
        g = rng.standard_normal(out.shape)
        out.backward(tl.Tensor(g, dtype=tl.float64))
        np.testing.assert_array_equal(out.numpy(), ref)
        np.testing.assert_array_equal(idx.numpy(), ref_idx)
        np.testing.assert_allclose(leaf.grad.numpy(), max_pool_ref_backward(shape, g, ref_idx),
                                   rtol=1e-12, atol=1e-12)
    assert out.stride(1) == 1


def test_nhwc_memory_with_size_one_dims_stays_nhwc():
    """W = 1 (or H = 1) leaves NHWC memory NHWC: size-1 dims have no meaningful stride."""
    for shape in [(1, 2, 2, 1), (2, 3, 1, 4)]:
        x = np.random.default_rng(12).standard_normal(shape)
        out = F.max_pool2d(nhwc(x), 1)
        assert out.stride() == nhwc_strides(shape)
        np.testing.assert_array_equal(out.numpy(), x)


def test_sliced_inputs_are_read_as_they_are():
    base = np.random.default_rng(5).standard_normal((2, 9, 8, 3))  # NHWC memory
    views = [nhwc(base.transpose(0, 3, 1, 2))[:, :, 1:, ::2],   # NHWC, not dense
             tl.Tensor(base)[:, :2, 1:7, :].permute(0, 1, 2, 3)]  # NCHW, not dense
    for t in views:
        x = t.numpy()
        out = F.max_pool2d(t, (2, 3), (1, 2), (1, 1))
        np.testing.assert_array_equal(
            out.numpy(), max_pool_ref(x, (2, 3), (1, 2), (1, 1), (1, 1), False)[0])
        np.testing.assert_allclose(F.adaptive_avg_pool2d(t, (3, 2)).numpy(),
                                   adaptive_ref(x, 3, 2, np.mean), rtol=1e-12)
    assert F.max_pool2d(views[0], 2).stride(1) == 1  # NHWC memory stays NHWC


def test_fractional_pool_reads_nhwc_inputs():
    x = np.random.default_rng(6).standard_normal((2, 4, 7, 6))
    u = np.random.default_rng(7).random((2, 4, 2))
    out = F.fractional_max_pool2d(nhwc(x), 2, (5, 4), _random_samples=u)
    np.testing.assert_array_equal(out.numpy(), fractional_ref(x, (2, 2), 5, 4, u))
    assert out.stride(1) == 1


# ----- CPU and CUDA agree -----
def test_cpu_and_cuda_agree_on_a_multi_block_launch():
    """(1, 2, 24, 24) pooled 2x2 has 288 outputs: more than one 256-thread block; the
    fractional case (with the same samples on both) is small."""
    x, u = distinct(8, (1, 2, 24, 24)), np.random.default_rng(9).random((1, 2, 2))
    cases = [(lambda t: F.max_pool2d(t, 2, return_indices=True), x),
             (lambda t: (F.avg_pool2d(t, 3, 2, 1, ceil_mode=True, count_include_pad=False),),
              x[:, :, :7, :6]),
             (lambda t: F.fractional_max_pool2d(t, 3, output_size=(4, 3), return_indices=True,
                                                _random_samples=u), x[:, :, :6, :5])]
    for fn, a in cases:
        results = []
        for device in ("cpu", "cuda"):
            t = tensor(a, device, requires_grad=True)
            out = fn(t)
            g = np.random.default_rng(10).standard_normal(out[0].shape)
            out[0].backward(tensor(g, device))
            results.append([o.numpy() for o in out] + [t.grad.numpy()])
        for on_cpu, on_cuda in zip(*results):
            np.testing.assert_allclose(on_cpu, on_cuda, rtol=1e-12, atol=1e-12)


# ----- deterministic CUDA backward (tl.use_deterministic_algorithms) -----
@pytest.fixture
def deterministic():
    from tinygrad_lite import determinism
    before = determinism.are_deterministic_algorithms_enabled()
    determinism.use_deterministic_algorithms(True)
    yield determinism
    determinism.use_deterministic_algorithms(before)


class _NoScatter:
    """Stands in for the atomic scatter kernel: launching it fails the test."""

    def __getitem__(self, config):
        raise AssertionError("the atomic-add scatter ran with deterministic algorithms on")


@pytest.mark.parametrize("dtype", [tl.float32, tl.float64])
def test_deterministic_cuda_backward_gathers_the_cpu_gradients_bit_for_bit(
        deterministic, monkeypatch, dtype):
    """Overlapping windows (stride < kernel, dilation, adaptive and fractional regions), one
    shared argmax for many windows, and (1, 2, 12, 12) = 288 input elements: a gather over
    more than one 256-thread block. The gather adds in the CPU's order, so the float32 sums
    round the same way."""
    from tinygrad_lite.kernels.cuda import pool as cuda_pool
    monkeypatch.setattr(cuda_pool, "_backward", _NoScatter())
    x, u = distinct(20, (1, 2, 12, 12)), np.random.default_rng(21).random((1, 2, 2))
    cases = {
        "max 3/1 pad 1": lambda t: F.max_pool2d(t, 3, 1, 1),
        "max 3/1 dilation 2": lambda t: F.max_pool2d(t, 3, 1, 0, dilation=2),
        "avg 3/1": lambda t: F.avg_pool2d(t, 3, 1),
        "avg 3/2 pad 1 ceil": lambda t: F.avg_pool2d(t, 3, 2, 1, ceil_mode=True,
                                                     count_include_pad=False),
        "adaptive avg 5": lambda t: F.adaptive_avg_pool2d(t, 5),
        "adaptive max 7": lambda t: F.adaptive_max_pool2d(t, 7),
        "fractional": lambda t: F.fractional_max_pool2d(t, 3, output_size=(8, 7),
                                                         _random_samples=u),
    }
    for name, fn in cases.items():
        grads = []
        for device in ("cpu", "cuda"):
            t = tensor(x, device, dtype, requires_grad=True)
            out = fn(t)
            g = np.random.default_rng(22).standard_normal(out.shape)
            out.backward(tensor(g, device, dtype))
            grads.append(t.grad.numpy())
        assert np.abs(grads[0]).max() > 0, name
        np.testing.assert_array_equal(grads[1], grads[0], err_msg=name)


def test_the_determinism_flag_is_a_bool_and_off_by_default():
    from tinygrad_lite import determinism
    assert determinism.are_deterministic_algorithms_enabled() is False
    with pytest.raises(TypeError, match="use_deterministic_algorithms: expected True or "
                                        "False, got 1"):
        determinism.use_deterministic_algorithms(1)


def test_covering_ranges_are_the_outputs_whose_windows_hold_each_input():
    from tinygrad_lite.kernels.cuda.pool import covering_ranges
    for shape, k, s, p, d in [((9, 9), 3, 1, 1, 1), ((9, 9), 3, 2, 1, 2), ((9, 9), 2, 3, 0, 1)]:
        starts, counts = P._sliding_plan("t", shape, (k, k), (s, s), (p, p), (d, d), False,
                                         False, True, None)[:2]
        lo, hi = covering_ranges(starts, counts, d, shape[0])
        for h in range(shape[0]):
            span = [o for o in range(starts.shape[1])
                    if starts[0, o] <= h <= starts[0, o] + (counts[0, o] - 1) * d]
            assert list(range(lo[0, h], hi[0, h])) == span, (shape, k, s, p, d, h)


# ----- fractional pooling: the sequence and its randomness -----
@given(n=st.integers(1, 40), k=st.integers(1, 4), data=st.data())
def test_fractional_regions_are_in_bounds_and_cover_the_input(n, k, data):
    assume(k <= n)
    o = data.draw(st.integers(1, n - k + 1))
    # (u within an ulp or so of 1 makes (i + u) round up to i + 1, a step of alpha + 1: the
    # generator's u in [0, 1) reaches there with probability ~1e-16, PyTorch's formula alike)
    u = np.array(data.draw(st.lists(st.floats(0, 0.999), min_size=1, max_size=4)))
    starts = P.fractional_starts(u, n, k, o)
    for row, ui in zip(starts, u):
        assert list(row) == fractional_sequence(ui, n, k, o)
        assert row[-1] + k == n and (o == 1 or row[0] == 0)
        assert np.all(row >= 0) and np.all(np.diff(row) >= 0)
        if (n - k) <= k * (o - 1):  # steps of at most k: the windows leave no gap
            assert np.all(np.diff(row) <= k)


def test_fractional_pool_is_reproducible_under_manual_seed():
    x = tensor(np.random.default_rng(11).standard_normal((2, 3, 11, 11)))
    draw = lambda: F.fractional_max_pool2d(x, 2, output_ratio=0.7, return_indices=True)
    tl.manual_seed(5)
    a, ia = draw()
    tl.manual_seed(5)
    b, ib = draw()
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(ia.numpy(), ib.numpy())
    assert a.shape == (2, 3, 7, 7)
    c, ic = draw()  # the generator moved on: other regions
    assert not np.array_equal(ia.numpy(), ic.numpy())


# ----- errors -----
@pytest.mark.parametrize("call, error, message", [
    (lambda x: F.max_pool2d(x[0, 0], 2), ValueError,
     r"max_pool2d: expected 3-D or 4-D input, .* got shape \(4, 4\)"),
    (lambda x: F.avg_pool2d(x.long(), 2), TypeError, "avg_pool2d: expected a float32"),
    (lambda x: F.max_pool2d(x.numpy(), 2), TypeError, "max_pool2d: expected input to be a Tensor"),
    (lambda x: F.max_pool2d(x, 5), ValueError, "larger than the padded input of size 4"),
    (lambda x: F.max_pool2d(x, 3, dilation=2), ValueError, "kernel of size 5"),
    (lambda x: F.max_pool2d(x, 2, padding=2), ValueError, "padding should be at most half"),
    (lambda x: F.avg_pool2d(x, 2, stride=0), ValueError, "stride must be an int >= 1"),
    (lambda x: F.max_pool2d(x, (2, 2, 2)), ValueError,
     "kernel_size must be an int >= 1 or a pair"),
    (lambda x: F.avg_pool2d(x, 2, divisor_override=0), ValueError, "divisor_override"),
    (lambda x: F.adaptive_avg_pool2d(x, 0), ValueError, "adaptive_avg_pool2d: output_size"),
    (lambda x: F.fractional_max_pool2d(x, 2), ValueError, "exactly one of output_size and"),
    (lambda x: F.fractional_max_pool2d(x, 2, 2, 0.5), ValueError, "exactly one of"),
    (lambda x: F.fractional_max_pool2d(x, 2, output_ratio=1.5), ValueError, r"in \(0, 1\)"),
    (lambda x: F.fractional_max_pool2d(x, 2, output_size=4), ValueError,
     "output height 4 with kernel size 2 needs an input height of at least 5"),
    (lambda x: F.fractional_max_pool2d(x, 2, 2, _random_samples=np.zeros((1, 2))),
     ValueError, r"_random_samples of shape \(2, 3, 2\)"),
    (lambda x: F.max_pool2d(x[:, :, :0], 1), ValueError, "non-zero channels, height"),
])
def test_errors_name_the_op_and_what_it_got(call, error, message):
    with pytest.raises(error, match=message):
        call(tensor(np.zeros((2, 3, 4, 4))))


def test_max_pool_argmax_is_a_second_output_that_carries_no_gradient():
    """The argmax comes out of the same Function as the values, as an integer output that never
    requires grad and has no grad_fn (PyTorch's non-differentiable output); backward through
    the values sends each window's gradient to its argmax."""
    x = tl.tensor(np.arange(16.0).reshape(1, 1, 4, 4)[..., ::-1].copy(), requires_grad=True)
    out, idx = F.max_pool2d(x, 2, return_indices=True)
    assert type(out.grad_fn).__name__ == "Pool2d" and out.requires_grad
    assert not idx.requires_grad and idx.grad_fn is None and idx.dtype == tl.int64
    np.testing.assert_array_equal(idx.numpy(), [[[[4, 6], [12, 14]]]])
    (out * tl.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])).sum().backward()
    expected = np.zeros(16)
    expected[[4, 6, 12, 14]] = [1, 2, 3, 4]
    np.testing.assert_array_equal(x.grad.numpy().reshape(-1), expected)
