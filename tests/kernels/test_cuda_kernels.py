"""The CUDA backend called directly (on Numba's CUDA simulator unless a GPU is requested; see
tests/conftest.py), compared against NumPy. Sizes of 300-700 elements span several 256-thread
blocks while keeping the simulator (one Python thread per GPU thread) quick."""
import numpy as np
import pytest

import tinygrad_lite as tl

from tinygrad_lite.kernels import cuda as K
from tinygrad_lite.kernels import scalar as S

RNG = np.random.default_rng(0)


def dev(a):
    return K.from_numpy(np.asarray(a))


def host(a):
    return K.to_numpy(a)


def test_api_and_contiguous():
    x = dev(np.ones((2, 3)))
    assert K.contiguous(x) is x
    t = np.arange(12.0).reshape(3, 4).T  # a non-contiguous host array uploads by value
    np.testing.assert_array_equal(host(dev(t)), t)


# --- element-wise ------------------------------------------------------------------------

X = RNG.normal(size=(3, 1, 200))
Y = RNG.normal(size=(1, 2, 1))  # (3, 2, 200): 1200 outputs, three broadcast groups
POS = RNG.uniform(0.5, 2.0, size=(2, 300))
EXPO = RNG.uniform(-1.0, 2.0, size=(300,))
GRAD = RNG.normal(size=(2, 1))

CASES = {  # name: (op, operands, param, expected)
    "unary": (S.NEG, [X], 0.0, -X),
    "unary param": (S.LEAKY_RELU, [X], 0.2, np.where(X > 0, X, 0.2 * X)),
    "binary": (S.ADD, [X, Y], 0.0, X + Y),
    "binary param": (S.LEAKY_RELU_GRAD, [Y, X], 0.3, np.where(X > 0, Y, 0.3 * Y)),
    "ternary": (S.WHERE, [X > 0, X, Y], 0.0, np.where(X > 0, X, Y)),
    "quaternary": (S.POW_GRAD_EXP, [GRAD, POS, EXPO, POS ** EXPO], 0.0,
                   GRAD * POS ** EXPO * np.log(POS)),
}


@pytest.mark.parametrize("name", CASES)
def test_elementwise_every_arity(name):
    op, operands, param, expected = CASES[name]
    out = K.elementwise(op, [dev(a) for a in operands], np.float64, param=param)
    assert out.shape == expected.shape
    np.testing.assert_allclose(host(out), expected, rtol=1e-12, atol=1e-15)


def test_elementwise_broadcasts_to_shape_and_past_three_groups():
    a, b = RNG.normal(size=(2, 1, 3, 1, 5)), RNG.normal(size=(4, 1, 6, 1))
    out = K.elementwise(S.MUL, [dev(a), dev(b)], np.float32)  # (2, 4, 3, 6, 5): 720
    assert out.dtype == np.float32
    np.testing.assert_allclose(host(out), (a * b).astype(np.float32), rtol=1e-6)
    out = K.elementwise(S.EXP, [dev(Y)], np.float64, shape=(3, 2, 100))
    np.testing.assert_allclose(host(out), np.broadcast_to(np.exp(Y), (3, 2, 100)), rtol=1e-12)


def test_elementwise_comparison_gives_bool():
    out = K.elementwise(S.LT, [dev(X), dev(Y)], np.bool_)
    assert out.dtype == np.bool_
    np.testing.assert_array_equal(host(out), X < Y)


@pytest.mark.parametrize("op, count", [(999, 1), (S.TANH + 1 + 20, 1), (-1, 1), (S.ADD, 1),
                                       (S.NEG, 2), (S.WHERE, 2), (S.POW_GRAD_EXP, 3)])
def test_elementwise_rejects_bad_op_codes(op, count):
    with pytest.raises(ValueError, match="elementwise"):
        K.elementwise(op, [dev(X)] * count, np.float64)


def test_elementwise_out_in_place():
    a, b = RNG.normal(size=(3, 2, 100)), RNG.normal(size=(2, 1))
    da = dev(a)
    assert K.elementwise(S.SUB, [da, dev(b)], np.float64, out=da) is da
    np.testing.assert_allclose(host(da), a - b, rtol=1e-12)
    fresh = K.empty((3, 2, 100), np.float64)
    assert K.elementwise(S.SQUARE, [da], np.float64, out=fresh) is fresh
    np.testing.assert_allclose(host(fresh), (a - b) ** 2, rtol=1e-12)
    with pytest.raises(ValueError, match="out must be"):
        K.elementwise(S.ADD, [da, dev(b)], np.float64, out=K.empty((3, 2), np.float64))


# --- movement ----------------------------------------------------------------------------

A4 = RNG.normal(size=(3, 4, 5, 7))  # 420 elements
CUBE = np.arange(6 * 7 * 15, dtype=np.int64).reshape(6, 7, 15)  # 630 elements


@pytest.mark.parametrize("axes", [(2, 0, 3, 1), (3, 2, 1, 0), (0, 1, 3, 2)])
def test_permute(axes):
    np.testing.assert_array_equal(host(K.permute(dev(A4), axes)), A4.transpose(axes))


def test_permute_many_dims():
    x = np.arange(2 ** 9).reshape((2,) * 9)
    axes = (1, 0) + tuple(range(2, 9))  # merges to three walked dimensions
    np.testing.assert_array_equal(host(K.permute(dev(x), axes)), x.transpose(axes))
    with pytest.raises(ValueError, match="at most 8"):  # nine that cannot merge
        K.permute(dev(x), tuple(range(8, -1, -1)))


def test_expand():
    x = RNG.normal(size=(5, 1, 1))
    out = K.expand(dev(x), (2, 5, 6, 10))
    np.testing.assert_array_equal(host(out), np.broadcast_to(x, (2, 5, 6, 10)))
    with pytest.raises(ValueError, match="expand"):
        K.expand(dev(x), (4, 6))


BASIC_KEYS = [
    (1,), (-2, slice(None)), (slice(None, None, -1),), (Ellipsis, slice(1, None, 2)),
    (None, 2, Ellipsis, slice(-1, -12, -3)), (Ellipsis, -1), (slice(4, 1, -1), None, 3),
    (5, 6, 14), (slice(3, 3), Ellipsis), (np.int64(1), slice(None), slice(None, None, -4)),
]


@pytest.mark.parametrize("key", BASIC_KEYS, ids=str)
def test_getitem_basic(key):
    out = K.getitem(dev(CUBE), key)
    np.testing.assert_array_equal(host(out), CUBE[key])
    assert out.shape == CUBE[key].shape


ADVANCED_KEYS = [
    (np.array([[0, 5], [5, -1]]),), (slice(None), np.array([6, 0, 6])),
    (CUBE % 3 == 0,), (np.array([True, False, True, True, False, False]), Ellipsis, 2),
]


@pytest.mark.parametrize("key", ADVANCED_KEYS, ids=range(len(ADVANCED_KEYS)))
def test_getitem_advanced(key):
    np.testing.assert_array_equal(host(K.getitem(dev(CUBE), key)), CUBE[key])


def test_getitem_errors():
    with pytest.raises(IndexError):
        K.getitem(dev(CUBE), (6,))
    with pytest.raises(IndexError):
        K.getitem(dev(CUBE), (0, 0, 0, 0))
    with pytest.raises(IndexError):
        K.getitem(dev(CUBE), (Ellipsis, 0, Ellipsis))


def test_cat_and_pad():
    parts = [RNG.normal(size=(3, n, 50)) for n in (1, 4, 2)]
    np.testing.assert_array_equal(host(K.cat([dev(p) for p in parts], 1)),
                                  np.concatenate(parts, 1))
    x = RNG.normal(size=(2, 7, 20))
    widths = [(0, 1), (2, 0), (3, 4)]
    np.testing.assert_array_equal(host(K.pad(dev(x), widths, -1.5)),
                                  np.pad(x, widths, constant_values=-1.5))


def _add_at(shape, key, values):
    out = np.zeros(shape, values.dtype)
    np.add.at(out, key, values)
    return out


INDEX_ADD = [  # (shape, key, values shape)
    ((40, 9), (np.array([0, 3, 0, 39, 3, 0] * 50),), (300, 9)),  # repeats, 2700 adds
    ((6, 7, 15), (np.array([1, 1, 4]), slice(None), np.array([2, 2, 2])), (3, 7)),
    ((6, 7, 15), (CUBE % 4 == 1,), (int((CUBE % 4 == 1).sum()),)),
    ((6, 7, 15), (slice(None, None, -2), None, Ellipsis, slice(1, 12, 3)), (3, 1, 7, 4)),
    ((6, 7, 15), (2, slice(None), -1), (7,)),
    ((6, 7, 15), (Ellipsis, slice(2, 5)), (3,)),  # values broadcast to out[key]
]


@pytest.mark.parametrize("shape, key, vshape", INDEX_ADD, ids=range(len(INDEX_ADD)))
def test_index_add(shape, key, vshape):
    values = RNG.normal(size=vshape)
    np.testing.assert_allclose(host(K.index_add(shape, key, dev(values))),
                               _add_at(shape, key, values), rtol=1e-12)


def test_index_add_int64_exact():
    values = np.full(4, 2 ** 53, np.int64)
    values[1] = 1
    out = host(K.index_add((3,), (np.array([2, 2, 0, 2]),), dev(values)))
    np.testing.assert_array_equal(out, [2 ** 53, 0, 2 ** 54 + 1])


# --- reductions --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("op, ref", [(S.SUM, np.sum), (S.MAX, np.max), (S.MIN, np.min)])
def test_reduce_rows_longer_than_a_block(op, ref, dtype):
    x = RNG.normal(size=(3, 700)).astype(dtype)
    out = K.reduce(op, dev(x), (1,), False)
    assert out.dtype == dtype
    expected = ref(x.astype(np.float64), axis=1).astype(dtype)
    np.testing.assert_allclose(host(out), expected, rtol=1e-12 if dtype == np.float64 else 1e-6)


# Both sides of every launch shape: rows (B == 1) shorter and longer than a block, several
# short rows per block; columns (B > 1) with K short, and long enough to be split in segments
# (K > reduce.MIN_SEGMENT); a row long enough to be split (K > THREADS * MIN_SEGMENT).
REDUCE_CASES = [((700, 3), (0,)), ((2, 3, 4, 25), (0, 2)), ((2, 3, 4, 25), (1, 3)),
                ((2, 3, 4, 25), (0, 1, 2, 3)), ((40, 9), (1,)), ((40, 9), (0,)), ((9000,), (0,))]


@pytest.mark.parametrize("shape, axes", REDUCE_CASES, ids=str)
def test_reduce_axes(shape, axes):
    x = RNG.normal(size=shape)
    for op, ref in [(S.SUM, np.sum), (S.MAX, np.max), (S.MIN, np.min)]:
        out = K.reduce(op, dev(x), axes, True)
        np.testing.assert_allclose(host(out), ref(x, axis=axes, keepdims=True), rtol=1e-12)


@pytest.mark.parametrize("shape, axis", [((2, 300), 1), ((300, 2), 0), ((9000,), 0)])
def test_reduce_int_exact(shape, axis):
    x = np.ones(shape, np.int64)
    x[(0,) * len(shape)] = 2 ** 53  # float64 would round 2**53 + 1 down
    for op, ref in [(S.SUM, np.sum), (S.MAX, np.max), (S.MIN, np.min)]:
        out = host(K.reduce(op, dev(x), (axis,), False))
        assert out.dtype == np.int64
        np.testing.assert_array_equal(out, ref(x, axis=axis))
    bools = x % 3 == 1
    np.testing.assert_array_equal(host(K.reduce(S.SUM, dev(bools), (axis,), False)),
                                  bools.sum(axis).astype(bool))


def test_reduce_nan_wins_max_and_min():
    x = RNG.normal(size=(4, 600))
    x[1, 450] = np.nan  # past the first block of threads
    x[2, 0] = np.nan  # the element max/min start from
    for op, ref in [(S.MAX, np.max), (S.MIN, np.min)]:
        np.testing.assert_array_equal(host(K.reduce(op, dev(x), (1,), False)), ref(x, axis=1))
        np.testing.assert_array_equal(host(K.reduce(op, dev(x.T.copy()), (0,), False)),
                                      ref(x, axis=1))


def test_reduce_empty_and_argreduce():
    np.testing.assert_array_equal(host(K.reduce(S.SUM, dev(np.ones((3, 0))), (1,), False)),
                                  np.zeros(3))
    x = RNG.integers(0, 5, size=(3, 300)).astype(np.float64)
    np.testing.assert_array_equal(host(K.argreduce(S.MAX, dev(x), 1)), x.argmax(1))
    np.testing.assert_array_equal(host(K.argreduce(S.MIN, dev(x), 0)), x.argmin(0))


def test_deterministic_cuda_index_gradient_sums_repeats_in_the_cpu_order(monkeypatch):
    """With tl.use_deterministic_algorithms(True) the gradient of an integer-array key that
    repeats indices must not use atomic adds (their order varies run to run on a GPU): it
    equals the CPU's float32 sums bit for bit, and the atomic kernel never runs."""
    from tinygrad_lite import determinism
    from tinygrad_lite.kernels.cuda import movement as cuda_movement

    class NoAtomics:
        def __getitem__(self, config):
            raise AssertionError("the atomic scatter ran with deterministic algorithms on")

    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    idx = rng.integers(0, 5, 300)  # 900 gradient elements (> one 256-thread block), repeating
    g = rng.standard_normal((300, 3)).astype(np.float32) * np.float32(1e3)
    grads = []
    monkeypatch.setattr(cuda_movement, "_scatter_add_map", NoAtomics())
    determinism.use_deterministic_algorithms(True)
    try:
        for device in ("cpu", "cuda"):
            t = tl.Tensor(x, device=device, requires_grad=True)
            t[idx].backward(tl.Tensor(g, device=device))
            grads.append(t.grad.numpy())
    finally:
        determinism.use_deterministic_algorithms(False)
    np.testing.assert_array_equal(grads[1], grads[0])
    np.testing.assert_allclose(grads[0], np.add.reduceat(
        g[np.argsort(idx, kind="stable")], np.r_[0, np.cumsum(np.bincount(idx, minlength=5))[:-1]]),
        rtol=1e-4, atol=1e-2)
