"""Reductions: sum, mean, var, std, max/min (gradient shared evenly between tied maxima),
argmax/argmin, and the numerically stable logsumexp / softmax / log_softmax."""
from math import prod

import numpy as np

from .. import dtype as dt
from ..autograd import Function
from ..kernels import scalar as S
from ..kernels.plan import normalize_axes, reduced_shape
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
    axes = normalize_axes("var", axis, x.ndim)
    count = prod(x.shape[a] for a in axes)
    centred = x - mean(x, axes, keepdims=True)
    scale = 1.0 / (count - correction) if count > correction else float("inf")
    return sum(centred * centred, axes, keepdims) * scale


def std(x, axis=None, keepdims=False, correction=1):
    """sqrt(var), whose gradient is 0 where the std is 0 (PyTorch's rule: a constant feature
    must not fill a normalisation layer's gradient with NaN)."""
    return StdFromVar.apply(var(x, axis, keepdims, correction), param=0.0)


def extreme(fn, name, x, axis=None, keepdims=False):
    axes = normalize_axes(name, axis, x.ndim)
    if any(x.shape[a] == 0 for a in axes):
        raise ValueError(f"{name}: cannot reduce over an empty dimension of shape {x.shape}")
    return fn.apply(x, axes=axes, keepdims=keepdims)


def argreduce(op, name, x, axis=None, keepdims=False):
    """argmax / argmin: int64 indices, no gradient; axis None means over the flattened tensor."""
    if axis is not None and not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name}: axis must be an int or None, got {axis!r}")
    if x.size == 0:
        raise ValueError(f"{name}: cannot take the {name} of an empty tensor")
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
