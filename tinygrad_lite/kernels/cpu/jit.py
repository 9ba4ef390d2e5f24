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
# Element-wise ops and reductions stream memory with a few flops per element, and each op and
# dtype compiles its own copy: a parallel copy costs 1.5-2.5 s of cold compile on top of the
# serial one. Measured on this 2-core machine (float32, 2 threads, under other processes'
# load): serial and parallel ADD were within 10% of each other at every size from 2**15 to
# 2**22 elements (5 us to 1.4 ms), row sums likewise, even EXP (compute-bound) at 2**16-2**22;
# below 2M elements a call takes well under a millisecond, so a parallel copy saves at most
# tens of microseconds per call and cannot repay its compile within a demo. The per-channel
# kernels (norm, pool) keep PARALLEL_MIN_SIZE. The cnn's element-wise ops (at most the 1M of
# its largest weight) all stay serial.
ELEMENTWISE_PARALLEL_MIN_SIZE = 1 << 21
REDUCE_PARALLEL_MIN_SIZE = 1 << 21

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


def twin(fn, min_size=PARALLEL_MIN_SIZE, **options):
    """A serial and a parallel dispatcher compiled from one loop; call with the size to pick
    (the parallel one from `min_size` elements). Each compiles on its first call only."""
    serial = specialised(fn, False, options)
    parallel = specialised(fn, True, options)
    return lambda size: parallel if size >= min_size else serial


def variants(fn, names, min_size=PARALLEL_MIN_SIZE, **options):
    """Like `twin`, but also one copy per value of the constants `names` (module globals of
    `fn` that select a code path: a copy types and compiles only the path its constants
    select, so a kernel whose modes are runtime arguments compiles every mode's loops, each
    prange a parfor, to run one). Returns pick(size, *values) -> dispatcher; a copy is made
    (and compiles) only when first picked."""
    made = {}

    def pick(size, *values):
        key = (size >= min_size, *values)
        fn_ = made.get(key)
        if fn_ is None:
            fn_ = made[key] = specialised(fn, key[0], options, **dict(zip(names, values)))
        return fn_
    return pick
