"""PyTorch habits tested against torch itself (a test-only dependency): what backward saves (so
which in-place writes are fine), max/min with a dim, F.pad's flat last-dim-first tuple, result
dtypes of mixed operands, the exception classes users catch, and what the losses say about bad
labels."""
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import tinygrad_lite as tl
import tinygrad_lite.nn.functional as F
from tinygrad_lite.ops import loss as L
from helpers import device_param

TORCH_DTYPES = {tl.bool_: torch.bool, tl.int64: torch.int64, tl.float32: torch.float32,
                tl.float64: torch.float64}


def both(array, dtype=tl.float64, requires_grad=False, device="cpu"):
    """The same values as a tinygrad_lite tensor and a torch tensor."""
    ours = tl.tensor(array, dtype=dtype, device=device, requires_grad=requires_grad)
    theirs = torch.tensor(np.asarray(array), dtype=TORCH_DTYPES[dtype],
                          requires_grad=requires_grad)
    return ours, theirs


def outcome(fn):
    """fn()'s result, or the exception it raised."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001  (compared with what the other library raised)
        return e


# ----- A. backward saves only what it reads -----
def micrograd(a, b):
    """micrograd's test expression, with += on intermediates."""
    c = a + b
    d = a * b + b ** 3
    c += c + 1
    c += 1 + c + (-a)
    d += d * 2 + (b + a).relu()
    d += 3 * d + (b - a).relu()
    e = c - d
    f = e ** 2
    g = f / 2.0
    g += 10.0 / f
    return g


def test_micrograd_with_in_place_updates_matches_torch():
    a, ta = both(-4.0, requires_grad=True)
    b, tb = both(2.0, requires_grad=True)
    g, tg = micrograd(a, b), micrograd(ta, tb)
    g.backward()
    tg.backward()
    assert g.item() == pytest.approx(tg.item(), rel=1e-12)
    assert a.grad.item() == pytest.approx(ta.grad.item(), rel=1e-12)
    assert b.grad.item() == pytest.approx(tb.grad.item(), rel=1e-12)


def test_writing_an_operand_backward_does_not_read_is_fine():
    x, tx = both([1.0, -2.0], requires_grad=True)
    d, td = x * 3, tx * 3
    e, te = d * 2, td * 2  # mul by a constant reads only the constant
    d += 1
    td += 1
    (e.sum() + d.sum()).backward()
    (te.sum() + td.sum()).backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_writing_an_operand_backward_reads_still_raises():
    x, tx = both([1.0, -2.0], requires_grad=True)
    d, td = x * 3, tx * 3
    e, te = d * d, td * td
    d += 1
    td += 1
    with pytest.raises(RuntimeError):
        te.sum().backward()
    with pytest.raises(RuntimeError, match="Mul saved for its gradient was modified"):
        e.sum().backward()


def _where(lib, a, b):
    cond = (tl if lib == "ours" else torch).tensor([[True, False, True], [False, True, True]])
    return (tl.where if lib == "ours" else torch.where)(cond, a, b)


BINARY = {
    "mul": lambda lib, a, b: a * b,
    "div": lambda lib, a, b: a / b,
    "pow": lambda lib, a, b: a ** b,
    "maximum": lambda lib, a, b: a.maximum(b) if lib == "ours" else torch.maximum(a, b),
    "matmul": lambda lib, a, b: a @ b.T,
    "where": _where,
    "add": lambda lib, a, b: a + b,
    "sub": lambda lib, a, b: a - b,
}
UNARY = {
    "exp": lambda lib, a: a.exp(), "log": lambda lib, a: a.log(),
    "sqrt": lambda lib, a: a.sqrt(), "relu": lambda lib, a: a.relu(),
    "sigmoid": lambda lib, a: a.sigmoid(), "tanh": lambda lib, a: a.tanh(),
    "abs": lambda lib, a: a.abs(), "clamp": lambda lib, a: a.clamp(0.8, 1.5),
    "sum": lambda lib, a: a.sum(), "amax": lambda lib, a: a.amax(1),
    "max_dim": lambda lib, a: a.max(1).values,
    "logsumexp": lambda lib, a: a.logsumexp(1), "softmax": lambda lib, a: a.softmax(1),
    "log_softmax": lambda lib, a: a.log_softmax(1),
    "leaky_relu": lambda lib, a: (F.leaky_relu if lib == "ours" else TF.leaky_relu)(a, 0.1),
    "gelu": lambda lib, a: (F.gelu if lib == "ours" else TF.gelu)(a),
    "elu": lambda lib, a: (F.elu if lib == "ours" else TF.elu)(a),
}


def _run_after_write(lib, fn, arrays, needs, write):
    """fn on non-leaf copies of `arrays` (those in `needs` require grad), then operand
    `write` (or the output, -1; None: nothing) is written in place, then backward: the
    gradients, or the error."""
    leaves = [tl.tensor(a, dtype=tl.float64, requires_grad=n) if lib == "ours" else
              torch.tensor(a, dtype=torch.float64, requires_grad=n)
              for a, n in zip(arrays, needs)]
    ins = [t.clone() if n else t for t, n in zip(leaves, needs)]
    out = fn(lib, *ins)
    if write is not None:
        target = out if write == -1 else ins[write]
        with (tl.no_grad() if lib == "ours" else torch.no_grad()):
            target += 1  # a plain write: bumps the version, records nothing

    def backward():
        (out * 1.0).sum().backward()
        return [None if t.grad is None else np.asarray(t.grad.numpy())
                for t, n in zip(leaves, needs) if n]
    return outcome(backward)


def _agree(fn, arrays, needs, write):
    """We may raise only where torch raises. Where we compute, the gradients must be torch's:
    the ones torch computes after the same write, or, where torch refuses (it keeps a few
    values its formula does not need, pow's output for the base's gradient), the ones without
    the write, which a backward that does not read the written tensor must reproduce."""
    what = f"needs={needs} write={write}"
    ours = _run_after_write("ours", fn, arrays, needs, write)
    theirs = _run_after_write("torch", fn, arrays, needs, write)
    if isinstance(ours, Exception):
        assert isinstance(ours, RuntimeError) and "modified by an in-place" in str(ours), what
        assert isinstance(theirs, RuntimeError), f"{what}: torch computed it, we raised {ours!r}"
        return
    if isinstance(theirs, Exception):
        theirs = _run_after_write("torch", fn, arrays, needs, None)
    for g, tg in zip(ours, theirs):
        np.testing.assert_allclose(g, tg, rtol=1e-12, atol=1e-14, err_msg=what)


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("needs", [(True, False), (False, True), (True, True)])
@pytest.mark.parametrize("write", [0, 1, -1])
def test_binary_saves_what_torch_saves(name, needs, write):
    """A write after the op raises at backward only when torch's does too."""
    rng = np.random.default_rng(0)
    arrays = [rng.uniform(0.5, 2.0, (2, 3)), rng.uniform(0.5, 2.0, (2, 3))]
    arrays[1][0, 0] = arrays[0][0, 0] + 0.25  # no ties for maximum
    _agree(lambda lib, a, b: BINARY[name](lib, a, b), arrays, needs, write)


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("write", [0, -1])
def test_unary_saves_what_torch_saves(name, write):
    x = np.random.default_rng(1).uniform(0.5, 2.0, (2, 3))
    _agree(UNARY[name], [x], (True,), write)


def test_a_function_keeps_no_array_its_backward_will_not_read():
    a = tl.tensor([1.0, 2.0], requires_grad=True)
    b = tl.tensor([3.0, 4.0])
    out = a * b
    assert out.grad_fn.a is None and out.grad_fn.b is b.array
    out = tl.ones(3, 2) @ tl.tensor([[1.0], [2.0]], requires_grad=True)
    assert out.grad_fn.a is not None and out.grad_fn.b is None and out.grad_fn.SAVES == (0,)


def test_prelu_weight_gradient_does_not_read_the_weight():
    """d prelu / d weight = x where x <= 0 reads only x, so the weight may be written after
    the op (torch's prelu kernel keeps both and would refuse; the gradient is the same)."""
    x, tx = both([[-1.0, 2.0], [-3.0, 0.5]])
    w, tw = both([0.25], requires_grad=True)
    out, tout = F.prelu(x, w.clone()), TF.prelu(tx, tw.clone())
    tout.sum().backward()
    with tl.no_grad():
        w += 1.0  # a leaf: written under no_grad, as an optimiser does
    out.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), tw.grad.numpy())
    v = tl.tensor([0.25], requires_grad=True)
    out = F.prelu(tl.tensor([[-1.0, 2.0]], requires_grad=True), v)
    assert out.grad_fn.SAVES == (0, 1)  # d/dx reads the slope


# ----- B. max / min with a dim: (values, indices) -----
@device_param
@pytest.mark.parametrize("name", ["max", "min"])
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_max_min_with_a_dim_match_torch(device, name, dim, keepdim):
    data = np.array([[3.0, 1.0, 3.0, -2.0], [2.0, 2.0, 7.0, 2.0], [0.5, 9.0, -1.0, 9.0]])
    x, tx = both(data, requires_grad=True, device=device)
    result, expected = getattr(x, name)(dim, keepdim), getattr(tx, name)(dim, keepdim)
    values, indices = result
    assert type(result).__name__ == name and result.values is values
    assert result[0] is values and result.indices is indices
    np.testing.assert_array_equal(values.numpy(), expected.values.detach().numpy())
    np.testing.assert_array_equal(indices.numpy(), expected.indices.numpy())
    assert indices.dtype == tl.int64 and not indices.requires_grad
    w = np.arange(1.0, 1.0 + values.size).reshape(values.shape)
    (values * tl.tensor(w, dtype=tl.float64, device=device)).sum().backward()
    (expected.values * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())  # ties: the first index


@device_param
@pytest.mark.parametrize("name,dim", [("max", None), ("min", None)] + [
    (name, dim) for name in ("amax", "amin") for dim in (None, 1, (0, 1), (0, 2), -1)])
def test_values_only_forms_match_torch(device, name, dim):
    """x.max() / x.min() with no dim, and amax / amin with any dims: one tensor, whose
    gradient is shared evenly between ties (as torch's)."""
    data = np.array([[[3.0, 1.0], [3.0, -2.0]], [[2.0, 2.0], [7.0, 7.0]]])
    x, tx = both(data, requires_grad=True, device=device)
    args = () if dim is None else (dim,)
    out, expected = getattr(x, name)(*args), getattr(tx, name)(*args)
    np.testing.assert_array_equal(out.numpy(), expected.detach().numpy())
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-15)


def test_max_min_habits():
    x = tl.tensor([[1.0, 5.0], [4.0, 2.0]])
    np.testing.assert_array_equal(x.max(1)[0].numpy(), [5.0, 4.0])  # the maxima, not row 0
    np.testing.assert_array_equal(x.max(dim=0, keepdim=True).indices.numpy(), [[1, 0]])
    np.testing.assert_array_equal(x.max(tl.tensor([3.0, 3.0])).numpy(), [[3, 5], [4, 3]])
    np.testing.assert_array_equal(x.min(tl.tensor(3.0)).numpy(), [[1, 3], [3, 2]])
    assert x.max().item() == 5.0 and x.min().item() == 1.0
    with pytest.raises(TypeError, match=r"max: dim must be an int.*amax\(dim=\(0, 1\)\)"):
        x.max((0, 1))
    scalar = tl.tensor(2.5).max(0)
    assert scalar.values.item() == 2.5 and scalar.indices.item() == 0


def test_max_over_an_empty_dim_is_an_index_error_as_in_torch():
    with pytest.raises(IndexError):
        torch.zeros(2, 0).max(1)
    with pytest.raises(IndexError, match="max: cannot reduce over an empty dimension"):
        tl.zeros(2, 0).max(1)
    with pytest.raises(IndexError, match="amax"):
        tl.zeros(2, 0).amax(1)


# ----- C. F.pad: PyTorch's flat, last-dim-first tuple -----
PADS = [(1, 2), (0, 3), (2, 0, 1, 1), (1, 1, 0, 2, 1, 0), (-1, 2), (1, -1, -1, 2)]


# Every pad on the CPU; on CUDA (the simulator runs one Python thread per GPU thread) the
# three-dim pad and the one with negative widths, which between them reach every code path.
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("device, pad",
                         [("cpu", p) for p in PADS] + [("cuda", PADS[3]), ("cuda", PADS[5])])
def test_f_pad_matches_torch(device, mode, pad):
    # (N, C) and the padded dims: the batched shapes torch accepts for every mode
    data = np.random.default_rng(2).standard_normal((2, 3) + (4, 5, 3)[:len(pad) // 2])
    x, tx = both(data, requires_grad=True, device=device)
    kwargs = {"value": 1.5} if mode == "constant" else {}
    expected = TF.pad(tx, pad, mode=mode, **kwargs)
    out = F.pad(x, pad, mode=mode, **kwargs)
    np.testing.assert_array_equal(out.numpy(), expected.detach().numpy())
    w = np.random.default_rng(3).standard_normal(out.shape)
    (out * tl.tensor(w, dtype=tl.float64, device=device)).sum().backward()
    (expected * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_f_pad_refuses_what_torch_refuses():
    x, tx = both(np.zeros((2, 3)))
    for pad, mode in [((1,), "constant"), ((1, 1, 1, 1, 1, 1), "constant"),
                      ((3, 0), "reflect"), ((4, 0), "circular")]:
        with pytest.raises(RuntimeError):
            TF.pad(tx, pad, mode=mode)
        with pytest.raises(RuntimeError, match="pad"):
            F.pad(x, pad, mode=mode)
    with pytest.raises(ValueError, match="mode must be one of"):
        F.pad(x, (1, 1), mode="edge")


def test_tensor_pad_refuses_an_ambiguous_flat_pair():
    x = tl.ones(2, 3)
    with pytest.raises(ValueError, match=r"flat pair \(1, 2\) is ambiguous.*F.pad|"
                                         r"flat pair \(1, 2\) is ambiguous.*functional.pad"):
        x.pad((1, 2))
    with pytest.raises(ValueError, match="pairs of ints"):
        x.pad((1, 2, 3, 4))
    assert x.pad(((0, 0), (1, 2))).shape == (2, 6) and x.pad(1).shape == (4, 5)
    assert tl.ones(3).pad((1, 2)).shape == (6,)  # one dim: both conventions agree


# ----- D. result dtypes of mixed operands -----
ARRAYS = {tl.bool_: [True, False], tl.int64: [3, 2], tl.float32: [1.5, 2.0],
          tl.float64: [2.5, 0.5]}
OPERANDS = [(d, nd) for d in ARRAYS for nd in (True, False)] + [True, 2, 2.5]
OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
       "/": lambda a, b: a / b, "**": lambda a, b: a ** b}


def _operand(spec, lib):
    if not isinstance(spec, tuple):
        return spec
    dtype, dims = spec
    values = ARRAYS[dtype] if dims else ARRAYS[dtype][0]
    return tl.tensor(values, dtype=dtype) if lib == "ours" else torch.tensor(
        values, dtype=TORCH_DTYPES[dtype])


def _name(spec):
    return repr(spec) if not isinstance(spec, tuple) else f"{spec[0]}{'[2]' if spec[1] else '[]'}"


@pytest.mark.parametrize("op", sorted(OPS))
@pytest.mark.parametrize("left,right", [
    (a, b) for a, b in itertools.product(OPERANDS, OPERANDS)
    if isinstance(a, tuple) or isinstance(b, tuple)], ids=lambda s: _name(s))
def test_result_dtype_matches_torch(op, left, right):
    fn = OPS[op]
    ours = outcome(lambda: fn(_operand(left, "ours"), _operand(right, "ours")))
    theirs = outcome(lambda: fn(_operand(left, "torch"), _operand(right, "torch")))
    if isinstance(theirs, Exception):
        assert isinstance(ours, RuntimeError), f"torch raised {theirs!r}, we gave {ours!r}"
        return
    assert not isinstance(ours, Exception), f"torch gave {theirs.dtype}, we raised {ours!r}"
    assert TORCH_DTYPES[ours.dtype] == theirs.dtype
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)


def test_integer_powers_and_clamp_stay_integer():
    i, ti = both([3, -2, 5], dtype=tl.int64)
    assert (i ** 2).dtype == tl.int64 and (i ** 2).tolist() == (ti ** 2).tolist()
    with pytest.raises(RuntimeError):
        ti ** -1
    with pytest.raises(RuntimeError, match="pow: integers to negative integer powers"):
        i ** -1
    for low, high in [(0, 4), (-1, None), (None, 2), (0.5, 4), (-1.5, 2.5)]:
        got, want = i.clamp(low, high), ti.clamp(low, high)
        assert TORCH_DTYPES[got.dtype] == want.dtype, (low, high)
        np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_bool_negation_and_subtraction_raise_as_in_torch():
    b, tb = both([True, False], dtype=tl.bool_)
    for fn in (lambda x: -x, lambda x: x - x, lambda x: x - 1, lambda x: 1.0 - x,
               lambda x: x.float() - x):
        with pytest.raises(RuntimeError):
            fn(tb)
        with pytest.raises(RuntimeError, match="bool"):
            fn(b)
        with pytest.raises(TypeError):  # this library's class for a bad dtype, too
            fn(b)


@pytest.mark.parametrize("x_spec,y_spec", [((tl.int64, True), 2.5), ((tl.int64, True), 2),
                                           ((tl.float32, True), (tl.float64, False)),
                                           ((tl.int64, True), (tl.float64, False)),
                                           (1, 2.5), ((tl.bool_, True), True)])
def test_where_promotes_as_torch(x_spec, y_spec):
    cond, tcond = both([True, False], dtype=tl.bool_)
    ours = tl.where(cond, _operand(x_spec, "ours"), _operand(y_spec, "ours"))
    theirs = torch.where(tcond, _operand(x_spec, "torch"), _operand(y_spec, "torch"))
    assert TORCH_DTYPES[ours.dtype] == theirs.dtype
    np.testing.assert_allclose(ours.numpy(), theirs.numpy())


# ----- E. exception classes -----
DIM_ERRORS = {
    "sum": lambda x: x.sum(5), "mean": lambda x: x.mean(-4), "max": lambda x: x.max(3),
    "amax": lambda x: x.amax((0, 7)), "argmax": lambda x: x.argmax(3),
    "softmax": lambda x: x.softmax(3), "unsqueeze": lambda x: x.unsqueeze(4),
    "transpose": lambda x: x.transpose(0, 3), "flatten": lambda x: x.flatten(0, 3),
    "permute": lambda x: x.permute(0, 1, 3), "squeeze": lambda x: x.squeeze(3),
    "split": lambda x: x.split(1, 3), "var": lambda x: x.var(3),
}
SHAPE_ERRORS = {
    "reshape": lambda x: x.reshape(4, 5), "reshape -1": lambda x: x.reshape(-1, 5),
    "permute length": lambda x: x.permute(0, 1), "permute repeat": lambda x: x.permute(0, 1, 1),
    "matmul": lambda x: x @ x, "matmul 1-d": lambda x: x[0, 0] @ x[0, 0, :3],
    "broadcast": lambda x: x + x[:, :, :2], "expand": lambda x: x.expand(3, 3, 4),
    "repeated dim": lambda x: x.sum((0, 0)), "cat": lambda x: (tl if isinstance(
        x, tl.Tensor) else torch).cat([x, x[:, :2, :3]], 1),
}


@pytest.mark.parametrize("name", sorted(DIM_ERRORS))
def test_a_bad_dim_is_an_index_error_and_a_value_error(name):
    with pytest.raises(IndexError):
        DIM_ERRORS[name](torch.zeros(2, 3, 4))
    with pytest.raises(IndexError, match=name.split()[0]) as info:
        DIM_ERRORS[name](tl.zeros(2, 3, 4))
    assert isinstance(info.value, ValueError) and "out of range" in str(info.value)


@pytest.mark.parametrize("name", sorted(SHAPE_ERRORS))
def test_a_shape_mismatch_is_a_runtime_error_and_a_value_error(name):
    with pytest.raises(RuntimeError):
        SHAPE_ERRORS[name](torch.zeros(2, 3, 4))
    with pytest.raises(RuntimeError, match=name.split()[0].replace("repeated", "sum")) as info:
        SHAPE_ERRORS[name](tl.zeros(2, 3, 4))
    assert isinstance(info.value, ValueError)


def test_permute_never_wraps_an_out_of_range_dim():
    """permute(0, 3) on a 2-D tensor was read as permute(0, 1) (3 % 2)."""
    with pytest.raises(IndexError, match="permute: axis 3 is out of range"):
        tl.zeros(2, 3).permute(0, 3)


# ----- F. the losses and bad labels -----
@device_param
@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_float_labels_say_the_dtype_is_the_problem(device, name):
    x, tx = both(np.zeros((2, 3)), device=device)
    with pytest.raises(RuntimeError):
        getattr(TF, name)(tx, torch.tensor([0.0, 1.0]))
    with pytest.raises(RuntimeError, match=rf"{name}: .*int64 class indices of shape \(2,\)"
                                           r".*target.long\(\)") as info:
        getattr(F, name)(x, tl.tensor([0.0, 1.0], device=device))
    assert isinstance(info.value, TypeError)
    if name == "cross_entropy":
        assert "class probabilities of shape (2, 3)" in str(info.value)


@device_param
@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss", "multi_margin_loss"])
@pytest.mark.parametrize("label", [3, -1, 7])
def test_a_label_out_of_range_is_refused_before_any_kernel(device, name, label, monkeypatch):
    x, tx = both(np.zeros((2, 3)), device=device)
    labels = [0, label]
    with pytest.raises((IndexError, RuntimeError)):  # multi_margin_loss: RuntimeError
        getattr(TF, name)(tx, torch.tensor(labels))

    def no_kernel(*args, **kwargs):
        raise AssertionError("a kernel ran on an out-of-range label")
    monkeypatch.setattr(L.CrossEntropy, "forward", no_kernel)
    monkeypatch.setattr(L.NLLLoss, "forward", no_kernel)
    monkeypatch.setattr(x.device.backend, "elementwise", no_kernel)
    with pytest.raises(IndexError, match=rf"{name}: target label {label} is out of range for 3 "
                                         r"classes") as info:
        getattr(F, name)(x, tl.tensor(labels, device=device))
    assert isinstance(info.value, ValueError)


@device_param
def test_ignore_index_is_not_out_of_range(device):
    x, tx = both(np.arange(6.0).reshape(2, 3), device=device)
    ours = F.cross_entropy(x, tl.tensor([2, -5], device=device), ignore_index=-5)
    theirs = TF.cross_entropy(tx, torch.tensor([2, -5]), ignore_index=-5)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-12)
