"""Reduction CUDA kernels: sum/max/min and argmax/argmin over the middle axis of (A, K, B)
views planned by `kernels.plan.reduce_plan`.

Two shapes of work. Reducing contiguous rows (B == 1): a group of `width` threads (a power of
two, up to a whole block) shares each row, reads it coalesced, and combines its partial results
by a tree in shared memory; a block holds several rows when they are short. Reducing an outer
axis (B > 1): one thread per output column, neighbouring threads reading neighbouring addresses.
When there are too few outputs to fill the GPU and K is long, K is first split into segments
reduced in parallel, and the partials reduced by a second launch.

Accumulators are exact where they can be: float sums in float64, integer and bool sums in int64
(a float64 accumulator would lose 2**53 + 1), max and min in the input's own type.
"""
from functools import lru_cache

import numpy as np
from numba import cuda

from ..plan import reduce_plan, reduced_shape
from ..scalar import SUM
from .jit import MAX_BLOCKS, SCALAR, THREADS, kernel, launch
from .memory import empty, flat, full

_step, _arg_index = SCALAR.reduce_step, SCALAR.arg_index


def accumulator(op, dtype):
    """The dtype a reduction of `dtype` values accumulates in."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:  # bools enter the scalar math as ints (as Numba promotes them)
        return np.dtype(np.int64)
    if op != SUM:
        return dtype
    if dtype.kind == "f":
        return np.dtype(np.float64)
    if dtype.kind in "iu":
        return np.dtype(np.uint64 if dtype == np.uint64 else np.int64)
    return dtype


@lru_cache(maxsize=None)
def _kernels(acc_dtype):
    """The two reduction kernels with accumulators of `acc_dtype` (a compile-time constant:
    it types the shared-memory scratch and every partial result).

    Both reduce each of the A x B outputs' K elements in C segments of `chunk` elements
    (the last one shorter), giving A x C x B partial results: C = 1 is the whole reduction,
    C > 1 a first pass that spreads a long K over more threads (see _segments)."""
    acc = acc_dtype.type

    @kernel
    def rows(op, x, out, A, K, C, chunk, width):
        # B == 1. Thread `lane` of the `width` threads sharing segment `seg` folds every
        # width-th element of it, then the group halves its partials in shared memory. Every
        # thread of the block runs the same loop trips and barriers; `seg < A * C` only masks.
        scratch = cuda.shared.array(THREADS, acc)
        tid = cuda.threadIdx.x
        per_block = cuda.blockDim.x // width
        lane, slot = tid % width, tid // width
        for first in range(cuda.blockIdx.x * per_block, A * C, cuda.gridDim.x * per_block):
            seg = first + slot
            if seg < A * C:
                lo = (seg // C) * K + (seg % C) * chunk
                n = min(chunk, K - (seg % C) * chunk)
                # SUM starts from 0; max and min from an element of the segment (one the lane
                # folds again, which they ignore), as they have no identity for every dtype.
                total = acc(0) if op == SUM else acc(x[lo + min(lane, n - 1)])
                for k in range(lane, n, width):
                    total = _step(op, total, acc(x[lo + k]))
                scratch[tid] = total
            cuda.syncthreads()
            half = width // 2
            while half > 0:
                if lane < half and seg < A * C:
                    scratch[tid] = _step(op, scratch[tid], scratch[tid + half])
                cuda.syncthreads()
                half //= 2
            if lane == 0 and seg < A * C:
                out[seg] = scratch[tid]

    @kernel
    def columns(op, x, out, A, K, B, C, chunk):
        # B > 1: one thread per (a, c, b), neighbouring threads on neighbouring columns b.
        for t in range(cuda.grid(1), A * C * B, cuda.gridsize(1)):
            a, c, b = t // (C * B), (t // B) % C, t % B
            k0 = c * chunk
            k1 = min(K, k0 + chunk)
            base = a * K * B + b
            total = acc(0) if op == SUM else acc(x[base + k0 * B])
            for k in range(k0 if op == SUM else k0 + 1, k1):
                total = _step(op, total, acc(x[base + k * B]))
            out[t] = total

    return rows, columns


# Threads that keep a large GPU busy. A reduction with fewer outputs than that and long K
# first reduces K in segments of at least MIN_SEGMENT elements per thread into A x C x B
# partials, then reduces those: two launches instead of a few threads walking all of K.
FILL_THREADS = 1 << 16
MIN_SEGMENT = 32


def _segments(K, outputs, threads_each):
    """(C, chunk) for reducing K elements of each of `outputs` with `threads_each` threads."""
    busy = outputs * threads_each
    C = min(-(-K // (threads_each * MIN_SEGMENT)), -(-FILL_THREADS // busy))
    if C <= 1:
        return 1, K
    chunk = -(-K // C)
    return -(-K // chunk), chunk  # every segment non-empty


def _pow2_at_least(n):
    return 1 << max(0, int(n) - 1).bit_length()


def _reduce_pass(op, x, A, K, B, acc_dtype, out_dtype):
    """One (A, K, B) pass, as one launch or (for long K and few outputs) two."""
    rows, columns = _kernels(acc_dtype)
    width = 1 if B > 1 else min(THREADS, _pow2_at_least(K))
    C, chunk = _segments(K, A * B, width)
    out = empty((A * C * B,), out_dtype if C == 1 else acc_dtype)
    if B > 1:
        launch(columns, out.size)(op, x, out, A, K, B, C, chunk)
    else:
        per_block = min(THREADS // width, A * C)
        blocks = min(MAX_BLOCKS, -(-A * C // per_block))
        rows[blocks, width * per_block](op, x, out, A, K, C, chunk, width)
    return out if C == 1 else _reduce_pass(op, out, A, C, B, acc_dtype, out_dtype)


@kernel
def _argreduce(op, x, out, A, K, B):
    for t in range(cuda.grid(1), A * B, cuda.gridsize(1)):
        out[t] = _arg_index(op, x, (t // B) * K * B + t % B, K, B)


def reduce(op, x, axes, keepdims):
    """Reduce `x` over `axes` (a sorted tuple of non-negative ints) with SUM, MAX or MIN.
    The result has x's dtype; passes in between keep the accumulator's dtype."""
    shape, dtype = reduced_shape(x.shape, axes, keepdims), x.dtype
    acc_dtype = accumulator(op, dtype)
    passes = reduce_plan(x.shape, axes)
    x = flat(x)
    for i, (A, K, B) in enumerate(passes):
        out_dtype = dtype if i == len(passes) - 1 else acc_dtype
        if K == 0:  # an empty reduction: zeros, as on the CPU
            x = full((A * B,), 0, out_dtype)
            continue
        x = _reduce_pass(op, x, A, K, B, acc_dtype, out_dtype) if A * B else \
            empty((0,), out_dtype)
    return x.reshape(shape)


def argreduce(op, x, axis):
    """Index of the max (op MAX) or min (op MIN) along `axis`; the first one on ties. One
    thread per output scans its K elements (kernels.scalar.arg_index)."""
    A, K, B = reduce_plan(x.shape, (axis,))[0]
    out = empty((A * B,), np.int64)
    if out.size and not K:  # no element to point at (the CPU kernel would read out of bounds)
        raise ValueError(f"argreduce: axis {axis} of shape {tuple(x.shape)} is empty")
    if out.size:
        launch(_argreduce, out.size)(op, flat(x), out, A, K, B)
    return out.reshape(reduced_shape(x.shape, (axis,), False))
