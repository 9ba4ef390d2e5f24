"""Matrix multiply on the CPU: BLAS through NumPy (sgemm/dgemm, batched over leading dims), the
output split into blocks that the thread budget's threads compute side by side with
single-threaded BLAS (kernels/cpu/parallel.py says why not BLAS's own threads)."""
import numpy as np

from ... import threads
from .parallel import share_out, split

# Tunable: below this many flops one single-threaded call beats waking a second thread (a
# 2^22-flop GEMM takes about 40 us on one core at 100 GFLOP/s; a hand-off costs about 20 us).
SPLIT_MIN_FLOPS = 1 << 22
# A block of fewer rows (or columns) than this runs BLAS's kernels on ragged edges.
MIN_BLOCK = 16
# Below this many flops per product OpenBLAS runs on the calling thread by itself (its sgemm
# goes multi-threaded from M*N*K = 4 * 65536): such a product is one plain call, without the
# hand-off machinery (which costs about 6 us against 1 us for a 4x4 product).
SMALL_FLOPS = 2 * 4 * 65536


def matmul(a, b):
    """a (..., M, K) @ b (..., K, N) with equal leading dims -> (..., M, N)."""
    M, K, N = a.shape[-2], a.shape[-1], b.shape[-1]
    if 2 * M * K * N <= SMALL_FLOPS:
        return np.matmul(a, b)
    out = np.empty(a.shape[:-2] + (M, N), np.result_type(a.dtype, b.dtype))
    blocks = _blocks(a.shape[:-2], M, N, 2 * out.size * K >= SPLIT_MIN_FLOPS)

    def work(block):
        index_a, index_b = block
        np.matmul(a[index_a], b[index_b], out=out[index_a[:-1] + index_b[-1:]])
    if out.size == 0 or K == 0:
        out[...] = np.matmul(a, b)  # NumPy's empty-dimension rules (zeros when K == 0)
        return out
    share_out(work, blocks)
    return out


def _blocks(lead, M, N, big):
    """The blocks of the output as (index into a, index into b): one per thread along the rows
    when there are enough, else along the first batch dim, else along the columns; a single
    block when the product is too small to split."""
    T = threads.get_num_threads() if big else 1
    every = (slice(None),) * (len(lead) + 2)
    if T > 1 and M >= T * MIN_BLOCK:
        return [(every[:-2] + (rows, slice(None)), every) for rows in split(M, T)]
    if T > 1 and lead and lead[0] >= T:
        return [((part,) + every[1:], (part,) + every[1:]) for part in split(lead[0], T)]
    if T > 1 and N >= T * MIN_BLOCK:
        return [(every, every[:-1] + (cols,)) for cols in split(N, T)]
    return [(every, every)]
