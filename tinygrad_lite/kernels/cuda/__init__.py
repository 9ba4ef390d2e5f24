"""The CUDA backend: numba.cuda device arrays as storage, numba.cuda kernels for compute, a
tiled shared-memory kernel for GEMM.

Every array this backend makes or accepts is a dense, C-contiguous device array: there are no
strided views on the device. So every move but reshape (permute, expand, getitem, cat, pad)
materialises a new array, by a kernel that computes each element's source offset on the device
(see movement.py), and `contiguous` is the identity. Kernels index their operands flat.

It exports the same names as kernels/cpu, module by module, and compiles the same scalar math
(kernels.scalar) and plans (kernels.plan); only the loops differ (a grid-stride loop where the
CPU has a prange, shared-memory trees for reductions). Importing it compiles nothing and
touches no GPU: kernels compile on first launch. With NUMBA_ENABLE_CUDASIM=1 set before Numba
is imported, everything runs on Numba's CUDA simulator.
"""
from .elementwise import elementwise
from .matmul import matmul
from .memory import contiguous, empty, from_numpy, full, is_array, to_numpy
from .movement import cat, expand, getitem, index_add, pad, permute, reshape
from .reduce import argreduce, reduce
from . import conv, norm, optim, pool
from .conv import *  # noqa: F401,F403  (each family module lists its kernels in __all__)
from .norm import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403

NAME = "cuda"

# The backend API, identical in kernels/cpu and kernels/cuda (see kernels/__init__.py).
__all__ = ["NAME", "empty", "full", "from_numpy", "to_numpy", "is_array", "contiguous",
           "elementwise", "reduce", "argreduce", "matmul", "reshape", "permute", "expand",
           "getitem", "cat", "pad", "index_add",
           *conv.__all__, *pool.__all__, *norm.__all__, *optim.__all__]
