"""Reductions: sum/mean/var/std/max/min with axis and keepdims, argmax/argmin, and the stable
softmax family: values against NumPy and gradients against centred differences."""
import numpy as np
import pytest
from hypothesis import given
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
    "max": (lambda x, a, k: x.max(a, k), lambda x, a, k: np.max(x, a, keepdims=k)),
    "min": (lambda x, a, k: x.min(a, k), lambda x, a, k: np.min(x, a, keepdims=k)),
    "logsumexp": (lambda x, a, k: x.logsumexp(a, k),
                  lambda x, a, k: np.log(np.sum(np.exp(x), a, keepdims=k))),
}


@device_param
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@given(data=st.data())
def test_reduction_forward_and_gradient(device, name, data):
    fn, reference = REDUCTIONS[name]
    shape = data.draw(shapes(device))
    # max/min: distinct values (a tie has no derivative); var/std: more than one element
    x = data.draw(separated(shape) if name in ("max", "min") else values(shape))
    axis, keepdims = axis_for(data, len(shape)), data.draw(st.booleans())
    if name in ("var", "std"):
        counted = np.prod([shape[a] for a in np.atleast_1d(range(len(shape)) if axis is None
                                                           else axis)]) if shape else 1
        if counted < 2 or (name == "std" and np.any(np.var(x, axis) < 1e-3)):
            return
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
def test_max_ties_share_the_gradient_evenly(device):
    x = tl.Tensor([[3.0, 1.0, 3.0], [2.0, 2.0, 2.0]], device=device, requires_grad=True)
    x.max(axis=1).sum().backward()
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
