"""Reduction CPU kernels: sum/max/min and argmax/argmin over the middle axis of (A, K, B)
views planned by `kernels.plan.reduce_plan`.

A strided input that is dense in some order of its dims (an NHWC batch seen as NCHW) is reduced
where it lies: viewed in memory order it is C-contiguous, the axes are renamed to match, and
the result is viewed back, so it keeps the input's layout on the kept dims. Other strided
inputs (sliced, expanded, reversed) are copied to C order first."""
from functools import lru_cache

import numpy as np
from numba import prange

from ..scalar import SUM
from ..plan import contiguous, memory_order, reduce_plan, reduced_shape
from .jit import REDUCE_PARALLEL_MIN_SIZE, SCALAR, twin, variants

_step, _arg_index = SCALAR.reduce_step, SCALAR.arg_index


CHUNK = 1024  # columns per work item when reducing a non-last axis


def _reduce_loop(op, x, out, A, K, B, zero):
    # Sums start from `zero`, whose type is the accumulator's: float64 for floats, so float32
    # sums of many terms stay accurate, and int64 for ints and bools, so they are exact (a
    # float64 accumulator loses integers past 2**53). Max and min keep x's own type: they only
    # ever pick an element. Sum and max/min use separate variables so that Numba need not
    # unify their types. Slices index from 0: no negative-index guard, so the loops vectorise.
    if B == 1:  # reduce contiguous rows: one work item per row
        for a in prange(A):
            row = x[a * K:(a + 1) * K]
            if SUMS:
                total = zero
                for k in range(K):
                    total += row[k]
                out[a] = total
            else:
                best = row[0]
                for k in range(1, K):
                    best = _step(op, best, row[k])
                out[a] = best
        return
    # Reduce a non-last axis: walk the K rows of each (a, column chunk) in memory order, so the
    # inner loop reads contiguous columns instead of striding by B.
    chunks = (B + CHUNK - 1) // CHUNK
    for t in prange(A * chunks):
        a, part = t // chunks, t % chunks
        lo, hi = part * CHUNK, min(B, (part + 1) * CHUNK)
        # Element loops, not array assignments: a slice store compiles NumPy's shape-mismatch
        # error path (about 2 s of string formatting, cold).
        dst = out[a * B + lo:a * B + hi]
        if SUMS:
            totals = np.full(hi - lo, zero)
            for k in range(K):
                row = x[(a * K + k) * B + lo:(a * K + k) * B + hi]
                for b in range(hi - lo):
                    totals[b] += row[b]
            for b in range(hi - lo):
                dst[b] = totals[b]
        else:
            first = x[a * K * B + lo:a * K * B + hi]
            for b in range(hi - lo):
                dst[b] = first[b]
            for k in range(1, K):
                row = x[(a * K + k) * B + lo:(a * K + k) * B + hi]
                for b in range(hi - lo):
                    dst[b] = _step(op, dst[b], row[b])


def _argreduce_loop(op, x, out, A, K, B):
    for t in prange(A * B):
        out[t] = _arg_index(op, x, (t // B) * K * B + t % B, K, B)


# SUMS (a sum, or max/min by `op`) is a compiled constant: a copy types only its own loops.
# reassoc lets LLVM vectorise the sum (summing in a different order, in float64); NaN and inf
# semantics are untouched. Parallel copies from REDUCE_PARALLEL_MIN_SIZE elements (see
# jit.py): below it a reduction is a few microseconds of memory reads, which no thread
# wake-up repays, and it is not worth a parallel copy's compile.
SUMS = False
_reduce = variants(_reduce_loop, ("SUMS",), REDUCE_PARALLEL_MIN_SIZE, fastmath={"reassoc"})
_argreduce = twin(_argreduce_loop, REDUCE_PARALLEL_MIN_SIZE)


@lru_cache(maxsize=64)
def _types(op, dtype):
    """(accumulator zero, result dtype): sums of floats in float64 stored back as the input
    dtype; sums of ints and bools exactly in int64; max/min in the input dtype."""
    if op != SUM:
        return np.float64(0) if dtype.kind == "f" else np.int64(0), dtype
    if dtype.kind in "fc":
        return np.float64(0), dtype
    return np.int64(0), np.dtype(np.int64)


def _reduce_c(op, x, axes):
    """Reduce a C-contiguous x over sorted axes; the result keeps the reduced axes as size 1."""
    zero, dtype = _types(op, x.dtype)
    kept = reduced_shape(x.shape, axes, True)
    passes = reduce_plan(x.shape, axes)
    if not passes:
        return x.astype(dtype)  # a copy: results own their memory
    # between passes, sums stay in the accumulator type (float64 / int64)
    between = zero.dtype if op == SUM else dtype
    for n, (A, K, B) in enumerate(passes):
        out = np.zeros(A * B, dtype if n == len(passes) - 1 else between)
        if K:
            _reduce(x.size, op == SUM)(op, x.reshape(-1), out, A, K, B, zero)
        x = out
    return x.reshape(kept)


@lru_cache(maxsize=4096)
def _dense_view(shape, strides, axes):
    """(memory order, axes renamed to it, inverse order) when x may be dense in an order other
    than C's: transposing by the order makes it C-contiguous (checked by the caller)."""
    if any(s <= 0 and n > 1 for n, s in zip(shape, strides)):
        return None
    order = memory_order(shape, strides)
    inner = tuple(sorted(order.index(a) for a in axes))
    return order, inner, tuple(np.argsort(order).tolist())


def reduce(op, x, axes, keepdims):
    """Reduce `x` over `axes` (a sorted tuple of non-negative ints) with SUM, MAX or MIN."""
    axes = tuple(axes)
    shape = reduced_shape(x.shape, axes, keepdims)
    if not x.flags.c_contiguous:
        view = _dense_view(x.shape, x.strides, axes)
        if view is not None:
            order, inner, inverse = view
            t = x.transpose(order)
            if t.flags.c_contiguous:
                kept = _reduce_c(op, t, inner).transpose(inverse)  # the input's layout
                return kept if keepdims else kept.reshape(shape)  # drops size-1 dims: a view
        x = contiguous(x)
    return _reduce_c(op, x, axes).reshape(shape)


def argreduce(op, x, axis):
    """Index of the max (op MAX) or min (op MIN) along `axis`; the first one on ties. A strided
    x is copied to C order first."""
    x = contiguous(x)
    A, K, B = reduce_plan(x.shape, (axis,))[0]
    out = np.empty(A * B, np.int64)
    _argreduce(x.size)(op, x.reshape(-1), out, A, K, B)
    return out.reshape(reduced_shape(x.shape, (axis,), False))
