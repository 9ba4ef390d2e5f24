"""Pooling, PyTorch's names, argument orders, defaults and output sizes: max_pool2d,
avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d and fractional_max_pool2d, on (N, C, H, W)
or unbatched (C, H, W) float tensors.

Every variant is one Function, Pool2d, over a window plan built here on the host: per output
row its first input row and tap count (and dilation), likewise per column, and for averages a
row and a column factor whose product is the divisor's inverse (kernels/cpu/pool.py describes
the plan). The plans differ only in their arithmetic:
  max/avg   start = i * stride - padding, k taps (max: dilated, -inf padding; avg: zero padding,
            divisor the padded window clipped to the input plus padding, or the count of valid
            taps with count_include_pad=False, or divisor_override)
  adaptive  start = floor(i * H / oh), end = ceil((i + 1) * H / oh)
  fractional (Graham, 2014) start_i = int((i + u) * alpha) - int(u * alpha) with
            alpha = (H - k) / (oh - 1), the last start H - k; one u in [0, 1) per (sample,
            channel, dim) drawn from tinygrad_lite.random.generator(), so manual_seed repeats
            it. PyTorch's _random_samples (N, C, 2) layout: [..., 0] for the width, [..., 1]
            for the height. alpha is computed in float64.
Plans of the deterministic pools are cached on their arguments. Max pooling records the argmax
(the first maximal element of each window) and its gradient goes there.

The CPU kernels keep the input's layout: an NHWC-strided input (memory order with channels
innermost) gives NHWC-strided outputs, indices and input gradients.
"""
import numbers
from functools import lru_cache

import numpy as np

from .. import ops
from .. import random
from ..autograd import Function
from ..kernels.plan import memory_order
from .checks import float_tensor, pair

__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d",
           "fractional_max_pool2d"]

_NO_SCALE = np.ones((1, 1))  # max pooling reads no divisor


class Pool2d(Function):
    """out = max or mean of each window of a 4-D input; backward scatters the gradient to each
    window's argmax (max) or spreads it over the window times the divisor's inverse (mean).
    Max pooling returns (out, argmax): the argmax is a second, integer output that carries no
    gradient (what return_indices hands out)."""
    NON_DIFFERENTIABLE_OUTPUTS = (1,)

    def forward(self, x, windows, is_max, channels_last):
        out, argmax = self.k.pool2d(x, windows, is_max, channels_last)
        if self.needs_input_grad[0]:
            self.input_shape, self.argmax, self.windows = tuple(x.shape), argmax, windows
            self.is_max, self.channels_last = is_max, channels_last
        return (out, argmax) if is_max else out

    def backward(self, g, _argmax_grad=None):
        return (self.k.pool2d_backward(g, self.input_shape, self.argmax, self.windows,
                                       self.is_max, self.channels_last),)


# ----- argument checks -----
def check_pool_args(name, kernel_size, stride, padding, dilation=1):
    """(kernel, stride, padding, dilation) as pairs; stride None (or empty) means kernel_size.
    Padding may be at most half the kernel, as in PyTorch."""
    k = pair(name, "kernel_size", kernel_size, 1)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and not stride) else \
        pair(name, "stride", stride, 1)
    p = pair(name, "padding", padding, 0)
    d = pair(name, "dilation", dilation, 1)
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{name}: padding should be at most half of the kernel size, got "
                         f"padding {p} for kernel_size {k}")
    return k, s, p, d


def check_output_size(name, output_size):
    """An int, or a pair whose entries are ints or None (None keeps that input size)."""
    pair = tuple(output_size) if isinstance(output_size, (tuple, list)) else \
        (output_size, output_size)
    if len(pair) != 2 or any(v is not None and (isinstance(v, bool) or not isinstance(
            v, numbers.Integral) or v < 1) for v in pair):
        raise ValueError(f"{name}: output_size must be a positive int or a pair of positive "
                         f"ints or None, got {output_size!r}")
    return pair


def check_fractional_args(name, kernel_size, output_size, output_ratio):
    """(kernel pair, output_size pair or None, output_ratio pair or None): exactly one of
    output_size and output_ratio, each ratio in (0, 1)."""
    k = pair(name, "kernel_size", kernel_size, 1)
    if (output_size is None) == (output_ratio is None):
        raise ValueError(f"{name}: give exactly one of output_size and output_ratio, got "
                         f"output_size={output_size!r} and output_ratio={output_ratio!r}")
    if output_size is not None:
        return k, pair(name, "output_size", output_size, 1), None
    ratio = tuple(output_ratio) if isinstance(output_ratio, (tuple, list)) else \
        (output_ratio, output_ratio)
    if len(ratio) != 2 or any(isinstance(r, bool) or not isinstance(r, numbers.Real) or
                              not 0 < r < 1 for r in ratio):
        raise ValueError(f"{name}: output_ratio must be a number or a pair of numbers in "
                         f"(0, 1), got {output_ratio!r}")
    return k, None, (float(ratio[0]), float(ratio[1]))


def _check_input(name, x):
    float_tensor(name, "input", x)
    if x.ndim not in (3, 4):
        raise ValueError(f"{name}: expected 3-D or 4-D input, (C, H, W) or (N, C, H, W), "
                         f"got shape {x.shape}")
    if 0 in x.shape[-3:]:
        raise ValueError(f"{name}: expected non-zero channels, height and width, got shape "
                         f"{x.shape}")


# ----- window plans (rows: one per plane, or one shared) -----
@lru_cache(maxsize=256)
def _sliding_plan(name, shape, k, s, p, d, ceil_mode, avg, include_pad, divisor):
    """The plan of max_pool2d (avg False) or avg_pool2d (avg True) for input shape (..., H, W):
    PyTorch's output size floor_or_ceil((n + 2p - d (k - 1) - 1) / s) + 1, less one in ceil
    mode when the last window would start in the right padding."""
    starts, counts, scales = [], [], []
    for a in (0, 1):
        n, extent = shape[a - 2], d[a] * (k[a] - 1) + 1
        if extent > n + 2 * p[a]:
            raise ValueError(f"{name}: kernel of size {extent} (kernel_size {k}, dilation "
                             f"{d}) is larger than the padded input of size {n + 2 * p[a]} "
                             f"(input shape {shape}, padding {p})")
        span = n + 2 * p[a] - extent
        out = (-(-span // s[a]) if ceil_mode else span // s[a]) + 1
        if ceil_mode and (out - 1) * s[a] >= n + p[a]:
            out -= 1
        start = np.arange(out, dtype=np.int64) * s[a] - p[a]
        if not avg:
            count, scale = np.full(out, k[a], np.int64), _NO_SCALE[0]
        else:
            end = np.minimum(start + k[a], n + p[a])
            count = end - start  # taps in the padded input; those in the padding are skipped
            valid = np.minimum(end, n) - np.maximum(start, 0)
            if divisor is not None:  # the whole divisor goes in the row factor
                scale = np.full(out, 1.0 / divisor if a == 0 else 1.0)
            else:  # (a window with no valid tap sums to 0 whatever its divisor)
                scale = 1.0 / np.maximum(count if include_pad else valid, 1)
        starts.append(start[None])
        counts.append(count[None])
        scales.append(np.ascontiguousarray(scale[None], np.float64))
    return (starts[0], counts[0], starts[1], counts[1], d[0], d[1], scales[0], scales[1])


@lru_cache(maxsize=256)
def _adaptive_plan(shape, output_size):
    """Regions start = floor(i n / o), end = ceil((i + 1) n / o), divisor their size."""
    plan = []
    for a in (0, 1):
        n = shape[a - 2]
        o = n if output_size[a] is None else output_size[a]
        i = np.arange(o, dtype=np.int64)
        start = (i * n) // o
        end = -((-(i + 1) * n) // o)
        plan.append((start[None], (end - start)[None], (1.0 / (end - start))[None]))
    (hs, hc, hscale), (ws, wc, wscale) = plan
    return hs, hc, ws, wc, 1, 1, hscale, wscale


def fractional_starts(u, n, k, o):
    """Graham's pseudo-random sequence: for each u in the 1-D array `u`, o window starts in
    [0, n - k], the first 0 and the last n - k, consecutive starts 1 or 2 apart for ratios in
    (1/2, 1)."""
    starts = np.empty((len(u), o), np.int64)
    if o > 1:
        alpha = (n - k) / (o - 1)
        i = np.arange(o - 1)
        starts[:, :-1] = (np.floor((i + u[:, None]) * alpha) - np.floor(u * alpha)[:, None])
    starts[:, -1] = n - k
    return starts


# ----- running a plan -----
@lru_cache(maxsize=1024)
def _channels_innermost(shape, strides):
    """Whether the kernels should loop channels innermost (NHWC memory): the channel dim has
    the smallest stride among the dims of size > 1 (size-1 dims have no meaningful stride, so
    an NHWC tensor with W = 1 still counts; with C = 1 both layouts are the same memory)."""
    order = [a for a in memory_order(shape, strides) if shape[a] != 1]
    return bool(order) and order[-1] == 1


def _pool(x, windows, is_max, return_indices):
    """Apply Pool2d to a 3-D or 4-D x (unbatched inputs gain and lose a batch dim)."""
    unbatched = x.ndim == 3
    if unbatched:
        x = x.reshape((1,) + x.shape)
    array = x.array
    channels_last = _channels_innermost(array.shape, array.strides)
    out = Pool2d.apply(x, windows=windows, is_max=is_max, channels_last=channels_last)
    out, idx = out if is_max else (out, None)
    if unbatched:
        out = out.reshape(out.shape[1:])
        idx = None if idx is None else idx.reshape(idx.shape[1:])
    return (out, idx) if return_indices else out


def _max_pool2d(name, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    _check_input(name, x)
    k, s, p, d = check_pool_args(name, kernel_size, stride, padding, dilation)
    plan = _sliding_plan(name, x.shape, k, s, p, d, bool(ceil_mode), False, True, None)
    return _pool(x, plan, True, return_indices)


def _avg_pool2d(name, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                divisor_override):
    _check_input(name, x)
    k, s, p, _ = check_pool_args(name, kernel_size, stride, padding)
    if divisor_override is not None and (isinstance(divisor_override, bool) or not isinstance(
            divisor_override, numbers.Integral) or divisor_override == 0):
        raise ValueError(f"{name}: divisor_override must be a non-zero int or None, got "
                         f"{divisor_override!r}")
    plan = _sliding_plan(name, x.shape, k, s, p, (1, 1), bool(ceil_mode), True,
                         bool(count_include_pad), divisor_override)
    return _pool(x, plan, False, False)


def _adaptive_pool2d(name, x, output_size, is_max, return_indices):
    _check_input(name, x)
    return _pool(x, _adaptive_plan(x.shape[-2:], check_output_size(name, output_size)), is_max,
                 return_indices)


def _fractional_max_pool2d(name, x, kernel_size, output_size, output_ratio, return_indices,
                           random_samples):
    _check_input(name, x)
    k, size, ratio = check_fractional_args(name, kernel_size, output_size, output_ratio)
    H, W = x.shape[-2:]
    oh, ow = size if size is not None else (int(H * ratio[0]), int(W * ratio[1]))
    for o, n, kk, dim in ((oh, H, k[0], "height"), (ow, W, k[1], "width")):
        if o < 1 or o + kk - 1 > n:
            raise ValueError(f"{name}: output {dim} {o} with kernel size {kk} needs an input "
                             f"{dim} of at least {max(o, 1) + kk - 1}, got input shape "
                             f"{x.shape}")
    N, C = (1 if x.ndim == 3 else x.shape[0]), x.shape[-3]
    if random_samples is None:
        u = random.generator().random((N, C, 2))
    else:
        u = random_samples.numpy() if isinstance(random_samples, ops.Tensor) else \
            np.asarray(random_samples)
        if u.shape != (N, C, 2):
            raise ValueError(f"{name}: expected _random_samples of shape {(N, C, 2)}, got "
                             f"{u.shape}")
        u = u.astype(np.float64)
    u = u.reshape(N * C, 2)
    hs = fractional_starts(u[:, 1], H, k[0], oh)
    ws = fractional_starts(u[:, 0], W, k[1], ow)
    plan = (hs, np.full(hs.shape, k[0], np.int64), ws, np.full(ws.shape, k[1], np.int64),
            1, 1, _NO_SCALE, _NO_SCALE)
    return _pool(x, plan, True, return_indices)


# ----- the functional API (nn.functional) -----
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over each kernel_size window (dilated by `dilation`, -inf padding), moved by
    `stride` (default kernel_size). Output size floor((H + 2p - d (k - 1) - 1) / s) + 1 (ceil in
    ceil_mode). With return_indices, also the int64 flat index h * W + w of each max.

        >>> F.max_pool2d(tl.randn(8, 3, 32, 32), 2).shape
        (8, 3, 16, 16)
    """
    return _max_pool2d("max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode,
                       return_indices)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Mean over each window (zero padding). The divisor is the window size including padding
    (count_include_pad), or the number of input elements in the window, or divisor_override."""
    return _avg_pool2d("avg_pool2d", input, kernel_size, stride, padding, ceil_mode,
                       count_include_pad, divisor_override)


def adaptive_avg_pool2d(input, output_size):
    """Mean over output_size regions: region i spans [floor(i H / oh), ceil((i + 1) H / oh)).
    output_size: an int, or a pair whose None entries keep that input size."""
    return _adaptive_pool2d("adaptive_avg_pool2d", input, output_size, False, False)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max over the regions of adaptive_avg_pool2d."""
    return _adaptive_pool2d("adaptive_max_pool2d", input, output_size, True, return_indices)


def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices=False, _random_samples=None):
    """Fractional max pooling (Graham, 2014): kernel_size windows at pseudo-random,
    overlapping positions that shrink the input to output_size (or input size * output_ratio,
    rounded down), one random sequence per (sample, channel, dim). _random_samples (N, C, 2) in
    [0, 1) fixes them (N = 1 for an unbatched input); else they come from the package's seeded
    generator."""
    return _fractional_max_pool2d("fractional_max_pool2d", input, kernel_size, output_size,
                                  output_ratio, return_indices, _random_samples)
