"""Matrix multiply on the GPU: a shared-memory tiled kernel, batched over leading dims."""
from math import prod

import numpy as np
from numba import cuda

from .jit import SIMULATOR, kernel
from .memory import empty

# A TILE x TILE block computes a TILE x TILE tile of the output. The simulator runs every
# thread as a Python thread, so it gets small tiles; the kernel is the same.
TILE = 4 if SIMULATOR else 16
MAX_GRID_Z = 65535  # the hardware limit on gridDim.z; a stride loop covers larger batches


@kernel
def _matmul(a, b, out):
    # a (batch, M, K) @ b (batch, K, N) -> out (batch, M, N). Each block stages TILE x TILE
    # tiles of a and b in shared memory so that every element loaded from global memory is
    # used TILE times. Tiles and the accumulator take the output dtype.
    M, K, N = a.shape[1], a.shape[2], b.shape[2]
    ta = cuda.shared.array((TILE, TILE), out.dtype)
    tb = cuda.shared.array((TILE, TILE), out.dtype)
    acc = cuda.local.array(1, out.dtype)  # a register of the output dtype
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    row, col = cuda.blockIdx.y * TILE + ty, cuda.blockIdx.x * TILE + tx
    for z in range(cuda.blockIdx.z, a.shape[0], cuda.gridDim.z):
        acc[0] = 0
        for k0 in range(0, K, TILE):
            # Out-of-range threads load zeros but still reach both barriers. (Statements, not
            # `x if c else 0`, whose int/float unification would round-trip through float64.)
            ta[ty, tx] = 0
            tb[ty, tx] = 0
            if row < M and k0 + tx < K:
                ta[ty, tx] = a[z, row, k0 + tx]
            if k0 + ty < K and col < N:
                tb[ty, tx] = b[z, k0 + ty, col]
            cuda.syncthreads()
            for kk in range(TILE):
                acc[0] += ta[ty, kk] * tb[kk, tx]
            cuda.syncthreads()
        if row < M and col < N:
            out[z, row, col] = acc[0]


def matmul(a, b):
    """a (..., M, K) @ b (..., K, N) with equal leading dims -> (..., M, N)."""
    batch, (M, K), N = a.shape[:-2], a.shape[-2:], b.shape[-1]
    out = empty(batch + (M, N), np.result_type(a.dtype, b.dtype))
    if out.size:
        count = prod(batch)
        grid = ((N + TILE - 1) // TILE, (M + TILE - 1) // TILE, min(count, MAX_GRID_Z))
        _matmul[grid, (TILE, TILE)](a.reshape(count, M, K), b.reshape(count, K, N),
                                     out.reshape(count, M, N))
    return out
