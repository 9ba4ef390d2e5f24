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
    shared = size >= (parallel.SHARE_MIN_SIZE if min_size is None else min_size)
    assert len(calls) == (min(items, 2 * parallel.RANGES_PER_THREAD) if shared else 1)


def test_split_is_contiguous_and_even():
    parts = parallel.split(10, 4)
    assert [(p.start, p.stop) for p in parts] == [(0, 2), (2, 5), (5, 7), (7, 10)]
    assert parallel.split(3, 1) == [slice(0, 3)]


def _norm_and_pool_results(x_nhwc, x_nchw):
    """Forward and input/weight gradients of the kernels that run on over_items: batch norm
    with ReLU (channels-last and rows layouts), group norm, max and average pooling."""
    import tinygrad_lite as tl
    from tinygrad_lite import nn
    from tinygrad_lite.nn import functional as F
    out = []
    for data in (x_nhwc, x_nchw):
        for layer in (nn.BatchNorm2d(6, activation="relu"), nn.GroupNorm(3, 6)):
            layer.weight.data = tl.Tensor(np.linspace(0.5, 1.5, 6, dtype=np.float32))
            x = tl.Tensor(data, requires_grad=True)
            y = layer(x)
            (y * y).sum().backward()
            out += [y.numpy(), x.grad.numpy(), layer.weight.grad.numpy()]
        for pool in (F.max_pool2d, F.avg_pool2d):
            x = tl.Tensor(data, requires_grad=True)
            y = pool(x, 3, stride=2, padding=1)
            (y * y).sum().backward()
            out += [y.numpy(), x.grad.numpy()]
    return out


def test_norm_and_pool_shared_among_threads_match_one_call(two_threads, monkeypatch):
    """Past their size switches the norm and pooling kernels run as ranges of work items on
    several threads: forced here on small inputs, every result is bitwise the one-call result
    (the items, and the order their partial sums are merged in, depend on the shape only)."""
    from tinygrad_lite.kernels.cpu import norm
    rng = np.random.default_rng(4)
    data = rng.standard_normal((5, 9, 11, 6)).astype(np.float32)
    x_nhwc = data.transpose(0, 3, 1, 2)  # an NCHW view over NHWC memory: channels-last mode
    x_nchw = np.ascontiguousarray(x_nhwc)  # rows mode
    monkeypatch.setattr(norm, "ITEM_ELEMENTS", 64)  # several items even for a small input
    calls = []
    serial = _norm_and_pool_results(x_nhwc, x_nchw)
    monkeypatch.setattr(parallel, "SHARE_MIN_SIZE", 1)
    monkeypatch.setattr(norm, "APPLY_PARALLEL_MIN_SIZE", 1)
    real = parallel.share_out
    monkeypatch.setattr(parallel, "share_out", lambda w, items: calls.append(len(items)) or
                        real(w, items))
    shared = _norm_and_pool_results(x_nhwc, x_nchw)
    assert calls and min(calls) > 1  # every kernel above really ran in several ranges
    for a, b in zip(serial, shared):
        assert np.array_equal(a, b)
