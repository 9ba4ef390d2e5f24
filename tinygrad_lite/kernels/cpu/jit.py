"""How CPU kernels are compiled: cached on disk, NumPy's error model (x/0 gives inf, not an
exception), a serial and a parallel copy of each loop (small arrays skip the cost of waking
threads), and copies specialised on constants such as the op code."""
import hashlib
import pathlib
import types

import numba

from .. import scalar

# Below this many elements a parallel launch costs more than it saves (measured: ~3 us to wake
# the pool against ~0.5 us for a serial call on this 2-core machine).
PARALLEL_MIN_SIZE = 1 << 15

# Numba's cache checks only the timestamp of the file that defines a kernel, but the kernels
# inline the math of kernels/scalar.py: a tag of that file's contents in every kernel's name
# gives an edited scalar.py new cache entries instead of stale machine code.
_SCALAR_TAG = hashlib.sha1(
    (pathlib.Path(__file__).parent.parent / "scalar.py").read_bytes()).hexdigest()[:10]

kernel = numba.njit(cache=True, error_model="numpy")
# kernels/scalar.py's math, inlined into the kernels that call it
SCALAR = scalar.compile_all(numba.njit(inline="always", error_model="numpy"))


def specialised(fn, parallel=False, options=None, helpers=None, **constants):
    """Compile a copy of `fn` whose module globals `constants` are fixed (Numba freezes globals
    at compile time, so an op code given this way folds away and the loop vectorises, which a
    runtime op argument prevents: measured 4x). `helpers` replaces further globals (compiled
    functions the constants choose); they do not enter the name. Each copy gets its own name,
    hence its own entry in Numba's on-disk cache; closures, the obvious alternative, are never
    cache hits."""
    suffix = "".join(f"_{k.lower()}{v}" for k, v in sorted(constants.items()))
    name = f"{fn.__name__}{suffix}{'_parallel' if parallel else ''}_{_SCALAR_TAG}"
    scope = dict(fn.__globals__, **constants, **(helpers or {}))
    copy = types.FunctionType(fn.__code__, scope, name, fn.__defaults__)
    copy.__qualname__, copy.__module__ = name, fn.__module__
    return numba.njit(cache=True, parallel=parallel, error_model="numpy", **(options or {}))(copy)


def twin(fn, **options):
    """A serial and a parallel dispatcher compiled from one loop; call with the size to pick."""
    serial = specialised(fn, False, options)
    parallel = specialised(fn, True, options)
    return lambda size: parallel if size >= PARALLEL_MIN_SIZE else serial
