"""The graph walk: accumulation, reuse, no_grad, detach, retain_graph and its errors."""
import numpy as np
import pytest

import tinygrad_lite as tl


def test_a_tensor_used_twice_gets_the_sum_of_both_gradients():
    x = tl.Tensor([2.0, 3.0], requires_grad=True)
    y = x * x + x * 3.0  # x feeds three uses
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.array([2.0, 3.0]) + 3)


def test_diamond_graph_and_accumulation_across_backward_calls():
    x = tl.Tensor([1.0, -1.0], requires_grad=True)
    a = x.exp()
    loss = (a * a + a).sum()
    loss.backward()
    first = x.grad.numpy().copy()
    np.testing.assert_allclose(first, 2 * np.exp(2 * x.numpy()) + np.exp(x.numpy()), rtol=1e-6)
    (x * 1.0).sum().backward()  # .grad accumulates, as in PyTorch
    np.testing.assert_allclose(x.grad.numpy(), first + 1, rtol=1e-6)


def test_deep_chain_does_not_recurse():
    x = tl.Tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    y.sum().backward()
    assert x.grad.item() == 1.0


def test_no_grad_detach_and_requires_grad_():
    x = tl.Tensor([1.0], requires_grad=True)
    with tl.no_grad():
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad

    @tl.no_grad
    def f(t):
        return t * 2

    @tl.no_grad()
    def g(t):
        return t * 2

    assert not f(x).requires_grad and not g(x).requires_grad
    assert not x.detach().requires_grad and not (x.detach() * 2).requires_grad
    z = tl.Tensor([1.0]).requires_grad_()
    assert z.requires_grad and z.is_leaf


def test_backward_errors():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tl.Tensor([1.0]).sum().backward()
    x = tl.Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="only be implied for a scalar"):
        (x * 2).backward()
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="already freed"):
        y.backward()


def test_backward_with_explicit_gradient_and_retain_graph():
    x = tl.Tensor([1.0, 2.0], requires_grad=True)
    y = x * x
    y.backward(gradient=tl.Tensor([1.0, 0.5]), retain_graph=True)
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])
    y.backward(gradient=[1.0, 1.0])
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 6.0])
    with pytest.raises(ValueError, match="gradient has shape"):
        (x * x).backward(gradient=tl.Tensor([1.0]))
