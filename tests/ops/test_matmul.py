"""matmul: 2-D, batched with broadcast batch dims, and PyTorch's 1-D rules."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite as tl
from helpers import assert_gradcheck, device_param, max_side, run, values


@device_param
@given(data=st.data())
def test_matmul_forward_and_gradient(device, data):
    side = st.integers(1, max_side(device))
    m, k, n = data.draw(side), data.draw(side), data.draw(side)
    batch_a = tuple(data.draw(st.lists(st.integers(1, 2), max_size=2)))
    batch_b = tuple(1 if data.draw(st.booleans()) else s for s in batch_a)[
        data.draw(st.integers(0, len(batch_a))):]
    shape_a, shape_b = batch_a + (m, k), batch_b + (k, n)
    if data.draw(st.booleans()):  # PyTorch's vector cases
        shape_a = (k,) if data.draw(st.booleans()) else shape_a
        shape_b = (k,) if len(shape_a) > 1 and data.draw(st.booleans()) else shape_b
    a, b = data.draw(values(shape_a)), data.draw(values(shape_b))
    f = lambda x, y: x @ y  # noqa: E731
    np.testing.assert_allclose(run(f, [a, b], device), np.matmul(a, b), rtol=1e-12, atol=1e-12)
    assert_gradcheck(f, [a, b], device)


def test_matmul_shape_errors():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) are not aligned"):
        tl.zeros(2, 3) @ tl.zeros(4, 5)
    with pytest.raises(ValueError, match="batch dimensions"):
        tl.zeros(2, 2, 3) @ tl.zeros(3, 3, 4)


def test_one_dimensional_errors_show_the_given_shapes():
    with pytest.raises(ValueError, match=r"matmul: shapes \(3,\) and \(4,\) are not aligned"):
        tl.zeros(3) @ tl.zeros(4)
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4,\)"):
        tl.zeros(2, 3) @ tl.zeros(4)
    with pytest.raises(ValueError, match=r"matmul: shapes \(4,\) and \(3, 2\)"):
        tl.zeros(4) @ tl.zeros(3, 2)
    assert (tl.ones(3) @ tl.ones(3)).item() == 3.0
    assert (tl.ones(2, 5, 3) @ tl.ones(3)).shape == (2, 5)


def test_matmul_skips_the_gradient_of_a_constant():
    w = tl.ones(3, 2, requires_grad=True)
    y = tl.ones(4, 3) @ w
    ga, gb = y.grad_fn.backward(np.ones((4, 2), np.float32))
    assert ga is None and gb.shape == (3, 2)


def test_matmul_of_transposed_and_sliced_operands():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((70, 40)), rng.standard_normal((90, 70))
    grads = {}
    for dtype in (tl.float32, tl.float64):
        ta = tl.tensor(a, dtype=dtype, requires_grad=True)
        tb = tl.tensor(b, dtype=dtype, requires_grad=True)
        out = ta.T[::2] @ tb.T[:, 1::3]
        (out * out).sum().backward()
        grads[dtype] = out.numpy(), ta.grad.numpy(), tb.grad.numpy()
    np.testing.assert_allclose(grads[tl.float64][0], a.T[::2] @ b.T[:, 1::3], rtol=1e-10)
    for got, want in zip(grads[tl.float32], grads[tl.float64]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("shape_a, shape_b, split", [
    ((40, 7), (7, 3), "rows"), ((3, 2, 5), (3, 5, 4), "batch"), ((2, 9), (9, 40), "columns"),
    ((2, 3, 40, 6), (2, 3, 6, 5), "rows"), ((0, 4), (4, 3), None), ((5, 0), (0, 3), None),
    ((1, 1), (1, 1), None)])
def test_cpu_matmul_split_among_threads(monkeypatch, shape_a, shape_b, split):
    """The CPU matmul splits its output among the thread budget's threads (rows, else the first
    batch dim, else columns) above SPLIT_MIN_FLOPS: forced here for small shapes, every split
    gives NumPy's product (zeros for an empty K, empty for an empty M), also with transposed
    (strided) operands as backward passes them. (Products under SMALL_FLOPS are one plain
    NumPy call: test_small_products_are_one_plain_call.)"""
    import sys
    from tinygrad_lite import threads
    from tinygrad_lite.kernels import cpu as K
    cpu_matmul = sys.modules["tinygrad_lite.kernels.cpu.matmul"]
    if threads.max_threads() < 2:
        pytest.skip("needs Numba's pool to allow 2 threads")
    monkeypatch.setattr(cpu_matmul, "SPLIT_MIN_FLOPS", 0)
    monkeypatch.setattr(cpu_matmul, "SMALL_FLOPS", -1)  # no plain-call shortcut
    calls = []
    real_share_out = cpu_matmul.share_out
    monkeypatch.setattr(cpu_matmul, "share_out",
                        lambda w, items: calls.append(len(items)) or real_share_out(w, items))
    monkeypatch.setattr(cpu_matmul, "MIN_BLOCK", 4)
    previous = threads.get_num_threads()
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    try:
        threads.set_num_threads(2)
        blocks = cpu_matmul._blocks(shape_a[:-2], shape_a[-2], shape_b[-1], True)
        got = K.matmul(a, b)
        got_t = K.matmul(np.ascontiguousarray(np.swapaxes(a, -1, -2)).swapaxes(-1, -2), b)
    finally:
        threads.set_num_threads(previous)
    expect = np.matmul(a, b)
    assert got.shape == expect.shape
    np.testing.assert_allclose(got, expect, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_t, expect, rtol=1e-12, atol=1e-12)
    if split is not None:
        axis = {"rows": -2, "batch": 0, "columns": -1}[split]
        lengths = [expect[(slice(None),) * (axis % expect.ndim) + (s,)].shape[axis] for s in (
            blk[0 if split != "columns" else 1][axis] for blk in blocks)]
        assert len(blocks) == 2 and sum(lengths) == expect.shape[axis]
        assert calls == [2, 2]  # both products really ran in two blocks


def test_small_products_are_one_plain_call(monkeypatch):
    """A product OpenBLAS runs on the calling thread anyway skips the thread hand-off."""
    import sys
    cpu_matmul = sys.modules["tinygrad_lite.kernels.cpu.matmul"]
    monkeypatch.setattr(cpu_matmul, "share_out", lambda *a: pytest.fail("shared out"))
    a, b = np.arange(12.0).reshape(3, 4), np.arange(8.0).reshape(4, 2)
    np.testing.assert_array_equal(cpu_matmul.matmul(a, b), a @ b)
