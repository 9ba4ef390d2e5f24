"""kernels/cpu/parallel.py: work shared out among the thread budget's threads."""
import numpy as np
import pytest

from tinygrad_lite import threads
from tinygrad_lite.kernels.cpu import parallel


@pytest.fixture
def two_threads():
    if threads.max_threads() < 2:
        pytest.skip("needs Numba's pool to allow 2 threads")
    previous = threads.get_num_threads()
    threads.set_num_threads(2)
    yield
    threads.set_num_threads(previous)


def test_share_out_returns_results_in_item_order_from_several_threads(two_threads):
    def work(item):
        x = np.full(20_000, float(item))
        return float(np.dot(x, x))  # BLAS inside a share
    items = list(range(64))
    assert parallel.share_out(work, items) == [20_000.0 * i * i for i in items]
    if threads.blas_is_settable():
        assert threads.blas_num_threads() == 2  # BLAS got the budget back


def test_share_out_raises_the_first_error_and_restores_blas(two_threads):
    done = []

    def work(item):
        if item == 5:
            raise ValueError("item 5")
        done.append(item)
    with pytest.raises(ValueError, match="item 5"):
        parallel.share_out(work, list(range(40)))
    assert len(done) < 40
    if threads.blas_is_settable():
        assert threads.blas_num_threads() == 2


@pytest.mark.parametrize("items, size, min_size", [(10, 1 << 30, None), (10, 5, None),
                                                   (3, 100, 1), (1, 1 << 30, None)])
def test_over_items_covers_every_item_once(two_threads, items, size, min_size):
    count = np.zeros(items, np.int64)
    calls = []

    def kernel(lo, hi, out):
        calls.append((lo, hi))
        out[lo:hi] += 1
    parallel.over_items(kernel, items, size, count, min_size=min_size)
    assert (count == 1).all()
    shared = size >= (parallel.PARALLEL_MIN_SIZE if min_size is None else min_size)
    assert len(calls) == (min(items, 2 * parallel.RANGES_PER_THREAD) if shared else 1)


def test_split_is_contiguous_and_even():
    parts = parallel.split(10, 4)
    assert [(p.start, p.stop) for p in parts] == [(0, 2), (2, 5), (5, 7), (7, 10)]
    assert parallel.split(3, 1) == [slice(0, 3)]
