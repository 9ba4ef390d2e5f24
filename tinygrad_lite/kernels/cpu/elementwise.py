"""Element-wise CPU kernel: one fused loop for every unary, binary and ternary op in
`kernels.scalar`, over the broadcast plan that `kernels.plan` shares with the CUDA kernel."""
import numpy as np
from numba import prange

from .. import scalar
from ..plan import broadcast_plan
from .jit import inline, twin

_unary, _binary, _ternary = inline(scalar.unary), inline(scalar.binary), inline(scalar.ternary)

CHUNK = 4096  # elements per parallel work item: big enough to amortise the index arithmetic


@inline
def apply(arity, op, x, y, z):
    if arity == 1:
        return _unary(op, x)
    if arity == 2:
        return _binary(op, x, y)
    return _ternary(op, x, y, z)


def _elementwise_loop(arity, op, a, sa, b, sb, c, sc, out, dims):
    n0, n1, n2 = dims
    chunks = (n2 + CHUNK - 1) // CHUNK
    for t in prange(n0 * n1 * chunks):
        row, part = t // chunks, t % chunks
        i, j = row // n1, row % n1
        ao, bo, co = i * sa[0] + j * sa[1], i * sb[0] + j * sb[1], i * sc[0] + j * sc[1]
        base = row * n2
        for k in range(part * CHUNK, min(n2, (part + 1) * CHUNK)):
            out[base + k] = apply(arity, op, a[ao + k * sa[2]], b[bo + k * sb[2]],
                                  c[co + k * sc[2]])


_elementwise = twin(_elementwise_loop)


def elementwise(op, arrays, dtype, shape=None):
    """Apply `op` (a code from kernels.scalar; the arity is len(arrays)) to arrays that
    broadcast together (and to `shape`, if given); returns a new C-contiguous `dtype` array."""
    shape = np.broadcast_shapes(*(a.shape for a in arrays), *(() if shape is None else (shape,)))
    plan = broadcast_plan(shape, tuple(a.shape for a in arrays))
    if plan is None:  # more than three broadcast groups: expand first (rare)
        arrays = [np.broadcast_to(a, shape) for a in arrays]
        plan = broadcast_plan(shape, (shape,) * len(arrays))
    dims, strides = plan
    flat = [np.ascontiguousarray(a).reshape(-1) for a in arrays]
    while len(flat) < 3:  # unused operands: any array, read at offset 0
        flat.append(flat[0])
        strides += ((0, 0, 0),)
    out = np.empty(shape, dtype)
    _elementwise(out.size)(len(arrays), op, flat[0], strides[0], flat[1], strides[1],
                           flat[2], strides[2], out.reshape(-1), dims)
    return out
