"""How CUDA kernels are compiled and launched: cached on disk, the scalar math of
`kernels.scalar` as device functions, and one launch shape for every grid-stride loop."""
import math
import types

import numba
import numpy as np
from numba import cuda

from .. import scalar

SIMULATOR = bool(numba.config.ENABLE_CUDASIM)

THREADS = 256
# Enough blocks to fill every SM of a large GPU several times over; grid-stride loops cover
# the rest, so a launch never needs more.
MAX_BLOCKS = 1024

# No on-disk cache: Numba would check only the timestamp of the kernel's own file, not of the
# scalar.py it inlines, and serve stale code after an edit there. GPU compiles are quick.
kernel = cuda.jit


def launch(fn, size):
    """`fn` configured to cover `size` work items with a grid-stride loop. Small sizes get a
    small block (a multiple of the 32-thread warp): same speed on a GPU, far fewer threads to
    emulate on the simulator."""
    threads = min(THREADS, (size + 31) // 32 * 32)
    return fn[min(MAX_BLOCKS, (size + threads - 1) // threads), threads]


class _SimMath:
    """`math` as the GPU computes it: NumPy's functions give inf/nan where Python's `math`
    raises (exp overflow, log of a negative), falling back to `math` for the rest."""

    def __getattr__(self, name):
        return getattr(np, name) if hasattr(np, name) else getattr(math, name)


def device(fn):
    """Compile one of kernels.scalar's functions as a CUDA device function.

    On a GPU this is just cuda.jit(device=True). The simulator runs the same Python on NumPy
    scalars instead, which differ from compiled Numba in two ways fixed here: `math` raises and
    NumPy warns where the GPU answers inf or nan (so: NumPy's math, errors ignored), and NumPy
    bools stay bool under + and * and refuse - where Numba promotes them to int (so: bools
    enter as ints)."""
    if SIMULATOR:
        plain = types.FunctionType(fn.__code__, {**fn.__globals__, "math": _SimMath()},
                                   fn.__name__, fn.__defaults__)

        def simulated(*args):
            args = [int(a) if isinstance(a, (bool, np.bool_)) else a for a in args]
            with np.errstate(all="ignore"):
                return plain(*args)

        return cuda.jit(device=True)(simulated)
    return cuda.jit(device=True)(fn)


def _thread_safe_shared_arrays():
    """The simulator gives a block's threads one shared array per source line, looked up in
    a dict and created on a miss, with no lock: two threads that both miss get two different
    (uninitialised) arrays, and a shared-memory reduction then sums garbage. It happens
    whenever the interpreter switches threads between the lookup and the insert, so the
    lookup and insert are made atomic here, keyed on the caller's line as before."""
    import sys
    import threading

    from numba.cuda.simulator import kernelapi
    from numba.np.numpy_support import as_dtype

    original, lock = kernelapi.FakeCUDAShared.array, threading.Lock()

    def array(self, shape, dtype, alignment=None):
        if shape == 0 or alignment is not None:  # dynamic shared memory, or the error
            return original(self, shape, dtype, alignment)
        caller = sys._getframe(1)
        key = (caller.f_code.co_filename, caller.f_lineno)
        with lock:
            found = self._allocations.get(key)
            if found is None:
                found = self._allocations[key] = np.empty(
                    shape, as_dtype(dtype) if isinstance(dtype, numba.types.Type) else dtype)
        return found

    kernelapi.FakeCUDAShared.array = array


if SIMULATOR:
    _thread_safe_shared_arrays()

SCALAR = scalar.compile_all(device)  # kernels/scalar.py's math as device functions
