"""Matrix multiply on the CPU: BLAS through NumPy (sgemm/dgemm, batched over leading dims)."""
import numpy as np


def matmul(a, b):
    """a (..., M, K) @ b (..., K, N) with equal leading dims -> (..., M, N)."""
    return np.matmul(a, b)
