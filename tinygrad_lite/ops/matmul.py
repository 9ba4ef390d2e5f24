"""Matrix multiply, 2-D and batched with broadcast batch dimensions (BLAS on the CPU)."""
import numpy as np

from .. import dtype as dt

from ..autograd import Function
from . import ShapeError
from .elementwise import sum_to_shape


def _swap_last(k, x):
    return k.permute(x, tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2))


def _column_major(x):
    """Whether a 2-D array is laid out column by column (a transposed C-contiguous array)."""
    return x.strides[0] < x.strides[1] and x.shape[0] > 1 and x.shape[1] > 1


def matmul_shape(a_shape, b_shape):
    """Output shape of (..., M, K) @ (..., K, N), or a ShapeError naming both shapes."""
    if len(a_shape) < 2 or len(b_shape) < 2 or a_shape[-1] != b_shape[-2]:
        raise ShapeError(f"matmul: shapes {tuple(a_shape)} and {tuple(b_shape)} are not aligned "
                         f"(expected (..., M, K) @ (..., K, N))")
    try:
        batch = np.broadcast_shapes(a_shape[:-2], b_shape[:-2])
    except ValueError:
        raise ShapeError(f"matmul: batch dimensions of {tuple(a_shape)} and {tuple(b_shape)} "
                         "cannot be broadcast together") from None
    return tuple(batch) + (a_shape[-2], b_shape[-1])


class MatMul(Function):
    """a (..., M, K) @ b (..., K, N) with batch dims broadcast; `matmul` below turns 1-D
    operands into matrices around it, as PyTorch does. The gradient of a reads b and that of b
    reads a, so each is kept (and version-checked) only when the other needs a gradient."""

    def forward(self, a, b):
        k, (need_a, need_b) = self.k, self.needs_input_grad
        self.a_shape, self.b_shape = a.shape, b.shape
        self.a, self.b = (a if need_b else None), (b if need_a else None)
        self.SAVES = ((1,) if need_a else ()) + ((0,) if need_b else ())
        self.columns = None
        if a.ndim == 2 and b.ndim == 2:  # no batch dims to broadcast (nn.Linear's case)
            matmul_shape(a.shape, b.shape)
            # Which operands are column-major (a transposed view, as weight.T in linear): the
            # gradient of such an operand is computed transposed, so that it comes out in the
            # operand's own layout. weight.T's gradient then transposes back to a C-contiguous
            # .grad, which the optimiser's flat kernels read without a copy.
            self.columns = (_column_major(a), _column_major(b))
            return k.matmul(a, b)
        batch = matmul_shape(a.shape, b.shape)[:-2]
        return k.matmul(k.expand(a, batch + a.shape[-2:]), k.expand(b, batch + b.shape[-2:]))

    def backward(self, g):
        k, a, b = self.k, self.a, self.b
        batch, (need_a, need_b) = g.shape[:-2], self.needs_input_grad
        if self.columns is not None:  # 2-D: each gradient in its operand's layout
            a_columns, b_columns = self.columns
            ga = gb = None
            if need_a:  # g @ b^T, or (b @ g^T)^T, which BLAS writes column-major
                ga = _swap_last(k, k.matmul(b, _swap_last(k, g))) if a_columns else \
                    k.matmul(g, _swap_last(k, b))
            if need_b:  # a^T @ g, or (g^T @ a)^T
                gb = _swap_last(k, k.matmul(_swap_last(k, g), a)) if b_columns else \
                    k.matmul(_swap_last(k, a), g)
            return ga, gb
        ga = gb = None
        if need_a:
            ga = sum_to_shape(k, k.matmul(g, k.expand(
                _swap_last(k, b), batch + (b.shape[-1], b.shape[-2]))), self.a_shape)
        if need_b:
            gb = sum_to_shape(k, k.matmul(k.expand(
                _swap_last(k, a), batch + (a.shape[-1], a.shape[-2])), g), self.b_shape)
        return ga, gb


def matmul(a, b):
    """PyTorch's matmul on tensors: a 1-D left operand is a row, a 1-D right one a column,
    both squeezed away again; errors show the shapes the caller gave."""
    from . import elementwise as E
    b = E.operand(a, b, "matmul")
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: both operands need at least 1 dimension, got shapes "
                         f"{a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ShapeError(f"matmul: shapes {a.shape} and {b.shape} are not aligned: "
                         f"{a.shape[-1]} (last dim of the first) != "
                         f"{b.shape[-2 if b.ndim > 1 else 0]} "
                         f"({'second-to-last' if b.ndim > 1 else 'only'} dim of the second)")
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ShapeError(f"matmul: batch dimensions of {a.shape} and {b.shape} cannot be "
                         "broadcast together") from None
    dtype = dt.promote(a.dtype, b.dtype)
    a2 = E.cast(a, dtype) if a.ndim > 1 else E.cast(a, dtype).reshape(1, -1)
    b2 = E.cast(b, dtype) if b.ndim > 1 else E.cast(b, dtype).reshape(-1, 1)
    out = MatMul.apply(a2, b2)
    shape = tuple(batch) + ((a.shape[-2],) if a.ndim > 1 else ()) + (
        (b.shape[-1],) if b.ndim > 1 else ())
    return out if out.shape == shape else out.reshape(shape)
