"""Work shared out among the thread budget's threads, the CPU backend's one way of using several
cores outside BLAS: conv and matmul (whose shares call single-threaded BLAS) and the loops of
norm and pooling (serial kernels over a range of work items, `over_items`).

Why not Numba's prange for those loops: a parfor costs 2-3x a serial loop's compile time (the
norm backward 4.0 s against 1.7 s on a cold cache), and two pools (Numba's and ours) would take
turns spinning on the same cores.

Why not BLAS's own threads: after a multi-threaded call, OpenBLAS's idle threads keep spinning
(about 2^28 cycles, a tenth of a second, unless OPENBLAS_THREAD_TIMEOUT was set before NumPy
loaded it) and take a core from whatever runs next: Numba's parallel kernels and our own
threads. Measured on the cnn training step (2 cores): 586 img/s with the head's matmuls on
BLAS's threads, 796 with the same spinning turned off by that variable. Holding BLAS at one
thread inside our kernels and splitting the work ourselves avoids the spinning without asking
the user for an environment variable. Outside our kernels BLAS keeps the budget's threads (a
user's own NumPy matmuls)."""
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from ... import threads

# Tunable: the fewest elements a call of `over_items` must touch before it shares its items out.
# A share-out costs about 50 us (waking a pool thread through the GIL; Numba's own pool wakes
# faster, but each parfor costs 0.8 s or more of compile on a cold cache). Measured on the norm
# statistics + backward kernels (2 threads, float32 BatchNorm): 131,072 elements 0.18 ms on
# one thread, 0.34 ms shared; 524,288: 0.64 / 0.68 ms; 1M: 1.20 / 0.83 ms; 4M: 5.0 / 2.9 ms.
# Cheaper kernels pass a larger min_size (the norm's normalise-and-scale pass: 1M).
SHARE_MIN_SIZE = 1 << 19
# Ranges per thread in over_items: a few, so that a thread slowed by another process's load
# leaves its later ranges to the others.
RANGES_PER_THREAD = 4

_executor, _executor_size, _executor_lock = None, 0, threading.Lock()


def share_out(work, items):
    """[work(item) for item in items], the items taken in turn by the calling thread and up to
    T - 1 pool threads (T = the thread budget), BLAS single-threaded meanwhile (also with one
    item: a GEMM too small to split then never wakes BLAS's pool). Whoever is free takes the
    next item, so a core slowed by another process's load takes fewer; the results come back
    in the items' order, so a caller that sums them gets the same sum for any T. With a budget
    of one thread, or without OpenBLAS's C API to switch BLAS's threads cheaply, everything
    runs here as it is."""
    budget = threads.get_num_threads()
    if budget == 1 or not threads.blas_is_settable():
        return [work(item) for item in items]
    T = min(budget, len(items))
    with threads.blas_single_threaded():
        if T <= 1:
            return [work(item) for item in items]
        results = [None] * len(items)
        order = iter(range(len(items)))  # one iterator for all: next() is atomic under the GIL
        failed = []

        def take():
            for i in order:
                if failed:
                    return
                try:
                    results[i] = work(items[i])
                except BaseException:
                    failed.append(True)
                    raise
        futures = [_pool(T - 1).submit(take) for _ in range(T - 1)]
        try:
            take()
        finally:  # never restore BLAS while a share still runs
            for f in futures:
                f.result()
    return results


def _forget_pool():
    """In a forked child the parent's pool threads do not exist: a task submitted to the pool
    object inherited from the parent would wait forever (a search's process pool forks a
    process that trains). The child makes its own on first use."""
    global _executor, _executor_size, _executor_lock
    _executor, _executor_size, _executor_lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _pool(size):
    """The worker threads (created on first use, replaced when the budget changes)."""
    global _executor, _executor_size
    with _executor_lock:
        if _executor is None or _executor_size != size:
            if _executor is not None:
                _executor.shutdown(wait=False)
            _executor = ThreadPoolExecutor(size, thread_name_prefix="tinygrad_lite-blas")
            _executor_size = size
        return _executor


def split(n, parts):
    """`parts` contiguous slices covering range(n) as evenly as possible."""
    return [slice(n * i // parts, n * (i + 1) // parts) for i in range(parts)]


def over_items(kernel, items, size, *args, min_size=None):
    """kernel(lo, hi, *args) over the work items [0, items): in RANGES_PER_THREAD contiguous
    ranges per thread of the budget, taken in turn (share_out), when the call touches `size` >=
    min_size (default SHARE_MIN_SIZE) elements, else in one call here. The kernel must write
    nothing that another range's items write."""
    big = size >= (SHARE_MIN_SIZE if min_size is None else min_size)
    T = min(threads.get_num_threads(), items) if big else 1
    if T <= 1:
        kernel(0, items, *args)
        return
    share_out(lambda r: kernel(r.start, r.stop, *args),
              split(items, min(items, T * RANGES_PER_THREAD)))
