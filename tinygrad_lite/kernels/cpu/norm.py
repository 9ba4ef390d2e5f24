"""Normalisation CPU kernels, shared by batch, layer, instance and group norm.

Every norm sees its input as a logical (N, C, *S) array (layer norm as (A, D): C = D, S = ())
whose statistics group g of element (n, c) is

    g = (n * C // group_size if per_sample else 0) + c // group_size

(BN: per_sample False, group_size 1; IN: True, 1; GN: True, C // groups; LN: True, D), and whose
affine weight and bias are indexed by c. Three kernels cover every norm: statistics (mean and
biased variance per group), normalise + affine (+ ReLU), and the closed-form backward.

Layout: the kernels read memory as it lies. A (N, C, *S) input that is C-contiguous is the
matrix rows (n, c) of S contiguous elements ("rows" mode); one whose channel is innermost in
memory (an NCHW view over NHWC memory, or any input with S = 1) is the rows (n, s) of C
contiguous elements ("channels-last" mode), the channels along the fast axis. Other strided
inputs are copied to the nearer of the two. Outputs keep the input's layout.

Accuracy: sums accumulate in float64 on values shifted by one element of their group
(sum(x - K), sum((x - K)^2)), so the variance of float32 data with a large mean does not
cancel; partial results of different pieces are merged with Chan's pairwise formula."""
import math

import numpy as np

from ..plan import memory_order
from .jit import kernel, variants
from .parallel import over_items

__all__ = ["norm_stats", "norm_apply", "norm_backward", "norm_update_running",
           "norm_running_stats"]

# Rows of a channels-last matrix per work item: one item per ITEM_ELEMENTS elements, at most
# WORK_ITEMS (enough ranges for the threads), at least one per block. Each item's partial sums
# are merged serially per channel (Chan's formula, a division each), so items must not be many
# for a small input: 64 items of a (256, 512) BatchNorm1d batch spent more time merging than
# summing. The count depends on the shape only, so results do not depend on the thread count.
WORK_ITEMS = 64
ITEM_ELEMENTS = 1 << 16
# The normalise-and-scale pass costs about 0.14 ns per element, a tenth of the statistics':
# it pays to share it out among threads only from about 1M elements (parallel.SHARE_MIN_SIZE
# says why and what the others use).
APPLY_PARALLEL_MIN_SIZE = 1 << 20


def _chunk(A, B, C):
    """Rows per work item for A blocks of B channels-last rows of C channels."""
    target = max(1, min(WORK_ITEMS, A * B * C // ITEM_ELEMENTS))
    per_block = max(1, min(B, -(-target // A)))
    return -(-B // per_block)


@kernel
def _merge(gn, gm, gM2, g, n, m, M2):
    """Chan et al.'s pairwise update: fold a piece (n, mean m, sum of squares M2) into group g."""
    if gn[g] == 0:
        gn[g], gm[g], gM2[g] = n, m, M2
        return
    total = gn[g] + n
    delta = m - gm[g]
    gm[g] += delta * n / total
    gM2[g] += M2 + delta * delta * gn[g] * n / total
    gn[g] = total


def _stats_pieces(lo, hi, x, group_size, chunk, pn, pm, pM2):
    # Items lo..hi-1 of x: (A, C, B) rows mode, one piece per row (a, c); or (A, B, C)
    # channels-last, one piece per (a, row block, group). C-contiguous.
    A = x.shape[0]
    C = x.shape[2] if CL else x.shape[1]
    B = x.shape[1] if CL else x.shape[2]
    Ga = C // group_size
    if not CL:  # B contiguous values, shifted by the first
        for r in range(lo, hi):
            row = x[r // C, r % C]
            K = np.float64(row[0])
            s1 = 0.0
            s2 = 0.0
            for b in range(B):
                d = np.float64(row[b]) - K
                s1 += d
                s2 += d * d
            pn[r], pm[r], pM2[r] = B, K + s1 / B, max(s2 - s1 * s1 / B, 0.0)
        return
    blocks = (B + chunk - 1) // chunk  # per-column sums, one shift per group
    K = np.empty(C)
    s1 = np.empty(C)
    s2 = np.empty(C)
    for item in range(lo, hi):
        a = item // blocks
        start = (item % blocks) * chunk
        end = min(B, start + chunk)
        for c in range(C):
            K[c] = x[a, start, (c // group_size) * group_size]
            s1[c] = 0.0
            s2[c] = 0.0
        for b in range(start, end):
            row = x[a, b]
            for c in range(C):
                d = np.float64(row[c]) - K[c]
                s1[c] += d
                s2[c] += d * d
        n = (end - start) * group_size
        for j in range(Ga):
            t1 = 0.0
            t2 = 0.0
            for c in range(j * group_size, (j + 1) * group_size):
                t1 += s1[c]
                t2 += s2[c]
            p = item * Ga + j
            pn[p], pm[p], pM2[p] = n, K[j * group_size] + t1 / n, max(t2 - t1 * t1 / n, 0.0)


def _stats_merge(pn, pm, pM2, C, blocks, per_sample, group_size, eps, mean, var, rstd):
    # the pieces into their groups, serially and in a fixed order (deterministic)
    Ga = C // group_size
    G = mean.size
    gn = np.zeros(G)
    gM2 = np.zeros(G)
    for p in range(pn.size):
        if not CL:
            a, j = p // C, (p % C) // group_size
        else:
            a, j = p // (blocks * Ga), p % Ga
        _merge(gn, mean, gM2, (a * Ga if per_sample else 0) + j, pn[p], pm[p], pM2[p])
    for g in range(G):
        var[g] = gM2[g] / gn[g]
        rstd[g] = 1.0 / np.sqrt(var[g] + eps)


@kernel
def _coefficients(a, C, Ga, per_sample, group_size, mean, rstd, w, b, scale, shift):
    """y = x * scale[c] + shift[c] for the channels of block a, in x's dtype (the arrays'):
    forward and backward compute them the same way, so the ReLU mask matches bit for bit."""
    base = a * Ga if per_sample else 0
    for c in range(C):
        g = base + c // group_size
        s = rstd[g] * np.float64(w[c])
        scale[c] = s
        shift[c] = np.float64(b[c]) - mean[g] * s


@kernel
def _all_coefficients(A, C, per_sample, group_size, mean, rstd, w, b, scale, shift):
    """_coefficients of every block a < A, as rows of scale and shift (A * C each)."""
    for a in range(A):
        _coefficients(a, C, C // group_size, per_sample, group_size, mean, rstd, w, b,
                      scale[a * C:(a + 1) * C], shift[a * C:(a + 1) * C])


def _apply_items(lo, hi, x, y, scale, shift, relu, chunk):
    # rows mode: item = row (a, c); channels-last: item = (a, row block). scale and shift
    # hold every block's coefficients (_all_coefficients).
    C = x.shape[2] if CL else x.shape[1]
    B = x.shape[1] if CL else x.shape[2]
    zero = np.zeros(1, x.dtype)[0]
    if not CL:
        for r in range(lo, hi):
            src, dst = x[r // C, r % C], y[r // C, r % C]
            s, t = scale[r], shift[r]
            for k in range(B):
                v = src[k] * s + t
                dst[k] = v if not relu or v > 0 else zero
        return
    blocks = (B + chunk - 1) // chunk
    for item in range(lo, hi):
        a = item // blocks
        start = (item % blocks) * chunk
        sc, sh = scale[a * C:(a + 1) * C], shift[a * C:(a + 1) * C]
        for r in range(start, min(B, start + chunk)):
            src, dst = x[a, r], y[a, r]
            for c in range(C):
                v = src[c] * sc[c] + sh[c]
                dst[c] = v if not relu or v > 0 else zero


def _backward_sums(lo, hi, x, gy, mean, rstd, scale, shift, per_sample, group_size, chunk, P1,
                   P2):
    # With h = g * w[c] (g masked by the ReLU) and xhat = (x - mean) * rstd, per group:
    # dx = rstd * (h - mean(h) - xhat * mean(h * xhat)); the means vanish when the statistics
    # are constants (eval). dw[c] = sum(g * xhat), db[c] = sum(g). This pass sums g and
    # g * xhat per (item, channel) for items lo..hi-1; _backward_merge gives the per-channel
    # and per-group sums; _backward_dx writes dx.
    A = x.shape[0]
    C = x.shape[2] if CL else x.shape[1]
    B = x.shape[1] if CL else x.shape[2]
    Ga = C // group_size
    if not CL:
        for item in range(lo, hi):
            a, c = item // C, item % C
            src, g_in = x[a, c], gy[a, c]
            g = (a * Ga if per_sample else 0) + c // group_size
            m, r, s, t = mean[g], rstd[g], scale[item], shift[item]
            s1 = 0.0
            s2 = 0.0
            for k in range(B):
                ge = np.float64(g_in[k]) if not RELU or src[k] * s + t > 0 else 0.0
                s1 += ge
                s2 += ge * (np.float64(src[k]) - m) * r
            P1[item], P2[item] = s1, s2
        return
    blocks = (B + chunk - 1) // chunk
    mc, rc = np.empty(C), np.empty(C)
    for item in range(lo, hi):
        a = item // blocks
        start = (item % blocks) * chunk
        _group_rows(a, C, Ga, per_sample, group_size, mean, rstd, mc, rc)
        sc, sh = scale[a * C:(a + 1) * C], shift[a * C:(a + 1) * C]
        s1, s2 = P1[item * C:(item + 1) * C], P2[item * C:(item + 1) * C]
        for k in range(start, min(B, start + chunk)):
            src, g_in = x[a, k], gy[a, k]
            if RELU:  # two loops, so that each one vectorises
                for c in range(C):
                    ge = np.float64(g_in[c]) if src[c] * sc[c] + sh[c] > 0 else 0.0
                    s1[c] += ge
                    s2[c] += ge * (np.float64(src[c]) - mc[c]) * rc[c]
            else:
                for c in range(C):
                    ge = np.float64(g_in[c])
                    s1[c] += ge
                    s2[c] += ge * (np.float64(src[c]) - mc[c]) * rc[c]


@kernel
def _group_rows(a, C, Ga, per_sample, group_size, mean, rstd, mc, rc):
    """mean and rstd of each channel's group in block a, as rows of C (no division per
    element in the inner loops)."""
    for c in range(C):
        g = (a * Ga if per_sample else 0) + c // group_size
        mc[c], rc[c] = mean[g], rstd[g]


def _backward_merge(P1, P2, C, blocks, w, per_sample, group_size, batch_stats, per_group, dw,
                    db, H1, H2):
    # the per-item sums into dw, db and each group's two means of the closed form (zero for
    # constant statistics), serially and in a fixed order (deterministic)
    Ga = C // group_size
    for p in range(P1.size):
        a = p // C if not CL else (p // C) // blocks
        c = p % C
        db[c] += P1[p]
        dw[c] += P2[p]
        g = (a * Ga if per_sample else 0) + c // group_size
        H1[g] += np.float64(w[c]) * P1[p]
        H2[g] += np.float64(w[c]) * P2[p]
    for g in range(H1.size):
        H1[g] = H1[g] / per_group if batch_stats else 0.0
        H2[g] = H2[g] / per_group if batch_stats else 0.0


def _backward_dx(lo, hi, x, gy, mean, rstd, w, scale, shift, per_sample, group_size, chunk,
                 H1, H2, dx):
    C = x.shape[2] if CL else x.shape[1]
    B = x.shape[1] if CL else x.shape[2]
    Ga = C // group_size
    if not CL:
        for item in range(lo, hi):
            a, c = item // C, item % C
            src, g_in, out = x[a, c], gy[a, c], dx[a, c]
            g = (a * Ga if per_sample else 0) + c // group_size
            m, r, s, t = mean[g], rstd[g], scale[item], shift[item]
            wc, m1, m2 = np.float64(w[c]), H1[g], H2[g]
            for k in range(B):
                ge = np.float64(g_in[k]) if not RELU or src[k] * s + t > 0 else 0.0
                out[k] = r * (ge * wc - m1 - (np.float64(src[k]) - m) * r * m2)
        return
    blocks = (B + chunk - 1) // chunk
    mc, rc = np.empty(C), np.empty(C)
    k1, k2, k3 = np.empty(C), np.empty(C), np.empty(C)
    for item in range(lo, hi):
        a = item // blocks
        start = (item % blocks) * chunk
        _group_rows(a, C, Ga, per_sample, group_size, mean, rstd, mc, rc)
        sc, sh = scale[a * C:(a + 1) * C], shift[a * C:(a + 1) * C]
        # dx = k1 * g - k2 - (x - mean) * k3, the coefficients per channel of block a
        for c in range(C):
            g = (a * Ga if per_sample else 0) + c // group_size
            k1[c] = rc[c] * np.float64(w[c])
            k2[c] = rc[c] * H1[g]
            k3[c] = rc[c] * rc[c] * H2[g]
        for k in range(start, min(B, start + chunk)):
            src, g_in, out = x[a, k], gy[a, k], dx[a, k]
            if RELU:
                for c in range(C):
                    ge = np.float64(g_in[c]) if src[c] * sc[c] + sh[c] > 0 else 0.0
                    out[c] = k1[c] * ge - k2[c] - (np.float64(src[c]) - mc[c]) * k3[c]
            else:
                for c in range(C):
                    out[c] = (k1[c] * np.float64(g_in[c]) - k2[c]
                              - (np.float64(src[c]) - mc[c]) * k3[c])


# Compiled serial, one copy per layout (CL) and, for backward, with or without the ReLU (RELU):
# Numba prunes the other copies' branches before compiling (the cnn's cold start compiled
# every branch to run one). Threads come from parallel.over_items, not from prange: a parfor
# cost 2-3x a serial loop's compile time (backward 4.0 s against 1.7 s), and the work runs on
# the same threads as conv's and matmul's.
CL = RELU = False
_stats_pieces_copy = variants(_stats_pieces, ("CL",), math.inf)
_stats_merge_copy = variants(_stats_merge, ("CL",), math.inf)
_apply_copy = variants(_apply_items, ("CL",), math.inf)
_sums_copy = variants(_backward_sums, ("CL", "RELU"), math.inf)
_backward_merge_copy = variants(_backward_merge, ("CL",), math.inf)
_dx_copy = variants(_backward_dx, ("CL", "RELU"), math.inf)


def _items(m, cl):
    """(work items, rows per channels-last block): rows (a, c) in rows mode; (a, row block)
    channels-last, as many as _chunk says."""
    A = m.shape[0]
    if not cl:
        return A * m.shape[1], 1
    chunk = _chunk(A, m.shape[1], m.shape[2])
    return A * -(-m.shape[1] // chunk), chunk


def _scale_shift(m, cl, mean, rstd, w, b, per_sample, group_size):
    A, C = m.shape[0], (m.shape[2] if cl else m.shape[1])
    scale, shift = np.empty(A * C, m.dtype), np.empty(A * C, m.dtype)
    _all_coefficients(A, C, per_sample, group_size, mean, rstd, w, b, scale, shift)
    return scale, shift


def _memory(x, per_sample):
    """(x as a C-contiguous 3-D memory array, channels_last, logical shape in memory order):
    rows mode (N, C, S) or channels-last (N, S, C); batch norm's channels-last matrix is one
    block (1, N * S, C), its statistics not depending on n."""
    N, C = x.shape[0], x.shape[1]
    S = x.size // (N * C) if N * C else 0
    last = (0,) + tuple(range(2, x.ndim)) + (1,)
    if S > 1 and (x.flags.c_contiguous or memory_order(x.shape, x.strides)[-1] != 1):
        return np.ascontiguousarray(x).reshape(N, C, S), False
    m = np.ascontiguousarray(x.transpose(last)).reshape(N, S, C)
    return (m if per_sample else m.reshape(1, N * S, C)), True


def _logical(m, cl, shape):
    """Memory array m viewed back as the logical (N, C, *S) `shape`, keeping m's layout."""
    if not cl:
        return m.reshape(shape)
    nd = len(shape)
    inverse = (0, nd - 1) + tuple(range(1, nd - 1))
    return m.reshape((shape[0],) + tuple(shape[2:]) + (shape[1],)).transpose(inverse)


def _affine(w, b, C, dtype):
    return (np.ones(C, dtype) if w is None else w), (np.zeros(C, dtype) if b is None else b)


def norm_stats(x, per_sample, group_size, eps):
    """Mean, biased variance and 1 / sqrt(var + eps) (float64) of each group of x (N, C, *S):
    C // group_size groups, times N when per_sample."""
    m, cl = _memory(x, per_sample)
    N, C = x.shape[0], x.shape[1]
    G = (N if per_sample else 1) * (C // group_size)
    mean, var, rstd = np.empty(G), np.empty(G), np.empty(G)
    items, chunk = _items(m, cl)
    pieces = items * (C // group_size) if cl else items
    pn, pm, pM2 = np.empty(pieces), np.empty(pieces), np.empty(pieces)
    over_items(_stats_pieces_copy(0, cl), items, m.size, m, group_size, chunk, pn, pm, pM2)
    blocks = items // m.shape[0]
    _stats_merge_copy(0, cl)(pn, pm, pM2, C, blocks, per_sample, group_size, eps, mean, var,
                             rstd)
    return mean, var, rstd


def norm_apply(x, mean, rstd, weight, bias, per_sample, group_size, relu):
    """(x - mean[g]) * rstd[g] * weight[c] + bias[c], then max(., 0) if relu; weight and bias
    may be None (1 and 0). The result has x's shape, dtype and memory layout."""
    m, cl = _memory(x, per_sample)
    w, b = _affine(weight, bias, x.shape[1], x.dtype)
    y = np.empty_like(m)
    scale, shift = _scale_shift(m, cl, mean, rstd, w, b, per_sample, group_size)
    items, chunk = _items(m, cl)
    over_items(_apply_copy(0, cl), items, m.size, m, y, scale, shift, bool(relu), chunk,
               min_size=APPLY_PARALLEL_MIN_SIZE)
    return _logical(y, cl, x.shape)


def norm_backward(x, grad, mean, rstd, weight, bias, per_sample, group_size, relu, batch_stats):
    """(dx, dweight, dbias) of norm_apply at x for the output gradient `grad`; dx in x's layout.
    batch_stats: mean and rstd were computed from x (training), so dx has the closed form's
    two mean terms; otherwise they are constants (running statistics)."""
    m, cl = _memory(x, per_sample)
    if cl:  # the gradient in x's memory layout
        last = (0,) + tuple(range(2, x.ndim)) + (1,)
        g = np.ascontiguousarray(grad.transpose(last)).reshape(m.shape)
    else:
        g = np.ascontiguousarray(grad).reshape(m.shape)
    A, C = m.shape[0], x.shape[1]
    w, b = _affine(weight, bias, C, x.dtype)
    scale, shift = _scale_shift(m, cl, mean, rstd, w, b, per_sample, group_size)
    items, chunk = _items(m, cl)
    width = C if cl else 1
    P1, P2 = np.zeros(items * width), np.zeros(items * width)
    relu = bool(relu)
    over_items(_sums_copy(0, cl, relu), items, m.size, m, g, mean, rstd, scale, shift,
               per_sample, group_size, chunk, P1, P2)
    dw, db = np.zeros(C), np.zeros(C)
    H1, H2 = np.zeros(mean.size), np.zeros(mean.size)
    per_group = (1 if per_sample else A) * group_size * (m.shape[1] if cl else m.shape[2])
    _backward_merge_copy(0, cl)(P1, P2, C, items // A, w, per_sample, group_size,
                                bool(batch_stats), per_group, dw, db, H1, H2)
    dx = np.empty_like(m)
    over_items(_dx_copy(0, cl, relu), items, m.size, m, g, mean, rstd, w, scale, shift,
               per_sample, group_size, chunk, H1, H2, dx)
    return _logical(dx, cl, x.shape), dw.astype(x.dtype), db.astype(x.dtype)


def norm_update_running(running_mean, running_var, mean, var, momentum, count):
    """In place: running = (1 - momentum) * running + momentum * batch value, the variance
    unbiased by count / (count - 1) (count: elements per group). mean and var hold one row of
    C values per sample (instance norm) or one row (batch norm): rows are averaged."""
    C = running_mean.shape[0]
    batch_mean = mean.reshape(-1, C).mean(axis=0)
    batch_var = var.reshape(-1, C).mean(axis=0) * (count / (count - 1))
    running_mean *= 1.0 - momentum
    running_mean += momentum * batch_mean
    running_var *= 1.0 - momentum
    running_var += momentum * batch_var


def norm_running_stats(running_mean, running_var, eps):
    """(mean, 1 / sqrt(var + eps)) in float64 from running statistics, for norm_apply."""
    return running_mean.astype(np.float64), 1.0 / np.sqrt(running_var.astype(np.float64) + eps)
