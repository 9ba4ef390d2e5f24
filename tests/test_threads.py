"""The thread budget: tl.threads.set_num_threads sizes Numba's pool and BLAS's together."""
import ctypes
import glob
import os
import threading

import numba
import numpy as np
import pytest

from tinygrad_lite import threads


def blas_reported_threads():
    """BLAS's own answer, read independently of the module under test: threadpoolctl when it
    is installed, else the getter of the OpenBLAS that NumPy's wheel bundles."""
    try:
        import threadpoolctl
        return max(p["num_threads"] for p in threadpoolctl.threadpool_info()
                   if p["user_api"] == "blas")
    except ImportError:
        pass
    root = os.path.dirname(os.path.dirname(np.__file__))
    for path in glob.glob(os.path.join(root, "numpy.libs", "*openblas*")):
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads"):
            if hasattr(lib, name):
                getter = getattr(lib, name)
                getter.restype = ctypes.c_int
                return getter()
    return None


@pytest.fixture
def restore_budget():
    before = threads.get_num_threads()
    yield
    threads.set_num_threads(before)


@pytest.mark.parametrize("n", [1, 2])
def test_set_num_threads_sets_numba_and_blas(restore_budget, n):
    if n > threads.max_threads():
        pytest.skip(f"Numba's pool has {threads.max_threads()} thread(s) here, fewer than {n}")
    threads.set_num_threads(n)
    assert threads.get_num_threads() == n
    assert numba.get_num_threads() == n
    assert threads.blas_num_threads() == n
    reported = blas_reported_threads()
    if reported is None:
        pytest.skip("neither threadpoolctl nor NumPy's bundled OpenBLAS is here to ask BLAS")
    assert reported == n


def test_numpy_integers_are_accepted(restore_budget):
    threads.set_num_threads(np.int64(1))
    assert threads.get_num_threads() == 1 and numba.get_num_threads() == 1


@pytest.mark.parametrize("bad", [0, -1, 10_000, 1.0, 2.5, True, None, "2"])
def test_bad_values_raise_naming_the_function_and_change_nothing(restore_budget, bad):
    threads.set_num_threads(1)
    with pytest.raises(ValueError, match="set_num_threads"):
        threads.set_num_threads(bad)
    assert threads.get_num_threads() == 1
    assert numba.get_num_threads() == 1
    assert threads.blas_num_threads() in (None, 1)


def test_default_is_the_physical_cores_capped_by_numba():
    assert threads.default_num_threads() == min(threads.physical_cores(), threads.max_threads())
    assert 1 <= threads.default_num_threads() <= (os.cpu_count() or 1)


def test_a_new_thread_takes_the_budget_when_it_asks(restore_budget):
    threads.set_num_threads(1)
    seen = {}

    def worker():  # Numba's count is per thread: a new one starts at NUMBA_NUM_THREADS
        threads.apply_in_this_thread()
        seen["n"] = numba.get_num_threads()
    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen["n"] == 1


def fake_machine(monkeypatch, cpus, siblings, quota=None):
    files = {f"/sys/devices/system/cpu/cpu{c}/topology/thread_siblings_list": s
             for c, s in zip(cpus, siblings)}
    if quota is not None:
        files["/sys/fs/cgroup/cpu.max"] = quota
    monkeypatch.setattr(threads, "_allowed_cpus", lambda: list(cpus))
    monkeypatch.setattr(threads, "_read", files.get)


def test_smt_siblings_count_once(monkeypatch):
    fake_machine(monkeypatch, [0, 1, 2, 3], ["0,2", "1,3", "0,2", "1,3"])
    assert threads.physical_cores() == 2


def test_affinity_limits_the_count(monkeypatch):
    fake_machine(monkeypatch, [0, 2], ["0,2", "0,2"])  # two hyperthreads of one core
    assert threads.physical_cores() == 1


def test_unknown_topology_counts_each_cpu(monkeypatch):
    fake_machine(monkeypatch, [0, 1, 2], [None, None, None])
    assert threads.physical_cores() == 3


@pytest.mark.parametrize("quota, expected", [("150000 100000", 2), ("50000 100000", 1),
                                             ("max 100000", 4)])
def test_cgroup_quota_caps_the_count(monkeypatch, quota, expected):
    fake_machine(monkeypatch, [0, 1, 2, 3], ["0", "1", "2", "3"], quota)
    assert threads.physical_cores() == expected


def test_blas_single_threaded_is_shared_by_nested_and_concurrent_users(restore_budget):
    """Conv's workers hold BLAS at one thread: nested and concurrent holders share the switch,
    the last one out restores the budget, and a budget set meanwhile takes effect then."""
    if not threads.blas_is_settable():
        pytest.skip("no OpenBLAS C API here to switch BLAS's threads")
    if threads.max_threads() < 2:
        pytest.skip("needs Numba's pool to allow 2 threads")
    threads.set_num_threads(2)
    inside, release = threading.Event(), threading.Event()

    def other_holder():
        with threads.blas_single_threaded():
            inside.set()
            release.wait(10)

    worker = threading.Thread(target=other_holder)
    with threads.blas_single_threaded():
        with threads.blas_single_threaded():
            assert threads.blas_num_threads() == 1
        assert threads.blas_num_threads() == 1  # the outer use still holds it
        worker.start()
        assert inside.wait(10)
    assert threads.blas_num_threads() == 1  # the other thread still holds it
    threads.set_num_threads(1)
    threads.set_num_threads(2)  # set while held: applied when the last holder leaves
    assert threads.blas_num_threads() == 1
    release.set()
    worker.join(10)
    assert threads.blas_num_threads() == 2 and threads.get_num_threads() == 2
