"""The CPU backend against NumPy, called directly: every arity, the op parameter, the CHUNK and
PARALLEL_MIN_SIZE boundaries, strided operands (permuted, sliced, expanded, reversed), the >3
loop-dim fallback, the output layout rule, out= (strided, and an operand itself), reductions on
NHWC views and exact integer sums, index_add.

Compiles are the cost here (a few seconds per op, dtype and serial/parallel copy), so the tests
share a few ops and dtypes: float64 everywhere unless the dtype is the point."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinygrad_lite.kernels import cpu as K
from tinygrad_lite.kernels import plan as P
from tinygrad_lite.kernels import scalar as S
from tinygrad_lite.kernels.cpu.elementwise import CHUNK
from tinygrad_lite.kernels.cpu.jit import PARALLEL_MIN_SIZE

F64 = np.float64
RNG = np.random.default_rng(0)


def rand(*shape):
    return RNG.standard_normal(shape)


def nhwc_as_nchw(n, c, h, w):
    """An (N, C, H, W) view of NHWC memory, as a channels_last batch is."""
    return rand(n, h, w, c).transpose(0, 3, 1, 2)


def order_of(a):
    """a's dims from outermost to innermost in memory."""
    return P.memory_order(a.shape, a.strides)


# ---- the contract ---------------------------------------------------------------------------

def test_exports():
    t = rand(3, 4).T
    assert K.contiguous(t).flags.c_contiguous and np.array_equal(K.contiguous(t), t)
    c = rand(3, 4)
    assert K.contiguous(c) is c


@pytest.mark.parametrize("op, count", [(999, 1), (-1, 1), (S._COUNTS[0], 1), (S.ADD, 1),
                                       (S.NEG, 2), (S.CLIP, 2), (S.POW_GRAD_EXP, 3)])
def test_bad_op_or_operand_count_raises(op, count):
    with pytest.raises(ValueError):
        K.elementwise(op, (rand(3),) * count, F64)


def test_elementwise_plan_pads_to_max_arity():
    out_shape, dims, strides, expand = P.elementwise_plan(((4, 5), (5,)))
    assert out_shape == (4, 5) and dims == (1, 4, 5) and not expand
    assert len(strides) == S.MAX_ARITY == 4 and strides[1] == (0, 0, 1)


# ---- every arity, the parameter, the scalar math ---------------------------------------------

X = np.array([-1e4, -3.0, -0.5, 0.0, 0.5, 2.0, 1e4])


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


@pytest.mark.parametrize("op, operands, param, expected", [
    (S.RELU, (X,), 0.0, np.maximum(X, 0.0)),
    (S.SIGMOID, (X,), 0.0, _sigmoid(X)),
    (S.TANH, (X,), 0.0, np.tanh(X)),
    (S.LEAKY_RELU, (X,), 0.1, np.where(X > 0, X, 0.1 * X)),
    (S.ADD, (X, X[::-1]), 0.0, X + X[::-1]),
    (S.STD_GRAD, (X, np.array([0.0, 1, 2, 0, 4, 0, 8])), 0.0,
     np.array([0.0, -1.5, -0.125, 0, 0.0625, 0, 625.0])),
    (S.CLIP, (X, -1.0 * np.ones(7), 2.0 * np.ones(7)), 0.0, np.clip(X, -1.0, 2.0)),
    (S.CLIP, (X, 3.0 * np.ones(7), -2.0 * np.ones(7)), 0.0, np.full(7, -2.0)),  # lo > hi: hi
    (S.POW_GRAD_EXP, (np.full(4, 2.0), np.array([0.0, 0.0, 3.0, 0.5]),
                      np.array([0.0, 2.0, 1.5, -1.0]), np.array([1.0, 0.0, 3 ** 1.5, 2.0])),
     0.0, np.array([0.0, 0.0, 2 * 3 ** 1.5 * np.log(3.0), 4 * np.log(0.5)])),
])
def test_ops_of_every_arity(op, operands, param, expected):
    got = K.elementwise(op, operands, F64, param=param)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=0)


def test_where_with_bool_condition():
    cond, a, b = rand(5, 4) > 0, rand(5, 4), rand(4)
    assert np.array_equal(K.elementwise(S.WHERE, (cond, a, b), F64), np.where(cond, a, b))


def test_arity_and_python_scalar_math():
    for n, codes in enumerate([(S.COPY, S.LEAKY_RELU), (S.ADD, S.LEAKY_RELU_GRAD),
                               (S.WHERE, S.TIE_SHARE), (S.POW_GRAD_EXP, S.POW_GRAD_EXP)]):
        assert [S.arity(op) for op in range(codes[0], codes[1] + 1)] == [n + 1] * (
            codes[1] - codes[0] + 1)
    assert S.apply(S.SIGMOID, -1e4, 0, 0, 0, 0.0) == 0.0
    assert S.apply(S.POW_GRAD_EXP, 1.0, 0.0, 0.0, 1.0, 0.0) == 0.0


def test_other_dtypes_and_target_shape():
    a32 = rand(3, 4).astype(np.float32)
    got = K.elementwise(S.ADD, (a32, a32[0]), np.float32)
    assert got.dtype == np.float32 and np.array_equal(got, a32 + a32[0])
    a, b = rand(4, 5), rand(5)
    gt = K.elementwise(S.GT, (a, b), np.bool_)
    assert gt.dtype == np.bool_ and np.array_equal(gt, a > b)
    got = K.elementwise(S.ADD, (a, b), F64, shape=(3, 4, 5))  # broadcast to a target shape
    assert got.flags.c_contiguous and np.array_equal(got, np.broadcast_to(a + b, (3, 4, 5)))


# ---- sizes around CHUNK and PARALLEL_MIN_SIZE ------------------------------------------------

@pytest.mark.parametrize("shape", [(1,), (CHUNK - 1,), (CHUNK,), (CHUNK + 1,),
                                   (PARALLEL_MIN_SIZE - 1,), (PARALLEL_MIN_SIZE,),
                                   (PARALLEL_MIN_SIZE + 1,), (3, CHUNK + 3), (9, CHUNK - 5)])
def test_sizes_around_thresholds(shape):
    a, b = rand(*shape), rand(shape[-1])
    got = K.elementwise(S.ADD, (a, b), F64)
    assert got.flags.c_contiguous and np.array_equal(got, a + b)
    nhwc = rand(2, *shape).T  # the same sizes through a permuted operand
    assert np.array_equal(K.elementwise(S.ADD, (nhwc, nhwc), F64), nhwc + nhwc)


# ---- strided operands -----------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: nhwc_as_nchw(2, 3, 4, 5),                                   # permuted
    lambda: rand(4, 10)[:, ::2],                                        # sliced
    lambda: np.broadcast_to(rand(1, 5), (4, 5)),                        # expanded, stride 0
    lambda: rand(4, 5)[::-1],                                           # reversed
    lambda: nhwc_as_nchw(2, 3, 4, 6)[:, ::-1, :, 1::2],                 # all of them
    lambda: np.broadcast_to(rand(3, 1, 4), (3, 5, 4))[::-1, :, ::-2],
], ids=["permuted", "sliced", "expanded", "reversed", "mixed", "expanded-reversed"])
def test_strided_operands(make):
    x = make()
    y = rand(*x.shape[-2:])
    assert np.array_equal(K.elementwise(S.ADD, (x, y), F64), x + y)
    assert np.array_equal(K.elementwise(S.ADD, (y, x), F64), y + x)


def _strided(draw, shape):
    """An array of `shape` reached through a random permutation and random (also negative)
    steps of a bigger buffer."""
    perm = draw(st.permutations(range(len(shape))))
    steps = [draw(st.sampled_from([1, 2, -1, -2])) for _ in shape]
    mem = [shape[p] for p in perm]  # memory-order sizes
    base = np.asarray(rand(*[n * abs(s) for n, s in zip(mem, steps)]))
    view = base[tuple(slice(None, None, s) for s in steps)] if shape else base
    return view.transpose(np.argsort(perm))


@given(st.data())
def test_strided_operands_random(data):
    shape = tuple(data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    small = tuple(n if data.draw(st.booleans()) else 1 for n in shape)  # broadcast dims
    x, y = _strided(data.draw, shape), _strided(data.draw, small)
    lo = _strided(data.draw, small[1:])
    assert np.array_equal(K.elementwise(S.ADD, (y, x), F64), y + x)
    assert np.array_equal(K.elementwise(S.CLIP, (x, lo, lo + 1.0), F64),
                          np.minimum(np.maximum(x, lo), lo + 1.0))
    out = _strided(data.draw, shape)
    assert K.elementwise(S.ADD, (x, y), F64, out=out) is out
    assert np.array_equal(out, x + y)


def test_more_than_three_loop_dims_falls_back():
    a, b = rand(2, 3, 4, 5, 6), rand(2, 1, 4, 1, 6)
    assert P.strided_plan(a.shape, (360, 120, 30, 6, 1), (a.shape, b.shape),
                          ((360, 120, 30, 6, 1), (24, 24, 6, 6, 1))) is None
    assert np.array_equal(K.elementwise(S.ADD, (a, b), F64), a + b)
    p = a.transpose(4, 1, 0, 3, 2)  # a permuted operand with alternating broadcasts
    q = rand(6, 1, 2, 1, 4)
    got = K.elementwise(S.MUL, (p, q), F64)
    assert np.array_equal(got, p * q) and order_of(got) == order_of(p)
    big = np.zeros((4, 3, 8, 5, 12))
    out = big[::2, :, ::2, :, ::2]  # out itself does not merge
    K.elementwise(S.ADD, (a, b), F64, out=out)
    assert np.array_equal(out, a + b) and np.count_nonzero(big) == out.size
    rec = np.zeros(6, dtype=[("v", F64), ("tag", np.int32)])["v"]  # byte-offset strides
    rec[:], other = rand(6), rand(6)[::-1]
    expected = rec + other
    assert K.elementwise(S.ADD, (rec, other), F64, out=rec) is rec
    assert np.array_equal(rec, expected)


# ---- the output layout ----------------------------------------------------------------------

def test_output_follows_first_full_shape_operand():
    x, bias = nhwc_as_nchw(2, 3, 4, 5), rand(1, 3, 1, 1)
    got = K.elementwise(S.ADD, (bias, x), F64)  # bias lacks the full shape: x decides
    assert np.array_equal(got, bias + x) and got.transpose(0, 2, 3, 1).flags.c_contiguous
    assert got.strides == P.output_strides(x.shape, (bias.shape, x.shape),
                                           (bias.strides, x.strides), 8)
    c = rand(2, 3, 4, 5)
    assert K.elementwise(S.ADD, (c, x), F64).flags.c_contiguous  # c comes first
    assert K.elementwise(S.RELU, (c,), F64).flags.c_contiguous
    expanded = np.broadcast_to(rand(2, 3, 4, 1), x.shape)  # stride 0: it does not decide
    assert K.elementwise(S.ADD, (expanded, x), F64).transpose(0, 2, 3, 1).flags.c_contiguous
    assert K.elementwise(S.ADD, (rand(3, 4)[::-1], rand(4)), F64).flags.c_contiguous
    assert P.output_order((2, 1, 3), ((2, 1, 3),), ((3, 99, 1),)) == (0, 1, 2)


# ---- out= -----------------------------------------------------------------------------------

def test_out_strided_and_in_place():
    a, b = rand(6, 4), rand(4)
    buf = np.zeros((6, 8))
    out = buf[:, ::2]
    assert K.elementwise(S.SUB, (a, b), F64, out=out) is out
    assert np.array_equal(out, a - b) and not buf[:, 1::2].any()
    x = nhwc_as_nchw(2, 3, 4, 5)
    expected = x * 2.0
    assert K.elementwise(S.ADD, (x, x), F64, out=x) is x  # in place on a permuted view
    assert np.array_equal(x, expected)
    big = rand(PARALLEL_MIN_SIZE + 7)  # the parallel copy, in place
    expected = big + big
    K.elementwise(S.ADD, (big, big), F64, out=big)
    assert np.array_equal(big, expected)
    with pytest.raises(ValueError):
        K.elementwise(S.ADD, (a, b), F64, out=np.zeros((6, 5)))


# ---- reductions -----------------------------------------------------------------------------

@pytest.mark.parametrize("axes", [(0,), (1,), (2, 3), (0, 2, 3), (1, 2), (0, 1, 2, 3)])
@pytest.mark.parametrize("keepdims", [True, False])
def test_reduce_nhwc_view_keeps_layout(axes, keepdims):
    x = nhwc_as_nchw(2, 3, 4, 5)
    memory = [a for a in (0, 2, 3, 1) if a not in axes]  # input's order on the kept dims
    for op, ref in [(S.SUM, np.sum), (S.MAX, np.max), (S.MIN, np.min)]:
        got = K.reduce(op, x, axes, keepdims)
        np.testing.assert_allclose(got, ref(x, axis=axes, keepdims=keepdims), rtol=1e-13)
        kept = [a for a in range(4) if a not in axes]
        dims = [d for d in order_of(got) if got.shape[d] > 1]
        if keepdims:
            assert dims == [a for a in memory if got.shape[a] > 1]
        else:
            assert dims == [kept.index(a) for a in memory if x.shape[a] > 1]


@pytest.mark.parametrize("make", [lambda: rand(4, 10)[:, ::3], lambda: rand(4, 5)[::-1].T,
                                  lambda: np.broadcast_to(rand(4, 1), (4, 6))])
def test_reduce_other_strides(make):
    x = make()
    for axes in [(0,), (1,), (0, 1)]:
        np.testing.assert_allclose(K.reduce(S.SUM, x, axes, False), x.sum(axis=axes),
                                   rtol=1e-13)
        assert np.array_equal(K.reduce(S.MAX, x, axes, True), x.max(axis=axes, keepdims=True))


def test_integer_reductions_are_exact():
    big = 2 ** 53
    assert K.reduce(S.SUM, np.array([big, 1], np.int64), (0,), False) == big + 1
    x = np.full((3, 4, 5), big // 64, np.int64)
    x[1, 2, 3] += 1
    for axes in [(0,), (2,), (0, 2), (0, 1, 2)]:
        got = K.reduce(S.SUM, x, axes, False)
        assert got.dtype == np.int64 and np.array_equal(got, x.sum(axis=axes))
    m = np.array([[2 ** 62 + 1, 2 ** 62], [-(2 ** 62) - 1, -(2 ** 62)]], np.int64)
    for axes in [(0,), (1,)]:
        assert np.array_equal(K.reduce(S.MAX, m, axes, False), m.max(axis=axes))
        assert np.array_equal(K.reduce(S.MIN, m, axes, False), m.min(axis=axes))
    b = RNG.random((5, 7)) > 0.5
    for axes in [(0,), (1,), (0, 1)]:
        got = K.reduce(S.SUM, b, axes, False)
        assert got.dtype == np.int64 and np.array_equal(got, b.sum(axis=axes))
        assert np.array_equal(K.reduce(S.MAX, b, axes, False), b.max(axis=axes))


def test_float32_sums_accumulate_in_float64():
    ones = np.ones(2 ** 24 + 2, np.float32)
    assert K.reduce(S.SUM, ones, (0,), False) == 2 ** 24 + 2  # float32 steps stop at 2**24
    cols = np.ones((2 ** 22 + 1, 4), np.float32)  # the non-last-axis path
    assert np.array_equal(K.reduce(S.SUM, cols, (0,), False), np.full(4, 2 ** 22 + 1))


def test_argreduce_strided():
    x = nhwc_as_nchw(2, 3, 4, 5)
    for axis in range(4):
        assert np.array_equal(K.argreduce(S.MAX, x, axis), x.argmax(axis=axis))
        assert np.array_equal(K.argreduce(S.MIN, x[:, ::-1], axis),
                              x[:, ::-1].argmin(axis=axis))


# ---- index_add ------------------------------------------------------------------------------

def _index_add_reference(shape, key, values):
    out = np.zeros(shape, values.dtype)
    np.add.at(out, key, values)
    return out


@pytest.mark.parametrize("key", [
    (np.array([0, 2, 0, 0, 3], np.int64),),                      # repeated rows
    (slice(None), np.array([1, 1, -1], np.int64)),                  # repeats along axis 1
    (np.array([[0, 0], [1, 0]], np.int64), np.array([2, 2], np.int64)),
    (RNG.random((4, 5)) > 0.4,),                                    # a bool mask
    (slice(1, None, 2), Ellipsis, None),                            # basic indexing
    (2, slice(None, None, -2)),
])
def test_index_add(key):
    shape = (4, 5)
    values = rand(*np.zeros(shape)[key].shape)
    np.testing.assert_array_equal(K.index_add(shape, key, values),
                                  _index_add_reference(shape, key, values))


@given(st.lists(st.integers(-6, 5), min_size=1, max_size=20), st.integers(0, 2 ** 31))
def test_index_add_random_repeats(rows, seed):
    key = (np.array(rows, np.int64), slice(None))
    values = np.random.default_rng(seed).standard_normal((len(rows), 3))
    np.testing.assert_allclose(K.index_add((6, 3), key, values),
                               _index_add_reference((6, 3), key, values), rtol=1e-14)
