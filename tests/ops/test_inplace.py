"""In-place ops and the version counter: PyTorch's rules for leaves, non-leaves and no_grad,
gradients through rewritten tensors, and clear errors instead of wrong gradients."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite as tl
from helpers import assert_gradcheck, device_param, values


@device_param
def test_every_inplace_op_writes_into_the_same_storage(device):
    x = tl.tensor([1.0, 2.0, 4.0], device=device)
    storage = x.array
    x.add_(1.0)
    x.sub_(tl.tensor([1.0, 1.0, 1.0], device=device), alpha=2)
    x.mul_(4.0)
    x.div_(2.0)
    np.testing.assert_allclose(x.numpy(), [0, 2, 6])
    x += 1.0
    x -= 1.0
    x *= 3.0
    x /= 3.0
    np.testing.assert_allclose(x.numpy(), [0, 2, 6])
    x.clamp_(1.0, 4.0)
    np.testing.assert_allclose(x.numpy(), [1, 2, 4])
    x.copy_(tl.tensor([7.0], device=device))  # broadcasts
    np.testing.assert_allclose(x.numpy(), [7, 7, 7])
    x.fill_(2.5)
    np.testing.assert_allclose(x.numpy(), [2.5, 2.5, 2.5])
    x.zero_()
    np.testing.assert_allclose(x.numpy(), [0, 0, 0])
    assert x.array is storage and x.version == 12  # one bump per write


def test_inplace_on_strided_views_writes_through():
    base = tl.zeros(3, 4)
    t = base.T                  # a transposed view (CPU: shares storage, as in PyTorch)
    t.add_(tl.arange(3).float())  # broadcasts along t's last axis
    np.testing.assert_allclose(base.numpy(), np.tile(np.arange(3.0)[:, None], (1, 4)))
    assert not t.is_contiguous() and t.stride() == (1, 4)


def test_inplace_rules_on_dtypes_and_shapes():
    i = tl.tensor([1, 2])
    with pytest.raises(TypeError, match="add_.*float32.*int64"):
        i.add_(0.5)
    i.add_(1)
    np.testing.assert_array_equal(i.numpy(), [2, 3])
    with pytest.raises((ValueError, RuntimeError), match="add_"):
        tl.zeros(3).add_(tl.zeros(2, 3))  # the result would not fit the tensor


@device_param
def test_leaf_that_requires_grad_is_written_only_under_no_grad(device):
    w = tl.tensor([1.0, 2.0], device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match="add_: a leaf tensor that requires grad"):
        w.add_(1.0)
    with pytest.raises(RuntimeError, match="leaf"):
        w -= 1.0
    (w * w).sum().backward()
    with tl.no_grad():  # the optimiser's step
        w -= 0.25 * w.grad
    assert w.is_leaf and w.requires_grad and w.grad_fn is None
    np.testing.assert_allclose(w.numpy(), [0.5, 1.0])


@device_param
def test_modifying_a_saved_tensor_makes_backward_raise(device):
    x = tl.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = x.exp()            # Exp saves its output
    y.add_(1.0)
    with pytest.raises(RuntimeError, match="Exp saved.*modified by an in-place operation"):
        y.sum().backward()
    w = tl.tensor([3.0, 4.0], device=device, requires_grad=True)
    loss = (x * w).sum()   # Mul saves both operands
    with tl.no_grad():
        w.mul_(2.0)        # an optimiser step before backward
    with pytest.raises(RuntimeError, match="Mul saved"):
        loss.backward()
    z = x * 2.0
    out = (z + 1.0).sum()  # Add saves nothing: writing z afterwards is fine
    z.mul_(3.0)
    out.backward()
    np.testing.assert_allclose(x.grad.numpy(), [2, 2])


@device_param
@given(data=st.data())
def test_gradients_flow_through_inplace_updates_of_non_leaves(device, data):
    cols = 3 if device == "cpu" else 2  # the simulator runs every GPU thread in Python
    x, w = data.draw(values((2, cols), -2.0, 2.0)), data.draw(values((cols,), -2.0, 2.0))

    def fn(a, b):
        h = a * 1.0
        h += b * a        # h takes the history of the write
        h *= a            # the op reads h's old values: they must survive the write
        h.sub_(b, alpha=0.5)
        h /= 2.0
        return h.tanh()
    assert_gradcheck(fn, [x, w], device)


@device_param
def test_copy_and_fill_into_tensors_in_a_graph(device):
    x = tl.tensor([1.0, 2.0], device=device, requires_grad=True)
    src = tl.tensor([5.0, 6.0], device=device, requires_grad=True)
    h = x * 2.0
    h.copy_(src * 3.0)     # h's values now come from src
    (h * h).sum().backward()
    np.testing.assert_allclose(src.grad.numpy(), [90, 108])
    np.testing.assert_allclose(x.grad.numpy(), [0, 0])
    buffer = tl.zeros(2, device=device)
    buffer.copy_(src)      # a plain buffer written from a leaf joins the graph
    buffer.sum().backward()
    np.testing.assert_allclose(src.grad.numpy(), [91, 109])
    g = x * 1.0
    g.fill_(3.0)
    assert g.requires_grad  # as in PyTorch: still part of the graph, with zero gradient
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0, 0])


def test_copy_moves_between_devices():
    a = tl.zeros(3, device="cuda")
    a.copy_(tl.tensor([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(a.numpy(), [1, 2, 3])


@device_param
def test_data_is_a_tensor_that_shares_storage_and_records_no_graph(device):
    p = tl.tensor([1.0, 2.0], device=device, requires_grad=True)
    (p * p).sum().backward()
    d = p.data
    assert isinstance(d, tl.Tensor) and not d.requires_grad and d.array is p.array
    p.data = p.data - 0.5 * p.grad         # replaces the storage
    np.testing.assert_allclose(p.numpy(), [0.0, 0.0])
    assert p.is_leaf and p.requires_grad
    p.data.add_(1.0)                        # no graph, no leaf error, writes p's storage
    np.testing.assert_allclose(p.numpy(), [1.0, 1.0])
    with pytest.raises(TypeError, match="data"):
        p.data = np.zeros(2)


def test_expanded_tensors_cannot_be_written_in_place():
    e = tl.zeros(3).expand(2, 3)  # on the CPU both rows are one memory location
    with pytest.raises(RuntimeError, match="add_: the tensor of shape \\(2, 3\\) is expanded"):
        e.add_(1.0)
    with pytest.raises(RuntimeError, match="fill_"):
        e.fill_(1.0)
    e.clone().add_(1.0)
