"""Element-wise CUDA kernel: one grid-stride loop for every op in `kernels.scalar` (one to four
operands and a scalar parameter), over the broadcast plan that `kernels.plan` shares with the
CPU kernel."""
from numba import cuda

from .. import scalar
from ..plan import elementwise_plan
from .jit import SCALAR, kernel, launch
from .memory import empty, flat, is_array
from .movement import expand

_apply = SCALAR.apply
_UNUSED = (0, 0, 0)  # the strides of an operand the op does not read: offset 0, never used


@kernel
def _elementwise(op, p, a, sa, b, sb, c, sc, d, sd, out, dims):
    # One thread per output element; (i, j, k) is its position in the (n0, n1, n2) plan. An
    # operand that is also `out` has the output's shape, so it is read at t before t is written.
    plane, n2 = dims[1] * dims[2], dims[2]
    for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        i, r = t // plane, t % plane
        j, k = r // n2, r % n2
        out[t] = _apply(op, a[i * sa[0] + j * sa[1] + k * sa[2]],
                        b[i * sb[0] + j * sb[1] + k * sb[2]],
                        c[i * sc[0] + j * sc[1] + k * sc[2]],
                        d[i * sd[0] + j * sd[1] + k * sd[2]], p)


def elementwise(op, arrays, dtype, shape=None, param=0.0, out=None):
    """Apply `op` (a code from kernels.scalar reading len(arrays) operands) to arrays that
    broadcast together (and to `shape`, if given), with `param` as the op's constant. Returns
    a new C-contiguous `dtype` array, or `out` (a C-contiguous device array of the output
    shape, possibly one of the operands) after writing the result into it, cast to its dtype."""
    scalar.check(op, len(arrays))
    out_shape, dims, strides, expand_first = elementwise_plan(
        tuple(a.shape for a in arrays), None if shape is None else tuple(shape))
    if out is None:
        out = empty(out_shape, dtype)
    elif not is_array(out) or out.shape != out_shape or not out.is_c_contiguous():
        got = out.shape if is_array(out) else type(out).__name__
        raise ValueError(f"elementwise: out must be a C-contiguous device array of shape "
                         f"{out_shape}, got {got}")
    if expand_first:
        arrays = [expand(a, out_shape) for a in arrays]
    operands = [flat(a) for a in arrays]
    operands += operands[:1] * (scalar.MAX_ARITY - len(operands))
    # kernels.plan pads the strides to three operands or to four (scalar.MAX_ARITY); take the
    # ones in use and pad to four here, so either works.
    strides = tuple(strides[:len(arrays)]) + (_UNUSED,) * (scalar.MAX_ARITY - len(arrays))
    if out.size:
        launch(_elementwise, out.size)(op, float(param), operands[0], strides[0], operands[1],
                                       strides[1], operands[2], strides[2], operands[3],
                                       strides[3], flat(out), dims)
    return out
