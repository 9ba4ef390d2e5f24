"""Convolution on the GPU: an implicit-GEMM kernel (the tiled shared-memory GEMM of matmul.py
whose operand tiles are gathered from the image as they are loaded, so no im2col matrix is
ever stored), forward and both gradients, over dense NCHW device arrays.

Shapes as on the CPU (kernels/cpu/conv.py): x (N, C, H, W), weight (O, Cg, kh, kw), G groups,
Cg = C / G, Og = O / G; one group per blockIdx.z. The three products, per group g:

  forward       out[o, p]   = sum_kk  w[o, kk]   * xcol[kk, p]     M=Og, cols=N*OH*OW, K=Cg*kh*kw
  weight grad   gw[o, kk]   = sum_p   gout[o, p] * xcol[kk, p]     M=Og, cols=Cg*kh*kw, K=N*OH*OW
  input grad    gx[c, q]    = sum_rr  w[rr, c]   * gcol[rr, q]     M=Cg, cols=N*H*W,    K=Og*kh*kw

where p = (n, oh, ow) is an output pixel, q = (n, ih, iw) an input pixel, kk = (c, i, j) and
rr = (o, i, j) kernel taps, xcol[kk, p] = x[n, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw] (0 in the
padding) and gcol[rr, q] = gout[n, o, oh, ow] for the output pixel whose tap (i, j) read input
pixel q (0 if none: oh*sh = ih + ph - i*dh must have a solution 0 <= oh < OH). The input gradient
is thus a gather, one thread per input element: no atomics, no write races.
"""
import numpy as np
from numba import cuda

from .jit import SIMULATOR, kernel
from .memory import empty, flat

__all__ = ["conv2d", "conv2d_backward"]

# A TILE x TILE block computes a TILE x TILE output tile (256 threads, 2 x 2 KiB of shared
# memory in float64 on a GPU). The simulator runs every thread in Python: small tiles, so that
# small test shapes still span several blocks.
TILE = 4 if SIMULATOR else 16
FORWARD, WEIGHT_GRAD, INPUT_GRAD = 0, 1, 2


@cuda.jit(device=True)
def _x_index(geo, g, kk, p):
    """Flat index into x of xcol[kk, p] for group g, or -1 in the padding."""
    N, C, H, W, O, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw, G = geo
    c, i, j = kk // (kh * kw), (kk // kw) % kh, kk % kw
    n, oh, ow = p // (OH * OW), (p // OW) % OH, p % OW
    ih, iw = oh * sh - ph + i * dh, ow * sw - pw + j * dw
    if ih < 0 or ih >= H or iw < 0 or iw >= W:
        return -1
    return ((n * C + g * (C // G) + c) * H + ih) * W + iw


@cuda.jit(device=True)
def _grad_index(geo, g, rr, q):
    """Flat index into grad_out of gcol[rr, q] for group g, or -1 if tap (i, j) of no output
    pixel reads input pixel q."""
    N, C, H, W, O, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw, G = geo
    o, i, j = rr // (kh * kw), (rr // kw) % kh, rr % kw
    n, ih, iw = q // (H * W), (q // W) % H, q % W
    vh, vw = ih + ph - i * dh, iw + pw - j * dw
    if vh < 0 or vw < 0 or vh % sh != 0 or vw % sw != 0:
        return -1
    oh, ow = vh // sh, vw // sw
    if oh >= OH or ow >= OW:
        return -1
    return ((n * O + g * (O // G) + o) * OH + oh) * OW + ow


@kernel
def _conv_gemm(mode, x, w, gout, out, bias, has_bias, geo):
    # x, w, gout, out, bias are flat; `mode` picks the product (see the module docstring). The
    # mode is the same for every thread, so its branches never diverge within a block.
    N, C, H, W, O, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw, G = geo
    Cg, Og, taps, pixels = C // G, O // G, kh * kw, OH * OW
    if mode == FORWARD:
        M, cols, K = Og, N * pixels, Cg * taps
    elif mode == WEIGHT_GRAD:
        M, cols, K = Og, Cg * taps, N * pixels
    else:
        M, cols, K = Cg, N * H * W, Og * taps
    ta = cuda.shared.array((TILE, TILE), out.dtype)
    tb = cuda.shared.array((TILE, TILE), out.dtype)
    acc = cuda.local.array(1, out.dtype)  # a register of the output dtype
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    row, col = cuda.blockIdx.y * TILE + ty, cuda.blockIdx.x * TILE + tx
    for g in range(cuda.blockIdx.z, G, cuda.gridDim.z):
        acc[0] = 0
        for k0 in range(0, K, TILE):
            # Every thread reaches both barriers; out-of-range ones load zeros. (Statements,
            # not `a if c else 0`, whose int/float unification would go through float64.)
            ta[ty, tx] = 0
            tb[ty, tx] = 0
            ka, kb = k0 + tx, k0 + ty  # the reduction index of this thread's A and B element
            if row < M and ka < K:
                if mode == FORWARD:
                    ta[ty, tx] = w[(g * Og + row) * K + ka]
                elif mode == WEIGHT_GRAD:
                    ta[ty, tx] = gout[((ka // pixels) * O + g * Og + row) * pixels + ka % pixels]
                else:
                    ta[ty, tx] = w[((g * Og + ka // taps) * Cg + row) * taps + ka % taps]
            if kb < K and col < cols:
                if mode == FORWARD:
                    src = _x_index(geo, g, kb, col)
                elif mode == WEIGHT_GRAD:
                    src = _x_index(geo, g, col, kb)
                else:
                    src = _grad_index(geo, g, kb, col)
                if src >= 0:
                    if mode == INPUT_GRAD:
                        tb[ty, tx] = gout[src]
                    else:
                        tb[ty, tx] = x[src]
            cuda.syncthreads()
            for kk in range(TILE):
                acc[0] += ta[ty, kk] * tb[kk, tx]
            cuda.syncthreads()
        if row < M and col < cols:
            if mode == FORWARD:
                o = g * Og + row
                if has_bias:
                    acc[0] += bias[o]
                out[((col // pixels) * O + o) * pixels + col % pixels] = acc[0]
            elif mode == WEIGHT_GRAD:
                out[(g * Og + row) * cols + col] = acc[0]
            else:
                plane = H * W
                out[((col // plane) * C + g * Cg + row) * plane + col % plane] = acc[0]
        cuda.syncthreads()  # the next group's first loads must wait for this one's last reads


def _launch(mode, rows, cols, G, x, w, gout, out, bias, geo):
    if not (rows and cols and G):
        return
    grid = ((cols + TILE - 1) // TILE, (rows + TILE - 1) // TILE, min(G, 65535))
    has_bias = bias is not None
    _conv_gemm[grid, (TILE, TILE)](mode, flat(x), flat(w), flat(gout), flat(out),
                                   flat(bias) if has_bias else flat(out), has_bias, geo)


def _geometry(x_shape, w_shape, out_hw, stride, padding, dilation, groups):
    N, C, H, W = x_shape
    return (int(N), int(C), int(H), int(W), int(w_shape[0]), int(out_hw[0]), int(out_hw[1]),
            int(w_shape[2]), int(w_shape[3]), *map(int, stride), *map(int, padding),
            *map(int, dilation), int(groups))


def conv2d(x, weight, bias, stride, padding, dilation, groups, out_size):
    """Cross-correlation of x (N, C, H, W) with weight (O, C/groups, kh, kw), plus bias (O,) or
    None. stride, padding (top, left), dilation are pairs; out_size is (OH, OW). Returns a
    dense (N, O, OH, OW) array."""
    N, O = x.shape[0], weight.shape[0]
    out = empty((N, O) + tuple(out_size), x.dtype)
    geo = _geometry(x.shape, weight.shape, out_size, stride, padding, dilation, groups)
    _launch(FORWARD, O // groups, N * out_size[0] * out_size[1], groups, x, weight, x, out,
            bias, geo)
    return out


def conv2d_backward(grad, x, weight, stride, padding, dilation, groups, need_input,
                    need_weight):
    """(grad_x or None, grad_weight or None) of conv2d for grad (N, O, OH, OW); dense arrays.
    The bias gradient is a plain reduction, left to the op."""
    O, Cg, kh, kw = weight.shape
    geo = _geometry(x.shape, weight.shape, grad.shape[2:], stride, padding, dilation, groups)
    gx = gw = None
    if need_input:
        gx = empty(x.shape, grad.dtype)
        _launch(INPUT_GRAD, Cg, x.shape[0] * x.shape[2] * x.shape[3], groups, x, weight, grad,
                gx, None, geo)
    if need_weight:
        gw = empty(weight.shape, grad.dtype)
        _launch(WEIGHT_GRAD, O // groups, Cg * kh * kw, groups, x, weight, grad, gw, None, geo)
    return gx, gw
