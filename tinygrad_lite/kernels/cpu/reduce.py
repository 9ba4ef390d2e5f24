"""Reduction CPU kernels: sum/max/min and argmax/argmin over the middle axis of (A, K, B)
views planned by `kernels.plan.reduce_plan`."""
import numpy as np
from numba import prange

from ..scalar import SUM
from ..plan import contiguous, reduce_plan, reduced_shape
from .jit import SCALAR, twin

_step, _arg_index = SCALAR.reduce_step, SCALAR.arg_index


CHUNK = 1024  # columns per work item when reducing a non-last axis


def _reduce_loop(op, x, out, A, K, B):
    # Sums accumulate in float64 so that float32 sums of many terms stay accurate.
    # Slices index from 0, so Numba adds no negative-index guard and the loops vectorise.
    if B == 1:  # reduce contiguous rows: one work item per row
        for a in prange(A):
            row = x[a * K:(a + 1) * K]
            if op == SUM:
                acc = 0.0
                for k in range(K):
                    acc += row[k]
            else:
                acc = row[0]
                for k in range(1, K):
                    acc = _step(op, acc, row[k])
            out[a] = acc
        return
    # Reduce a non-last axis: walk the K rows of each (a, column chunk) in memory order, so the
    # inner loop reads contiguous columns instead of striding by B.
    chunks = (B + CHUNK - 1) // CHUNK
    for t in prange(A * chunks):
        a, part = t // chunks, t % chunks
        lo, hi = part * CHUNK, min(B, (part + 1) * CHUNK)
        acc = x[a * K * B + lo:a * K * B + hi].astype(np.float64)
        if op == SUM:
            acc[:] = 0.0
        for k in range(1 if op != SUM else 0, K):
            row = x[(a * K + k) * B + lo:(a * K + k) * B + hi]
            for b in range(hi - lo):
                acc[b] = _step(op, acc[b], row[b])
        out[a * B + lo:a * B + hi] = acc


def _argreduce_loop(op, x, out, A, K, B):
    for t in prange(A * B):
        out[t] = _arg_index(op, x, (t // B) * K * B + t % B, K, B)


# reassoc lets LLVM vectorise the sum (summing in a different order, in float64); NaN and inf
# semantics are untouched.
_reduce = twin(_reduce_loop, fastmath={"reassoc"})
_argreduce = twin(_argreduce_loop)


def reduce(op, x, axes, keepdims):
    """Reduce `x` over `axes` (a sorted tuple of non-negative ints) with SUM, MAX or MIN."""
    shape = reduced_shape(x.shape, axes, keepdims)
    x = contiguous(x)
    for A, K, B in reduce_plan(x.shape, axes):
        out = np.zeros(A * B, x.dtype)
        if K:
            _reduce(x.size)(op, x.reshape(-1), out, A, K, B)
        x = out
    return x.reshape(shape)


def argreduce(op, x, axis):
    """Index of the max (op MAX) or min (op MIN) along `axis`; the first one on ties."""
    x = contiguous(x)
    A, K, B = reduce_plan(x.shape, (axis,))[0]
    out = np.empty(A * B, np.int64)
    _argreduce(x.size)(op, x.reshape(-1), out, A, K, B)
    return out.reshape(reduced_shape(x.shape, (axis,), False))
