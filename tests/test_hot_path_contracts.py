"""What the training step's fast paths promise, besides speed (issue 23): a linear layer's
weight gradient in the weight's own layout (so the optimiser reads it without a copy), a
gradient that becomes .grad without a copy only when nothing else can reach its memory, the
dtype fast path of binary ops giving what the general rules give, and dropout's masks the
same values as before."""
import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import nn, optim
from tinygrad_lite import random as tl_random
from tinygrad_lite.nn import functional as F


def _linear_grads(x_layout):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    w = rng.standard_normal((4, 5)).astype(np.float32)
    xt = tl.Tensor(x.T.copy(), requires_grad=True).T if x_layout == "F" else \
        tl.Tensor(x, requires_grad=True)
    wt = tl.Tensor(w, requires_grad=True)
    g = rng.standard_normal((6, 4)).astype(np.float32)
    F.linear(xt, wt).backward(gradient=g)
    leaf = xt._ctx.edges[0][2] if x_layout == "F" else xt  # the leaf behind the transpose
    return wt.grad.array, leaf.grad.numpy(), x, w, g


@pytest.mark.parametrize("x_layout", ["C", "F"])
def test_linear_weight_gradient_is_c_contiguous_and_exact(x_layout):
    gw, gx, x, w, g = _linear_grads(x_layout)
    assert gw.flags.c_contiguous  # weight.T is column-major: its gradient is made transposed
    np.testing.assert_allclose(gw, g.T @ x, rtol=1e-5, atol=1e-6)
    expected_gx = (g @ w).T if x_layout == "F" else g @ w  # the leaf was x.T's storage
    np.testing.assert_allclose(gx, expected_gx, rtol=1e-5, atol=1e-6)


def test_column_major_operand_gradient_keeps_its_layout():
    a = tl.Tensor(np.arange(12.0).reshape(4, 3).T.copy(), requires_grad=True)  # (3, 4)
    b = tl.Tensor(np.arange(8.0).reshape(4, 2), requires_grad=True)
    at = a.T  # (4, 3) column-major view
    y = at.T @ b  # (3, 4) @ (4, 2) where the left operand is column-major
    y.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.ones((3, 2)) @ np.arange(8.0).reshape(4, 2).T)
    np.testing.assert_allclose(b.grad.numpy(), a.numpy().T @ np.ones((3, 2)))


def test_optimiser_step_on_a_linear_layer_matches_before_and_after_layout_change():
    tl.manual_seed(0)
    layer = nn.Linear(5, 3)
    opt = optim.Adam(layer.parameters(), lr=0.1)
    w0 = layer.weight.numpy().copy()
    x = tl.Tensor(np.ones((2, 5), np.float32))
    layer(x).sum().backward()
    assert layer.weight.grad.array.flags.c_contiguous
    opt.step()
    # Adam's first step moves every element with a nonzero gradient by lr against its sign
    np.testing.assert_allclose(layer.weight.numpy(), w0 - 0.1, rtol=1e-5, atol=1e-5)


def test_gradient_shared_by_two_leaves_is_not_aliased():
    a = tl.Tensor([1.0, 2.0], requires_grad=True)
    b = tl.Tensor([3.0, 4.0], requires_grad=True)
    (a + b).backward(gradient=tl.Tensor([1.0, 1.0]))  # Add hands the same array to both
    assert not np.shares_memory(a.grad.array, b.grad.array)
    a.grad.array[0] = 5.0
    assert b.grad.numpy().tolist() == [1.0, 1.0]


def test_callers_gradient_is_never_stolen():
    a = tl.Tensor([1.0, 2.0], requires_grad=True)
    g = tl.Tensor([1.0, 1.0])
    (a + 0.0).backward(gradient=g)
    assert not np.shares_memory(a.grad.array, g.array)
    a.backward(gradient=g)  # a leaf as the root: the gradient is the caller's tensor
    assert not np.shares_memory(a.grad.array, g.array)
    assert a.grad.numpy().tolist() == [2.0, 2.0]
    assert g.numpy().tolist() == [1.0, 1.0]


def test_retained_graph_and_hooks_keep_their_arrays():
    a = tl.Tensor([1.0, 2.0], requires_grad=True)
    seen = []
    a.register_hook(lambda g: seen.append(g) or None)
    y = (a * 3.0).sum()
    y.backward(retain_graph=True)
    assert not np.shares_memory(a.grad.array, seen[0].array)  # the hook kept its tensor
    y.backward()
    assert a.grad.numpy().tolist() == [6.0, 6.0]
    assert seen[0].numpy().tolist() == [3.0, 3.0]


def test_a_fresh_gradient_becomes_grad_and_then_accumulates_in_place():
    w = tl.Tensor(np.ones((3, 2), np.float32), requires_grad=True)
    x = tl.Tensor(np.ones((4, 2), np.float32))
    (x @ w.T).sum().backward()
    first = w.grad
    (x @ w.T).sum().backward()
    assert w.grad is first
    np.testing.assert_allclose(w.grad.numpy(), np.full((3, 2), 8.0))


def test_gradient_of_an_expanded_operand_is_dense():
    b = tl.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    x = tl.Tensor(np.ones((4, 3)))
    (x + b).sum().backward()
    assert b.grad.array.flags.writeable and b.grad.array.strides == (b.grad.array.itemsize,)
    assert b.grad.numpy().tolist() == [4.0, 4.0, 4.0]


@pytest.mark.parametrize("dtype, other", [
    (d, o) for d in ("float32", "float64", "int64", "bool")
    for o in (2, 2.5, True, "same", "f32", "f64", "i64")
    if not (d == "bool" and o in ("same", True))])  # bool * bool: the promotion tests' case
def test_binary_fast_path_agrees_with_the_promotion_rules(dtype, other):
    a = tl.Tensor(np.array([1, 0, 3]), dtype=dtype)
    b = {"same": tl.Tensor(np.array([2, 1, 1]), dtype=dtype),
         "f32": tl.Tensor([2.0, 1.0, 1.0], dtype="float32"),
         "f64": tl.Tensor([2.0, 1.0, 1.0], dtype="float64"),
         "i64": tl.Tensor([2, 1, 1])}.get(other, other)
    out = a * b
    ref_b = b.numpy() if isinstance(b, tl.Tensor) else b
    expected = a.numpy() * ref_b
    np.testing.assert_allclose(out.numpy(), expected.astype(out.dtype))
    if dtype in ("float32", "float64") and not isinstance(b, tl.Tensor):
        assert out.dtype == np.dtype(dtype)  # a number takes the tensor's float dtype
    if dtype == "float32" and other == "f64":
        assert out.dtype == np.float64


def test_dropout_mask_values_are_unchanged():
    # the mask a seed gives, as the float64 formula before the one-pass version made it
    for dtype in (np.float32, np.float64):
        for p in (0.1, 1 / 3, 0.5, 0.9):
            tl.manual_seed(7)
            out = F.dropout(tl.Tensor(np.ones((64, 33)), dtype=dtype), p).numpy()
            tl.manual_seed(7)
            keep = tl_random.generator().random((64, 33)) >= p
            assert out.dtype == dtype
            np.testing.assert_array_equal(out, (keep * (1.0 / (1.0 - p))).astype(dtype))
