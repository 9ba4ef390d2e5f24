"""Pooling CPU kernels: max and average pooling over windows described by a host-side plan, so
that one pair of kernels serves max_pool2d, avg_pool2d, the adaptive pools and fractional max
pooling (ops/pool.py builds the plans).

Windows. `windows` = (hstart, hcount, wstart, wcount, dil_h, dil_w, hscale, wscale): output row
oh of plane p reads input rows hstart[q, oh] + i * dil_h for i < hcount[q, oh] (q = p when the
arrays have one row per plane, q = 0 when all planes share them), columns likewise; taps outside
the input are padding and are skipped (max pooling pads with -inf, average pooling with 0). An
average is the sum times hscale[0, oh] * wscale[0, ow]: every PyTorch divisor (count_include_pad,
the valid count, divisor_override, adaptive region sizes) is a product of a row and a column
factor. Planes are p = n * C + c.

Layout. The kernels see a dense (B, H, W, L) array: L "lanes" share each window. An NHWC
tensor (channels_last, the conv's output layout) is (N, H, W, C), so the inner loop runs over
the contiguous channel run and vectorises (measured: 2x2 max pooling of a (128, 32, 32, 32)
batch in NHWC memory is ~8x faster than in NCHW memory; tools/bench_pool.py); an NCHW tensor
is (N * C, H, W, 1), whose single lane walks its window with scalar accumulators, as do lanes
whose windows differ (fractional pooling). The output and the argmax are written in the same
layout (NHWC memory stays NHWC), and backward scatters into a gradient of the input's layout.
Inputs dense in neither layout (slices) are first copied to the one ops/pool.py chose. Sums
accumulate in float64 in the scalar loop and in the input's dtype in the channel loop (a
window holds a handful of terms).

Argmax. Max pooling records, per output, the flat index h * W + w within its plane of the first
maximal tap in row-major window order (NaN wins, as in PyTorch); backward adds each output's
gradient there, so ties send the whole gradient to one element. The average backward adds
g * scale to every tap. Both scatter in parallel over B (windows of one plane overlap, planes
never do), so there are no races.
"""
import math

import numpy as np

from ..plan import contiguous
from .jit import variants
from .parallel import over_items

__all__ = ["pool2d", "pool2d_backward"]


def _forward_loop(lo, hi, x, out, idx, hs, hc, ws, wc, dh, dw, hscale, wscale):
    # output rows t = b * OH + oh for lo <= t < hi
    B, H, W, L = x.shape
    OH, OW = out.shape[1], out.shape[2]
    shared = hs.shape[0] == 1  # one window grid for every plane
    for t in range(lo, hi):
        b, oh = t // OH, t % OH
        for ow in range(OW):
            if PER_LANE:
                for lane in range(L):
                    q = 0 if shared else b * L + lane
                    best, arg, total = -np.inf, -1, 0.0
                    for i in range(hc[q, oh]):
                        h = hs[q, oh] + i * dh
                        if h < 0 or h >= H:
                            continue
                        for j in range(wc[q, ow]):
                            w = ws[q, ow] + j * dw
                            if w < 0 or w >= W:
                                continue
                            v = x[b, h, w, lane]
                            if not IS_MAX:
                                total += v
                            # the first valid tap is taken whatever its value (an all -inf
                            # window points at its first element, as PyTorch's does)
                            elif arg < 0 or v > best or v != v:
                                best, arg = v, h * W + w
                    if IS_MAX:
                        out[b, oh, ow, lane] = best
                        idx[b, oh, ow, lane] = arg
                    else:
                        out[b, oh, ow, lane] = total * (hscale[0, oh] * wscale[0, ow])
                continue
            h0, w0 = hs[0, oh], ws[0, ow]
            for lane in range(L):
                out[b, oh, ow, lane] = -np.inf if IS_MAX else 0
                if IS_MAX:
                    idx[b, oh, ow, lane] = -1
            for i in range(hc[0, oh]):
                h = h0 + i * dh
                if h < 0 or h >= H:
                    continue
                for j in range(wc[0, ow]):
                    w = w0 + j * dw
                    if w < 0 or w >= W:
                        continue
                    if not IS_MAX:
                        for lane in range(L):
                            out[b, oh, ow, lane] += x[b, h, w, lane]
                        continue
                    flat = h * W + w
                    for lane in range(L):
                        v = x[b, h, w, lane]
                        if idx[b, oh, ow, lane] < 0 or v > out[b, oh, ow, lane] or v != v:
                            out[b, oh, ow, lane] = v
                            idx[b, oh, ow, lane] = flat
            if not IS_MAX:
                scale = hscale[0, oh] * wscale[0, ow]
                for lane in range(L):
                    out[b, oh, ow, lane] *= scale


def _backward_loop(lo, hi, g, dx, idx, hs, hc, ws, wc, dh, dw, hscale, wscale):
    # planes b, lo <= b < hi
    B, OH, OW, L = g.shape
    H, W = dx.shape[1], dx.shape[2]
    for b in range(lo, hi):  # planes never share input elements: no two threads write one
        plane = dx[b].reshape(H * W, L)  # rows indexed by the recorded h * W + w
        for oh in range(OH):
            for ow in range(OW):
                if IS_MAX:
                    for lane in range(L):
                        a = idx[b, oh, ow, lane]
                        if a >= 0:
                            plane[a, lane] += g[b, oh, ow, lane]
                    continue
                scale = hscale[0, oh] * wscale[0, ow]
                for i in range(hc[0, oh]):
                    h = hs[0, oh] + i * dh
                    if h < 0 or h >= H:
                        continue
                    for j in range(wc[0, ow]):
                        w = ws[0, ow] + j * dw
                        if 0 <= w < W:
                            for lane in range(L):
                                dx[b, h, w, lane] += g[b, oh, ow, lane] * scale


# Max or average (IS_MAX) and the loop order (PER_LANE) are compiled constants: a copy types
# and compiles only the path it runs (the cnn's max pooling over NHWC lanes). Serial copies:
# parallel.over_items shares the rows (forward) or planes (backward) out among threads.
IS_MAX = PER_LANE = False
_forward = variants(_forward_loop, ("IS_MAX", "PER_LANE"), math.inf)
_backward = variants(_backward_loop, ("IS_MAX",), math.inf)
_NO_INDEX = np.zeros((1, 1, 1, 1), np.int64)  # average pooling records no argmax


def _lanes(a, channels_last):
    """The dense (B, H, W, L) view of an (N, C, H, W) array that the kernels loop over
    (copying only an array dense in neither layout)."""
    N, C, H, W = a.shape
    if channels_last:
        t = a.transpose(0, 2, 3, 1)
        return t if t.flags.c_contiguous else np.ascontiguousarray(t)
    return contiguous(a).reshape(N * C, H, W, 1)


def _unlanes(a, shape, channels_last):
    """(B, H, W, L) back to the (N, C, H, W) view over the same memory."""
    return a.transpose(0, 3, 1, 2) if channels_last else a.reshape(shape)


def pool2d(x, windows, is_max, channels_last):
    """Pool an (N, C, H, W) array over `windows` (see the module docstring); max pooling when
    is_max, else average pooling. Returns (out, argmax), argmax None for an average; both are
    NHWC memory when channels_last, else C order."""
    N, C, H, W = x.shape
    hs, hc, ws, wc, dh, dw, hscale, wscale = windows
    OH, OW = hs.shape[1], ws.shape[1]
    xl = _lanes(x, channels_last)
    B, L = xl.shape[0], xl.shape[3]
    out = np.empty((B, OH, OW, L), x.dtype)
    idx = np.empty((B, OH, OW, L), np.int64) if is_max else _NO_INDEX
    # Lanes inner (taps outer, the channel run innermost, vectorised) when the planes share
    # their windows and there are lanes to share them; else each lane walks its own window
    # with scalar accumulators (NCHW, L = 1: no per-output vector set-up; fractional pooling:
    # windows differ per plane).
    per_lane = L == 1 or hs.shape[0] != 1
    over_items(_forward(0, bool(is_max), per_lane), B * OH, x.size, xl, out, idx, hs, hc, ws,
               wc, dh, dw, hscale, wscale)
    shape = (N, C, OH, OW)
    return (_unlanes(out, shape, channels_last),
            _unlanes(idx, shape, channels_last) if is_max else None)


def pool2d_backward(grad, input_shape, argmax, windows, is_max, channels_last):
    """The gradient of pool2d with respect to its input, of shape input_shape, in the layout
    pool2d used: the upstream gradient scattered to each output's argmax (max) or spread over
    its window times the window's scale (average)."""
    N, C, H, W = input_shape
    hs, hc, ws, wc, dh, dw, hscale, wscale = windows
    gl = _lanes(grad, channels_last)
    B, L = gl.shape[0], gl.shape[3]
    dx = np.zeros((B, H, W, L), grad.dtype)
    idx = _lanes(argmax, channels_last) if is_max else _NO_INDEX
    over_items(_backward(0, bool(is_max)), B, dx.size, gl, dx, idx, hs, hc, ws, wc, dh, dw,
               hscale, wscale)
    return _unlanes(dx, tuple(input_shape), channels_last)
