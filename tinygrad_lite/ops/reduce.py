"""Reductions: sum, max/min (gradient shared evenly between tied maxima), and the numerically
stable logsumexp / softmax / log_softmax. mean, var and std are compositions in tensor.py."""
import numpy as np

from ..autograd import Function
from ..kernels import scalar as S
from ..kernels.plan import reduced_shape


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
    OP = S.MAX

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


def _logsumexp(k, x, axes):
    m, _, s = _shifted_exp(k, x, axes)
    return k.elementwise(S.ADD, (k.elementwise(S.LOG, (s,), x.dtype), m), x.dtype)


class LogSumExp(Function):
    def forward(self, x, axes, keepdims):
        self.x, self.axes = x, axes
        self.out = _logsumexp(self.k, x, axes)
        return self.out if keepdims else self.k.reshape(
            self.out, reduced_shape(x.shape, axes, False))

    def backward(self, g):  # softmax(x) * g
        k, x = self.k, self.x
        p = k.elementwise(S.EXP, (k.elementwise(S.SUB, (x, self.out), x.dtype),), x.dtype)
        return (k.elementwise(S.MUL, (p, _keep(k, g, x.shape, self.axes)), g.dtype),)


class Softmax(Function):
    def forward(self, x, axis):
        k, self.axes = self.k, (axis,)
        _, e, s = _shifted_exp(k, x, self.axes)
        self.y = k.elementwise(S.DIV, (e, s), x.dtype)
        return self.y

    def backward(self, g):  # y * (g - sum(g * y))
        k, y = self.k, self.y
        dot = k.reduce(S.SUM, k.elementwise(S.MUL, (g, y), g.dtype), self.axes, True)
        return (k.elementwise(S.MUL, (y, k.elementwise(S.SUB, (g, dot), g.dtype)), g.dtype),)


class LogSoftmax(Function):
    def forward(self, x, axis):
        k, self.axes = self.k, (axis,)
        m, _, s = _shifted_exp(k, x, self.axes)
        shifted = k.elementwise(S.SUB, (x, m), x.dtype)
        self.y = k.elementwise(S.SUB, (shifted, k.elementwise(S.LOG, (s,), x.dtype)), x.dtype)
        return self.y

    def backward(self, g):  # g - softmax * sum(g)
        k, y = self.k, self.y
        total = k.reduce(S.SUM, g, self.axes, True)
        p = k.elementwise(S.EXP, (y,), y.dtype)
        return (k.elementwise(S.SUB, (g, k.elementwise(S.MUL, (p, total), g.dtype)), g.dtype),)


def argreduce(op, x, axis, keepdims):
    """argmax / argmin: int64 indices, no gradient; axis None means over the flattened tensor."""
    k = x.device.backend
    data = x.data
    if axis is None:
        data, axis = k.reshape(data, (-1,)), 0
    out = k.argreduce(op, data, axis)
    if keepdims:
        shape = [1] * x.ndim if x.ndim and axis is None else list(x.shape)
        if x.ndim:
            shape[axis] = 1
        out = k.reshape(out, tuple(shape))
    return type(x)._wrap(out, x.device, False)
