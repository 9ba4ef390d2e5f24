"""Pooling CUDA kernels: the same window plans as kernels/cpu/pool.py (see its docstring for
`windows`), over dense NCHW device arrays.

Forward: one thread per output element (grid-stride), which walks its window and writes the
max and its argmax (h * W + w within the plane, the first maximal tap, NaN winning) or the sum
times the window's scale. `channels_last` is accepted for the shared signature and ignored:
device arrays are always dense NCHW here.

Backward, by default: one thread per output element scatters its gradient, to the recorded
argmax (max) or to every tap times the scale (average), with atomic adds because neighbouring
windows may overlap. NOT deterministic: where windows overlap (stride < kernel, adaptive and
fractional regions) or share an argmax, the atomic adds land in whatever order the threads
run, so float sums can differ in the last bits from run to run (and from the CPU).

Backward with tinygrad_lite.use_deterministic_algorithms(True): a gather, one thread per
input element, which adds the gradients of the outputs whose windows cover it (those whose
argmax it is, for max) in row-major output order: no atomics, the same bits every run, and
the CPU kernel's bits (it adds in that same order). Costlier: each thread reads every window
over its element, so it is not the default, as in PyTorch. The output rows whose windows
cover input row h are a contiguous range [lo, hi) (window starts and ends never decrease
along a row of outputs, in every plan), computed once per plan on the host; likewise columns.
"""
import math

import numpy as np
from numba import cuda

from ... import determinism
from .jit import kernel, launch
from .memory import flat, full, empty, upload

__all__ = ["pool2d", "pool2d_backward"]


@kernel
def _forward(x, out, idx, hs, hc, ws, wc, dh, dw, hscale, wscale, per_plane, H, W, OH, OW,
             is_max):
    for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        p, oh, ow = t // (OH * OW), (t // OW) % OH, t % OW
        q = p if per_plane else 0
        h0, nh, w0, nw = hs[q * OH + oh], hc[q * OH + oh], ws[q * OW + ow], wc[q * OW + ow]
        base = p * H * W
        best, arg, total = -math.inf, -1, 0.0
        for i in range(nh):
            h = h0 + i * dh
            if h < 0 or h >= H:
                continue
            for j in range(nw):
                w = w0 + j * dw
                if w < 0 or w >= W:
                    continue
                v = x[base + h * W + w]
                if is_max:
                    if arg < 0 or v > best or v != v:
                        best, arg = v, h * W + w
                else:
                    total += v
        if is_max:
            out[t] = best
            idx[t] = arg
        else:
            out[t] = total * hscale[oh] * wscale[ow]


@kernel
def _backward(g, dx, idx, hs, hc, ws, wc, dh, dw, hscale, wscale, H, W, OH, OW, is_max):
    for t in range(cuda.grid(1), g.size, cuda.gridsize(1)):
        p = t // (OH * OW)
        if is_max:
            if idx[t] >= 0:
                cuda.atomic.add(dx, p * H * W + idx[t], g[t])
            continue
        oh, ow = (t // OW) % OH, t % OW
        v = g[t] * (hscale[oh] * wscale[ow])
        for i in range(hc[oh]):
            h = hs[oh] + i * dh
            if h < 0 or h >= H:
                continue
            for j in range(wc[ow]):
                w = ws[ow] + j * dw
                if 0 <= w < W:
                    cuda.atomic.add(dx, p * H * W + h * W + w, v)


@kernel
def _backward_gather(g, dx, idx, hs, hc, ws, wc, dh, dw, hscale, wscale, hlo, hhi, wlo, whi,
                     per_plane, H, W, OH, OW, is_max):
    for t in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        p, h, w = t // (H * W), (t // W) % H, t % W
        q = p if per_plane else 0
        for oh in range(hlo[q * H + h], hhi[q * H + h]):
            i = h - hs[q * OH + oh]  # >= 0 in the range; a dilated window may skip row h
            if i % dh != 0 or i // dh >= hc[q * OH + oh]:
                continue
            for ow in range(wlo[q * W + w], whi[q * W + w]):
                j = w - ws[q * OW + ow]
                if j % dw != 0 or j // dw >= wc[q * OW + ow]:
                    continue
                o = (p * OH + oh) * OW + ow
                # dx[t] += ... rounds each sum to dx's dtype, as the CPU kernel's += does
                if is_max:
                    if idx[o] == h * W + w:
                        dx[t] += g[o]
                else:
                    dx[t] += g[o] * (hscale[oh] * wscale[ow])


def covering_ranges(starts, counts, dilation, n):
    """For each plan row q and input index h < n: [lo, hi), the outputs whose window span
    (start .. start + (count - 1) * dilation) contains h. Spans' starts and ends never
    decrease along a row of outputs, so the covering outputs are contiguous: lo counts the
    spans that end before h, hi those that start at or before h. Two (Q, n) int64 arrays."""
    ends = starts + (counts - 1) * dilation  # inclusive
    h = np.arange(n)
    lo = (ends[:, :, None] < h).sum(axis=1)
    hi = (starts[:, :, None] <= h).sum(axis=1)
    return lo.astype(np.int64), hi.astype(np.int64)


_ranges = {}  # (id(windows), H, W) -> (windows, device copies of the covering ranges)


def _device_ranges(windows, H, W):
    key = (id(windows), H, W)
    hit = _ranges.get(key)
    if hit is not None and hit[0] is windows:
        return hit[1]
    hs, hc, ws, wc, dh, dw = windows[:6]
    arrays = tuple(upload(a) for a in (*covering_ranges(hs, hc, dh, H),
                                       *covering_ranges(ws, wc, dw, W)))
    if len(_ranges) >= 64:
        _ranges.clear()
    _ranges[key] = (windows, arrays)
    return arrays


_uploaded = {}  # id(windows) -> (windows, device copies): plans are reused call after call


def _device_windows(windows):
    """The plan's arrays on the device, flat; uploaded once per plan object (ops/pool.py caches
    plans, so a layer uploads once; a fractional pool's fresh plan each call is uploaded)."""
    hit = _uploaded.get(id(windows))
    if hit is not None and hit[0] is windows:
        return hit[1]
    hs, hc, ws, wc, dh, dw, hscale, wscale = windows
    arrays = tuple(upload(a) for a in (hs, hc, ws, wc)) + (
        cuda.to_device(np.ascontiguousarray(hscale, np.float64).reshape(-1)),
        cuda.to_device(np.ascontiguousarray(wscale, np.float64).reshape(-1)))
    if len(_uploaded) >= 64:
        _uploaded.clear()
    _uploaded[id(windows)] = (windows, arrays)
    return arrays


def pool2d(x, windows, is_max, channels_last):
    """Pool an (N, C, H, W) array over `windows`; returns (out, argmax), argmax None for an
    average."""
    N, C, H, W = x.shape
    OH, OW = windows[0].shape[1], windows[2].shape[1]
    hs, hc, ws, wc, hscale, wscale = _device_windows(windows)
    out = empty((N, C, OH, OW), x.dtype)
    idx = empty((N, C, OH, OW) if is_max else (1,), np.int64)
    if out.size:
        launch(_forward, out.size)(flat(x), flat(out), flat(idx), hs, hc, ws, wc, windows[4],
                                   windows[5], hscale, wscale, windows[0].shape[0] > 1, H, W,
                                   OH, OW, is_max)
    return out, (idx if is_max else None)


def pool2d_backward(grad, input_shape, argmax, windows, is_max, channels_last):
    """The gradient of pool2d with respect to its input (see kernels/cpu/pool.py): scattered
    with atomics, or gathered when deterministic algorithms are on (see above)."""
    N, C, H, W = input_shape
    OH, OW = grad.shape[2], grad.shape[3]
    hs, hc, ws, wc, hscale, wscale = _device_windows(windows)
    dx = full(tuple(input_shape), 0, grad.dtype)
    idx = argmax if is_max else empty((1,), np.int64)
    if grad.size and determinism.are_deterministic_algorithms_enabled():
        launch(_backward_gather, dx.size)(
            flat(grad), flat(dx), flat(idx), hs, hc, ws, wc, windows[4], windows[5], hscale,
            wscale, *_device_ranges(windows, H, W), windows[0].shape[0] > 1, H, W, OH, OW,
            is_max)
    elif grad.size:
        launch(_backward, grad.size)(flat(grad), flat(dx), flat(idx), hs, hc, ws, wc, windows[4],
                                     windows[5], hscale, wscale, H, W, OH, OW, is_max)
    return dx
