"""Reduction CUDA kernels: sum/max/min and argmax/argmin over the middle axis of (A, K, B)
views planned by `kernels.plan.reduce_plan`."""
import numpy as np
from numba import cuda

from ..plan import reduce_plan, reduced_shape
from ..scalar import SUM
from .jit import SCALAR, kernel, launch
from .memory import empty, flat, full

_step, _arg_index = SCALAR.reduce_step, SCALAR.arg_index


@kernel
def _reduce(op, x, out, A, K, B):
    # One thread per output (a, b): with B > 1 neighbouring threads read neighbouring addresses
    # (coalesced). Sums accumulate in float64 so that float32 sums of many terms stay accurate;
    # a NumPy float64 start makes that hold on the simulator too (0.0 + float32 stays float32).
    for t in range(cuda.grid(1), A * B, cuda.gridsize(1)):
        base = (t // B) * K * B + t % B
        if op == SUM:
            total = np.float64(0.0)
            for k in range(K):
                total += x[base + k * B]
            out[t] = total
        else:
            acc = x[base]
            for k in range(1, K):
                acc = _step(op, acc, x[base + k * B])
            out[t] = acc


@kernel
def _argreduce(op, x, out, A, K, B):
    for t in range(cuda.grid(1), A * B, cuda.gridsize(1)):
        out[t] = _arg_index(op, x, (t // B) * K * B + t % B, K, B)


def reduce(op, x, axes, keepdims):
    """Reduce `x` over `axes` (a sorted tuple of non-negative ints) with SUM, MAX or MIN."""
    shape = reduced_shape(x.shape, axes, keepdims)
    for A, K, B in reduce_plan(x.shape, axes):
        if K == 0:  # an empty reduction: zeros, as on the CPU
            x = full((A * B,), 0, x.dtype)
            continue
        out = empty((A * B,), x.dtype)
        if out.size:
            launch(_reduce, out.size)(op, flat(x), out, A, K, B)
        x = out
    return x.reshape(shape)


def argreduce(op, x, axis):
    """Index of the max (op MAX) or min (op MIN) along `axis`; the first one on ties."""
    A, K, B = reduce_plan(x.shape, (axis,))[0]
    out = empty((A * B,), np.int64)
    if out.size and not K:  # no element to point at (the CPU kernel would read out of bounds)
        raise ValueError(f"argreduce: axis {axis} of shape {tuple(x.shape)} is empty")
    if out.size:
        launch(_argreduce, out.size)(op, flat(x), out, A, K, B)
    return out.reshape(reduced_shape(x.shape, (axis,), False))
