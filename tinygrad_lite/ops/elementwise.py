"""Element-wise ops: arithmetic with broadcasting, math functions, clip, where, comparisons.

Forward and backward both run the fused element-wise kernel of kernels.scalar; gradients of
broadcast operands are summed back to the operand's shape by `sum_to_shape`.
"""

from .. import dtype as dt
from ..autograd import Function
from ..kernels import scalar as S
from ..kernels.plan import broadcast_shape


def sum_to_shape(k, grad, shape):
    """Gradient of broadcasting `shape` up to grad.shape: sum over the stretched dimensions."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and grad.shape[lead + i] != 1)
    return k.reshape(k.reduce(S.SUM, grad, axes, False), shape)


class Unary(Function):
    OP = None

    def forward(self, x):
        y = self.k.elementwise(self.OP, (x,), x.dtype)
        self.x, self.y = x, y
        return y


class Neg(Unary):
    OP = S.NEG

    def backward(self, g):
        return (self.k.elementwise(S.NEG, (g,), g.dtype),)


class Exp(Unary):
    OP = S.EXP

    def backward(self, g):
        return (self.k.elementwise(S.MUL, (g, self.y), g.dtype),)


class Log(Unary):
    OP = S.LOG

    def backward(self, g):
        return (self.k.elementwise(S.DIV, (g, self.x), g.dtype),)


class Sqrt(Unary):
    OP = S.SQRT

    def backward(self, g):
        return (self.k.elementwise(S.SQRT_GRAD, (g, self.y), g.dtype),)


class Abs(Unary):
    OP = S.ABS

    def backward(self, g):
        sign = self.k.elementwise(S.SIGN, (self.x,), g.dtype)
        return (self.k.elementwise(S.MUL, (g, sign), g.dtype),)


class Binary(Function):
    """Broadcasting binary op; subclasses give OP and the two partial-derivative products."""
    OP = None

    def forward(self, a, b):
        self.a, self.b = a, b
        try:
            self.out = self.k.elementwise(self.OP, (a, b), a.dtype)
        except ValueError:  # say which op and which shapes
            broadcast_shape(type(self).__name__.lower(), a.shape, b.shape)
            raise
        return self.out

    def backward(self, g):
        ga, gb = self.partials(g)
        k = self.k
        return (None if ga is None else sum_to_shape(k, ga, self.a.shape),
                None if gb is None else sum_to_shape(k, gb, self.b.shape))


class Add(Binary):
    OP = S.ADD

    def partials(self, g):
        return g, g


class Sub(Binary):
    OP = S.SUB

    def partials(self, g):
        return g, self.k.elementwise(S.NEG, (g,), g.dtype)


class Mul(Binary):
    OP = S.MUL

    def partials(self, g):
        k = self.k
        return (k.elementwise(S.MUL, (g, self.b), g.dtype),
                k.elementwise(S.MUL, (g, self.a), g.dtype))


class Div(Binary):
    OP = S.DIV

    def partials(self, g):
        k = self.k
        return (k.elementwise(S.DIV, (g, self.b), g.dtype),
                k.elementwise(S.DIV_GRAD_B, (g, self.a, self.b), g.dtype))


class Pow(Binary):
    OP = S.POW

    def partials(self, g):
        k = self.k
        return (k.elementwise(S.POW_GRAD_BASE, (g, self.a, self.b), g.dtype),
                k.elementwise(S.POW_GRAD_EXP, (g, self.a, self.out), g.dtype))


class Maximum(Binary):
    OP, GRAD = S.MAXIMUM, S.MAXIMUM_GRAD

    def partials(self, g):
        k = self.k
        return (k.elementwise(self.GRAD, (g, self.a, self.b), g.dtype),
                k.elementwise(self.GRAD, (g, self.b, self.a), g.dtype))


class Minimum(Maximum):
    OP, GRAD = S.MINIMUM, S.MINIMUM_GRAD


class Clip(Function):
    def forward(self, x, low, high):
        self.x, self.bounds = x, (low, high)
        return self.k.elementwise(S.CLIP, (x, low, high), x.dtype)

    def backward(self, g):
        mask = self.k.elementwise(S.IN_RANGE, (self.x,) + self.bounds, g.dtype)
        return (self.k.elementwise(S.MUL, (g, mask), g.dtype),)


class Where(Function):
    def forward(self, cond, a, b):
        self.shapes = broadcast_shape("where", cond.shape, a.shape, b.shape), a.shape, b.shape
        self.cond = cond
        return self.k.elementwise(S.WHERE, (cond, a, b), a.dtype)

    def backward(self, g):
        k, (_, a_shape, b_shape) = self.k, self.shapes
        zero = k.full((), 0, g.dtype)
        return (None,
                sum_to_shape(k, k.elementwise(S.WHERE, (self.cond, g, zero), g.dtype), a_shape),
                sum_to_shape(k, k.elementwise(S.WHERE, (self.cond, zero, g), g.dtype), b_shape))


class Cast(Function):
    def forward(self, x, dtype):
        self.source = x.dtype
        return self.k.elementwise(S.COPY, (x,), dtype)

    def backward(self, g):
        return (self.k.elementwise(S.COPY, (g,), self.source) if dt.is_float(self.source)
                else None,)


def compare(op, name, a, b):
    """Comparisons give bool tensors and no gradient."""
    broadcast_shape(name, a.shape, b.shape)
    out = a.device.backend.elementwise(op, (a.data, b.data), dt.bool_)
    return type(a)._wrap(out, a.device, False)


COMPARISONS = {"eq": S.EQ, "ne": S.NE, "lt": S.LT, "le": S.LE, "gt": S.GT, "ge": S.GE}
FLOAT_ONLY = (Div, Pow, Exp, Log, Sqrt)  # integer inputs are promoted to float32 first
