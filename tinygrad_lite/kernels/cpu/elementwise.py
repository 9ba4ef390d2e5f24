"""Element-wise CPU kernel: one fused loop for every unary, binary and ternary op in
`kernels.scalar`, over the broadcast plan that `kernels.plan` shares with the CUDA kernel.
The loop is compiled once per (arity, op, serial/parallel), lazily, with the op fixed as a
constant so that it vectorises."""
import numpy as np
from numba import prange

from ..plan import elementwise_plan
from .jit import PARALLEL_MIN_SIZE, SCALAR, specialised

_apply = SCALAR.apply

CHUNK = 4096  # elements per parallel work item: big enough to amortise the index arithmetic
ARITY = OP = 0  # fixed per compiled copy by jit.specialised


def _elementwise_loop(a, sa, b, sb, c, sc, out, dims):
    n0, n1, n2 = dims
    chunks = (n2 + CHUNK - 1) // CHUNK
    contiguous = sa[2] == 1 and sb[2] == 1 and sc[2] == 1
    for t in prange(n0 * n1 * chunks):
        row, part = t // chunks, t % chunks
        i, j = row // n1, row % n1
        ao, bo, co = i * sa[0] + j * sa[1], i * sb[0] + j * sb[1], i * sc[0] + j * sc[1]
        base = row * n2
        lo, hi = part * CHUNK, min(n2, (part + 1) * CHUNK)
        if contiguous:  # the common case: slices index from 0, with no offset arithmetic for
            # Numba to guard against negative indices, so the loop vectorises (measured 7x)
            x, y, z = a[ao + lo:ao + hi], b[bo + lo:bo + hi], c[co + lo:co + hi]
            o = out[base + lo:base + hi]
            for k in range(hi - lo):
                o[k] = _apply(ARITY, OP, x[k], y[k], z[k])
        else:
            for k in range(lo, hi):
                out[base + k] = _apply(ARITY, OP, a[ao + k * sa[2]], b[bo + k * sb[2]],
                                       c[co + k * sc[2]])


_compiled = {}


def _kernel(arity, op, size):
    key = (arity, op, size >= PARALLEL_MIN_SIZE)
    fn = _compiled.get(key)
    if fn is None:
        fn = _compiled[key] = specialised(_elementwise_loop, key[2], ARITY=arity, OP=op)
    return fn


def elementwise(op, arrays, dtype, shape=None):
    """Apply `op` (a code from kernels.scalar; the arity is len(arrays)) to arrays that
    broadcast together (and to `shape`, if given); returns a new C-contiguous `dtype` array."""
    out_shape, dims, strides, expand = elementwise_plan(tuple(a.shape for a in arrays), shape)
    if expand:
        arrays = [np.broadcast_to(a, out_shape) for a in arrays]
    flat = [a.ravel() for a in arrays]  # a view when already contiguous
    while len(flat) < 3:  # unused operands repeat the first, so the contiguous path still fits
        flat.append(flat[0])
    sa, sb, sc = strides[0], strides[1] if len(arrays) > 1 else strides[0], \
        strides[2] if len(arrays) > 2 else strides[0]
    out = np.empty(out_shape, dtype)
    _kernel(len(arrays), op, out.size)(flat[0], sa, flat[1], sb, flat[2], sc, out.reshape(-1),
                                       dims)
    return out
