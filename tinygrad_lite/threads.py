"""One thread budget for the CPU: Numba's parallel kernels and BLAS (the GEMMs of matmul and
convolution) share the cores, so they are sized together.

    import tinygrad_lite as tl
    tl.set_num_threads(1)       # e.g. under another process's load
    tl.get_num_threads()        # -> 1

The default is the number of physical cores this process may run on (its CPU affinity, one
per group of SMT siblings, capped by a cgroup CPU quota and by NUMBA_NUM_THREADS), applied
when this module is imported. Applying it costs a few milliseconds (finding BLAS, a ctypes call);
Numba is called only when its count differs from the default (its first call starts its
thread pool, about 30 ms, which the first parallel kernel would otherwise pay).

BLAS is found through the OpenBLAS that NumPy links (its wheel bundles scipy-openblas:
`scipy_openblas_set_num_threads64_`), else through threadpoolctl when it is importable (an
MKL NumPy). Without either, only Numba's count is set, and `blas_num_threads()` returns None.
`blas_single_threaded()` holds BLAS at one thread while conv runs single-threaded GEMMs in
threads of its own (only with OpenBLAS's C API, which switches in well under a microsecond).

Numba keeps its count per thread: set_num_threads sets it for the calling thread (and BLAS,
which is process-wide). A thread of your own that runs parallel kernels (a loader thread)
calls `apply_in_this_thread()` first, or it runs with Numba's default.
"""
import contextlib
import ctypes
import glob
import math
import operator
import os
import threading

import numba

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_", "openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
            "openblas_get_num_threads64_", "openblas_get_num_threads")


def _allowed_cpus():
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return list(range(os.cpu_count() or 1))


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def physical_cores():
    """The physical cores among the CPUs this process may use: SMT siblings (Linux's
    /sys topology) count once; a cgroup v2 CPU quota (a container's `--cpus`) caps it."""
    cpus = _allowed_cpus()
    cores = set()
    for cpu in cpus:
        siblings = _read(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        cores.add(siblings if siblings else str(cpu))  # unknown topology: one core per CPU
    count = len(cores)
    quota = (_read("/sys/fs/cgroup/cpu.max") or "max").split()
    if quota[0] != "max" and len(quota) == 2 and int(quota[1]) > 0:
        count = min(count, max(1, math.ceil(int(quota[0]) / int(quota[1]))))
    return max(1, count)


def max_threads():
    """The most threads set_num_threads accepts: Numba's pool size (NUMBA_NUM_THREADS,
    fixed when Numba is first imported; the number of CPUs unless set)."""
    return numba.config.NUMBA_NUM_THREADS


def default_num_threads():
    return min(physical_cores(), max_threads())


class _Blas:
    """Get and set BLAS's thread count through threadpoolctl or OpenBLAS's C API."""

    def __init__(self):
        # OpenBLAS's C API first: a call costs well under a microsecond, cheap enough for
        # conv to switch BLAS to one thread around each call (threadpoolctl's takes about a
        # millisecond, it looks the libraries up every time).
        self.name, self._get, self._set, self.fast = None, None, None, False
        for path in self._openblas_paths():
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            setter = next((getattr(lib, s) for s in _SETTERS if hasattr(lib, s)), None)
            getter = next((getattr(lib, g) for g in _GETTERS if hasattr(lib, g)), None)
            if setter is not None and getter is not None:
                setter.argtypes, setter.restype = [ctypes.c_int], None
                getter.argtypes, getter.restype = [], ctypes.c_int
                self.name, self._get, self._set, self.fast = path, getter, setter, True
                return
        try:
            import threadpoolctl
        except ImportError:
            return
        if self._blas_pools(threadpoolctl):
            self.name = "threadpoolctl"
            self._get = lambda: max(p["num_threads"] for p in self._blas_pools(threadpoolctl))
            self._set = lambda n: threadpoolctl.threadpool_limits(limits=n, user_api="blas")

    @staticmethod
    def _blas_pools(threadpoolctl):
        return [p for p in threadpoolctl.threadpool_info() if p.get("user_api") == "blas"]

    @staticmethod
    def _openblas_paths():
        """NumPy's bundled OpenBLAS (numpy.libs on Linux and Windows, numpy/.dylibs on
        macOS), else any OpenBLAS already mapped into this process (a system NumPy)."""
        import numpy
        root = os.path.dirname(os.path.dirname(numpy.__file__))
        for pattern in ("numpy.libs/*openblas*", "numpy/.dylibs/*openblas*"):
            yield from sorted(glob.glob(os.path.join(root, pattern)))
        for line in (_read("/proc/self/maps") or "").splitlines():
            path = line.split()[-1] if line.split() else ""
            if "openblas" in os.path.basename(path) and not path.endswith((".a", ".lib")):
                yield path

    def get(self):
        return None if self._get is None else int(self._get())

    def set(self, n):
        if self._set is not None:
            self._set(n)


_blas = _Blas()
_budget = default_num_threads()


def _check(n):
    try:
        if isinstance(n, bool):
            raise TypeError
        n = operator.index(n)  # ints and NumPy integers; not floats, strings or None
    except TypeError:
        raise ValueError(f"set_num_threads: expected an int number of threads, got "
                         f"{type(n).__name__} {n!r}") from None
    if not 1 <= n <= max_threads():
        raise ValueError(f"set_num_threads: expected 1 <= n <= {max_threads()} (Numba's pool "
                         f"size, NUMBA_NUM_THREADS), got {n}")
    return n


def set_num_threads(n):
    """Use n threads for Numba's parallel kernels (in this thread) and for BLAS (process
    wide). n is an int from 1 to max_threads(); anything else raises ValueError."""
    global _budget
    n = _check(n)
    with _single_lock:  # while conv's workers hold BLAS at one thread, the last one out sets n
        _budget = n
        if _single_users == 0:
            _blas.set(n)
    apply_in_this_thread()


def get_num_threads():
    """The thread budget: what set_num_threads last set, else the default (physical cores)."""
    return _budget


def _numba_count():
    """Numba's count in this thread, without starting its pool: before the pool starts, every
    thread's count is NUMBA_NUM_THREADS (numba.get_num_threads() would start it, ~30 ms)."""
    from numba.np.ufunc import parallel
    if not getattr(parallel, "_is_initialized", True):
        return numba.config.NUMBA_NUM_THREADS
    return numba.get_num_threads()


def apply_in_this_thread():
    """Give the calling thread the budget for Numba's kernels (Numba's count is per thread:
    a new thread starts at NUMBA_NUM_THREADS)."""
    if _numba_count() != _budget:
        numba.set_num_threads(_budget)


def blas_is_settable():
    """Can BLAS's thread count be switched cheaply (OpenBLAS's C API)? Conv's worker threads
    then run single-threaded BLAS calls side by side."""
    return _blas.fast


_single_lock, _single_users = threading.Lock(), 0


@contextlib.contextmanager
def blas_single_threaded():
    """BLAS on one thread while the caller runs BLAS calls from several threads of its own
    (conv's workers, one core each), then back to the budget. Nested and concurrent uses share
    one switch: the first in sets it, the last out restores it."""
    global _single_users
    with _single_lock:
        if _single_users == 0:
            _blas.set(1)
        _single_users += 1
    try:
        yield
    finally:
        with _single_lock:
            _single_users -= 1
            if _single_users == 0:
                _blas.set(_budget)


def _reset_after_fork():
    """A child forked while a thread of the parent held BLAS at one thread inherits the count
    and maybe the lock, but not the holder: it starts free, BLAS back at the budget."""
    global _single_lock, _single_users
    _single_lock, _single_users = threading.Lock(), 0
    _blas.set(_budget)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def blas_num_threads():
    """BLAS's own count of threads, or None when no BLAS control was found."""
    return _blas.get()


def thread_info():
    """What each pool uses now, for logs and benchmarks."""
    return {"budget": _budget, "default": default_num_threads(), "physical_cores":
            physical_cores(), "numba": numba.get_num_threads(), "numba_layer":
            numba.threading_layer(), "blas": blas_num_threads(), "blas_control": _blas.name}


def _apply_default():
    if _blas.get() not in (None, _budget):
        _blas.set(_budget)
    apply_in_this_thread()


_apply_default()
