"""Work shared out among the thread budget's threads by the kernels that call BLAS (conv and
matmul), with BLAS single-threaded meanwhile: each share's GEMMs run on the core of the thread
that calls them.

Why not BLAS's own threads: after a multi-threaded call, OpenBLAS's idle threads keep spinning
(about 2^28 cycles, a tenth of a second, unless OPENBLAS_THREAD_TIMEOUT was set before NumPy
loaded it) and take a core from whatever runs next: Numba's parallel kernels and our own
threads. Measured on the cnn training step (2 cores): 586 img/s with the head's matmuls on
BLAS's threads, 796 with the same spinning turned off by that variable. Holding BLAS at one
thread inside our kernels and splitting the work ourselves avoids the spinning without asking
the user for an environment variable. Outside our kernels BLAS keeps the budget's threads (a
user's own NumPy matmuls)."""
import threading
from concurrent.futures import ThreadPoolExecutor

from ... import threads

_executor, _executor_size, _executor_lock = None, 0, threading.Lock()


def share_out(work, items, most=None):
    """[work(items[i::T]) for i < T], T = min(thread budget, len(items), most): the calling
    thread does share 0 and T - 1 pool threads the others, BLAS single-threaded meanwhile
    (also when T is 1: a GEMM too small to split then never wakes BLAS's pool). Items go to
    shares interleaved, so a share's items and the results' order depend only on T (results
    that are summed come out the same on every run). With a budget of one thread, or without
    OpenBLAS's C API to switch BLAS's threads cheaply, everything runs here as it is."""
    budget = threads.get_num_threads()
    if budget == 1 or not threads.blas_is_settable():
        return [work(items)]
    T = min(budget, len(items), most or len(items))
    with threads.blas_single_threaded():
        if T <= 1:  # one share, still with BLAS's pool asleep
            return [work(items)]
        futures = [_pool(T - 1).submit(work, items[i::T]) for i in range(1, T)]
        try:
            first = work(items[0::T])
        finally:  # never restore BLAS while a share still runs
            rest = [f.result() for f in futures]
    return [first] + rest


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
