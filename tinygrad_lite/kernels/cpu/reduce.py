"""Reduction CPU kernels: sum/max/min and argmax/argmin over the middle axis of (A, K, B)
views planned by `kernels.plan.reduce_plan`."""
import numpy as np
from numba import prange

from .. import scalar
from ..scalar import SUM
from ..plan import reduce_plan, reduced_shape
from .jit import inline, twin

_step, _better = inline(scalar.reduce_step), inline(scalar.arg_better)


def _reduce_loop(op, x, out, A, K, B):
    # One work item per output (a, b); with B == 1 it reads one contiguous row. Sums
    # accumulate in float64 so that float32 sums of many terms stay accurate.
    for t in prange(A * B):
        base = (t // B) * K * B + t % B
        if op == SUM:
            acc = 0.0
            for k in range(K):
                acc += x[base + k * B]
        else:
            acc = x[base]
            for k in range(1, K):
                acc = _step(op, acc, x[base + k * B])
        out[t] = acc


def _argreduce_loop(op, x, out, A, K, B):
    for t in prange(A * B):
        base = (t // B) * K * B + t % B
        best, arg = x[base], 0
        for k in range(1, K):
            v = x[base + k * B]
            if _better(op, v, best):
                best, arg = v, k
        out[t] = arg


_reduce, _argreduce = twin(_reduce_loop), twin(_argreduce_loop)


def reduce(op, x, axes, keepdims):
    """Reduce `x` over `axes` (a sorted tuple of non-negative ints) with SUM, MAX or MIN."""
    shape = reduced_shape(x.shape, axes, keepdims)
    x = np.ascontiguousarray(x)
    for A, K, B in reduce_plan(x.shape, axes):
        out = np.zeros(A * B, x.dtype)
        if K:
            _reduce(x.size)(op, x.reshape(-1), out, A, K, B)
        x = out
    return x.reshape(shape)


def argreduce(op, x, axis):
    """Index of the max (op MAX) or min (op MIN) along `axis`; the first one on ties."""
    x = np.ascontiguousarray(x)
    A, K, B = reduce_plan(x.shape, (axis,))[0]
    out = np.empty(A * B, np.int64)
    _argreduce(x.size)(op, x.reshape(-1), out, A, K, B)
    return out.reshape(reduced_shape(x.shape, (axis,), False))
