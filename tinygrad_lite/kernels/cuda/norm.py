"""Normalisation CUDA kernels, shared by batch, layer, instance and group norm: the same
contract and group description as kernels/cpu/norm.py (read its docstring first).

Device arrays are C-contiguous, so a logical (N, C, *S) input is the memory (N, C, S) ("rows":
each (n, c) a contiguous run of S values) or, when S = 1 (BN1d's (N, C), layer norm's (A, D)),
(N, 1, C) ("channels-last": channels along the fast axis). The statistics and the backward's
group sums are block-level shared-memory tree reductions, one block per group (a grid-stride
loop over groups); the backward's block then writes dx for its group, so the closed form's two
sums and dx come from one kernel. Per-channel dweight/dbias are a second block reduction, one
block per channel; normalise+affine(+ReLU) is one grid-stride loop. Sums are in float64 on
values shifted by the group's first element."""
import math

import numpy as np
from numba import cuda

from .jit import MAX_BLOCKS, THREADS, kernel, launch
from .memory import empty, full

__all__ = ["norm_stats", "norm_apply", "norm_backward", "norm_update_running",
           "norm_running_stats"]


@cuda.jit(device=True)
def _group_offset(k, g, A, C, B, cl, per_sample, group_size):
    """Memory offset and channel of the k-th element of group g: elements of one group are
    enumerated fastest along memory, so neighbouring threads read neighbouring addresses."""
    Ga = C // group_size
    j = g % Ga if per_sample else g
    if cl:
        c = j * group_size + k % group_size
        b = (k // group_size) % B
        a = g // Ga if per_sample else k // (group_size * B)
        return (a * B + b) * C + c, c
    c = j * group_size + (k // B) % group_size
    a = g // Ga if per_sample else k // (group_size * B)
    return (a * C + c) * B + k % B, c


@cuda.jit(device=True)
def _group_of(i, A, C, B, cl, per_sample, group_size):
    """(group, channel) of the element at memory offset i."""
    if cl:
        c = i % C
        a = i // (B * C)
    else:
        c = (i // B) % C
        a = i // (C * B)
    return (a * (C // group_size) if per_sample else 0) + c // group_size, c


@cuda.jit(device=True)
def _tree_sum(scratch1, scratch2, tid):
    """Sum a block's pairs (a power of two of them) in shared memory; every thread runs the
    same barriers."""
    half = cuda.blockDim.x // 2
    while half > 0:
        if tid < half:
            scratch1[tid] += scratch1[tid + half]
            scratch2[tid] += scratch2[tid + half]
        cuda.syncthreads()
        half //= 2


@kernel
def _stats_kernel(x, A, C, B, cl, per_sample, group_size, G, eps, mean, var, rstd):
    s1_all = cuda.shared.array(THREADS, np.float64)
    s2_all = cuda.shared.array(THREADS, np.float64)
    tid = cuda.threadIdx.x
    n = (1 if per_sample else A) * group_size * B
    for g in range(cuda.blockIdx.x, G, cuda.gridDim.x):
        first, _ = _group_offset(0, g, A, C, B, cl, per_sample, group_size)
        K = np.float64(x[first])
        s1 = 0.0
        s2 = 0.0
        for k in range(tid, n, cuda.blockDim.x):
            off, _ = _group_offset(k, g, A, C, B, cl, per_sample, group_size)
            d = np.float64(x[off]) - K
            s1 += d
            s2 += d * d
        s1_all[tid] = s1
        s2_all[tid] = s2
        cuda.syncthreads()
        _tree_sum(s1_all, s2_all, tid)
        if tid == 0:
            m1 = s1_all[0] / n
            v = max(s2_all[0] / n - m1 * m1, 0.0)
            mean[g] = K + m1
            var[g] = v
            rstd[g] = 1.0 / math.sqrt(v + eps)
        cuda.syncthreads()  # scratch is reused by the next group


@cuda.jit(device=True)
def _normalised(xv, g, c, mean, rstd, w, b):
    """x * scale + shift in float64, the same expression in forward and backward (so the ReLU
    mask of the backward is the forward's)."""
    s = rstd[g] * np.float64(w[c])
    return np.float64(xv) * s + (np.float64(b[c]) - mean[g] * s)


@kernel
def _apply_kernel(x, y, A, C, B, cl, per_sample, group_size, mean, rstd, w, b, relu):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        g, c = _group_of(i, A, C, B, cl, per_sample, group_size)
        v = _normalised(x[i], g, c, mean, rstd, w, b)
        y[i] = max(v, 0.0) if relu else v


@cuda.jit(device=True)
def _masked(gv, xv, g, c, mean, rstd, w, b, relu):
    if relu and _normalised(xv, g, c, mean, rstd, w, b) <= 0.0:
        return 0.0
    return np.float64(gv)


@kernel
def _backward_kernel(x, gy, dx, A, C, B, cl, per_sample, group_size, G, mean, rstd, w, b, relu,
                     batch_stats):
    # one block per group: sum h = g * w and h * xhat, then dx = rstd (h - mean(h) - xhat
    # mean(h xhat)) for the same group's elements
    s1_all = cuda.shared.array(THREADS, np.float64)
    s2_all = cuda.shared.array(THREADS, np.float64)
    tid = cuda.threadIdx.x
    n = (1 if per_sample else A) * group_size * B
    for g in range(cuda.blockIdx.x, G, cuda.gridDim.x):
        m, r = mean[g], rstd[g]
        s1 = 0.0
        s2 = 0.0
        if batch_stats:
            for k in range(tid, n, cuda.blockDim.x):
                off, c = _group_offset(k, g, A, C, B, cl, per_sample, group_size)
                h = _masked(gy[off], x[off], g, c, mean, rstd, w, b, relu) * np.float64(w[c])
                s1 += h
                s2 += h * (np.float64(x[off]) - m) * r
        s1_all[tid] = s1
        s2_all[tid] = s2
        cuda.syncthreads()
        _tree_sum(s1_all, s2_all, tid)
        m1 = s1_all[0] / n
        m2 = s2_all[0] / n
        for k in range(tid, n, cuda.blockDim.x):
            off, c = _group_offset(k, g, A, C, B, cl, per_sample, group_size)
            h = _masked(gy[off], x[off], g, c, mean, rstd, w, b, relu) * np.float64(w[c])
            dx[off] = r * (h - m1 - (np.float64(x[off]) - m) * r * m2)
        cuda.syncthreads()  # everyone has read the sums before the next group overwrites them


@kernel
def _channel_kernel(x, gy, A, C, B, cl, per_sample, group_size, mean, rstd, w, b, relu,
                    dw, db):
    # one block per channel c: db[c] = sum(g), dw[c] = sum(g * xhat) over all (a, b)
    s1_all = cuda.shared.array(THREADS, np.float64)
    s2_all = cuda.shared.array(THREADS, np.float64)
    tid = cuda.threadIdx.x
    Ga = C // group_size
    for c in range(cuda.blockIdx.x, C, cuda.gridDim.x):
        s1 = 0.0
        s2 = 0.0
        for k in range(tid, A * B, cuda.blockDim.x):
            a = k // B
            off = (a * B + k % B) * C + c if cl else (a * C + c) * B + k % B
            g = (a * Ga if per_sample else 0) + c // group_size
            ge = _masked(gy[off], x[off], g, c, mean, rstd, w, b, relu)
            s1 += ge
            s2 += ge * (np.float64(x[off]) - mean[g]) * rstd[g]
        s1_all[tid] = s1
        s2_all[tid] = s2
        cuda.syncthreads()
        _tree_sum(s1_all, s2_all, tid)
        if tid == 0:
            db[c] = s1_all[0]
            dw[c] = s2_all[0]
        cuda.syncthreads()


@kernel
def _running_kernel(running_mean, running_var, mean, var, rows, momentum, unbias):
    for c in range(cuda.grid(1), running_mean.size, cuda.gridsize(1)):
        C = running_mean.size
        m = 0.0
        v = 0.0
        for r in range(rows):
            m += mean[r * C + c]
            v += var[r * C + c]
        running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * (m / rows)
        running_var[c] = (1.0 - momentum) * running_var[c] + momentum * (v / rows) * unbias


@kernel
def _running_stats_kernel(running_mean, running_var, eps, mean, rstd):
    for c in range(cuda.grid(1), mean.size, cuda.gridsize(1)):
        mean[c] = np.float64(running_mean[c])
        rstd[c] = 1.0 / math.sqrt(np.float64(running_var[c]) + eps)


def _memory(x):
    """(A, C, B, channels_last) of the dense (N, C, *S) array x: rows (N, C, S), or (N, 1, C)
    when S = 1 so that channels lie along memory."""
    N, C = x.shape[0], x.shape[1]
    S = x.size // (N * C)
    return (N, C, 1, True) if S == 1 else (N, C, S, False)


def _block_launch(fn, blocks, per_block):
    """fn on one block per group (at most MAX_BLOCKS, looping over the rest) of a power-of-two
    number of threads: THREADS, or fewer for small groups (same speed on a GPU, far fewer
    threads to emulate on the simulator)."""
    threads = min(THREADS, 1 << max(0, per_block - 1).bit_length())
    return fn[max(1, min(MAX_BLOCKS, blocks)), threads]


def _affine(w, b, C, dtype):
    return (full((C,), 1, dtype) if w is None else w), (full((C,), 0, dtype) if b is None else b)


def norm_stats(x, per_sample, group_size, eps):
    """Mean, biased variance and 1 / sqrt(var + eps) (float64) of each group of x."""
    A, C, B, cl = _memory(x)
    G = (A if per_sample else 1) * (C // group_size)
    mean, var, rstd = empty((G,), np.float64), empty((G,), np.float64), empty((G,), np.float64)
    _block_launch(_stats_kernel, G, x.size // G)(x.reshape(-1), A, C, B, cl, per_sample,
                                                 group_size, G, float(eps), mean, var, rstd)
    return mean, var, rstd


def norm_apply(x, mean, rstd, weight, bias, per_sample, group_size, relu):
    """(x - mean[g]) * rstd[g] * weight[c] + bias[c] (then max(., 0) if relu)."""
    A, C, B, cl = _memory(x)
    w, b = _affine(weight, bias, C, x.dtype)
    y = empty(x.shape, x.dtype)
    launch(_apply_kernel, x.size)(x.reshape(-1), y.reshape(-1), A, C, B, cl, per_sample,
                                  group_size, mean, rstd, w, b, bool(relu))
    return y


def norm_backward(x, grad, mean, rstd, weight, bias, per_sample, group_size, relu, batch_stats):
    """(dx, dweight, dbias): dx by one block per group (sums, then dx), dweight and dbias by
    one block per channel."""
    A, C, B, cl = _memory(x)
    w, b = _affine(weight, bias, C, x.dtype)
    G = mean.size
    xf, gf = x.reshape(-1), grad.reshape(-1)
    dx = empty(x.shape, x.dtype)
    _block_launch(_backward_kernel, G, x.size // G)(
        xf, gf, dx.reshape(-1), A, C, B, cl, per_sample, group_size, G, mean, rstd, w, b,
        bool(relu), bool(batch_stats))
    dw, db = empty((C,), x.dtype), empty((C,), x.dtype)
    _block_launch(_channel_kernel, C, x.size // C)(xf, gf, A, C, B, cl, per_sample, group_size,
                                                   mean, rstd, w, b, bool(relu), dw, db)
    return dx, dw, db


def norm_update_running(running_mean, running_var, mean, var, momentum, count):
    """In place, as kernels/cpu/norm.py: one thread per channel averages the rows."""
    C = running_mean.shape[0]
    launch(_running_kernel, C)(running_mean, running_var, mean, var, mean.size // C,
                               float(momentum), count / (count - 1))


def norm_running_stats(running_mean, running_var, eps):
    """(mean, 1 / sqrt(var + eps)) in float64 from running statistics."""
    C = running_mean.shape[0]
    mean, rstd = empty((C,), np.float64), empty((C,), np.float64)
    launch(_running_stats_kernel, C)(running_mean, running_var, float(eps), mean, rstd)
    return mean, rstd
