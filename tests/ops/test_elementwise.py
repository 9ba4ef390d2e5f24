"""Element-wise ops: forward matches NumPy, gradients match centred differences (broadcasting
included), on the CPU and on the (simulated) CUDA device."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_lite as tl
from tinygrad_lite.ops import elementwise as E
from helpers import (assert_gradcheck, away_from_zero, broadcast_pair, device_param, run,
                     shapes, values)

BINARY = {
    "add": (lambda a, b: a + b, np.add),
    "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply),
    "div": (lambda a, b: a / b, np.divide),
    "pow": (lambda a, b: a ** b, np.power),
    "maximum": (lambda a, b: a.maximum(b), np.maximum),
    "minimum": (lambda a, b: a.minimum(b), np.minimum),
}


def binary_operands(data, device, name):
    (sa, sb), out = data.draw(broadcast_pair(device))
    if name == "pow":
        return data.draw(values(sa, 0.5, 2.0)), data.draw(values(sb, -2.0, 2.0))
    a = data.draw(values(sa))
    b = data.draw(away_from_zero(sb) if name == "div" else values(sb))
    if name in ("maximum", "minimum"):  # ties have no derivative: keep the operands apart
        assume(np.all(np.abs(np.broadcast_to(a, out) - np.broadcast_to(b, out)) > 1e-3))
    return a, b


@device_param
@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data())
def test_binary_forward_and_gradient(device, name, data):
    fn, reference = BINARY[name]
    a, b = binary_operands(data, device, name)
    np.testing.assert_allclose(run(fn, [a, b], device), reference(a, b), rtol=1e-12, atol=1e-12)
    assert_gradcheck(fn, [a, b], device)


UNARY = {
    "neg": (lambda x: -x, np.negative, values),
    "exp": (lambda x: x.exp(), np.exp, values),
    "log": (lambda x: x.log(), np.log, lambda s: values(s, 0.1, 5.0)),
    "sqrt": (lambda x: x.sqrt(), np.sqrt, lambda s: values(s, 0.1, 5.0)),
    "abs": (lambda x: x.abs(), np.abs, away_from_zero),
    "relu": (lambda x: x.relu(), lambda x: np.maximum(x, 0), away_from_zero),
    "leaky_relu": (lambda x: E.unary(E.LeakyRelu, x, 0.1), lambda x: np.where(x > 0, x, 0.1 * x),
                   away_from_zero),
    "sigmoid": (lambda x: x.sigmoid(), lambda x: 1 / (1 + np.exp(-x)), values),
    "tanh": (lambda x: x.tanh(), np.tanh, values),
    "clip": (lambda x: x.clip(-1.0, 1.0), lambda x: np.clip(x, -1, 1),
             lambda s: away_from_zero(s, 0.1, 3.0).filter(
                 lambda x: np.all(np.abs(np.abs(x) - 1) > 1e-3))),
}


@device_param
@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
def test_unary_forward_and_gradient(device, name, data):
    fn, reference, strategy = UNARY[name]
    x = data.draw(strategy(data.draw(shapes(device))))
    np.testing.assert_allclose(run(fn, [x], device), reference(x), rtol=1e-12, atol=1e-12)
    assert_gradcheck(fn, [x], device)


@device_param
@given(data=st.data())
def test_where_forward_and_gradient(device, data):
    (sc, sa, sb), _ = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3,
                                                                  max_side=2))
    cond = data.draw(hnp.arrays(np.bool_, sc))
    a, b = data.draw(values(sa)), data.draw(values(sb))
    c = tl.Tensor(cond, device=device)
    fn = lambda x, y: tl.where(c, x, y)  # noqa: E731
    np.testing.assert_allclose(run(fn, [a, b], device), np.where(cond, a, b))
    assert_gradcheck(fn, [a, b], device)


@device_param
def test_scalars_on_either_side(device):
    x = tl.Tensor([1.0, 2.0, 4.0], device=device)
    np.testing.assert_allclose((2 - x).numpy(), [1, 0, -2])
    np.testing.assert_allclose((1 / x).numpy(), [1, 0.5, 0.25])
    np.testing.assert_allclose((2 ** x).numpy(), [2, 4, 16])
    np.testing.assert_allclose((x * 0.5 + 1).numpy(), [1.5, 2, 3])
    assert (x * 2).dtype == tl.float32 and (x * 2.5).dtype == tl.float32


@device_param
def test_comparisons_give_bool_and_no_gradient(device):
    x = tl.Tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    for op, ref in [(x < 2, [1, 0, 0]), (x <= 2, [1, 1, 0]), (x > 2, [0, 0, 1]),
                    (x >= 2, [0, 1, 1]), (x == 2, [0, 1, 0]), (x != 2, [1, 0, 1])]:
        assert op.dtype == tl.bool_ and not op.requires_grad
        np.testing.assert_array_equal(op.numpy(), np.array(ref, bool))


@device_param
def test_maximum_tie_splits_gradient(device):
    a = tl.Tensor([1.0, 2.0], device=device, requires_grad=True)
    b = tl.Tensor([1.0, 3.0], device=device, requires_grad=True)
    a.maximum(b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [0.5, 0.0])
    np.testing.assert_allclose(b.grad.numpy(), [0.5, 1.0])


def test_integer_tensors_promote():
    i = tl.Tensor([1, 2, 3])
    assert i.dtype == tl.int64 and (i + 1).dtype == tl.int64
    assert (i * 0.5).dtype == tl.float32 and (i / 2).dtype == tl.float32
    np.testing.assert_allclose((i / 2).numpy(), [0.5, 1, 1.5])
    assert (i + tl.Tensor([1.0, 1.0, 1.0])).dtype == tl.float32


def test_broadcast_mismatch_names_op_and_shapes():
    with pytest.raises(ValueError, match=r"mul.*\(2, 3\).*\(4,\)"):
        tl.zeros(2, 3) * tl.zeros(4)


def test_clip_needs_a_bound_and_log_of_zero_is_minus_inf():
    with pytest.raises(ValueError, match="clip"):
        tl.zeros(2).clip()
    assert tl.Tensor([0.0]).log().item() == -np.inf


def test_large_arrays_use_the_parallel_kernel():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((300, 257)), rng.standard_normal((257,))
    out = (tl.Tensor(a) * tl.Tensor(b) + 1.0).exp().numpy()
    np.testing.assert_allclose(out, np.exp(a.astype(np.float32) * b.astype(np.float32) + 1),
                               rtol=1e-5)


# ----- regressions: PyTorch's semantics at the edges -----
@device_param
def test_zero_to_the_zero_has_zero_exponent_gradient(device):
    base = tl.tensor([0.0, 0.0, 2.0], device=device, requires_grad=True)
    exponent = tl.tensor([0.0, 2.0, 3.0], device=device, requires_grad=True)
    (base ** exponent).sum().backward()
    np.testing.assert_allclose(exponent.grad.numpy(), [0, 0, 8 * np.log(2)], rtol=1e-6)
    np.testing.assert_allclose(base.grad.numpy(), [0, 0, 12])


@device_param
def test_clip_with_min_above_max_gives_max_everywhere(device):
    x = tl.tensor([-1.0, 0.5, 2.0, 5.0], device=device, requires_grad=True)
    y = x.clip(2.0, 1.0)
    np.testing.assert_array_equal(y.numpy(), [1, 1, 1, 1])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 0, 0])


@device_param
def test_activations_at_the_kink_and_far_out(device):
    x = tl.tensor([-1e4, -1.0, 0.0, 1.0, 1e4], device=device, requires_grad=True)
    with np.errstate(all="raise"):  # no overflow warnings anywhere
        for fn in (lambda t: t.relu(), lambda t: t.sigmoid(), lambda t: t.tanh()):
            x.grad = None
            y = fn(x)
            y.sum().backward()
            assert np.all(np.isfinite(y.numpy())) and np.all(np.isfinite(x.grad.numpy()))
    np.testing.assert_allclose(x.sigmoid().numpy(), [0, 1 / (1 + np.e), 0.5, 1 / (1 + 1 / np.e), 1])
    x.grad = None
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 0, 1, 1])  # 0 at 0, as in PyTorch


def test_operand_errors_name_the_op():
    x = tl.zeros(2)
    with pytest.raises(TypeError, match="add: expected a Tensor, a number or an array, got str"):
        x + "a"
    with pytest.raises(TypeError, match="mul: .*got dict"):
        x * {}


STRIDED_VIEWS = {  # (on a tensor, on a NumPy array)
    "permuted": (lambda t: t.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1)),
    "sliced": (lambda t: t[:, ::2, 1:], lambda a: a[:, ::2, 1:]),
    "reversed": (lambda t: t[::-1], lambda a: a[::-1]),
    "expanded": (lambda t: t[:1].expand(3, 4, 5), lambda a: np.broadcast_to(a[:1], (3, 4, 5))),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_on_strided_inputs(name):
    """Permuted, sliced, reversed and expanded inputs reach the kernel as they are."""
    fn, reference, strategy = UNARY[name]
    rng = np.random.default_rng(1)
    base = np.abs(rng.standard_normal((3, 4, 5))) + 0.2
    if name not in ("log", "sqrt"):
        base *= np.where(rng.random(base.shape) < 0.5, -1, 1)
    for view, view_np in STRIDED_VIEWS.values():
        np.testing.assert_allclose(fn(view(tl.tensor(base, dtype=tl.float64))).numpy(),
                                   reference(view_np(base)), rtol=1e-12, atol=1e-12)
        assert_gradcheck(lambda t: fn(view(t)), [base], "cpu")


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_on_strided_operands_in_many_broadcast_groups(name):
    """A permuted and sliced operand against one broadcast over alternating dimensions (more
    than three broadcast groups), values and gradients."""
    fn, reference = BINARY[name]
    rng = np.random.default_rng(2)
    a = rng.uniform(0.5, 2.0, (2, 4, 3, 2, 6))     # viewed as (2, 3, 4, 2, 3) below
    b = rng.uniform(0.5, 2.0, (1, 3, 1, 2, 1)) * np.where(rng.random((1, 3, 1, 2, 1)) < 0.5,
                                                          -1, 1) + 0.01
    f = lambda s, t: fn(s.permute(0, 2, 1, 3, 4)[..., ::2], t)  # noqa: E731
    np.testing.assert_allclose(run(f, [a, b], "cpu"),
                               reference(a.transpose(0, 2, 1, 3, 4)[..., ::2], b), rtol=1e-12)
    assert_gradcheck(f, [a, b], "cpu")


def test_float32_gradients_past_the_thresholds():
    """Sizes past the 4096-element chunk and the 32k parallel switch, a permuted operand and
    a broadcast one: float32 values and gradients agree with float64. (The loop structure
    does not depend on the op, which is a compile-time constant in it, so one function covers
    the thresholds; every op meets strided layouts above.)"""
    fn = lambda a, b: a * b + a  # noqa: E731
    rng = np.random.default_rng(3)
    a = rng.uniform(0.5, 1.5, (3, 5000, 4))         # viewed as (3, 4, 5000): 60000 elements
    b = rng.uniform(0.5, 1.5, (1, 4, 1))
    results = {}
    for dtype in (tl.float32, tl.float64):
        ta = tl.tensor(a, dtype=dtype, requires_grad=True)
        tb = tl.tensor(b, dtype=dtype, requires_grad=True)
        out = fn(ta.permute(0, 2, 1), tb)
        (out * out).mean().backward()
        results[dtype] = out.numpy(), ta.grad.numpy(), tb.grad.numpy()
    for got, want in zip(results[tl.float32], results[tl.float64]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
