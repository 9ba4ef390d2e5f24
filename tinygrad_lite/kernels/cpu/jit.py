"""How CPU kernels are compiled, in one place: cached on disk, NumPy's error model (x/0 gives
inf, not an exception), the GIL released while a kernel runs (the DataLoader's threads keep
preparing batches meanwhile), a serial and a parallel copy of each loop (small arrays skip the
cost of waking threads), and copies specialised on constants such as the op code. The
tunables (parallel thresholds here, conv's chunk size in conv.py) sit next to the
measurements that chose them."""
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
# tens of microseconds per call and cannot repay its compile within a demo. The optimiser
# kernels keep PARALLEL_MIN_SIZE; conv, matmul, norm and pooling share their work out among
# threads through parallel.py, with its own switch (SHARE_MIN_SIZE). The cnn's element-wise
# ops (at most the 1M of its largest weight) all stay serial.
ELEMENTWISE_PARALLEL_MIN_SIZE = 1 << 21
REDUCE_PARALLEL_MIN_SIZE = 1 << 21

# Every CPU kernel's compile options. nogil: the kernels touch only arrays, so they need not
# hold the GIL, and loader threads would otherwise stall behind every op.
OPTIONS = dict(cache=True, error_model="numpy", nogil=True)
# Math inlined into the kernels that call it (kernels/scalar.py, optim_math.py): not cached
# on its own, it is compiled into its callers.
INLINE = dict(inline="always", error_model="numpy")

# Numba's cache checks only the timestamp of the file that defines a kernel (its key ignores
# the compile options), but the kernels inline the math of kernels/scalar.py and take their
# options from here: a tag of that file's contents and of OPTIONS in every specialised
# kernel's name gives an edited scalar.py or changed options new cache entries instead of
# stale machine code.
_SCALAR_TAG = hashlib.sha1(
    (pathlib.Path(__file__).parent.parent / "scalar.py").read_bytes()
    + repr(sorted(OPTIONS.items())).encode()).hexdigest()[:10]

kernel = numba.njit(**OPTIONS)
# Compiled parallel only, for kernels never small enough for the thread wake-up to show.
parallel_kernel = numba.njit(parallel=True, **OPTIONS)
SCALAR = scalar.compile_all(numba.njit(**INLINE))


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
    return numba.njit(parallel=parallel, **OPTIONS, **(options or {}))(copy)


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
