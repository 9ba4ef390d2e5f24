"""The graph walk: accumulation, reuse, no_grad, detach, retain_graph and its errors."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite as tl
from helpers import assert_gradcheck, device_param, values


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


# ----- shared subgraphs: a tensor reached along paths of different depth -----
@device_param
def test_shared_subgraphs_get_every_gradient(device):
    x = tl.tensor([1.0, 2.0], device=device, requires_grad=True)
    (x + x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3, 5])
    for fn in (lambda t: t * t.sum(),                                       # x * x.sum()
               lambda t: t.exp() / t.exp().sum(1, keepdims=True),            # hand softmax
               lambda t: (lambda h: h + (h * 2).tanh())(t * 1.5),            # residual
               lambda t: (lambda h: (h + h * h) * h.sum(0))(t.sigmoid())):   # nested reuse
        assert_gradcheck(fn, [np.array([[0.3, -1.2, 0.7], [1.1, 0.4, -0.5]])], device)


UNARY_STEPS = [lambda a: a.tanh(), lambda a: a.sigmoid(), lambda a: a * 0.5, lambda a: -a,
               lambda a: (a * a + 1.0).log(), lambda a: (a * a + 1.0).sqrt(),
               lambda a: a.sum(0, keepdims=True), lambda a: a.mean(1, keepdims=True),
               lambda a: a.softmax(-1), lambda a: a.exp() * 0.1]
BINARY_STEPS = [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b,
                lambda a, b: a / (b * b + 1.0)]


def random_dag(data, inputs, steps):
    """A program of `steps` ops whose operands are drawn from every earlier node (inputs
    included), with reuse; returns fn(*inputs) -> scalar mixing several nodes."""
    program = []
    for i in range(steps):
        available = len(inputs) + i
        if data.draw(st.booleans(), label="binary"):
            program.append((data.draw(st.integers(0, len(BINARY_STEPS) - 1)),
                            data.draw(st.integers(0, available - 1)),
                            data.draw(st.integers(0, available - 1))))
        else:
            program.append((data.draw(st.integers(0, len(UNARY_STEPS) - 1)),
                            data.draw(st.integers(0, available - 1)), None))
    mixed = data.draw(st.lists(st.integers(0, len(inputs) + steps - 1), min_size=1,
                               max_size=4), label="summed nodes")

    def fn(*leaves):
        nodes = list(leaves)
        for op, a, b in program:
            nodes.append(UNARY_STEPS[op](nodes[a]) if b is None
                         else BINARY_STEPS[op](nodes[a], nodes[b]))
        total = nodes[-1].sum()
        for i in mixed:  # more uses of earlier nodes, at other depths
            total = total + (nodes[i] * nodes[i]).sum() * 0.5
        return total
    return fn


@device_param
@given(data=st.data())
def test_random_dags_with_reuse_match_finite_differences(device, data):
    steps = data.draw(st.integers(2, 8 if device == "cpu" else 3), label="steps")
    x = data.draw(values((2, 3), -1.5, 1.5), label="x")
    y = data.draw(values((1, 3), -1.5, 1.5), label="y")  # broadcasts against x
    assert_gradcheck(random_dag(data, [x, y], steps), [x, y], device)


# ----- what backward computes and where gradients live -----
def test_backward_skips_inputs_that_need_no_gradient():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    y = x * tl.tensor([0.5, 0.5])
    assert y.grad_fn.needs_input_grad == (True, False)
    g = np.ones(2, np.float32)
    grads = y.grad_fn.backward(g)
    assert grads[1] is None and grads[0] is not None


@device_param
def test_multi_output_functions_get_a_gradient_per_output(device):
    x = tl.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]], device=device, requires_grad=True)
    a, b, c = x.split(2, axis=1)
    assert (a.shape, b.shape, c.shape) == ((1, 2), (1, 2), (1, 1))
    assert a.grad_fn is b.grad_fn
    (a * 2 + b.sum() * c).sum().backward()  # (1, 2) + (1, 1): c and b.sum() count twice
    np.testing.assert_allclose(x.grad.numpy(), [[2, 2, 10, 10, 14]])
    x.grad = None
    _, b2, _ = x.split([2, 2, 1], axis=1)
    (b2 * 3).sum().backward()  # unused outputs get zero gradients
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0, 3, 3, 0]])
    assert_gradcheck(lambda t: t.split([1, 3, 1], axis=1)[1].exp(), [x.numpy()], device)


@device_param
def test_gradients_own_their_storage(device):
    a = tl.tensor([1.0, 2.0], device=device, requires_grad=True)
    b = tl.tensor([3.0, 4.0], device=device, requires_grad=True)
    (a + b).sum().backward()  # Add hands the same gradient array to both inputs
    a.grad.add_(1.0)
    np.testing.assert_allclose(b.grad.numpy(), [1, 1])
    g = tl.tensor([1.0, 1.0], device=device)
    x = tl.tensor([1.0, 2.0], device=device, requires_grad=True)
    x.backward(gradient=g)  # a leaf as the root: its .grad must not be the caller's g
    g.mul_(5.0)
    np.testing.assert_allclose(x.grad.numpy(), [1, 1])


def test_gradients_accumulate_on_the_tensors_own_device():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    on_gpu = (x.to("cuda") * 2.0).cpu()   # one path through cuda
    (on_gpu + x * 3.0).sum().backward()   # one on the cpu
    assert isinstance(x.grad.array, np.ndarray) and x.grad.device == "cpu"
    np.testing.assert_allclose(x.grad.numpy(), [5, 5])
    w = tl.tensor([1.0, 2.0], device="cuda", requires_grad=True)
    ((w.cpu() * 2.0).to("cuda") + w).sum().backward()
    assert w.grad.device == "cuda" and not isinstance(w.grad.array, np.ndarray)
    np.testing.assert_allclose(w.grad.numpy(), [3, 3])


@device_param
def test_gradient_hooks_see_and_may_replace_gradients(device):
    x = tl.tensor([1.0, 2.0], device=device, requires_grad=True)
    h = x * 3.0
    seen = []
    h.register_hook(lambda g: seen.append(g.numpy().copy()))      # a non-leaf: complete grad
    handle = x.register_hook(lambda g: g * 10.0)                  # a leaf: may replace
    (h * h + h).sum().backward()
    np.testing.assert_allclose(seen[0], 2 * np.array([3.0, 6.0]) + 1)
    np.testing.assert_allclose(x.grad.numpy(), 10 * 3 * (2 * np.array([3.0, 6.0]) + 1))
    handle.remove()
    x.grad = None
    (x * 1.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1, 1])
    with pytest.raises(RuntimeError, match="register_hook"):
        tl.zeros(2).register_hook(print)


@device_param
def test_gradients_accumulate_in_place_into_the_same_grad(device):
    """As PyTorch: a second backward adds into the existing .grad object and its storage, so
    a reference taken before (an optimiser's, a hook's) sees the sum."""
    w = tl.tensor([1.0, 2.0], device=device, requires_grad=True)
    (w * w).sum().backward()
    g, storage, version = w.grad, w.grad.array, w.grad.version
    (w * 3.0).sum().backward()
    assert w.grad is g and w.grad.array is storage and g.version == version + 1
    np.testing.assert_allclose(g.numpy(), [2 + 3, 4 + 3])
    ((w * w).sum() + (w * 0.5).sum()).backward()  # a third, through two paths at once
    assert w.grad is g
    np.testing.assert_allclose(g.numpy(), [5 + 2.5, 7 + 4.5])


def test_an_assigned_grad_that_cannot_hold_the_sum_is_replaced():
    """A .grad the user set to an expanded tensor (one element's memory for all) or to
    another shape cannot be added into in place; the sum goes to a new .grad instead of
    writing every element's sum into one location."""
    w = tl.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w.grad = tl.tensor([1.0]).expand(3)
    (w * 2.0).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [3, 3, 3])
    np.testing.assert_allclose(w.grad.stride(), [1])  # a new, dense .grad


def test_backward_frees_saved_values_and_keeps_the_structure():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    c = tl.tensor([3.0, 4.0])
    h = x.exp()
    y = (h * c + h).sum()
    order = tl.autograd.graph_order(y)
    assert [fn.name() for fn in order] == ["Exp", "Mul", "Add", "Sum"]
    exp_, mul, add, total = order
    assert exp_.saved is not None  # Exp keeps its output for the gradient until backward
    y.backward()
    assert tl.autograd.graph_order(y) == order  # still walkable
    for fn in order:
        assert fn.released and not hasattr(fn, "saved") and not hasattr(fn, "saved_versions")
    # next_functions as PyTorch's grad_fn.next_functions
    assert total.next_functions == ((add, 0),)
    assert add.next_functions == ((mul, 0), (exp_, 0))
    assert mul.next_functions == ((exp_, 0), (None, 0))  # c needs no gradient
    (leaf_node, i), = exp_.next_functions
    assert leaf_node.name() == "AccumulateGrad" and leaf_node.variable is x and i == 0
    assert y.grad_fn.output_meta == [((), tl.float32, tl.get_device("cpu"))]
    with pytest.raises(RuntimeError, match="already freed.*retain_graph=True"):
        y.backward()
    z = (h * 2.0).sum()  # reaches the freed Exp: the same error, not a wrong gradient
    with pytest.raises(RuntimeError, match="already freed"):
        z.backward()
    assert tl.autograd.graph_order(x) == []


def test_no_grad_records_no_function():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    with tl.no_grad():
        y = (x.exp() * 2.0).sum()
    assert y._ctx is None and y.grad_fn is None and not y.requires_grad


def test_output_hooks_survive_release_and_reject_a_bad_index():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    seen = []
    y.grad_fn.register_output_hook(0, lambda g: seen.append(g.numpy().copy()))
    y.sum().backward(retain_graph=True)
    np.testing.assert_allclose(seen[0], [1, 1])
    with pytest.raises(IndexError, match="register_output_hook: Mul has 1 output.*got index 1"):
        y.grad_fn.register_output_hook(1, print)


def test_a_hook_that_is_not_a_function_is_refused_when_registered():
    """Not at the next backward, far from the line that made the mistake."""
    x = tl.tensor([1.0], requires_grad=True)
    with pytest.raises(TypeError, match="register_hook: expected a function hook.grad., got "
                                        "int"):
        x.register_hook(3)
    with pytest.raises(TypeError, match="register_hook: expected a function hook.grad., got "
                                        "str"):
        (x * 2.0).register_hook("print")
    assert x._hooks is None
