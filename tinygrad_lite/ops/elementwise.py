"""Element-wise ops: arithmetic with broadcasting and dtype promotion, math functions and
activations, clip, where, comparisons, copies.

Forward and backward both run the fused element-wise kernel of kernels.scalar; gradients of
broadcast operands are summed back to the operand's shape by `sum_to_shape`.
"""
import numpy as np

from .. import dtype as dt
from .. import ops
from ..autograd import Function
from ..kernels import scalar as S
from ..kernels.plan import broadcast_shape


def sum_to_shape(k, grad, shape):
    """Gradient of broadcasting `shape` up to grad.shape: sum over the stretched dimensions."""
    if tuple(grad.shape) == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and grad.shape[lead + i] != 1)
    return k.reshape(k.reduce(S.SUM, grad, axes, False), shape)


class Unary(Function):
    """y = OP(x; param); dx = GRAD(g, saved; param), where saved is y (SAVES_OUTPUT) or x."""
    OP = GRAD = None

    def forward(self, x, param=0.0):
        y = self.k.elementwise(self.OP, (x,), x.dtype, param=param)
        self.param, self.saved = param, (y if self.SAVES_OUTPUT else x)
        return y

    def backward(self, g):
        return (self.k.elementwise(self.GRAD, (g, self.saved), g.dtype, param=self.param),)


def _unary(name, op, grad, reads_output):
    return type(name, (Unary,), {"OP": op, "GRAD": grad, "SAVES_OUTPUT": reads_output,
                                 "SAVES": () if reads_output else (0,)})


Exp = _unary("Exp", S.EXP, S.MUL, True)                 # g * y
Log = _unary("Log", S.LOG, S.DIV, False)                # g / x
Sqrt = _unary("Sqrt", S.SQRT, S.SQRT_GRAD, True)        # g / 2y
Relu = _unary("Relu", S.RELU, S.RELU_GRAD, False)       # g where x > 0 (0 at 0)
Sigmoid = _unary("Sigmoid", S.SIGMOID, S.SIGMOID_GRAD, True)
Tanh = _unary("Tanh", S.TANH, S.TANH_GRAD, True)
LeakyRelu = _unary("LeakyRelu", S.LEAKY_RELU, S.LEAKY_RELU_GRAD, False)
StdFromVar = _unary("StdFromVar", S.SQRT, S.STD_GRAD, True)  # sqrt whose gradient is 0 at 0


class Neg(Function):
    def forward(self, x):
        return self.k.elementwise(S.NEG, (x,), x.dtype)

    def backward(self, g):
        return (self.k.elementwise(S.NEG, (g,), g.dtype),)


class Abs(Function):
    SAVES = (0,)

    def forward(self, x):
        self.x = x
        return self.k.elementwise(S.ABS, (x,), x.dtype)

    def backward(self, g):
        sign = self.k.elementwise(S.SIGN, (self.x,), g.dtype)
        return (self.k.elementwise(S.MUL, (g, sign), g.dtype),)


class Copy(Function):
    """clone(): a new storage with the same values and layout; the gradient passes through."""

    def forward(self, x, dtype=None):
        self.source = x.dtype
        return self.k.elementwise(S.COPY, (x,), dtype or x.dtype)

    def backward(self, g):
        return (self.k.elementwise(S.COPY, (g,), self.source),)


class Binary(Function):
    """Broadcasting binary op; subclasses give OP and the partial-derivative products, which
    run only for the inputs that need a gradient."""
    OP = None
    SAVES = (0, 1)

    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        if self.SAVES:
            self.a, self.b = a, b
        try:
            out = self.k.elementwise(self.OP, (a, b), a.dtype)
        except ValueError:  # say which op and which shapes
            broadcast_shape(type(self).__name__.lower(), a.shape, b.shape)
            raise
        if self.SAVES_OUTPUT:
            self.out = out
        return out

    def backward(self, g):
        k, (need_a, need_b), (shape_a, shape_b) = self.k, self.needs_input_grad, self.shapes
        return (sum_to_shape(k, self.grad_a(g), shape_a) if need_a else None,
                sum_to_shape(k, self.grad_b(g), shape_b) if need_b else None)


class Add(Binary):
    OP, SAVES = S.ADD, ()

    def grad_a(self, g):
        return g

    grad_b = grad_a


class Sub(Add):
    OP = S.SUB

    def grad_b(self, g):
        return self.k.elementwise(S.NEG, (g,), g.dtype)


class Mul(Binary):
    OP = S.MUL

    def grad_a(self, g):
        return self.k.elementwise(S.MUL, (g, self.b), g.dtype)

    def grad_b(self, g):
        return self.k.elementwise(S.MUL, (g, self.a), g.dtype)


class Div(Binary):
    OP = S.DIV

    def grad_a(self, g):
        return self.k.elementwise(S.DIV, (g, self.b), g.dtype)

    def grad_b(self, g):
        return self.k.elementwise(S.DIV_GRAD_B, (g, self.a, self.b), g.dtype)


class Pow(Binary):
    OP, SAVES_OUTPUT = S.POW, True

    def grad_a(self, g):
        return self.k.elementwise(S.POW_GRAD_BASE, (g, self.a, self.b), g.dtype)

    def grad_b(self, g):
        return self.k.elementwise(S.POW_GRAD_EXP, (g, self.a, self.b, self.out), g.dtype)


class Maximum(Binary):
    OP, GRAD = S.MAXIMUM, S.MAXIMUM_GRAD

    def grad_a(self, g):
        return self.k.elementwise(self.GRAD, (g, self.a, self.b), g.dtype)

    def grad_b(self, g):
        return self.k.elementwise(self.GRAD, (g, self.b, self.a), g.dtype)


class Minimum(Maximum):
    OP, GRAD = S.MINIMUM, S.MINIMUM_GRAD


class Clip(Function):
    SAVES = (0,)

    def forward(self, x, low, high):
        self.x, self.bounds = x, (low, high)
        return self.k.elementwise(S.CLIP, (x, low, high), x.dtype)

    def backward(self, g):
        mask = self.k.elementwise(S.IN_RANGE, (self.x,) + self.bounds, g.dtype)
        return (self.k.elementwise(S.MUL, (g, mask), g.dtype),)


class Where(Function):
    SAVES = (0,)

    def forward(self, cond, a, b):
        self.shapes = broadcast_shape("where", cond.shape, a.shape, b.shape), a.shape, b.shape
        self.cond = cond
        return self.k.elementwise(S.WHERE, (cond, a, b), a.dtype)

    def backward(self, g):
        k, (_, a_shape, b_shape) = self.k, self.shapes
        _, need_a, need_b = self.needs_input_grad
        zero = k.full((), 0, g.dtype)
        return (None,
                sum_to_shape(k, k.elementwise(S.WHERE, (self.cond, g, zero), g.dtype), a_shape)
                if need_a else None,
                sum_to_shape(k, k.elementwise(S.WHERE, (self.cond, zero, g), g.dtype), b_shape)
                if need_b else None)


FLOAT_ONLY = (Div, Pow, Exp, Log, Sqrt, Relu, Sigmoid, Tanh, LeakyRelu)  # ints become float32
COMPARISONS = {"eq": S.EQ, "ne": S.NE, "lt": S.LT, "le": S.LE, "gt": S.GT, "ge": S.GE}
_NUMBERS = (bool, int, float, np.number, np.bool_)


# ----- the Tensor-level entry points: operands, dtype promotion, casts -----
def operand(ref, other, op):
    """`other` (a tensor, Python/NumPy scalar, list or array) as a tensor on ref's device; a
    scalar takes ref's dtype as PyTorch's rules say (`int_tensor * 0.5` is float32)."""
    if isinstance(other, ops.Tensor):
        if other.device != ref.device:
            raise RuntimeError(f"{op}: expected both tensors on one device, got {ref.device} "
                               f"and {other.device}; move one with .to(device)")
        return other
    if isinstance(other, _NUMBERS):
        dtype = dt.promote_scalar(ref.dtype, other)
        return ref._wrap(ref.device.backend.full((), other, dtype), ref.device, False)
    if isinstance(other, (list, tuple, np.ndarray)):
        return ops.Tensor(other, device=ref.device)
    raise TypeError(f"{op}: expected a Tensor, a number or an array, got "
                    f"{type(other).__name__}")


def cast(x, dtype):
    """x as `dtype`: differentiable between floats, a plain copy otherwise."""
    dtype = dt.to_dtype(dtype)
    if dtype == x.dtype:
        return x
    if x.requires_grad and dt.is_float(dtype):
        return Copy.apply(x, dtype=dtype)
    return x._wrap(x.device.backend.elementwise(S.COPY, (x.array,), dtype), x.device, False)


def binary(fn, a, b, reverse=False):
    """fn applied to tensor `a` and anything `b`, both promoted to their common dtype."""
    b = operand(a, b, fn.__name__.lower())
    if reverse:
        a, b = b, a
    dtype = a.dtype
    if b.dtype != dtype or (fn in FLOAT_ONLY and not dt.is_float(dtype)):
        dtype = dt.promote(a.dtype, b.dtype)
        if fn in FLOAT_ONLY and not dt.is_float(dtype):
            dtype = dt.float32
        a, b = cast(a, dtype), cast(b, dtype)
    return fn.apply(a, b)


def unary(fn, x, param=0.0):
    """fn on x; the Unary ops are float math, so integer and bool inputs become float32."""
    float_math = issubclass(fn, Unary)
    if (float_math or fn in FLOAT_ONLY) and not dt.is_float(x.dtype):
        x = cast(x, dt.float32)
    return fn.apply(x, param=param) if float_math else fn.apply(x)


def compare(name, a, b):
    """Comparisons give bool tensors and no gradient."""
    b = operand(a, b, name)
    dtype = dt.promote(a.dtype, b.dtype)
    a, b = cast(a, dtype), cast(b, dtype)
    broadcast_shape(name, a.shape, b.shape)
    out = a.device.backend.elementwise(COMPARISONS[name], (a.array, b.array), dt.bool_)
    return a._wrap(out, a.device, False)


def clip(x, low=None, high=None):
    if low is None and high is None:
        raise ValueError("clip: at least one of min and max must be given")
    if not dt.is_float(x.dtype):
        raise TypeError(f"clip: expected a float tensor, got {x.dtype}")
    k = x.device.backend
    bounds = [k.full((), default if v is None else v, x.dtype)
              for v, default in ((low, -np.inf), (high, np.inf))]
    return Clip.apply(x, low=bounds[0], high=bounds[1])


def where(condition, x, y):
    """x where condition is true, else y; broadcasts all three. Gradients flow to x and y."""
    ref = next((t for t in (x, y, condition) if isinstance(t, ops.Tensor)), None)
    if ref is None:
        raise TypeError("where: expected at least one Tensor argument")
    cond = condition if isinstance(condition, ops.Tensor) else ops.Tensor(
        condition, device=ref.device)
    if cond.dtype != dt.bool_:
        raise TypeError(f"where: condition must be a bool tensor, got {cond.dtype}")
    x, y = operand(ref, x, "where"), operand(ref, y, "where")
    dtype = dt.promote(x.dtype, y.dtype)
    return Where.apply(cond, cast(x, dtype), cast(y, dtype))
