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
import numpy as np
from numba import prange

from ..plan import memory_order
from .jit import kernel, twin

__all__ = ["norm_stats", "norm_apply", "norm_backward", "norm_update_running",
           "norm_running_stats"]

# Rows of a channels-last matrix per work item aim at this many work items per call, so both
# cores stay busy and the per-item partial arrays stay small.
WORK_ITEMS = 64


def _chunk(A, B):
    """Rows per work item for A blocks of B channels-last rows."""
    per_block = max(1, min(B, -(-WORK_ITEMS // A)))
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


def _stats_loop(x, cl, per_sample, group_size, chunk, eps, mean, var, rstd):
    # x: (A, C, B) rows mode or (A, B, C) channels-last, C-contiguous.
    A = x.shape[0]
    C = x.shape[2] if cl else x.shape[1]
    B = x.shape[1] if cl else x.shape[2]
    Ga = C // group_size
    blocks = (B + chunk - 1) // chunk
    pieces = A * C if not cl else A * blocks * Ga
    pn, pm, pM2 = np.zeros(pieces), np.zeros(pieces), np.zeros(pieces)
    if not cl:  # one piece per row (a, c): B contiguous values, shifted by the first
        for r in prange(A * C):
            row = x[r // C, r % C]
            K = np.float64(row[0])
            s1 = 0.0
            s2 = 0.0
            for b in range(B):
                d = np.float64(row[b]) - K
                s1 += d
                s2 += d * d
            pn[r], pm[r], pM2[r] = B, K + s1 / B, max(s2 - s1 * s1 / B, 0.0)
    else:  # one piece per (a, row block, group): per-column sums, one shift per group
        for item in prange(A * blocks):
            a = item // blocks
            lo = (item % blocks) * chunk
            hi = min(B, lo + chunk)
            K = np.empty(C)
            for c in range(C):
                K[c] = x[a, lo, (c // group_size) * group_size]
            s1 = np.zeros(C)
            s2 = np.zeros(C)
            for b in range(lo, hi):
                row = x[a, b]
                for c in range(C):
                    d = np.float64(row[c]) - K[c]
                    s1[c] += d
                    s2[c] += d * d
            n = (hi - lo) * group_size
            for j in range(Ga):
                t1 = 0.0
                t2 = 0.0
                for c in range(j * group_size, (j + 1) * group_size):
                    t1 += s1[c]
                    t2 += s2[c]
                p = item * Ga + j
                pn[p], pm[p], pM2[p] = n, K[j * group_size] + t1 / n, max(t2 - t1 * t1 / n, 0.0)
    # merge the pieces into their groups, serially and in a fixed order (deterministic)
    G = mean.size
    gn = np.zeros(G)
    gM2 = np.zeros(G)
    for p in range(pieces):
        if not cl:
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
def _group_rows(a, C, Ga, per_sample, group_size, mean, rstd):
    """mean and rstd of each channel's group in block a, as rows of C (no division per
    element in the inner loops)."""
    mc, rc = np.empty(C), np.empty(C)
    for c in range(C):
        g = (a * Ga if per_sample else 0) + c // group_size
        mc[c], rc[c] = mean[g], rstd[g]
    return mc, rc


def _apply_loop(x, y, mean, rstd, w, b, cl, per_sample, group_size, relu, chunk):
    A = x.shape[0]
    C = x.shape[2] if cl else x.shape[1]
    B = x.shape[1] if cl else x.shape[2]
    Ga = C // group_size
    zero = np.zeros(1, x.dtype)[0]
    if not cl:
        scale = np.empty(A * C, x.dtype)
        shift = np.empty(A * C, x.dtype)
        for a in range(A):
            _coefficients(a, C, Ga, per_sample, group_size, mean, rstd, w, b,
                          scale[a * C:(a + 1) * C], shift[a * C:(a + 1) * C])
        for r in prange(A * C):
            src, dst = x[r // C, r % C], y[r // C, r % C]
            s, t = scale[r], shift[r]
            for k in range(B):
                v = src[k] * s + t
                dst[k] = v if not relu or v > 0 else zero
        return
    blocks = (B + chunk - 1) // chunk
    for item in prange(A * blocks):
        a = item // blocks
        lo = (item % blocks) * chunk
        scale = np.empty(C, x.dtype)
        shift = np.empty(C, x.dtype)
        _coefficients(a, C, Ga, per_sample, group_size, mean, rstd, w, b, scale, shift)
        for r in range(lo, min(B, lo + chunk)):
            src, dst = x[a, r], y[a, r]
            for c in range(C):
                v = src[c] * scale[c] + shift[c]
                dst[c] = v if not relu or v > 0 else zero


def _backward_loop(x, gy, mean, rstd, w, b, cl, per_sample, group_size, relu, batch_stats,
                   chunk, dx, dw, db):
    # With h = g * w[c] (g masked by the ReLU) and xhat = (x - mean) * rstd, per group:
    # dx = rstd * (h - mean(h) - xhat * mean(h * xhat)); the means vanish when the statistics
    # are constants (eval). dw[c] = sum(g * xhat), db[c] = sum(g). Pass 1 sums g and g * xhat
    # per (piece, channel); a serial merge gives the per-channel and per-group sums; pass 2
    # writes dx.
    A = x.shape[0]
    C = x.shape[2] if cl else x.shape[1]
    B = x.shape[1] if cl else x.shape[2]
    Ga = C // group_size
    G = mean.size
    per_group = (1 if per_sample else A) * group_size * B
    blocks = (B + chunk - 1) // chunk
    items = A * C if not cl else A * blocks
    width = 1 if not cl else C
    P1 = np.zeros(items * width)
    P2 = np.zeros(items * width)
    scale = np.empty(A * C, x.dtype)
    shift = np.empty(A * C, x.dtype)
    for a in range(A):
        _coefficients(a, C, Ga, per_sample, group_size, mean, rstd, w, b,
                      scale[a * C:(a + 1) * C], shift[a * C:(a + 1) * C])
    for item in prange(items):
        if not cl:
            a, c = item // C, item % C
            src, g_in = x[a, c], gy[a, c]
            g = (a * Ga if per_sample else 0) + c // group_size
            m, r, s, t = mean[g], rstd[g], scale[item], shift[item]
            s1 = 0.0
            s2 = 0.0
            for k in range(B):
                ge = np.float64(g_in[k]) if not relu or src[k] * s + t > 0 else 0.0
                s1 += ge
                s2 += ge * (np.float64(src[k]) - m) * r
            P1[item], P2[item] = s1, s2
        else:
            a = item // blocks
            lo = (item % blocks) * chunk
            mc, rc = _group_rows(a, C, Ga, per_sample, group_size, mean, rstd)
            sc, sh = scale[a * C:(a + 1) * C], shift[a * C:(a + 1) * C]
            s1 = np.zeros(C)
            s2 = np.zeros(C)
            for k in range(lo, min(B, lo + chunk)):
                src, g_in = x[a, k], gy[a, k]
                if relu:  # two loops, so that each one vectorises
                    for c in range(C):
                        ge = np.float64(g_in[c]) if src[c] * sc[c] + sh[c] > 0 else 0.0
                        s1[c] += ge
                        s2[c] += ge * (np.float64(src[c]) - mc[c]) * rc[c]
                else:
                    for c in range(C):
                        ge = np.float64(g_in[c])
                        s1[c] += ge
                        s2[c] += ge * (np.float64(src[c]) - mc[c]) * rc[c]
            for c in range(C):  # element stores: a slice store compiles NumPy's
                P1[item * C + c] = s1[c]  # shape-mismatch error path (~2 s cold)
                P2[item * C + c] = s2[c]
    H1 = np.zeros(G)
    H2 = np.zeros(G)
    for p in range(items * width):
        a = p // C if not cl else (p // C) // blocks
        c = p % C
        db[c] += P1[p]
        dw[c] += P2[p]
        g = (a * Ga if per_sample else 0) + c // group_size
        H1[g] += np.float64(w[c]) * P1[p]
        H2[g] += np.float64(w[c]) * P2[p]
    for g in range(G):  # the two means of the closed form, or zero for constant statistics
        H1[g] = H1[g] / per_group if batch_stats else 0.0
        H2[g] = H2[g] / per_group if batch_stats else 0.0
    for item in prange(items):
        if not cl:
            a, c = item // C, item % C
            src, g_in, out = x[a, c], gy[a, c], dx[a, c]
            g = (a * Ga if per_sample else 0) + c // group_size
            m, r, s, t = mean[g], rstd[g], scale[item], shift[item]
            wc, m1, m2 = np.float64(w[c]), H1[g], H2[g]
            for k in range(B):
                ge = np.float64(g_in[k]) if not relu or src[k] * s + t > 0 else 0.0
                out[k] = r * (ge * wc - m1 - (np.float64(src[k]) - m) * r * m2)
        else:
            a = item // blocks
            lo = (item % blocks) * chunk
            mc, rc = _group_rows(a, C, Ga, per_sample, group_size, mean, rstd)
            sc, sh = scale[a * C:(a + 1) * C], shift[a * C:(a + 1) * C]
            # dx = k1 * g - k2 - (x - mean) * k3, the coefficients per channel of block a
            k1, k2, k3 = np.empty(C), np.empty(C), np.empty(C)
            for c in range(C):
                g = (a * Ga if per_sample else 0) + c // group_size
                k1[c] = rc[c] * np.float64(w[c])
                k2[c] = rc[c] * H1[g]
                k3[c] = rc[c] * rc[c] * H2[g]
            for k in range(lo, min(B, lo + chunk)):
                src, g_in, out = x[a, k], gy[a, k], dx[a, k]
                if relu:
                    for c in range(C):
                        ge = np.float64(g_in[c]) if src[c] * sc[c] + sh[c] > 0 else 0.0
                        out[c] = k1[c] * ge - k2[c] - (np.float64(src[c]) - mc[c]) * k3[c]
                else:
                    for c in range(C):
                        out[c] = (k1[c] * np.float64(g_in[c]) - k2[c]
                                  - (np.float64(src[c]) - mc[c]) * k3[c])


_stats = twin(_stats_loop)
_apply = twin(_apply_loop)
_backward = twin(_backward_loop)


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
    chunk = _chunk(m.shape[0], m.shape[1]) if cl else 1
    _stats(m.size)(m, cl, per_sample, group_size, chunk, eps, mean, var, rstd)
    return mean, var, rstd


def norm_apply(x, mean, rstd, weight, bias, per_sample, group_size, relu):
    """(x - mean[g]) * rstd[g] * weight[c] + bias[c], then max(., 0) if relu; weight and bias
    may be None (1 and 0). The result has x's shape, dtype and memory layout."""
    m, cl = _memory(x, per_sample)
    w, b = _affine(weight, bias, x.shape[1], x.dtype)
    y = np.empty_like(m)
    chunk = _chunk(m.shape[0], m.shape[1]) if cl else 1
    _apply(m.size)(m, y, mean, rstd, w, b, cl, per_sample, group_size, bool(relu), chunk)
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
    C = x.shape[1]
    w, b = _affine(weight, bias, C, x.dtype)
    dx = np.empty_like(m)
    dw, db = np.zeros(C), np.zeros(C)
    chunk = _chunk(m.shape[0], m.shape[1]) if cl else 1
    _backward(m.size)(m, g, mean, rstd, w, b, cl, per_sample, group_size, bool(relu),
                      bool(batch_stats), chunk, dx, dw, db)
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
