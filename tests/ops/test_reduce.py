"""Reductions: sum/mean/var/std/max/min with axis and keepdims, argmax/argmin, and the stable
softmax family: values against NumPy and gradients against centred differences."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tinygrad_lite as tl
from helpers import assert_gradcheck, device_param, run, separated, shapes, values


def axis_for(data, ndim):
    """None, one axis (maybe negative) or a tuple of distinct axes."""
    if ndim == 0:
        return None
    return data.draw(st.one_of(
        st.none(), st.integers(-ndim, ndim - 1),
        st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(tuple)))


REDUCTIONS = {
    "sum": (lambda x, a, k: x.sum(a, k), lambda x, a, k: np.sum(x, a, keepdims=k)),
    "mean": (lambda x, a, k: x.mean(a, k), lambda x, a, k: np.mean(x, a, keepdims=k)),
    "var": (lambda x, a, k: x.var(a, k), lambda x, a, k: np.var(x, a, keepdims=k, ddof=1)),
    "std": (lambda x, a, k: x.std(a, k), lambda x, a, k: np.std(x, a, keepdims=k, ddof=1)),
    "amax": (lambda x, a, k: x.amax(a, k), lambda x, a, k: np.max(x, a, keepdims=k)),
    "amin": (lambda x, a, k: x.amin(a, k), lambda x, a, k: np.min(x, a, keepdims=k)),
    "logsumexp": (lambda x, a, k: x.logsumexp(a, k),
                  lambda x, a, k: np.log(np.sum(np.exp(x), a, keepdims=k))),
}


@device_param
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(data=st.data())
def test_reduction_forward_and_gradient(device, name, data):
    fn, reference = REDUCTIONS[name]
    shape = data.draw(shapes(device))
    # amax/amin: distinct values (a tie has no derivative); var/std: more than one element
    x = data.draw(separated(shape) if name in ("amax", "amin") else values(shape))
    axis, keepdims = axis_for(data, len(shape)), data.draw(st.booleans())
    if name in ("var", "std"):
        counted = np.prod([shape[a] for a in np.atleast_1d(range(len(shape)) if axis is None
                                                           else axis)]) if shape else 1
        assume(counted >= 2)
        assume(name != "std" or np.all(np.var(x, axis) >= 1e-3))  # sqrt's kink at 0
    f = lambda t: fn(t, axis, keepdims)  # noqa: E731
    np.testing.assert_allclose(run(f, [x], device), reference(x, axis, keepdims), rtol=1e-10,
                               atol=1e-12)
    assert_gradcheck(f, [x], device)


@device_param
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(data=st.data())
def test_softmax_family(device, name, data):
    shape = data.draw(shapes(device, min_dims=1))
    x = data.draw(values(shape))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    f = (lambda t: t.softmax(axis)) if name == "softmax" else (lambda t: t.log_softmax(axis))
    e = np.exp(x - x.max(axis, keepdims=True))
    ref = e / e.sum(axis, keepdims=True)
    np.testing.assert_allclose(run(f, [x], device), ref if name == "softmax" else np.log(ref),
                               rtol=1e-10, atol=1e-12)
    assert_gradcheck(f, [x], device)


@device_param
def test_softmax_is_stable_for_huge_logits(device):
    x = tl.Tensor([[1000.0, 0.0, -1000.0], [-1e4, -1e4, -1e4]], device=device)
    np.testing.assert_allclose(x.softmax(1).numpy(), [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]],
                               atol=1e-6)
    assert np.all(np.isfinite(x.log_softmax(1).numpy()[1]))
    np.testing.assert_allclose(x.logsumexp(1).numpy(), [1000.0, -1e4 + np.log(3)], rtol=1e-6)
    assert tl.Tensor([-np.inf, -np.inf], device=device).logsumexp().item() == -np.inf


@device_param
def test_amax_ties_share_the_gradient_evenly(device):
    x = tl.Tensor([[3.0, 1.0, 3.0], [2.0, 2.0, 2.0]], device=device, requires_grad=True)
    x.amax(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0.5, 0, 0.5], [1 / 3, 1 / 3, 1 / 3]])


@device_param
def test_argmax_argmin_pick_the_first_tie(device):
    x = tl.Tensor([[1.0, 5.0, 5.0], [7.0, 0.0, 0.0]], device=device)
    np.testing.assert_array_equal(x.argmax(axis=1).numpy(), [1, 0])
    np.testing.assert_array_equal(x.argmin(axis=1).numpy(), [0, 1])
    assert x.argmax().item() == 3 and x.argmax().dtype == tl.int64
    assert x.argmax(axis=0, keepdims=True).shape == (1, 3)


def test_float32_sums_accumulate_accurately():
    x = tl.ones(1 << 24)  # 16M ones: a float32 accumulator would stall at 2**24
    assert x.sum().item() == float(1 << 24)


def test_bad_axis_is_named():
    with pytest.raises(ValueError, match="sum: axis 3 is out of range"):
        tl.zeros(2, 2).sum(3)
    with pytest.raises(ValueError, match="max"):
        tl.zeros(0, 2).max(0)


# ----- regressions: PyTorch's semantics at the edges -----
@device_param
def test_softmax_of_a_0d_tensor(device):
    x = tl.tensor(3.0, device=device, requires_grad=True)
    assert x.softmax().item() == 1.0 and x.log_softmax().item() == 0.0
    x.softmax().backward()
    assert x.grad.item() == 0.0


@device_param
def test_var_with_too_few_elements_and_std_of_a_constant_row(device):
    x = tl.tensor([[1.0, 2.0, 4.0], [3.0, 3.0, 3.0]], device=device, requires_grad=True)
    v = x.var(axis=1, correction=3)  # N - correction = 0: inf, and 0/0 = nan for the constant
    assert v.numpy()[0] == np.inf and np.isnan(v.numpy()[1])
    x.std(axis=1).sum().backward()
    g = x.grad.numpy()
    assert np.all(np.isfinite(g)) and np.all(g[1] == 0)  # constant row: gradient 0, not nan
    np.testing.assert_allclose(x.std(axis=1).numpy(), [np.std([1, 2, 4], ddof=1), 0],
                               rtol=1e-6)


@device_param
def test_integer_reductions_are_exact(device):
    big = tl.tensor([2 ** 53, 1], device=device)
    assert big.sum().item() == 2 ** 53 + 1 and big.sum().dtype == tl.int64
    x = tl.tensor([[2 ** 62, 2 ** 62 + 1], [-(2 ** 62), 5]], device=device)
    np.testing.assert_array_equal(x.max(axis=1).values.numpy(), [2 ** 62 + 1, 5])
    np.testing.assert_array_equal(x.min(axis=0).values.numpy(), [-(2 ** 62), 5])
    np.testing.assert_array_equal(x.amax(axis=(0, 1)).numpy(), 2 ** 62 + 1)
    assert tl.tensor([True, True, False], device=device).sum().item() == 2


@device_param
def test_softmax_over_a_tuple_of_axes(device):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4))
    e = np.exp(x - x.max((0, 1), keepdims=True))
    np.testing.assert_allclose(run(lambda t: t.softmax(axis=(0, 1)), [x], device),
                               e / e.sum((0, 1), keepdims=True), rtol=1e-10)
    assert_gradcheck(lambda t: t.log_softmax(dim=(0, 2)), [x[:, :2, :3]], device)
    with pytest.raises(TypeError, match="argmax: axis must be an int"):
        tl.tensor(x, device=device).argmax(axis=(0, 1))


def test_axis_errors_name_the_op():
    with pytest.raises(TypeError, match="sum: axis must be an int or a tuple of ints, got 1.5"):
        tl.zeros(2, 2).sum(axis=1.5)
    with pytest.raises(TypeError, match="mean: axis"):
        tl.zeros(2, 2).mean(axis="0")


def test_torch_names_dim_and_keepdim():
    x = tl.tensor([[1.0, 5.0], [3.0, 2.0]])
    assert x.sum(dim=1, keepdim=True).shape == (2, 1)
    np.testing.assert_array_equal(x.max(dim=0)[0].numpy(), [3, 5])
    np.testing.assert_array_equal(x.amin(dim=0, keepdim=True).numpy(), [[1, 2]])
    np.testing.assert_array_equal(x.argmax(dim=1, keepdim=True).numpy(), [[1], [0]])
    assert x.mean(dim=(0, 1)).item() == 2.75 and x.softmax(dim=0).shape == (2, 2)
    assert tl.cat([x, x], dim=1).shape == (2, 4) and tl.stack([x, x], dim=2).shape == (2, 2, 2)
    with pytest.raises(TypeError, match="both axis= and its alias dim="):
        x.sum(axis=0, dim=1)


def test_reductions_on_nhwc_views():
    """NHWC memory under an NCHW view, reduced over several axis sets, with gradients."""
    rng = np.random.default_rng(3)
    nhwc = rng.standard_normal((2, 3, 4, 3))
    for axes in [(0, 2, 3), (1,), (2, 3), None]:
        f = lambda t: (lambda v: v.var(axes) + v.amax(axes) * 0.5 + v.logsumexp(axes))(  # noqa
            t.permute(0, 3, 1, 2))
        ref = nhwc.transpose(0, 3, 1, 2)
        want = ref.var(axes, ddof=1) + ref.max(axes) * 0.5 + np.log(np.exp(ref).sum(axes))
        np.testing.assert_allclose(run(f, [nhwc], "cpu"), want, rtol=1e-10)
        assert_gradcheck(f, [nhwc], "cpu")


def test_float32_reductions_past_the_thresholds():
    """An NHWC view past the parallel switch (and the 1024-column chunk): float32 sums and
    their gradients agree with float64, maxima with NumPy."""
    nhwc = np.random.default_rng(4).standard_normal((8, 16, 16, 40))
    ref = nhwc.transpose(0, 3, 1, 2)
    for axes in [(0, 2, 3), (1,), (2, 3)]:
        results = {}
        for dtype in (tl.float32, tl.float64):
            x = tl.tensor(nhwc, dtype=dtype, requires_grad=True)
            out = x.permute(0, 3, 1, 2).sum(axes)
            (out * out).sum().backward()
            results[dtype] = out.numpy(), x.grad.numpy()
        np.testing.assert_allclose(results[tl.float64][0], ref.sum(axes), rtol=1e-10)
        for got, want in zip(results[tl.float32], results[tl.float64]):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)
        np.testing.assert_array_equal(
            tl.tensor(nhwc, dtype=tl.float64).permute(0, 3, 1, 2).amax(axes).numpy(),
            ref.max(axes))


def test_elementwise_results_keep_an_nhwc_layout():
    x = tl.randn(4, 8, 8, 3).permute(0, 3, 1, 2)  # NCHW shape over NHWC memory
    y = ((x * 2.0 + 1.0).relu() - x.mean((0, 2, 3), keepdims=True))
    assert y.shape == (4, 3, 8, 8) and y.stride() == x.stride() == (192, 1, 24, 3)
