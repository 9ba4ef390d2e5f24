"""How CUDA kernels are compiled and launched: cached on disk, the scalar math of
`kernels.scalar` as device functions, and one launch shape for every grid-stride loop."""
import math
import types

import numba
import numpy as np
from numba import cuda

SIMULATOR = bool(numba.config.ENABLE_CUDASIM)

THREADS = 256
# Enough blocks to fill every SM of a large GPU several times over; grid-stride loops cover
# the rest, so a launch never needs more.
MAX_BLOCKS = 1024

kernel = cuda.jit(cache=True)


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
    scalars instead, where `math` raises and NumPy warns on what the GPU silently answers with
    inf or nan; there the function runs with NumPy's math and floating-point errors ignored, so
    that the simulator computes what the hardware does."""
    if SIMULATOR:
        plain = types.FunctionType(fn.__code__, {**fn.__globals__, "math": _SimMath()},
                                   fn.__name__, fn.__defaults__)

        def simulated(*args):
            with np.errstate(all="ignore"):
                return plain(*args)

        return cuda.jit(device=True)(simulated)
    return cuda.jit(device=True)(fn)
