"""Convolution on the CPU: im2col over NHWC memory + BLAS GEMM, forward and backward, with one
im2col kernel and no col2im.

Why NHWC: one output pixel's im2col row is, for each kernel tap (i, j), the Cg channels of one
input pixel, which in NHWC memory are Cg consecutive numbers: the row is built from contiguous
copies (about 6x faster than gathering NCHW). So the input is taken as NHWC memory (free when
the NCHW tensor is a view over NHWC memory, one copy otherwise) and the output is returned as an
NCHW-shaped view over NHWC (N, OH, OW, O) memory, which the next conv, pool or norm reads free.

Shapes. Input x (N, C, H, W), weight (O, Cg, kh, kw) with Cg = C / G for G groups, Og = O / G.
A row r = (n, oh, ow) of `cols` holds, for each group g, K = kh * kw * Cg numbers in the order
(i, j, c): cols[r, g*K + (i*kw + j)*Cg + c] = x[n, g*Cg + c, oh*sh - ph + i*dh, ow*sw - pw + j*dw]
(0 in the padding). With the weight as wmat[g] (K, Og), the output rows are, per group,
    out[r, g*Og:(g+1)*Og] = cols[r, g*K:(g+1)*K] @ wmat[g] (+ bias).

Backward is the same machinery run the other way, without col2im's scatter. Input pixel
(n, ih, iw) received, through tap (i, j), output pixel oh = (ih + ph - i*dh) / sh (when that
divides exactly and lands inside), so the input gradient is an im2col over the *output
gradient* on the input's grid, "gcols" with K' = kh * kw * Og columns per group in the order
(i, j, o), times the weight arranged as wtmat[g] (K', Cg):
    grad_x[r', g*Cg:(g+1)*Cg] = gcols[r', g*K':(g+1)*K'] @ wtmat[g]
(a strided forward conv reads every sh-th input row, so its gcols rows are mostly zeros; the
formula is still exact). The same gcols chunk, still in cache, gives the weight gradient:
    grad_wt[g] (Cg, K') += x_rows[r', g*Cg:(g+1)*Cg]^T @ gcols[r', g*K':(g+1)*K']
since every (output pixel, tap) pair that read a real input pixel appears in exactly one gcols
entry. So backward is one im2col and two GEMMs per chunk. When only the weight gradient is
needed (the first layer, whose input is the images), the forward im2col of x is cheaper (K is
9 * 3 there, K' 9 * 32): grad_wmat[g] += cols[:, gK:(g+1)K]^T @ grad_rows[:, gOg:(g+1)Og].

One kernel does both im2cols: source row index = (output index * mul + offset + tap * step),
kept when it divides by `div` (forward: mul = stride, offset = -pad, step = dilation, div = 1;
gradient: mul = 1, offset = pad, step = -dilation, div = stride). Groups go to BLAS as one
batched np.matmul (no Python loop over groups, which made depthwise convs slow).

The batch is processed in chunks of images so that cols stays under COLS_BYTES (batch 128 at
32x32 with 9*64 columns would be 300 MB); backward recomputes its cols rather than keeping
forward's (memory over a little time). A 1x1, stride-1, unpadded conv needs no im2col either
way: the NHWC input (or output gradient) is its own cols matrix.
"""
import threading

import numpy as np
from numba import prange

from .jit import parallel_kernel

__all__ = ["conv2d", "conv2d_backward"]

# Tunable: the most bytes of im2col rows alive at once. Measured with tools/bench_conv.py-style
# timings interleaved with torch (batch 128, 3x3 padding 1, forward + backward, 2 threads on
# a loaded 2-core machine, medians of 5), after backward became one im2col and two GEMMs per chunk: 32 MiB
# beat 8 MiB on every demo shape (32->32 at 32x32: 120 vs 125-370 ms; 64->64 at 16x16: 97 vs
# 127-277 ms) and 1-2 MiB were 2-4x slower (each chunk hands the cores from Numba's threads to
# BLAS's and back). 64-160 MiB gained nothing. Tests shrink it to cross chunk boundaries.
COLS_BYTES = 32 << 20

# Compiled parallel only (prange over output rows): a serial twin would double the cold
# compile cost, and a conv is never small enough for the ~3 us thread wake-up to show.
_jit = parallel_kernel


@_jit
def _im2col(src, cols, n0, n1, OH, OW, kh, kw, mh, mw, offh, offw, dh, dw, divh, divw, G):
    # src (N, H, W, C) C-contiguous; cols (rows of images n0..n1-1, G*K) C-contiguous, K =
    # kh*kw*Cg. Output pixel (oh, ow), tap (i, j) reads source row v / div for
    # v = oh*mh + offh + i*dh when div divides v and the row is inside (0 otherwise).
    H, W, C = src.shape[1], src.shape[2], src.shape[3]
    Cg = C // G
    K = kh * kw * Cg
    for t in prange((n1 - n0) * OH):
        n, oh = n0 + t // OH, t % OH
        for ow in range(OW):
            row = cols[t * OW + ow]
            for i in range(kh):
                vh = oh * mh + offh + i * dh
                ih = vh if divh == 1 else vh // divh  # an integer division costs ~25 cycles
                ok_h = 0 <= ih < H and (divh == 1 or ih * divh == vh)
                for j in range(kw):
                    vw = ow * mw + offw + j * dw
                    iw = vw if divw == 1 else vw // divw
                    inside = ok_h and 0 <= iw < W and (divw == 1 or iw * divw == vw)
                    for g in range(G):
                        dst = row[g * K + (i * kw + j) * Cg:g * K + (i * kw + j + 1) * Cg]
                        if inside:  # a contiguous run: slices vectorise the copy (3x faster
                            s = src[n, ih, iw, g * Cg:(g + 1) * Cg]  # than indexing at Cg=32)
                            for c in range(Cg):
                                dst[c] = s[c]
                        else:
                            dst[:] = 0


def _nhwc(x):
    """The (N, H, W, C) C-contiguous memory of an (N, C, H, W) array: a view when x is an NCHW
    view over NHWC memory, one copy otherwise."""
    t = x.transpose(0, 2, 3, 1)
    return t if t.flags.c_contiguous else np.ascontiguousarray(t)


def _direct(kh, kw, stride, padding):
    """A 1x1, stride-1, unpadded conv: the NHWC input (or output gradient) is the cols matrix."""
    return kh == 1 and kw == 1 and stride == (1, 1) and padding == (0, 0)


def _chunks(N, row_bytes):
    """Image ranges [n0, n1) whose cols fit in COLS_BYTES (at least one image each)."""
    step = max(1, min(N, COLS_BYTES // max(1, row_bytes)))
    return [(n0, min(N, n0 + step)) for n0 in range(0, N, step)]


def _grouped(a, G):
    """(R, G*k) rows as the (G, R, k) stack of per-group matrices (a view)."""
    R = a.shape[0]
    return a.reshape(R, G, a.shape[1] // G).transpose(1, 0, 2)


def _gemm(a, b, out, G):
    """out[:, group g] = a[:, group g] @ b[g] for a (R, G*k), b (G, k, m), out (R, G*m): one
    BLAS call when G = 1, else one batched np.matmul (the loop over groups stays in C)."""
    if G == 1:
        np.dot(a, b[0], out=out)
    else:
        np.matmul(_grouped(a, G), b, out=_grouped(out, G))


def _weight_grad(pairs, G):
    """sum over chunks of a[:, group g]^T @ b[:, group g], as (G, k, m), for (a (R, G*k),
    b (R, G*m)) chunk pairs. OpenBLAS runs these long-K products several times faster with
    the larger of k and m as the output's rows (measured 0.5 vs 7.8 GFLOP/s for 32 x 288 vs
    288 x 32 over 7168 rows), so the smaller side goes second and the sum is transposed back
    (a view) at the end."""
    acc, swap = None, None
    for a, b in pairs:
        if swap is None:
            swap = b.shape[1] > a.shape[1]
        if swap:
            a, b = b, a
        if G == 1:
            part = np.dot(a.T, b)[None]
        else:
            part = np.matmul(_grouped(a, G).transpose(0, 2, 1), _grouped(b, G))
        if acc is None:
            acc = part
        else:
            acc += part
    return acc.transpose(0, 2, 1) if swap else acc


def _conv_rows(src, wmat, out, n_images, OH, OW, kh, kw, geometry, direct, G):
    """out (n_images*OH*OW, G*m) = the im2col of src (N, H, W, G*k'), with taps laid out per
    `geometry` (mh, mw, offh, offw, dh, dw, divh, divw), times wmat (G, kh*kw*k', m), chunk
    by chunk; yields (rows slice, cols chunk) after each chunk's GEMM for callers that reuse
    the chunk."""
    K = wmat.shape[1]
    if direct:
        cols = src.reshape(n_images * OH * OW, G * K)
        _gemm(cols, wmat, out, G)
        yield slice(0, n_images * OH * OW), cols
        return
    for rows, cols in _im2col_chunks(src, n_images, OH, OW, kh, kw, geometry, G, K):
        _gemm(cols, wmat, out[rows], G)
        yield rows, cols


def conv2d(x, weight, bias, stride, padding, dilation, groups, out_size):
    """Cross-correlation of x (N, C, H, W) (any strides) with weight (O, C/groups, kh, kw),
    plus bias (O,) or None. stride, padding (top, left), dilation are pairs; out_size is
    (OH, OW) (the caller's, which also fixes the bottom/right padding). Returns (N, O, OH, OW)
    as a view over NHWC memory."""
    N = x.shape[0]
    O, Cg, kh, kw = weight.shape
    OH, OW = out_size
    G = groups
    # (O, Cg, kh, kw) -> (G, K, Og), rows in cols' (i, j, c) order: a small copy
    wmat = np.ascontiguousarray(weight.reshape(G, O // G, Cg, kh, kw).transpose(0, 3, 4, 2, 1))
    wmat = wmat.reshape(G, kh * kw * Cg, O // G)
    out = np.empty((N * OH * OW, O), np.result_type(x.dtype, weight.dtype))
    geometry = (*stride, -padding[0], -padding[1], *dilation, 1, 1)
    for _ in _conv_rows(_nhwc(x), wmat, out, N, OH, OW, kh, kw, geometry,
                        _direct(kh, kw, stride, padding), G):
        pass
    if bias is not None:
        out += bias  # in place, one pass, broadcast over rows
    return out.reshape(N, OH, OW, O).transpose(0, 3, 1, 2)


def conv2d_backward(grad, x, weight, stride, padding, dilation, groups, need_input,
                    need_weight):
    """(grad_x or None, grad_weight or None) of conv2d for grad (N, O, OH, OW) (any strides).
    grad_x is an NCHW view over NHWC memory, like forward's output; grad_weight is C-contiguous
    (O, Cg, kh, kw). The bias gradient is a plain reduction, left to the op."""
    N, C, H, W = x.shape
    O, Cg, kh, kw = weight.shape
    OH, OW = grad.shape[2], grad.shape[3]
    G, Og = groups, O // groups
    direct = _direct(kh, kw, stride, padding)
    gh = _nhwc(grad)
    xh = _nhwc(x) if need_weight else None
    gx = gw = None
    if need_input:
        # (O, Cg, kh, kw) -> (G, K', Cg), rows in gcols' (i, j, o) order: a small copy
        wtmat = np.ascontiguousarray(weight.reshape(G, Og, Cg, kh, kw).transpose(0, 3, 4, 1, 2))
        wtmat = wtmat.reshape(G, kh * kw * Og, Cg)
        gx = np.empty((N * H * W, C), grad.dtype)
        xrows = xh.reshape(N * H * W, C) if need_weight else None
        geometry = (1, 1, padding[0], padding[1], -dilation[0], -dilation[1], *stride)
        chunks = _conv_rows(gh, wtmat, gx, N, H, W, kh, kw, geometry, direct, G)
        if need_weight:
            gw = _weight_grad(((xrows[rows], gcols) for rows, gcols in chunks), G)
        else:
            for _ in chunks:
                pass
        gx = gx.reshape(N, H, W, C).transpose(0, 3, 1, 2)
        if need_weight:  # (G, Cg, kh, kw, Og) -> (O, Cg, kh, kw)
            gw = np.ascontiguousarray(
                gw.reshape(G, Cg, kh, kw, Og).transpose(0, 4, 1, 2, 3)).reshape(O, Cg, kh, kw)
    elif need_weight:
        grows = gh.reshape(N * OH * OW, O)
        K = kh * kw * Cg
        geometry = (*stride, -padding[0], -padding[1], *dilation, 1, 1)
        if direct:
            chunks = [(slice(0, N * OH * OW), xh.reshape(N * OH * OW, C))]
        else:
            chunks = _im2col_chunks(xh, N, OH, OW, kh, kw, geometry, G, K)
        gw = _weight_grad(((cols, grows[rows]) for rows, cols in chunks), G)
        # (G, kh, kw, Cg, Og) -> (O, Cg, kh, kw)
        gw = np.ascontiguousarray(
            gw.reshape(G, kh, kw, Cg, Og).transpose(0, 4, 3, 1, 2)).reshape(O, Cg, kh, kw)
    return gx, gw


def _im2col_chunks(src, N, OH, OW, kh, kw, geometry, G, K):
    """(rows slice, cols chunk) of the im2col of src, chunk by chunk, in this thread's scratch
    buffer: each chunk is overwritten by the next, so use it before asking for the next."""
    cols = None
    for n0, n1 in _chunks(N, OH * OW * G * K * src.itemsize):
        rows = slice(n0 * OH * OW, n1 * OH * OW)
        count = rows.stop - rows.start
        if cols is None or cols.shape[0] != count:
            cols = _scratch((count, G * K), src.dtype)
        _im2col(src, cols, n0, n1, OH, OW, kh, kw, *geometry, G)
        yield rows, cols


_workspace = threading.local()


def _scratch(shape, dtype):
    """An uninitialised C-contiguous array over a per-thread buffer kept between calls. A
    fresh array of COLS_BYTES per conv call is fresh memory from the OS every time, and its
    page faults cost about as much as the im2col that fills it (measured: 54 -> 36 ms for the
    demo's 32->32 conv at 32x32, batch 128). Per thread, so that convs in several threads
    never share it; at most the largest chunk asked for (about COLS_BYTES) per thread."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buf = getattr(_workspace, "buffer", None)
    if buf is None or buf.nbytes < nbytes:
        buf = _workspace.buffer = np.empty(nbytes, np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)
