"""The CUDA backend: C-contiguous numba.cuda device arrays as storage, numba.cuda kernels for
compute, a tiled shared-memory kernel for GEMM.

It exports the same names as kernels/cpu, module by module, and compiles the same scalar math
(kernels.scalar) and index plans (kernels.plan); only the loops differ (a grid-stride loop
where the CPU has a prange). Importing it compiles nothing and touches no GPU: kernels compile
on first launch. With NUMBA_ENABLE_CUDASIM=1 set before Numba is imported, everything runs on
Numba's CUDA simulator.
"""
from .elementwise import elementwise
from .matmul import matmul
from .memory import empty, from_numpy, full, is_array, to_numpy
from .movement import cat, expand, getitem, pad, permute, reshape, scatter_add
from .reduce import argreduce, reduce

NAME = "cuda"

# The backend API, identical in kernels/cpu and kernels/cuda (see kernels/__init__.py).
__all__ = ["NAME", "empty", "full", "from_numpy", "to_numpy", "is_array", "elementwise",
           "reduce", "argreduce", "matmul", "reshape", "permute", "expand", "getitem", "cat",
           "pad", "scatter_add"]

