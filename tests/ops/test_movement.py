"""Movement ops: reshape, permute/transpose, flatten, squeeze/unsqueeze, expand, indexing,
cat/stack and pad: values against NumPy and gradients against centred differences."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite as tl
from helpers import assert_gradcheck, device_param, run, shapes, values


@device_param
@given(data=st.data())
def test_reshape_permute_flatten(device, data):
    shape = data.draw(shapes(device, min_dims=1))
    x = data.draw(values(shape))
    axes = tuple(data.draw(st.permutations(range(len(shape)))))
    cases = [
        (lambda t: t.reshape(-1), x.reshape(-1)),
        (lambda t: t.reshape(tuple(reversed(shape))), x.reshape(tuple(reversed(shape)))),
        (lambda t: t.permute(axes), x.transpose(axes)),
        (lambda t: t.transpose(0, -1), np.swapaxes(x, 0, -1)),
        (lambda t: t.flatten(), x.reshape(-1)),
        (lambda t: t.unsqueeze(0).squeeze(0), x),
    ]
    for f, ref in cases:
        np.testing.assert_array_equal(run(f, [x], device), ref)
        assert_gradcheck(f, [x], device)


@device_param
@given(data=st.data())
def test_expand(device, data):
    shape = data.draw(shapes(device, max_dims=2))
    target = (2,) + tuple(2 if s == 1 else s for s in shape)
    x = data.draw(values(shape))
    f = lambda t: t.expand(target)  # noqa: E731
    np.testing.assert_array_equal(run(f, [x], device), np.broadcast_to(x, target))
    assert_gradcheck(f, [x], device)


def keys(shape):
    """Basic and advanced indexing keys valid for shape (at least 1-d)."""
    n = shape[0]
    return st.sampled_from([
        0, -1, slice(None), slice(1, None), slice(None, None, -1), (None, Ellipsis),
        np.array([0, n - 1, 0]), np.arange(n) % 2 == 0,
        (Ellipsis, 0) if len(shape) > 1 else 0,
        (slice(None), np.array([0, shape[1] - 1, 0])) if len(shape) > 1 else slice(0, 1),
    ])


@device_param
@given(data=st.data())
def test_getitem(device, data):
    shape = data.draw(shapes(device, min_dims=1))
    x = data.draw(values(shape))
    key = data.draw(keys(shape))
    f = lambda t: t[key]  # noqa: E731
    np.testing.assert_array_equal(run(f, [x], device), x[key])
    assert_gradcheck(f, [x], device)  # repeated indices: gradients add up


@device_param
def test_getitem_with_tensor_indices_and_masks(device):
    x = tl.Tensor(np.arange(12.0).reshape(3, 4), device=device, requires_grad=True)
    rows, cols = tl.Tensor([0, 2, 2], device=device), tl.Tensor([1, 3, 3], device=device)
    picked = x[rows, cols]
    np.testing.assert_array_equal(picked.numpy(), [1, 11, 11])
    picked.sum().backward()
    expected = np.zeros((3, 4))
    expected[0, 1], expected[2, 3] = 1, 2
    np.testing.assert_array_equal(x.grad.numpy(), expected)
    np.testing.assert_array_equal(x[x > 9.0].numpy(), [10, 11])


@device_param
@given(data=st.data())
def test_cat_stack_pad(device, data):
    shape = data.draw(shapes(device, min_dims=1))
    a, b = data.draw(values(shape)), data.draw(values(shape))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    widths = [(data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in shape]
    for f, ref in [
        (lambda s, t: tl.cat([s, t, s], axis), np.concatenate([a, b, a], axis)),
        (lambda s, t: tl.stack([s, t], axis), np.stack([a, b], axis)),
        (lambda s, t: s.pad(widths, value=1.5) * t.sum(), np.pad(a, widths, constant_values=1.5)
         * b.sum()),
    ]:
        np.testing.assert_allclose(run(f, [a, b], device), ref)
        assert_gradcheck(f, [a, b], device)


def test_errors_name_the_op_and_shapes():
    x = tl.zeros(2, 3)
    with pytest.raises(ValueError, match=r"reshape: cannot reshape 6 elements into shape \(4,\)"):
        x.reshape(4)
    with pytest.raises(IndexError, match=r"getitem.*\(2, 3\)"):
        x[5]
    with pytest.raises(ValueError, match="cat: shapes"):
        tl.cat([x, tl.zeros(3, 3)], axis=1)
    with pytest.raises(ValueError, match="permute"):
        x.permute(0, 0)
    with pytest.raises(ValueError, match="expand"):
        x.expand(4, 3)
