"""Module habits checked against torch.nn.Module itself: assigning to a parameter's, buffer's
or child's name, .to(dtype) / .double() / .float() (what each parameter and buffer becomes),
and load_state_dict (what is refused, and that a refused load changes nothing)."""
import numpy as np
import pytest
import torch

import tinygrad_lite as tl
from tinygrad_lite import nn

_DT = {tl.float32: torch.float32, tl.float64: torch.float64, tl.int64: torch.int64}


def _outcome(fn):
    """'ok' or the exception type's name: what a habit does, comparable across libraries."""
    try:
        fn()
        return "ok"
    except Exception as e:  # noqa: BLE001  (the type is the outcome being compared)
        return type(e).__name__


def test_assigning_a_tensor_to_a_parameter_name_raises_as_torch():
    ours, theirs = nn.Linear(3, 2), torch.nn.Linear(3, 2)

    def ours_assign():
        ours.weight = ours.weight * 2

    def theirs_assign():
        theirs.weight = theirs.weight * 2

    assert _outcome(ours_assign) == _outcome(theirs_assign) == "TypeError"
    with pytest.raises(TypeError, match="Linear: cannot assign 'Tensor' as parameter 'weight' "
                                        "\\(Parameter or None expected"):
        ours_assign()
    # nothing changed: still the registered parameter
    assert isinstance(ours.weight, nn.Parameter) and "weight" in dict(ours.named_parameters())


def test_assigning_none_to_a_parameter_name_keeps_the_slot_as_torch():
    ours, theirs = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    ours.bias, theirs.bias = None, None
    assert ours.bias is None and theirs.bias is None
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    assert "bias" in ours._parameters and "bias" in theirs._parameters
    ours.bias = nn.Parameter(tl.zeros(2))  # a Parameter may come back
    theirs.bias = torch.nn.Parameter(torch.zeros(2))
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]


def test_assigning_a_tensor_to_a_buffer_name_keeps_it_a_buffer_as_torch():
    ours, theirs = nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    ours.running_mean = tl.ones(3)
    theirs.running_mean = torch.ones(3)
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    np.testing.assert_array_equal(ours.state_dict()["running_mean"].numpy(), np.ones(3))

    def ours_bad():
        ours.running_mean = 3.0

    def theirs_bad():
        theirs.running_mean = 3.0

    assert _outcome(ours_bad) == _outcome(theirs_bad) == "TypeError"
    with pytest.raises(TypeError, match="cannot assign 'float' as buffer 'running_mean'"):
        ours_bad()


def test_assigning_a_non_module_to_a_child_name_raises_as_torch():
    ours = nn.Sequential(nn.Linear(2, 2))
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 2))

    def ours_bad():
        setattr(ours, "0", 5)

    def theirs_bad():
        setattr(theirs, "0", 5)

    assert _outcome(ours_bad) == _outcome(theirs_bad) == "TypeError"
    setattr(ours, "0", None)
    setattr(theirs, "0", None)
    assert len(list(ours.children())) == len(list(theirs.children())) == 0


def _pair():
    ours = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2),
                                 torch.nn.Flatten(), torch.nn.Linear(8, 3))
    return ours, theirs


def _dtypes(module, torch_side=False):
    named = list(module.named_parameters()) + list(module.named_buffers())
    return {n: (str(t.dtype) if torch_side else str(_DT[t.dtype])) for n, t in named}


@pytest.mark.parametrize("call", [
    lambda m, lib: m.to(lib.float64),
    lambda m, lib: m.to("cpu", lib.float64),
    lambda m, lib: m.to(device="cpu", dtype=lib.float64),
    lambda m, lib: m.to(dtype=lib.float64),
    lambda m, lib: m.double(),
    lambda m, lib: m.double().float(),
    lambda m, lib: m.to(lib.zeros(1, dtype=lib.float64)),
])
def test_to_dtype_casts_only_floating_point_tensors_as_torch(call):
    ours, theirs = _pair()
    params = list(ours.parameters())
    versions = [p.version for p in params]
    assert call(ours, tl) is ours and call(theirs, torch) is theirs
    assert _dtypes(ours) == _dtypes(theirs, torch_side=True)
    assert ours[1].num_batches_tracked.dtype == tl.int64
    # in place: the same Parameter objects (an optimiser keeps working), versions bumped
    assert all(p is q for p, q in zip(params, ours.parameters()))
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in ours.parameters())
    assert all(p.version > v for p, v in zip(params, versions))


def test_to_an_integer_dtype_is_refused_as_torch():
    ours, theirs = _pair()
    assert _outcome(lambda: theirs.to(torch.int64)) == _outcome(
        lambda: ours.to(tl.int64)) == "TypeError"
    with pytest.raises(TypeError, match="Sequential.to only accepts floating-point dtypes"):
        ours.to(tl.int64)
    assert _dtypes(ours)["0.weight"] == "torch.float32"


def test_a_graph_that_saved_a_parameter_raises_after_a_cast():
    lin = nn.Linear(2, 1)
    x = tl.randn(3, 2, requires_grad=True)
    y = lin(x).sum()
    lin.double()
    with pytest.raises(RuntimeError):
        y.backward()


def test_double_gives_float64_outputs_and_gradients():
    lin = nn.Linear(3, 2).double()
    out = lin(tl.randn(4, 3, dtype=tl.float64))
    out.sum().backward()
    assert out.dtype == tl.float64 and lin.weight.grad.dtype == tl.float64


def _snapshot(module):
    return {k: v.numpy().copy() for k, v in module.state_dict().items()}


def _assert_same(a, b):
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_refused_load_changes_nothing_and_lists_every_problem():
    ours, theirs = _pair()
    good = {k: tl.ones(*v.shape, dtype=v.dtype) for k, v in ours.state_dict().items()}
    before = _snapshot(ours)
    bad = dict(good)
    bad["3.weight"] = tl.zeros(3, 9)   # the last layer is wrong: layers before must not load
    bad["0.bias"] = tl.zeros(5)
    del bad["1.running_var"]
    bad["extra"] = tl.zeros(1)
    with pytest.raises(RuntimeError) as info:
        ours.load_state_dict(bad)
    msg = str(info.value)
    assert "Error(s) in loading state_dict for Sequential" in msg
    for part in ("Missing key(s) in state_dict: '1.running_var'",
                 "Unexpected key(s) in state_dict: 'extra'",
                 "size mismatch for '3.weight'", "size mismatch for '0.bias'"):
        assert part in msg
    _assert_same(_snapshot(ours), before)
    # torch refuses the same load with the same kind of error (though it has copied the
    # good keys by then; here a refused load changes nothing, by design)
    tbad = {k: torch.tensor(v.numpy()) for k, v in bad.items()}
    assert _outcome(lambda: theirs.load_state_dict(tbad)) == "RuntimeError"
    # a shape mismatch is an error even when strict=False, in both
    assert _outcome(lambda: theirs.load_state_dict(tbad, strict=False)) == "RuntimeError"
    with pytest.raises(RuntimeError, match="size mismatch for '3.weight'"):
        ours.load_state_dict(bad, strict=False)
    _assert_same(_snapshot(ours), before)


def test_non_strict_load_returns_missing_and_unexpected_keys_as_torch():
    ours, theirs = _pair()
    part = {k: v for k, v in ours.state_dict().items() if k.startswith("3.")}
    part["extra.weight"] = tl.zeros(1)
    result = ours.load_state_dict(part, strict=False)
    tpart = {k: torch.tensor(v.numpy()) for k, v in part.items()}
    tresult = theirs.load_state_dict(tpart, strict=False)
    assert type(result).__name__ == "IncompatibleKeys"
    assert result.missing_keys == tresult.missing_keys
    assert result.unexpected_keys == tresult.unexpected_keys


def test_load_casts_float_dtypes_and_refuses_a_float_into_an_integer_buffer():
    ours, _ = _pair()
    state = {k: v.numpy() for k, v in ours.state_dict().items()}
    state["3.weight"] = np.full((3, 8), 0.5)  # float64 array into float32: cast, as torch
    ours.load_state_dict(state)
    assert ours[3].weight.dtype == tl.float32 and ours[3].weight.numpy()[0, 0] == 0.5
    before = _snapshot(ours)
    state["0.weight"] = np.zeros((2, 1, 3, 3), dtype=np.float32)
    state["1.num_batches_tracked"] = np.array(2.5)
    with pytest.raises(RuntimeError, match="dtype mismatch for '1.num_batches_tracked'"):
        ours.load_state_dict(state)
    _assert_same(_snapshot(ours), before)
