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


SCALAR = scalar.compile_all(device)  # kernels/scalar.py's math as device functions
