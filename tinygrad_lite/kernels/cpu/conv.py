"""Convolution on the CPU: im2col over NHWC memory + BLAS GEMM, forward and backward.

Why NHWC: one output pixel's im2col row is, for each kernel tap (i, j), the Cg channels of one
input pixel, which in NHWC memory are Cg consecutive numbers: the row is built from contiguous
copies (about 6x faster than gathering NCHW). So the input is taken as NHWC memory (free when
the NCHW tensor is a view over NHWC memory, one copy otherwise) and the output is returned as an
NCHW-shaped view over NHWC (N, OH, OW, O) memory, which the next conv, pool or norm reads free.

Shapes. Input x (N, C, H, W), weight (O, Cg, kh, kw) with Cg = C / G for G groups, Og = O / G.
A row r = (n, oh, ow) of `cols` holds, for each group g, K = kh * kw * Cg numbers in the order
(i, j, c): cols[r, g*K + (i*kw + j)*Cg + c] = x[n, g*Cg + c, oh*sh - ph + i*dh, ow*sw - pw + j*dw]
(0 in the padding). With the weight as wmat[g] (K, Og), the output rows are, per group,
    out[r, g*Og:(g+1)*Og] = cols[r, g*K:(g+1)*K] @ wmat[g] (+ bias)
and the gradients are
    grad_wmat[g] = cols[:, gK:(g+1)K]^T @ grad_rows[:, gOg:(g+1)Og]
    grad_cols[:, gK:(g+1)K] = grad_rows[:, gOg:(g+1)Og] @ wmat[g]^T, then col2im.
col2im adds each grad_cols run back where im2col copied it from. Work is split by input row
(n, ih): the item that owns a row adds in every run that came from it, so no two threads write
the same element and neither atomics nor private buffers are needed.

The batch is processed in chunks of images so that `cols` stays under COLS_BYTES (batch 128 at
32x32 with 9*64 columns would be 300 MB); backward recomputes cols chunk by chunk rather than
keeping forward's (memory over a little time). A 1x1, stride-1, unpadded conv needs no im2col:
the NHWC input is its own cols matrix.
"""
import numpy as np
from numba import njit, prange

__all__ = ["conv2d", "conv2d_backward"]

# Tunable: the most bytes of im2col rows alive at once. 8 MiB still gives each GEMM thousands of
# rows (7 images of 32x32 with 9*32 float32 columns: 7168 rows), and chunks that stay in
# cache between im2col, GEMM and col2im measured faster than bigger ones (tools/bench_conv.py
# --cols-mb, batch 128, 32->32 channels at 32x32, forward + backward: 100 ms at 8 MiB, 140 ms
# at 32 MiB; 4 MiB 120 ms, 16 MiB 108 ms).
# Tests shrink it to cross chunk boundaries.
COLS_BYTES = 8 << 20

# Both loops are compiled parallel only (prange over image rows): a serial twin would double
# the cold compile cost, and a conv is never small enough for the ~3 us thread wake-up to show.
_jit = njit(cache=True, parallel=True, error_model="numpy")


@_jit
def _im2col(x, cols, n0, n1, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw, G):
    # x (N, H, W, C) C-contiguous; cols (rows of images n0..n1-1, G*K) C-contiguous.
    H, W, C = x.shape[1], x.shape[2], x.shape[3]
    Cg = C // G
    K = kh * kw * Cg
    for t in prange((n1 - n0) * OH):
        n, oh = n0 + t // OH, t % OH
        for ow in range(OW):
            row = cols[t * OW + ow]
            for i in range(kh):
                ih = oh * sh - ph + i * dh
                for j in range(kw):
                    iw = ow * sw - pw + j * dw
                    inside = 0 <= ih < H and 0 <= iw < W
                    for g in range(G):
                        dst = row[g * K + (i * kw + j) * Cg:g * K + (i * kw + j + 1) * Cg]
                        if inside:
                            src = x[n, ih, iw, g * Cg:(g + 1) * Cg]
                            for c in range(Cg):  # a contiguous run: vectorised copy
                                dst[c] = src[c]
                        else:
                            dst[:] = 0


@_jit
def _col2im(gcols, gx, n0, n1, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw, G):
    # gx (N, H, W, C) C-contiguous, written whole for images n0..n1-1. One work item owns one
    # input row (n, ih): it zeroes it, then adds in every grad_cols run that im2col copied
    # out of that row, i.e. taps i with oh*sh - ph + i*dh == ih. Only the owner writes the row,
    # so there are no races, and walking (oh, ow, j) forwards needs no divisions.
    H, W, C = gx.shape[1], gx.shape[2], gx.shape[3]
    Cg = C // G
    K = kh * kw * Cg
    for t in prange((n1 - n0) * H):
        local, ih = t // H, t % H
        image_row = gx[n0 + local, ih]  # (W, C)
        image_row[:] = 0
        for i in range(kh):
            vh = ih + ph - i * dh  # = oh * sh for the output row oh that tap i reads ih from
            if vh < 0 or vh % sh != 0 or vh // sh >= OH:
                continue
            first = (local * OH + vh // sh) * OW
            for ow in range(OW):
                row = gcols[first + ow]
                for j in range(kw):
                    iw = ow * sw - pw + j * dw
                    if iw < 0 or iw >= W:
                        continue
                    for g in range(G):
                        src = row[g * K + (i * kw + j) * Cg:g * K + (i * kw + j + 1) * Cg]
                        dst = image_row[iw, g * Cg:(g + 1) * Cg]
                        for c in range(Cg):
                            dst[c] += src[c]


def _nhwc(x):
    """The (N, H, W, C) C-contiguous memory of an (N, C, H, W) array: a view when x is an NCHW
    view over NHWC memory, one copy otherwise."""
    t = x.transpose(0, 2, 3, 1)
    return t if t.flags.c_contiguous else np.ascontiguousarray(t)


def _weight_matrix(w, G):
    """(O, Cg, kh, kw) -> (G, K, Og) with rows in cols' (i, j, c) order; a small copy."""
    O, Cg, kh, kw = w.shape
    return np.ascontiguousarray(
        w.reshape(G, O // G, Cg, kh, kw).transpose(0, 3, 4, 2, 1)).reshape(G, kh * kw * Cg,
                                                                            O // G)


def _direct(kh, kw, stride, padding):
    """A 1x1, stride-1, unpadded conv: the NHWC input already is the cols matrix."""
    return kh == 1 and kw == 1 and stride == (1, 1) and padding == (0, 0)


def _chunks(N, row_bytes):
    """Image ranges [n0, n1) whose cols fit in COLS_BYTES (at least one image each)."""
    step = max(1, min(N, COLS_BYTES // max(1, row_bytes)))
    return [(n0, min(N, n0 + step)) for n0 in range(0, N, step)]


def _gemm(a, b, out):
    """out = a @ b through BLAS, straight into `out` when it is C-contiguous."""
    if out.flags.c_contiguous:
        np.dot(a, b, out=out)
    else:
        out[...] = a @ b


def conv2d(x, weight, bias, stride, padding, dilation, groups, out_size):
    """Cross-correlation of x (N, C, H, W) (any strides) with weight (O, C/groups, kh, kw),
    plus bias (O,) or None. stride, padding (top, left), dilation are pairs; out_size is
    (OH, OW) (the caller's, which also fixes the bottom/right padding). Returns (N, O, OH, OW)
    as a view over NHWC memory."""
    N = x.shape[0]
    O, Cg, kh, kw = weight.shape
    OH, OW = out_size
    G, Og, K = groups, O // groups, kh * kw * Cg
    xh, wmat = _nhwc(x), _weight_matrix(weight, G)
    out = np.empty((N * OH * OW, O), np.result_type(x.dtype, weight.dtype))
    direct = _direct(kh, kw, stride, padding)
    cols = None
    for n0, n1 in _chunks(N, OH * OW * G * K * x.itemsize):
        rows = slice(n0 * OH * OW, n1 * OH * OW)
        if direct:
            cols = xh.reshape(N * OH * OW, G * K)[rows]
        else:
            if cols is None or cols.shape[0] != (n1 - n0) * OH * OW:
                cols = np.empty(((n1 - n0) * OH * OW, G * K), x.dtype)
            _im2col(xh, cols, n0, n1, OH, OW, kh, kw, *stride, *padding, *dilation, G)
        for g in range(G):
            _gemm(cols[:, g * K:(g + 1) * K], wmat[g], out[rows, g * Og:(g + 1) * Og])
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
    G, Og, K = groups, O // groups, kh * kw * Cg
    dtype = grad.dtype
    grows = _nhwc(grad).reshape(N * OH * OW, O)
    direct = _direct(kh, kw, stride, padding)
    xh = _nhwc(x) if need_weight else None
    wmat = _weight_matrix(weight, G) if need_input else None
    gx = np.empty((N, H, W, C), dtype) if need_input else None
    gw = np.zeros((G, K, Og), dtype) if need_weight else None
    cols = gcols = None
    for n0, n1 in _chunks(N, OH * OW * G * K * x.itemsize):
        rows = slice(n0 * OH * OW, n1 * OH * OW)
        count = (n1 - n0) * OH * OW
        if need_weight:
            if direct:
                cols = xh.reshape(N * OH * OW, G * K)[rows]
            else:
                if cols is None or cols.shape[0] != count:
                    cols = np.empty((count, G * K), x.dtype)
                _im2col(xh, cols, n0, n1, OH, OW, kh, kw, *stride, *padding, *dilation, G)
            for g in range(G):
                gw[g] += cols[:, g * K:(g + 1) * K].T @ grows[rows, g * Og:(g + 1) * Og]
        if need_input:
            if direct:  # grad_cols is the NHWC input gradient itself
                gcols = gx.reshape(N * H * W, C)[rows]
            elif gcols is None or gcols.shape[0] != count:
                gcols = np.empty((count, G * K), dtype)
            for g in range(G):
                _gemm(grows[rows, g * Og:(g + 1) * Og], wmat[g].T, gcols[:, g * K:(g + 1) * K])
            if not direct:
                _col2im(gcols, gx, n0, n1, OH, OW, kh, kw, *stride, *padding, *dilation, G)
    if need_input:
        gx = gx.transpose(0, 3, 1, 2)
    if need_weight:  # (G, kh, kw, Cg, Og) -> (O, Cg, kh, kw)
        gw = np.ascontiguousarray(
            gw.reshape(G, kh, kw, Cg, Og).transpose(0, 4, 3, 1, 2)).reshape(O, Cg, kh, kw)
    return gx, gw
