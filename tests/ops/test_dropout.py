"""The noise functions (ops/dropout.py): dropout, dropout2d, drop_connect, stochastic_depth.
Identity (the same object) in eval and for p = 0; inverted scaling keeps the expectation (checked
against the binomial standard deviation); the right units are dropped (elements, channels,
weights, samples or the batch); the gradient is mask * scale (gradcheck through a mask fixed by
reseeding, and exactly); manual_seed repeats masks, on the CPU and the CUDA simulator alike;
errors name the function."""
import math

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite.nn import functional as F
from tinygrad_lite.ops import dropout as D
from helpers import assert_gradcheck

F64 = tl.float64  # mul in float32 / float64 only: kernels the other tests compiled already

BAD_P = [-0.1, 1.5, float("nan"), "0.5", None, True]


def _x(*shape, seed=0, device="cpu", dtype=F64, requires_grad=False):
    rng = np.random.default_rng(seed)
    return tl.tensor(rng.standard_normal(shape), dtype=dtype, device=device,
                     requires_grad=requires_grad)


def _seeded(fn, seed):
    """fn with the generator reset before every call: each evaluation draws the same mask, so
    the function is smooth and gradcheck can difference it."""
    def call(*args):
        tl.manual_seed(seed)
        return fn(*args)
    return call


# ----- identity where no noise is drawn -----

@pytest.mark.parametrize("fn", [
    lambda x, **kw: D.dropout(x, 0.5, **kw), lambda x, **kw: D.dropout2d(x, 0.5, **kw),
    lambda x, **kw: D.stochastic_depth(x, 0.5, "row", **kw),
    lambda x, **kw: D.stochastic_depth(x, 0.5, "batch", **kw)])
def test_identity_in_eval(fn):
    x = _x(2, 3, 2, 2)
    assert fn(x, training=False) is x


@pytest.mark.parametrize("fn", [
    lambda x: D.dropout(x, 0.0), lambda x: D.dropout(x, 0),
    lambda x: D.dropout2d(x, 0.0), lambda x: D.stochastic_depth(x, 0.0, "row"),
    lambda x: D.stochastic_depth(x, 0.0, "batch")])
def test_identity_for_p_zero(fn):
    x = _x(2, 3, 2, 2)
    assert fn(x) is x


def test_eval_and_p_zero_draw_nothing():
    tl.manual_seed(3)
    x = _x(4, 4)
    D.dropout(x, 0.5, training=False)
    D.dropout(x, 0.0)
    after_identity = D.dropout(tl.ones(50, dtype=F64)).numpy()
    tl.manual_seed(3)
    np.testing.assert_array_equal(D.dropout(tl.ones(50, dtype=F64)).numpy(), after_identity)


def test_drop_connect_in_eval_and_for_p_zero_is_linear():
    x, w, b = _x(3, 4, seed=1), _x(2, 4, seed=2), _x(2, seed=3)
    expected = F.linear(x, w, b).numpy()
    np.testing.assert_array_equal(D.drop_connect(x, w, b, 0.5, training=False).numpy(), expected)
    np.testing.assert_array_equal(D.drop_connect(x, w, b, 0.0).numpy(), expected)
    np.testing.assert_array_equal(D.drop_connect(x, w, None, 0.5, training=False).numpy(),
                                  F.linear(x, w).numpy())


# ----- statistics: inverted scaling, fraction dropped -----

@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_keeps_the_expectation_and_drops_a_fraction_p(p):
    tl.manual_seed(0)
    n = 100_000
    y = D.dropout(tl.ones(n, dtype=F64), p).numpy()
    scale = 1 / (1 - p)
    kept = y != 0
    np.testing.assert_allclose(y[kept], scale, rtol=1e-15)  # survivors are exactly 1 / (1 - p)
    # y = B / (1 - p), B ~ Bernoulli(1 - p): mean 1, variance p / (1 - p); 5 standard errors
    assert abs(y.mean() - 1) < 5 * math.sqrt(p / (1 - p) / n)
    assert abs((~kept).mean() - p) < 5 * math.sqrt(p * (1 - p) / n)


def test_dropout_float32_keeps_dtype_and_scale():
    tl.manual_seed(1)
    y = D.dropout(tl.ones(1000), 0.25)
    assert y.dtype == tl.float32
    values = set(np.unique(y.numpy()).tolist())
    assert values == {0.0, float(np.float32(1 / 0.75))}


def test_p_one_gives_zeros():
    x = _x(3, 4, 2, 2)
    for y in (D.dropout(x, 1.0), D.dropout2d(x, 1), D.stochastic_depth(x, 1.0, "row"),
              D.stochastic_depth(x, 1.0, "batch")):
        assert y.shape == x.shape
        np.testing.assert_array_equal(y.numpy(), 0.0)
    w = _x(2, 2, seed=4)
    np.testing.assert_array_equal(D.drop_connect(x, w, None, 1.0).numpy(), 0.0)


def test_dropout2d_zeroes_whole_channels():
    tl.manual_seed(2)
    p = 0.5
    x = _x(8, 16, 3, 2)
    y = D.dropout2d(x, p).numpy()
    xs = x.numpy()
    dropped = (y == 0).all(axis=(2, 3))
    kept = np.isclose(y, xs / (1 - p), rtol=1e-15, atol=0).all(axis=(2, 3))
    assert (dropped ^ kept).all()  # every (n, c) feature map is either all zero or all kept
    # 128 channels: the dropped fraction within 5 binomial standard deviations of p
    assert abs(dropped.mean() - p) < 5 * math.sqrt(p * (1 - p) / dropped.size)
    assert not (dropped == dropped[0]).all(axis=0).all()  # samples get their own masks


def test_dropout2d_accepts_unbatched_input():
    tl.manual_seed(5)
    x = _x(32, 2, 3)
    y = D.dropout2d(x, 0.3).numpy()
    dropped = (y == 0).all(axis=(1, 2))
    assert dropped.any() and not dropped.all()
    np.testing.assert_allclose(y[~dropped], x.numpy()[~dropped] / 0.7, rtol=1e-15)


@pytest.mark.parametrize("shape", [(4, 3, 2), (5, 2, 2, 3), (6,)])
def test_stochastic_depth_row_drops_each_sample_whole(shape):
    tl.manual_seed(6)
    p = 0.5
    x = _x(64, *shape[1:]) if len(shape) > 1 else _x(64)
    y = D.stochastic_depth(x, p, "row").numpy()
    axes = tuple(range(1, x.ndim))
    dropped = (y == 0).all(axis=axes) if axes else y == 0
    kept = np.isclose(y, x.numpy() / (1 - p), rtol=1e-15, atol=0)
    kept = kept.all(axis=axes) if axes else kept
    assert (dropped ^ kept).all()
    assert 0 < dropped.sum() < 64  # independently per sample: some of each
    assert abs(dropped.mean() - p) < 5 * math.sqrt(p * (1 - p) / 64)


def test_stochastic_depth_batch_drops_all_or_nothing():
    x = _x(16, 3, 2)
    outcomes = set()
    for seed in range(12):
        tl.manual_seed(seed)
        y = D.stochastic_depth(x, 0.5, "batch").numpy()
        if (y == 0).all():
            outcomes.add("dropped")
        else:
            np.testing.assert_allclose(y, x.numpy() * 2, rtol=1e-15)
            outcomes.add("kept")
    assert outcomes == {"dropped", "kept"}  # P(one outcome in 12 fair draws) = 2 ** -11


def test_stochastic_depth_batch_works_on_a_scalar():
    tl.manual_seed(0)
    y = D.stochastic_depth(tl.tensor(3.0, dtype=F64), 0.5, "batch").numpy()
    assert y.shape == () and float(y) in (0.0, 6.0)


def test_drop_connect_drops_weights_not_activations():
    p = 0.5
    x, w, b = _x(5, 6, seed=1), _x(4, 6, seed=2), _x(4, seed=3)
    tl.manual_seed(7)
    y = D.drop_connect(x, w, b, p).numpy()
    tl.manual_seed(7)  # the same draw, on a weight-shaped tensor of ones: mask * scale
    mask = D.dropout(tl.ones(4, 6, dtype=F64), p).numpy()
    assert 0 < (mask == 0).sum() < mask.size
    np.testing.assert_allclose(y, x.numpy() @ (w.numpy() * mask).T + b.numpy(), rtol=1e-12)


# ----- gradients: mask * scale -----

@pytest.mark.parametrize("seed", [0, 1])
def test_gradcheck_dropout(seed):
    arrays = [np.random.default_rng(seed).standard_normal((3, 4))]
    assert_gradcheck(_seeded(lambda x: D.dropout(x, 0.4), seed), arrays, "cpu")


def test_gradcheck_dropout2d_and_stochastic_depth():
    arrays = [np.random.default_rng(1).standard_normal((2, 3, 2, 2))]
    assert_gradcheck(_seeded(lambda x: D.dropout2d(x, 0.5), 1), arrays, "cpu")
    assert_gradcheck(_seeded(lambda x: D.stochastic_depth(x, 0.5, "row"), 2), arrays, "cpu")
    assert_gradcheck(_seeded(lambda x: D.stochastic_depth(x, 0.3, "batch"), 0), arrays, "cpu")


def test_gradcheck_drop_connect():
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal((3, 4)), rng.standard_normal((2, 4)), rng.standard_normal(2)]
    assert_gradcheck(_seeded(lambda x, w, b: D.drop_connect(x, w, b, 0.5), 3), arrays, "cpu")


def test_dropout_gradient_is_mask_times_scale():
    x = _x(50, requires_grad=True)
    tl.manual_seed(9)
    y = D.dropout(x, 0.3)
    y.sum().backward()
    tl.manual_seed(9)
    mask = D.dropout(tl.ones(50, dtype=F64), 0.3).numpy()
    np.testing.assert_array_equal(x.grad.numpy(), mask)
    np.testing.assert_array_equal(y.numpy(), x.numpy() * mask)


def test_dropout2d_gradient_is_the_channel_mask():
    x = _x(3, 4, 2, 2, requires_grad=True)
    tl.manual_seed(4)
    y = D.dropout2d(x, 0.5)
    y.sum().backward()
    g = x.grad.numpy()
    assert (g == g[:, :, :1, :1]).all()  # constant over each channel
    np.testing.assert_array_equal(g != 0, y.numpy() != 0)
    assert set(np.unique(g).tolist()) <= {0.0, 2.0}


# ----- the generator: repeatable, fresh per call, the same on every device -----

def test_manual_seed_repeats_masks_and_calls_draw_fresh_ones():
    x = tl.ones(200, dtype=F64)
    tl.manual_seed(11)
    first, second = D.dropout(x).numpy(), D.dropout(x).numpy()
    assert not np.array_equal(first, second)
    tl.manual_seed(11)
    np.testing.assert_array_equal(D.dropout(x).numpy(), first)
    np.testing.assert_array_equal(D.dropout(x).numpy(), second)


@pytest.mark.parametrize("name, fn", [
    ("dropout", lambda x: D.dropout(x, 0.5)),
    ("dropout2d", lambda x: D.dropout2d(x, 0.5)),
    ("stochastic_depth row", lambda x: D.stochastic_depth(x, 0.5, "row")),
    ("stochastic_depth batch", lambda x: D.stochastic_depth(x, 0.5, "batch"))])
def test_cpu_and_cuda_draw_the_same_mask(name, fn):
    x = _x(2, 3, 2, 2)
    tl.manual_seed(12)
    on_cpu = fn(x).numpy()
    tl.manual_seed(12)
    xc = x.to("cuda").requires_grad_()
    yc = fn(xc)
    assert yc.device == "cuda"
    np.testing.assert_array_equal(yc.numpy(), on_cpu)
    yc.sum().backward()
    np.testing.assert_array_equal(xc.grad.numpy() * x.numpy(), on_cpu)


def test_cpu_and_cuda_drop_connect_match():
    x, w, b = _x(2, 3, seed=1), _x(2, 3, seed=2), _x(2, seed=3)
    tl.manual_seed(13)
    on_cpu = D.drop_connect(x, w, b, 0.5).numpy()
    tl.manual_seed(13)
    on_cuda = D.drop_connect(x.to("cuda"), w.to("cuda"), b.to("cuda"), 0.5)
    assert on_cuda.device == "cuda"
    np.testing.assert_allclose(on_cuda.numpy(), on_cpu, rtol=1e-12)


# ----- errors name the function -----

@pytest.mark.parametrize("p", BAD_P)
def test_bad_p_raises_naming_the_function(p):
    x = _x(2, 2, 2, 2)
    w = _x(2, 2)
    for name, call in [("dropout", lambda: D.dropout(x, p)),
                       ("dropout2d", lambda: D.dropout2d(x, p)),
                       ("drop_connect", lambda: D.drop_connect(x, w, None, p)),
                       ("stochastic_depth", lambda: D.stochastic_depth(x, p, "row"))]:
        with pytest.raises(ValueError, match=rf"^{name}: .*\[0, 1\]"):
            call()
    with pytest.raises(ValueError, match="dropout"):  # also in eval: p is checked first
        D.dropout(x, p, training=False)


@pytest.mark.parametrize("shape", [(2, 3), (4,), (), (1, 2, 3, 4, 5)])
def test_dropout2d_rejects_other_ranks(shape):
    with pytest.raises(ValueError, match=r"^dropout2d: .*\(N, C, H, W\).*got shape"):
        D.dropout2d(tl.zeros(*shape, dtype=F64), 0.5)
    with pytest.raises(ValueError, match="dropout2d"):  # in eval too: a wrong shape is a bug
        D.dropout2d(tl.zeros(*shape, dtype=F64), 0.5, training=False)


def test_stochastic_depth_errors():
    x = _x(2, 3)
    for mode in ("rows", "Batch", None):
        with pytest.raises(ValueError, match=r"^stochastic_depth: mode must be 'row' or"):
            D.stochastic_depth(x, 0.5, mode)
    with pytest.raises(ValueError, match=r"^stochastic_depth: mode 'row' needs"):
        D.stochastic_depth(tl.tensor(1.0, dtype=F64), 0.5, "row")


def test_drop_connect_shape_errors():
    x, w = _x(3, 4), _x(2, 4)
    with pytest.raises(ValueError, match=r"^drop_connect: expected input with last dim.*4"):
        D.drop_connect(_x(3, 5), w)
    with pytest.raises(ValueError, match=r"^drop_connect: expected a 2-D weight"):
        D.drop_connect(x, _x(4))


def test_non_tensors_and_integer_tensors_raise_type_errors():
    with pytest.raises(TypeError, match=r"^dropout: expected input to be a Tensor, got list"):
        D.dropout([1.0, 2.0])
    with pytest.raises(TypeError, match=r"^dropout2d: expected a float32 or float64 input"):
        D.dropout2d(tl.zeros(1, 1, 1, 1, dtype=tl.int64))
    with pytest.raises(TypeError, match=r"^stochastic_depth: expected a float32 or float64"):
        D.stochastic_depth(tl.zeros(2, dtype=tl.int64), 0.5, "row")
