"""Functions that make tensors: constants, ranges, random draws, and the multi-tensor ops
(cat, stack, where, maximum, minimum)."""
import numpy as np

from . import dtype as dt
from . import random
from .device import get_device
from .ops import elementwise as E
from .ops import movement as V
from .ops import torch_names
from .tensor import Tensor


def _shape(shape, op):
    shape = V.check_sizes(op, V._sizes(shape))
    if any(s < 0 for s in shape):
        raise ValueError(f"{op}: negative dimension in shape {shape}")
    return shape


def _make(array, dtype, device, requires_grad):
    return Tensor(array, dtype=dtype or array.dtype, device=device, requires_grad=requires_grad)


def tensor(data, dtype=None, device=None, requires_grad=False):
    return Tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)


def full(shape, fill_value, dtype=None, device=None, requires_grad=False):
    dtype = dt.to_dtype(dtype) or dt.infer(fill_value)
    device = get_device(device)
    shape = _shape((shape,) if isinstance(shape, (int, np.integer)) or not isinstance(
        shape, (tuple, list)) else shape, "full")
    t = Tensor._wrap(device.backend.full(shape, fill_value, dtype), device, False)
    return t.requires_grad_(True) if requires_grad else t


def zeros(*shape, dtype=None, device=None, requires_grad=False):
    return full(_shape(shape, "zeros"), 0, dtype or dt.float32, device, requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False):
    return full(_shape(shape, "ones"), 1, dtype or dt.float32, device, requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    return full(t.shape, 0, dtype or t.dtype, t.device, requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return full(t.shape, 1, dtype or t.dtype, t.device, requires_grad)


def arange(start, stop=None, step=1, dtype=None, device=None, requires_grad=False):
    if stop is None:
        start, stop = 0, start
    if step == 0:
        raise ValueError("arange: step must be non-zero")
    values = np.arange(start, stop, step)
    default = dt.float32 if values.dtype.kind == "f" else dt.int64  # PyTorch's defaults
    return _make(values, dt.to_dtype(dtype) or default, device, requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    _shape((n,) if m is None else (n, m), "eye")
    return _make(np.eye(n, m), dt.to_dtype(dtype) or dt.float32, device, requires_grad)


def _random(op, draw, shape, dtype, device, requires_grad):
    dtype = dt.to_dtype(dtype) or dt.float32
    if not dt.is_float(dtype):
        raise TypeError(f"{op}: random tensors must be float32 or float64, got {dtype}")
    return _make(draw(random.generator(), _shape(shape, op)), dtype, device, requires_grad)


def rand(*shape, dtype=None, device=None, requires_grad=False):
    """Uniform on [0, 1)."""
    return _random("rand", lambda g, s: g.random(s), shape, dtype, device, requires_grad)


def randn(*shape, dtype=None, device=None, requires_grad=False):
    """Standard normal."""
    return _random("randn", lambda g, s: g.standard_normal(s), shape, dtype, device,
                   requires_grad)


def uniform(*shape, low=0.0, high=1.0, dtype=None, device=None, requires_grad=False):
    if not low <= high:
        raise ValueError(f"uniform: expected low <= high, got low={low}, high={high}")
    return _random("uniform", lambda g, s: g.uniform(low, high, s), shape, dtype, device,
                   requires_grad)


def normal(*shape, mean=0.0, std=1.0, dtype=None, device=None, requires_grad=False):
    if std < 0:
        raise ValueError(f"normal: std must be non-negative, got {std}")
    return _random("normal", lambda g, s: g.normal(mean, std, s), shape, dtype, device,
                   requires_grad)


def randint(low, high, shape, device=None):
    shape = (shape,) if not isinstance(shape, (tuple, list)) else shape
    if not low < high:
        raise ValueError(f"randint: expected low < high, got low={low}, high={high}")
    return _make(random.generator().integers(low, high, _shape(shape, "randint")), dt.int64,
                 device, False)


@torch_names
def cat(tensors, axis=0):
    tensors = list(tensors)
    axis = V.check_cat(tensors, axis)
    return V.Cat.apply(*tensors, axis=axis)


concatenate = cat


@torch_names
def stack(tensors, axis=0):
    tensors = list(tensors)
    V.check_tensors("stack", tensors)
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors need the same shape, got {sorted(shapes)}")
    return cat([t.unsqueeze(axis) for t in tensors], axis)


where = E.where


def maximum(a, b):
    return a.maximum(b) if isinstance(a, Tensor) else b.maximum(a)


def minimum(a, b):
    return a.minimum(b) if isinstance(a, Tensor) else b.minimum(a)
