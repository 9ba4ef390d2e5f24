"""Matrix multiply, 2-D and batched with broadcast batch dimensions (BLAS on the CPU)."""
import numpy as np

from ..autograd import Function
from .elementwise import sum_to_shape


def _swap_last(k, x):
    return k.permute(x, tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2))


def matmul_shape(a_shape, b_shape):
    """Output shape of (..., M, K) @ (..., K, N), or a ValueError naming both shapes."""
    if len(a_shape) < 2 or len(b_shape) < 2 or a_shape[-1] != b_shape[-2]:
        raise ValueError(f"matmul: shapes {tuple(a_shape)} and {tuple(b_shape)} are not aligned "
                         f"(expected (..., M, K) @ (..., K, N))")
    try:
        batch = np.broadcast_shapes(a_shape[:-2], b_shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dimensions of {tuple(a_shape)} and {tuple(b_shape)} "
                         "cannot be broadcast together") from None
    return tuple(batch) + (a_shape[-2], b_shape[-1])


class MatMul(Function):
    """a (..., M, K) @ b (..., K, N) with batch dims broadcast; tensor.matmul turns 1-D operands
    into matrices around it, as PyTorch does."""

    def forward(self, a, b):
        k = self.k
        self.a, self.b = a, b
        batch = matmul_shape(a.shape, b.shape)[:-2]
        return k.matmul(k.expand(a, batch + a.shape[-2:]), k.expand(b, batch + b.shape[-2:]))

    def backward(self, g):
        k, a, b = self.k, self.a, self.b
        batch = g.shape[:-2]
        ga = k.matmul(g, k.expand(_swap_last(k, b), batch + (b.shape[-1], b.shape[-2])))
        gb = k.matmul(k.expand(_swap_last(k, a), batch + (a.shape[-1], a.shape[-2])), g)
        return sum_to_shape(k, ga, a.shape), sum_to_shape(k, gb, b.shape)
