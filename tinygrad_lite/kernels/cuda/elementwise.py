"""Element-wise CUDA kernel: one grid-stride loop for every unary, binary and ternary op in
`kernels.scalar`, over the broadcast plan that `kernels.plan` shares with the CPU kernel."""
from numba import cuda

from ..plan import elementwise_plan
from .jit import SCALAR, kernel, launch
from .memory import empty, flat
from .movement import expand

_apply = SCALAR.apply


@kernel
def _elementwise(arity, op, a, sa, b, sb, c, sc, out, dims):
    # One thread per output element; (i, j, k) is its position in the (n0, n1, n2) plan.
    plane, n2 = dims[1] * dims[2], dims[2]
    for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        i, r = t // plane, t % plane
        j, k = r // n2, r % n2
        out[t] = _apply(arity, op, a[i * sa[0] + j * sa[1] + k * sa[2]],
                        b[i * sb[0] + j * sb[1] + k * sb[2]],
                        c[i * sc[0] + j * sc[1] + k * sc[2]])


def elementwise(op, arrays, dtype, shape=None):
    """Apply `op` (a code from kernels.scalar; the arity is len(arrays)) to arrays that
    broadcast together (and to `shape`, if given); returns a new C-contiguous `dtype` array."""
    out_shape, dims, strides, expand_first = elementwise_plan(
        tuple(a.shape for a in arrays), None if shape is None else tuple(shape))
    if expand_first:
        arrays = [expand(a, out_shape) for a in arrays]
    operands = [flat(a) for a in arrays]
    operands += operands[:1] * (3 - len(operands))  # unused operands: read at offset 0
    out = empty(out_shape, dtype)
    if out.size:
        launch(_elementwise, out.size)(len(arrays), op, operands[0], strides[0], operands[1],
                                       strides[1], operands[2], strides[2], flat(out), dims)
    return out
