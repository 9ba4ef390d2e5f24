"""How CPU kernels are compiled: cached on disk, NumPy's error model (x/0 gives inf, not an
exception), and a serial and a parallel twin of each loop so that small arrays skip the cost of
waking threads."""
import types

import numba

# Below this many elements a parallel launch costs more than it saves (measured: ~3 us to wake
# the pool against ~0.5 us for a serial call on this 2-core machine).
PARALLEL_MIN_SIZE = 1 << 15

inline = numba.njit(cache=True, inline="always", error_model="numpy")
kernel = numba.njit(cache=True, error_model="numpy")


def twin(fn):
    """A serial and a parallel dispatcher compiled from one loop. The parallel copy gets its own
    name, so that the two keep separate entries in Numba's on-disk cache."""
    par = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_parallel",
                             fn.__defaults__)
    par.__qualname__ = fn.__qualname__ + "_parallel"
    par.__module__ = fn.__module__
    serial = kernel(fn)
    parallel = numba.njit(cache=True, parallel=True, error_model="numpy")(par)
    return lambda size: parallel if size >= PARALLEL_MIN_SIZE else serial
