"""Device storage: allocation, fill, and host <-> device copies. Every array is a C-contiguous
numba.cuda device array; kernels see them flat, through `flat`."""
import numpy as np
from numba import cuda

from .. import plan
from .jit import SIMULATOR, kernel, launch

if SIMULATOR:
    # A real device array's shape is a plain tuple; the simulator's rejects negative indices
    # (x.shape[-1]), which code written for NumPy arrays uses. Make it the plain tuple again.
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

    FakeCUDAArray.shape = property(lambda self: self._ary.shape)


def _shape(shape):
    return (int(shape),) if np.ndim(shape) == 0 else tuple(int(s) for s in shape)


def empty(shape, dtype):
    return cuda.device_array(_shape(shape), np.dtype(dtype))


@kernel
def _fill(out, value):
    for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[t] = value


def full(shape, value, dtype):
    dtype = np.dtype(dtype)
    out = empty(shape, dtype)
    if out.size:
        # Converting on the host gives the kernel one signature per dtype, and NumPy's casting.
        launch(_fill, out.size)(flat(out), dtype.type(value))
    return out


def flat(array):
    return array.reshape(-1)


def from_numpy(array):
    return cuda.to_device(plan.contiguous(np.asarray(array)))


def upload(index):
    """An int64 host index map (advanced indexing only) as a flat device array."""
    return cuda.to_device(np.ascontiguousarray(index, np.int64).reshape(-1))


def contiguous(x):
    """Device arrays here are always C-contiguous (every move materialises), so: x itself."""
    return x


def to_numpy(array):
    return array.copy_to_host()


def is_array(obj):
    return bool(cuda.devicearray.is_cuda_ndarray(obj))
