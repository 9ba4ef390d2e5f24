"""The CPU backend: NumPy arrays as storage, Numba kernels for compute, BLAS for GEMM.

Every backend module exports the same names (see kernels/__init__.py); ops reach them only
through `Device.backend`, so the CUDA backend in kernels/cuda mirrors this file name by name.
"""
import numpy as np

from .elementwise import elementwise
from .matmul import matmul
from .movement import cat, expand, getitem, index_add, pad, permute, reshape
from .reduce import argreduce, reduce
from ..plan import contiguous
from . import conv, norm, optim, pool
from .conv import *  # noqa: F401,F403  (each family module lists its kernels in __all__)
from .norm import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403

NAME = "cpu"

# The backend API, identical in kernels/cpu and kernels/cuda (see kernels/__init__.py).
__all__ = ["NAME", "empty", "full", "from_numpy", "to_numpy", "is_array", "contiguous",
           "elementwise", "reduce", "argreduce", "matmul", "reshape", "permute", "expand",
           "getitem", "cat", "pad", "index_add",
           *conv.__all__, *pool.__all__, *norm.__all__, *optim.__all__]


def empty(shape, dtype):
    return np.empty(shape, dtype)


def full(shape, value, dtype):
    return np.full(shape, value, dtype)


def from_numpy(array):
    array = np.asarray(array)  # read-only input is copied: kernels compile for writable arrays
    return contiguous(array) if array.flags.writeable else array.copy(order="C")


def to_numpy(array):
    return np.asarray(array)


def is_array(obj):
    return isinstance(obj, np.ndarray)
