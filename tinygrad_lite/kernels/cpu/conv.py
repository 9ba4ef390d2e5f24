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
gradient: mul = 1, step = dilation, div = stride, with the taps flipped, i' = kh - 1 - i, so
that they step forward: offset = pad - (kh - 1) * dilation, and wtmat and the weight gradient
in flipped tap order). With one group, unit steps and no division, a kernel row's taps read
neighbouring pixels, kw * C consecutive numbers, copied as one run. Groups go to BLAS as one
batched np.matmul (no Python loop over groups, which made depthwise convs slow).

The im2col runs in chunks of output image rows small enough to stay in a core's L2 cache
(COLS_BYTES), each consumed by its GEMMs at once; backward recomputes its cols rather than
keeping forward's (memory over a little time). The thread budget's threads (tl.set_num_threads)
take the chunks in turn, a few at a time (parallel.share_out), each doing its own im2col and
its own single-threaded BLAS calls: no chunk's rows ever leave the core that wrote them, and the
cores are never handed from Numba's pool to BLAS's and back (each hand-off, with both pools
spinning, cost more than small chunks saved). Measured against one big chunk filled by a
parallel im2col then one multi-threaded GEMM (batch 128, 2 threads): the demo's 32->32 conv at
32x32 forward 42 -> 18 ms. A 1x1, stride-1, unpadded conv needs no im2col either way: the NHWC
input (or output gradient) is its own cols matrix, split into the same chunks.
"""
import threading

import numpy as np

from .jit import kernel
from .parallel import share_out

__all__ = ["conv2d", "conv2d_backward"]

# Tunable: the most bytes of im2col rows in one chunk (at least one image row's). Measured with
# tools/bench_conv.py on a 2-core machine with 2 MiB of L2 per core (batch 128, 3x3 padding 1,
# 2 threads): 256 KiB to 2 MiB within noise of each other on every demo shape (32->32 at 32x32
# forward 18.4 ms at each); the old single 32 MiB chunk filled from DRAM took 33-43 ms. Tests
# shrink it to cross chunk boundaries.
COLS_BYTES = 1 << 20
# Chunks per item that the threads take in turn: enough items for a thread slowed by other
# load to leave some to the others (a 32x32 layer of the demo has about 150 chunks), few
# enough that the per-item weight-gradient partial sums stay small.
CHUNKS_PER_ITEM = 4


@kernel
def _im2col(src, cols, r0, r1, OH, OW, kh, kw, mh, mw, offh, offw, dh, dw, divh, divw, G):
    # src (N, H, W, C) C-contiguous; cols ((r1 - r0) * OW, G*K) C-contiguous, K = kh*kw*Cg,
    # holding output image rows r = n * OH + oh for r0 <= r < r1. Output pixel (oh, ow), tap
    # (i, j) reads source row v / div for v = oh*mh + offh + i*dh when div divides v and the
    # row is inside (0 otherwise). Serial: the caller runs chunks in threads of its own.
    H, W, C = src.shape[1], src.shape[2], src.shape[3]
    Cg = C // G
    K = kh * kw * Cg
    flat = src.reshape(src.size)
    # One group, unit step along the row and no division: the kw taps of a kernel row read kw
    # neighbouring pixels, kw * C consecutive numbers in NHWC memory, copied as one run when
    # they are all inside (3x fewer, longer copies for a 3x3 conv).
    runs = G == 1 and dw == 1 and divw == 1
    for t in range(r1 - r0):
        n, oh = (r0 + t) // OH, (r0 + t) % OH
        for ow in range(OW):
            row = cols[t * OW + ow]
            for i in range(kh):
                vh = oh * mh + offh + i * dh
                ih = vh if divh == 1 else vh // divh  # an integer division costs ~25 cycles
                ok_h = 0 <= ih < H and (divh == 1 or ih * divh == vh)
                vw0 = ow * mw + offw
                if runs and ok_h and 0 <= vw0 and vw0 + kw <= W:
                    base = ((n * H + ih) * W + vw0) * C
                    s = flat[base:base + kw * C]
                    dst = row[i * kw * C:(i + 1) * kw * C]
                    for c in range(kw * C):
                        dst[c] = s[c]
                    continue
                for j in range(kw):
                    vw = vw0 + j * dw
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


def _chunks(image_rows, row_bytes):
    """[r0, r1) ranges of the output grid's image rows whose cols (row_bytes per image row)
    fit in COLS_BYTES, at least one image row each."""
    step = max(1, min(image_rows, COLS_BYTES // max(1, row_bytes)))
    return [(r0, min(image_rows, r0 + step)) for r0 in range(0, image_rows, step)]


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


def _weight_product(a, b, G, swap):
    """a[:, group g]^T @ b[:, group g] as (G, k, m) for a (R, G*k), b (R, G*m); when swap, its
    transpose (G, m, k), computed as such. Multi-threaded OpenBLAS ran these long-K products
    several times faster with the larger of k and m as the output's rows (0.5 vs 7.8 GFLOP/s
    for 32 x 288 vs 288 x 32 over 7168 rows), so callers put the larger side first and
    transpose the sum back (a view) at the end; on today's L2-sized chunks, single-threaded,
    the two are within 5% (85.8 vs 89.4 GFLOP/s over 896 rows)."""
    if swap:
        a, b = b, a
    if G == 1:
        return np.dot(a.T, b)[None]
    return np.matmul(_grouped(a, G).transpose(0, 2, 1), _grouped(b, G))


class _Im2colGemm:
    """One pass of the im2col of `src` over an output grid (N, OH, OW) with taps laid out per
    `geometry` (mh, mw, offh, offw, dh, dw, divh, divw), chunk by chunk, each chunk used at once:
    out[rows] = cols @ mat (per group) when `out` is given, and when `pair` (rows, G*k') is
    given the weight-gradient sum over chunks of pair[rows]^T @ cols (pair_first) or
    cols^T @ pair[rows]. `run()` shares the chunks out among the thread budget's threads and
    returns that sum as (G, k, m) (None without `pair`)."""

    def __init__(self, src, grid, taps, geometry, G, K, direct, mat=None, out=None, pair=None,
                 pair_first=True):
        self.src, self.grid, self.taps, self.geometry = src, grid, taps, geometry
        self.G, self.K, self.direct, self.mat, self.out = G, K, direct, mat, out
        self.pair, self.pair_first = pair, pair_first
        if pair is not None:
            widths = (pair.shape[1], G * K) if pair_first else (G * K, pair.shape[1])
            self.swap = widths[1] > widths[0]

    def chunk_rows(self, r0, r1):
        """The cols rows of image rows [r0, r1): this thread's scratch, or src itself (direct)."""
        N, OH, OW = self.grid
        if self.direct:
            return self.src.reshape(N * OH * OW, self.G * self.K)[r0 * OW:r1 * OW]
        cols = _scratch(((r1 - r0) * OW, self.G * self.K), self.src.dtype)
        _im2col(self.src, cols, r0, r1, OH, OW, *self.taps, *self.geometry, self.G)
        return cols

    def work(self, chunks):
        """One item of share_out: a few consecutive chunks, their weight-gradient sum or None."""
        OW, acc = self.grid[2], None
        for r0, r1 in chunks:
            cols = self.chunk_rows(r0, r1)
            rows = slice(r0 * OW, r1 * OW)
            if self.out is not None:
                _gemm(cols, self.mat, self.out[rows], self.G)
            if self.pair is not None:
                a, b = (self.pair[rows], cols) if self.pair_first else (cols, self.pair[rows])
                part = _weight_product(a, b, self.G, self.swap)
                if acc is None:
                    acc = part
                else:
                    acc += part
        return acc

    def run(self):
        N, OH, OW = self.grid
        chunks = _chunks(N * OH, OW * self.G * self.K * self.src.itemsize)
        # Items of CHUNKS_PER_ITEM consecutive chunks whatever the thread count, summed in
        # their order: the weight gradient is the same number with 1, 2 or 16 threads.
        items = [chunks[i:i + CHUNKS_PER_ITEM] for i in range(0, len(chunks), CHUNKS_PER_ITEM)]
        parts = share_out(self.work, items)
        if self.pair is None:
            return None
        total = parts[0]
        for part in parts[1:]:
            total += part
        return total.transpose(0, 2, 1) if self.swap else total


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
    _Im2colGemm(_nhwc(x), (N, OH, OW), (kh, kw), geometry, G, kh * kw * Cg,
                _direct(kh, kw, stride, padding), mat=wmat, out=out).run()
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
        # The taps flipped (i' = kh-1-i, j' = kw-1-j), so that they step forward along the
        # gradient's rows like a forward conv's and im2col copies runs: the input gradient is
        # the output gradient correlated with the flipped weights.
        # (O, Cg, kh, kw) -> (G, K', Cg), rows in gcols' (i', j', o) order: a small copy
        flipped = weight[:, :, ::-1, ::-1]
        wtmat = np.ascontiguousarray(flipped.reshape(G, Og, Cg, kh, kw).transpose(0, 3, 4, 1, 2))
        wtmat = wtmat.reshape(G, kh * kw * Og, Cg)
        gx = np.empty((N * H * W, C), grad.dtype)
        geometry = (1, 1, padding[0] - (kh - 1) * dilation[0], padding[1] - (kw - 1) * dilation[1],
                    *dilation, *stride)
        gw = _Im2colGemm(gh, (N, H, W), (kh, kw), geometry, G, kh * kw * Og, direct,
                         mat=wtmat, out=gx,
                         pair=xh.reshape(N * H * W, C) if need_weight else None).run()
        gx = gx.reshape(N, H, W, C).transpose(0, 3, 1, 2)
        if need_weight:  # (G, Cg, kh', kw', Og) -> (O, Cg, kh, kw), the taps flipped back
            gw = np.ascontiguousarray(gw.reshape(G, Cg, kh, kw, Og).transpose(0, 4, 1, 2, 3)
                                      [:, :, :, ::-1, ::-1]).reshape(O, Cg, kh, kw)
    elif need_weight:
        geometry = (*stride, -padding[0], -padding[1], *dilation, 1, 1)
        gw = _Im2colGemm(xh, (N, OH, OW), (kh, kw), geometry, G, kh * kw * Cg, direct,
                         pair=gh.reshape(N * OH * OW, O), pair_first=False).run()
        # (G, kh, kw, Cg, Og) -> (O, Cg, kh, kw)
        gw = np.ascontiguousarray(
            gw.reshape(G, kh, kw, Cg, Og).transpose(0, 4, 3, 1, 2)).reshape(O, Cg, kh, kw)
    return gx, gw


_workspace = threading.local()


def _scratch(shape, dtype):
    """An uninitialised C-contiguous array over a per-thread buffer kept between calls. A
    fresh array per chunk is fresh memory from the OS every time, and its page faults cost
    about as much as the im2col that fills it (measured: 54 -> 36 ms for the demo's 32->32
    conv at 32x32, batch 128, with 32 MiB chunks). Per thread, so that convs in several
    threads never share it; at most the largest chunk asked for (about COLS_BYTES) per thread."""
    nbytes = shape[0] * shape[1] * np.dtype(dtype).itemsize
    buf = getattr(_workspace, "buffer", None)
    if buf is None or buf.nbytes < nbytes:
        buf = _workspace.buffer = np.empty(nbytes, np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)
