"""Differentiable ops, one module per family; each Function keeps forward and backward together.

Also the exceptions ops raise, each deriving from the Python class this library always used and
from the one PyTorch raises for the same mistake, so that `except IndexError` (torch's habit for
a bad dim) and `except ValueError` (this library's) both catch it."""
import functools

import numpy as np

from ..kernels import plan as _plan

# The Tensor class, set by tensor.py (which imports the ops, so they cannot import it). Ops
# build plain Tensors even from subclasses such as nn.Parameter.
Tensor = None


class DimError(IndexError, ValueError):
    """A dim (axis) out of range for the tensor: PyTorch raises IndexError."""


class ShapeError(RuntimeError, ValueError):
    """Shapes that do not fit the op (matmul, reshape, permute, broadcasting, cat, expand,
    split) or dims that repeat: PyTorch raises RuntimeError."""


class DTypeError(TypeError, RuntimeError):
    """A dtype the op does not accept (`bool - bool`, float class labels): PyTorch raises
    RuntimeError, this library TypeError."""


class LabelError(IndexError, ValueError):
    """A class label outside [0, C): PyTorch raises IndexError."""


def normalize_axes(op, axis, ndim):
    """axis given as None, an int or a tuple -> sorted tuple of non-negative axes; DimError for
    an axis out of range, ShapeError for one given twice."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axes = (axis,)
    elif isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:
        raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
    n, out = max(ndim, 1), []  # a 0-d tensor accepts axis 0 and -1, as in PyTorch
    for a in axes:
        if isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
        if not -n <= a < n:
            raise DimError(f"{op}: axis {a} is out of range for a tensor with {ndim} "
                           f"dimensions (expected {-n} <= axis < {n})")
        out.append(int(a) % n)
    if len(set(out)) != len(out):
        raise ShapeError(f"{op}: axis {axis!r} repeats a dimension")
    return tuple(sorted(out)) if ndim else ()


def broadcast_shape(op, *shapes):
    """kernels.plan.broadcast_shape, raising ShapeError (PyTorch's RuntimeError too)."""
    try:
        return _plan.broadcast_shape(op, *shapes)
    except ValueError as e:
        raise ShapeError(str(e)) from None


def torch_names(fn):
    """Accept PyTorch's `dim=` and `keepdim=` for `axis=` and `keepdims=`."""
    @functools.wraps(fn)
    def method(self, *args, **kwargs):
        for torch_name, name in (("dim", "axis"), ("keepdim", "keepdims")):
            if torch_name in kwargs:
                if name in kwargs:
                    raise TypeError(f"{fn.__name__}: got both {name}= and its alias "
                                    f"{torch_name}=")
                kwargs[name] = kwargs.pop(torch_name)
        return fn(self, *args, **kwargs)
    return method
