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


# ----- regressions: PyTorch's semantics -----
@device_param
def test_int_and_array_indices_follow_pytorch(device):
    x = np.arange(24.0).reshape(2, 3, 4)
    t = tl.tensor(x, device=device)
    assert tl.zeros((2, 3, 4))[0, :, [0, 1]].shape == (3, 2)   # NumPy says (2, 3)
    np.testing.assert_array_equal(t[0, :, [0, 1]].numpy(), x[0][:, [0, 1]])
    np.testing.assert_array_equal(t[:, 1, [0, 2]].numpy(), x[:, 1][:, [0, 2]])
    np.testing.assert_array_equal(t[..., 1, [0, 2]].numpy(), x[:, 1][:, [0, 2]])
    np.testing.assert_array_equal(t[[0, 1], 1, [0, 2]].numpy(), x[:, 1][[0, 1], [0, 2]])
    np.testing.assert_array_equal(t[None, 1, :, [3]].numpy(), x[None, 1][:, :, [3]])
    assert_gradcheck(lambda a: a[1, :, [0, 2, 2]], [x], device)  # repeats add up


@device_param
def test_sizes_must_be_ints(device):
    with pytest.raises(TypeError, match=r"zeros: sizes must be ints, got 2.7"):
        tl.zeros(2.7, device=device)
    with pytest.raises(TypeError, match="reshape: sizes must be ints, got 3.9"):
        tl.zeros(6, device=device).reshape(3.9, 2)
    with pytest.raises(TypeError, match="full"):
        tl.full((2, 1.5), 0.0)
    with pytest.raises(TypeError, match="randint"):
        tl.randint(0, 3, (2.0,))


def test_cat_and_stack_name_what_is_not_a_tensor():
    t = tl.zeros(2)
    with pytest.raises(TypeError, match="cat: expected a sequence of Tensors, got list at "
                                        "position 1"):
        tl.cat([t, [1.0, 2.0]])
    with pytest.raises(TypeError, match="stack: .*position 0"):
        tl.stack([np.zeros(2), t])


@device_param
def test_split_clone_contiguous_and_strides(device):
    x = tl.tensor(np.arange(12.0).reshape(3, 4), device=device, requires_grad=True)
    parts = x.split([1, 3], dim=1)
    assert [p.shape for p in parts] == [(3, 1), (3, 3)]
    c = x.clone()
    assert c.array is not x.array and c.requires_grad
    np.testing.assert_array_equal(c.numpy(), x.numpy())
    t = x.T
    ct = t.contiguous()
    assert ct.is_contiguous() and ct.stride() == (3, 1) and x.contiguous() is x
    np.testing.assert_array_equal(ct.numpy(), x.numpy().T)
    assert_gradcheck(lambda a: a.T.contiguous() * a.T.clone(), [x.numpy()], device)


def test_movement_of_strided_views():
    """Every movement op on a permuted and sliced (non-contiguous) view, against NumPy on the
    same view, with gradients."""
    x = np.arange(120.0).reshape(2, 3, 4, 5)
    view_np = x.transpose(0, 3, 1, 2)[:, ::2]           # (2, 3, 3, 4), non-contiguous
    cases = [
        (lambda v: v.reshape(6, 12), lambda v: v.reshape(6, 12)),
        (lambda v: v.permute(3, 1, 0, 2), lambda v: v.transpose(3, 1, 0, 2)),
        (lambda v: v.flatten(1), lambda v: v.reshape(2, -1)),
        (lambda v: v[1, :, [0, 2]], lambda v: v[1][:, [0, 2]]),
        (lambda v: v[:, None, ::-1, 1:3], lambda v: v[:, None, ::-1, 1:3]),
        (lambda v: v[:1].expand(3, 3, 3, 4), lambda v: np.broadcast_to(v[:1], (3, 3, 3, 4))),
        (lambda v: tl.cat([v, v * 2.0], 2), lambda v: np.concatenate([v, v * 2.0], 2)),
        (lambda v: v.pad(((0, 0), (1, 0), (0, 0), (0, 2))), lambda v: np.pad(
            v, ((0, 0), (1, 0), (0, 0), (0, 2)))),
        (lambda v: v.split(1, dim=1)[2], lambda v: v[:, 2:3]),
    ]
    for fn, ref in cases:
        t = tl.tensor(x, dtype=tl.float64, requires_grad=True)
        view = t.permute(0, 3, 1, 2)[:, ::2]
        assert not view.is_contiguous()
        out = fn(view)
        np.testing.assert_array_equal(out.numpy(), ref(view_np))
        assert_gradcheck(lambda a: fn(a.permute(0, 3, 1, 2)[:, ::2]) * 0.5, [x], "cpu")
