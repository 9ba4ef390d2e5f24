"""Tensor creation, dtypes, conversion and the PyTorch-style surface."""
import numpy as np
import pytest

import tinygrad_lite as tl
from helpers import device_param


def test_creation_and_dtypes():
    assert tl.Tensor([1.0, 2.0]).dtype == tl.float32
    assert tl.Tensor(np.zeros(2)).dtype == tl.float64  # float64 arrays keep their precision
    assert tl.Tensor([1, 2]).dtype == tl.int64 and tl.Tensor([True]).dtype == tl.bool_
    assert tl.Tensor([1, 2], dtype="float64").dtype == tl.float64
    t = tl.zeros(2, 3)
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and t.device == "cpu"
    np.testing.assert_array_equal(tl.ones((2,)).numpy(), [1, 1])
    np.testing.assert_array_equal(tl.full((2,), 7.0).numpy(), [7, 7])
    np.testing.assert_array_equal(tl.arange(5).numpy(), np.arange(5))
    np.testing.assert_array_equal(tl.eye(3).numpy(), np.eye(3))
    assert tl.tensor(3.5).item() == 3.5 and tl.tensor(3.5).shape == ()
    assert tl.zeros(2, 3)[1, 2].shape == () and tl.zeros(2).sum().shape == ()
    assert tl.arange(0, 1, 0.25).dtype == tl.float32


def test_random_is_seeded():
    tl.manual_seed(42)
    a = (tl.rand(3).numpy(), tl.randn(3).numpy(), tl.uniform(3, low=2, high=3).numpy(),
         tl.normal(3, mean=5, std=0.1).numpy())
    tl.manual_seed(42)
    b = (tl.rand(3).numpy(), tl.randn(3).numpy(), tl.uniform(3, low=2, high=3).numpy(),
         tl.normal(3, mean=5, std=0.1).numpy())
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert np.all((a[2] >= 2) & (a[2] < 3)) and abs(a[3].mean() - 5) < 1


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(TypeError, match="dtype"):
        tl.Tensor([1.0], dtype="complex64")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        tl.zeros(2, device="tpu")
    with pytest.raises(TypeError, match="only float32/float64 tensors can require gradients"):
        tl.Tensor([1, 2], requires_grad=True)
    with pytest.raises(ValueError, match="negative dimension"):
        tl.zeros(-1)
    with pytest.raises(ValueError, match="item"):
        tl.zeros(2).item()
    with pytest.raises(TypeError, match="Tensor: expected numbers or bools, got data of dtype <U1"):
        tl.Tensor(["a"], dtype="float32")


def test_astype_and_repr():
    x = tl.Tensor([1.5, -2.5])
    assert x.long().dtype == tl.int64 and x.double().dtype == tl.float64
    np.testing.assert_array_equal(x.long().numpy(), [1, -2])
    assert "requires_grad=True" in repr(tl.zeros(1, requires_grad=True))
    assert x.tolist() == [1.5, -2.5] and len(x) == 2


def test_float64_gradients_stay_float64():
    x = tl.Tensor([1.0, 2.0], dtype=tl.float64, requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.dtype == tl.float64
    y = tl.Tensor([1.0, 2.0], requires_grad=True)
    (y.double() * 3).sum().backward()
    assert y.grad.dtype == tl.float32
    np.testing.assert_array_equal(y.grad.numpy(), [3, 3])


# ----- regressions: PyTorch habits and clear errors -----
def test_requires_grad_is_a_checked_property():
    t = tl.tensor([1, 2])
    with pytest.raises(TypeError, match="requires_grad: only float32/float64"):
        t.requires_grad = True
    f = tl.tensor([1.0, 2.0])
    f.requires_grad = True
    assert f.requires_grad and f.is_leaf
    y = f * 2
    with pytest.raises(RuntimeError, match="only a leaf's flag"):
        y.requires_grad = False


def test_data_that_cannot_become_a_tensor_is_named():
    with pytest.raises(ValueError, match="ragged nested sequence"):
        tl.tensor([[1.0, 2.0], [3.0]])
    with pytest.raises(OverflowError, match="1180591620717411303424 does not fit in int64"):
        tl.tensor([2 ** 70])
    with pytest.raises(TypeError, match="expected numbers or bools"):
        tl.tensor(["a", "b"])
    assert tl.tensor([2 ** 62]).item() == 2 ** 62


def test_relu_sigmoid_tanh_are_methods():
    x = tl.tensor([-1.0, 0.0, 2.0])
    np.testing.assert_allclose(x.relu().numpy(), [0, 0, 2])
    np.testing.assert_allclose(x.tanh().numpy(), np.tanh([-1, 0, 2]), rtol=1e-6)
    np.testing.assert_allclose(x.sigmoid().numpy(), 1 / (1 + np.exp([1.0, 0, -2])), rtol=1e-6)
    assert tl.tensor([1, -2]).relu().dtype == tl.float32  # integers promote, as exp does


def test_deepcopy_copies_storage_and_keeps_the_class():
    import copy
    from tinygrad_lite import nn
    model = nn.Sequential(nn.Linear(3, 2))
    model(tl.ones(4, 3)).sum().backward()
    twin = copy.deepcopy(model)
    w, w2 = model[0].weight, twin[0].weight
    assert type(w2) is nn.Parameter and w2.requires_grad and w2.device == w.device
    np.testing.assert_array_equal(w2.numpy(), w.numpy())
    np.testing.assert_array_equal(w2.grad.numpy(), w.grad.numpy())
    with tl.no_grad():
        w2 += 1.0
    assert not np.array_equal(w2.numpy(), w.numpy())  # its own storage
    with pytest.raises(RuntimeError, match="only a leaf tensor can be deep-copied"):
        copy.deepcopy(w * 2)


@device_param
def test_to_takes_a_dtype_and_a_device_as_pytorch_does(device):
    t = tl.tensor([1.5, -2.0], device=device)
    for moved in (t.to(tl.float64), t.to(device, tl.float64), t.to(dtype=tl.float64),
                  t.to(device=device, dtype="float64"), t.to(tl.zeros(1, dtype=tl.float64,
                                                                    device=device))):
        assert moved.dtype == tl.float64 and moved.device == device
        np.testing.assert_array_equal(moved.numpy(), [1.5, -2.0])
    assert t.to(tl.int64).dtype == tl.int64 and t.to(tl.int64).tolist() == [1, -2]
    assert t.to(device) is t and t.to(tl.float32) is t and t.to(device=device) is t
    assert t.to(device, tl.float32, copy=True) is not t
    assert t.to(None, tl.float64).dtype == tl.float64  # as Module.to passes it
    other = "cpu" if device == "cuda" else "cuda"
    moved = t.to(other, tl.float64, non_blocking=True)
    assert moved.device == other and moved.dtype == tl.float64
    w = tl.tensor([1.0, 2.0], device=device, requires_grad=True)
    (w.to(tl.float64) * 3.0).sum().backward()  # the cast stays in the graph
    assert w.grad.dtype == tl.float32 and w.grad.tolist() == [3.0, 3.0]


def test_to_rejects_what_is_neither_a_device_nor_a_dtype():
    t = tl.zeros(2)
    with pytest.raises(ValueError, match="to: expected a device .* got 'tpu': unknown device"):
        t.to("tpu")
    with pytest.raises(TypeError, match="to: expected a device .* got 3"):
        t.to(3)
    with pytest.raises(TypeError, match="to: dtype given twice"):
        t.to(tl.float64, tl.float32)
    with pytest.raises(TypeError, match="to: dtype given twice"):
        t.to(tl.float64, dtype=tl.float32)
    with pytest.raises(TypeError, match="to: device given twice"):
        t.to("cpu", "cuda")
    with pytest.raises(TypeError, match="to: expected at most a device and a dtype, got 3"):
        t.to("cpu", tl.float64, 1)
    with pytest.raises(TypeError, match="to: a tensor argument gives both"):
        t.to(tl.zeros(1), tl.float64)


def test_the_truth_value_of_many_elements_says_what_to_do():
    with pytest.raises(ValueError, match=r"shape \(2,\) is ambiguous; reduce it first"):
        bool(tl.zeros(2))
    assert bool(tl.ones(1)) and not bool(tl.zeros(()))
