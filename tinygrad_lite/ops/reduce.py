"""Reductions: sum, mean, var, std, max/min as PyTorch's (with a dim, a (values, indices)
named tuple whose gradient goes to the index; without one, the value, gradient shared evenly
between tied maxima), amax/amin (values only, any dims, ties shared evenly), argmax/argmin, and
the numerically stable logsumexp / softmax / log_softmax."""
from collections import namedtuple
from math import prod

import numpy as np

from .. import dtype as dt
from .. import ops
from ..autograd import Function
from ..kernels import scalar as S
from ..kernels.plan import reduced_shape
from . import DimError, ShapeError, normalize_axes
from . import elementwise as E


def _keep(k, array, shape, axes):
    """View a reduced array with the reduced axes kept as size 1, to broadcast against input."""
    return k.reshape(array, reduced_shape(shape, axes, True))


class Sum(Function):
    def forward(self, x, axes, keepdims):
        self.shape, self.axes = x.shape, axes
        return self.k.reduce(S.SUM, x, axes, keepdims)

    def backward(self, g):
        k = self.k
        return (k.elementwise(S.COPY, (_keep(k, g, self.shape, self.axes),), g.dtype,
                              self.shape),)


class Max(Function):
    OP, SAVES, SAVES_OUTPUT = S.MAX, (0,), True

    def forward(self, x, axes, keepdims):
        self.x, self.axes = x, axes
        self.out = self.k.reduce(self.OP, x, axes, True)
        return self.out if keepdims else self.k.reshape(
            self.out, reduced_shape(x.shape, axes, False))

    def backward(self, g):
        # d max / dx_i = 1/t for each of the t elements equal to the max, 0 elsewhere: the
        # deterministic, symmetric choice (PyTorch's amax does the same).
        k, x, out = self.k, self.x, self.out
        ties = k.reduce(S.SUM, k.elementwise(S.EQ, (x, out), g.dtype), self.axes, True)
        share = k.elementwise(S.DIV, (_keep(k, g, x.shape, self.axes), ties), g.dtype)
        return (k.elementwise(S.TIE_SHARE, (x, out, share), g.dtype),)


class Min(Max):
    OP = S.MIN


class MaxAlong(Function):
    """The values of max(dim) / min(dim) (op S.MAX or S.MIN) given the indices argreduce
    found (kept dims): the whole gradient goes to the element each index names, the first
    maximum at a tie, as PyTorch's max(dim) does. Reads no input in backward."""

    def forward(self, x, op, axis, indices, keepdims):
        self.shape, self.axis, self.indices = x.shape, axis, indices
        return self.k.reduce(op, x, (axis,), keepdims)

    def backward(self, g):
        k, shape, axis = self.k, self.shape, self.axis
        positions = k.from_numpy(np.arange(shape[axis], dtype=np.int64).reshape(
            (1,) * axis + (shape[axis],) + (1,) * (len(shape) - axis - 1)))
        # TIE_SHARE(position, index, g) is g where position == index, else 0: one kernel
        return (k.elementwise(S.TIE_SHARE, (positions, self.indices, _keep(
            k, g, shape, (axis,))), g.dtype, shape),)


def _shifted_exp(k, x, axes):
    """(m, e, s) with m the max over axes (kept dims), e = exp(x - m), s = sum(e): the shift by
    the max keeps exp from overflowing and puts the largest term at exactly 1."""
    m = k.reduce(S.MAX, x, axes, True)
    big = np.finfo(x.dtype).max  # an all -inf row shifts by a finite number, not by -inf
    m = k.elementwise(S.CLIP, (m, k.full((), -big, x.dtype), k.full((), big, x.dtype)), x.dtype)
    e = k.elementwise(S.EXP, (k.elementwise(S.SUB, (x, m), x.dtype),), x.dtype)
    return m, e, k.reduce(S.SUM, e, axes, True)


class LogSumExp(Function):
    SAVES, SAVES_OUTPUT = (0,), True

    def forward(self, x, axes, keepdims):
        k, self.x, self.axes = self.k, x, axes
        m, _, s = _shifted_exp(k, x, axes)
        self.out = k.elementwise(S.ADD, (k.elementwise(S.LOG, (s,), x.dtype), m), x.dtype)
        return self.out if keepdims else k.reshape(self.out, reduced_shape(x.shape, axes, False))

    def backward(self, g):  # softmax(x) * g
        k, x = self.k, self.x
        p = k.elementwise(S.EXP, (k.elementwise(S.SUB, (x, self.out), x.dtype),), x.dtype)
        return (k.elementwise(S.MUL, (p, _keep(k, g, x.shape, self.axes)), g.dtype),)


class Softmax(Function):
    SAVES_OUTPUT = True

    def forward(self, x, axes):
        k, self.axes = self.k, axes
        _, e, s = _shifted_exp(k, x, axes)
        self.y = k.elementwise(S.DIV, (e, s), x.dtype)
        return self.y

    def backward(self, g):  # y * (g - sum(g * y))
        k, y = self.k, self.y
        dot = k.reduce(S.SUM, k.elementwise(S.MUL, (g, y), g.dtype), self.axes, True)
        return (k.elementwise(S.MUL, (y, k.elementwise(S.SUB, (g, dot), g.dtype)), g.dtype),)


class LogSoftmax(Function):
    SAVES_OUTPUT = True

    def forward(self, x, axes):
        k, self.axes = self.k, axes
        m, _, s = _shifted_exp(k, x, axes)
        shifted = k.elementwise(S.SUB, (x, m), x.dtype)
        self.y = k.elementwise(S.SUB, (shifted, k.elementwise(S.LOG, (s,), x.dtype)), x.dtype)
        return self.y

    def backward(self, g):  # g - softmax * sum(g)
        k, y = self.k, self.y
        total = k.reduce(S.SUM, g, self.axes, True)
        p = k.elementwise(S.EXP, (y,), y.dtype)
        return (k.elementwise(S.SUB, (g, k.elementwise(S.MUL, (p, total), g.dtype)), g.dtype),)


# ----- the Tensor-level entry points -----
def sum(x, axis=None, keepdims=False):
    x = x if x.dtype != dt.bool_ else E.cast(x, dt.int64)
    return Sum.apply(x, axes=normalize_axes("sum", axis, x.ndim), keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    axes = normalize_axes("mean", axis, x.ndim)
    count = prod(x.shape[a] for a in axes)
    x = x if dt.is_float(x.dtype) else E.cast(x, dt.float32)
    return sum(x, axes, keepdims) * (1.0 / count if count else float("nan"))


def var(x, axis=None, keepdims=False, correction=1):
    """Variance with Bessel's correction by default (PyTorch's unbiased=True); divides by
    max(0, N - correction), so too few elements give inf (or nan for a constant row), as in
    PyTorch."""
    return _var("var", x, axis, keepdims, correction)


def _var(name, x, axis, keepdims, correction):
    axes = normalize_axes(name, axis, x.ndim)
    count = prod(x.shape[a] for a in axes)
    centred = x - mean(x, axes, keepdims=True)
    scale = 1.0 / (count - correction) if count > correction else float("inf")
    return sum(centred * centred, axes, keepdims) * scale


def std(x, axis=None, keepdims=False, correction=1):
    """sqrt(var), whose gradient is 0 where the std is 0 (PyTorch's rule: a constant feature
    must not fill a normalisation layer's gradient with NaN)."""
    return StdFromVar.apply(_var("std", x, axis, keepdims, correction), param=0.0)


# What max(dim) / min(dim) return, as torch.return_types.max / .min: `x.max(1)[0]` and
# `x.max(1).values` are the maxima, `.indices` where they are.
MaxResult = namedtuple("max", ["values", "indices"])
MinResult = namedtuple("min", ["values", "indices"])


def _check_not_empty(name, x, axes, whole):
    """An empty reduced dim has no maximum: PyTorch raises IndexError naming the dim (or, for
    the maximum of a whole empty tensor, RuntimeError); both classes are ValueErrors too."""
    if x.size == 0 and any(x.shape[a] == 0 for a in axes):
        raise (ShapeError if whole else DimError)(
            f"{name}: cannot reduce over an empty dimension of shape {x.shape}")


def extreme(fn, name, x, axis=None, keepdims=False):
    """Tensor.max / Tensor.min, PyTorch's three forms: no dim, the maximum (a tensor); an int
    dim, the named tuple (values, indices); a tensor, the element-wise maximum(x, other)."""
    if isinstance(axis, ops.Tensor):
        if keepdims:
            raise TypeError(f"{name}: keepdim has no meaning for the element-wise {name} of "
                            "two tensors")
        return E.binary(E.Maximum if fn is Max else E.Minimum, x, axis)
    if axis is None:
        axes = normalize_axes(name, None, x.ndim)
        _check_not_empty(name, x, axes, True)
        return fn.apply(x, axes=axes, keepdims=keepdims)
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name}: dim must be an int (then {name}(dim) returns (values, "
                        f"indices), as in PyTorch), got {axis!r}; for several dims use "
                        f"a{name}(dim={axis!r})")
    axis_ = normalize_axes(name, axis, x.ndim)
    result = MaxResult if fn is Max else MinResult
    if x.ndim == 0:  # PyTorch allows dim 0 or -1 here: the value itself, at index 0
        return result(E.Copy.apply(x), x._wrap(x.device.backend.full((), 0, dt.int64),
                                               x.device, False))
    _check_not_empty(name, x, axis_, False)
    k, a = x.device.backend, axis_[0]
    kept = k.reshape(k.argreduce(fn.OP, x.array, a), reduced_shape(x.shape, axis_, True))
    values = MaxAlong.apply(x, op=fn.OP, axis=a, indices=kept, keepdims=keepdims)
    indices = kept if keepdims else k.reshape(kept, reduced_shape(x.shape, axis_, False))
    return result(values, x._wrap(indices, x.device, False))


def _amax(fn, name, x, axis, keepdims):
    axes = normalize_axes(name, axis, x.ndim)
    _check_not_empty(name, x, axes, axis is None)
    return fn.apply(x, axes=axes, keepdims=keepdims)


def amax(x, axis=None, keepdims=False):
    """The maxima over one dim or a tuple of dims (all when None), values only, as
    torch.amax; the gradient is shared evenly between tied maxima."""
    return _amax(Max, "amax", x, axis, keepdims)


def amin(x, axis=None, keepdims=False):
    return _amax(Min, "amin", x, axis, keepdims)


def argreduce(op, name, x, axis=None, keepdims=False):
    """argmax / argmin: int64 indices, no gradient; axis None means over the flattened tensor."""
    if axis is not None and not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name}: axis must be an int or None, got {axis!r}")
    if x.size == 0:
        raise ShapeError(f"{name}: cannot take the {name} of an empty tensor")
    k, data = x.device.backend, x.array
    if axis is None or x.ndim == 0:
        data, axis_ = k.reshape(data, (-1,)), 0
    else:
        axis_ = normalize_axes(name, axis, x.ndim)[0]
    out = k.argreduce(op, data, axis_)
    if keepdims:
        shape = [1] * x.ndim if axis is None else list(x.shape)
        if x.ndim and axis is not None:
            shape[axis_] = 1
        out = k.reshape(out, tuple(shape))
    return x._wrap(out, x.device, False)


def _float_axes(name, x, axis):
    if not dt.is_float(x.dtype):
        raise TypeError(f"{name}: expected a float tensor, got {x.dtype}")
    return normalize_axes(name, axis, x.ndim)


def logsumexp(x, axis=None, keepdims=False):
    return LogSumExp.apply(x, axes=_float_axes("logsumexp", x, axis), keepdims=keepdims)


def softmax(x, axis=-1):
    """Softmax over one axis or a tuple of axes (a 0-d tensor gives 1)."""
    return Softmax.apply(x, axes=_float_axes("softmax", x, axis))


def log_softmax(x, axis=-1):
    return LogSoftmax.apply(x, axes=_float_axes("log_softmax", x, axis))


StdFromVar = E.StdFromVar
