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
# g where y > 0 (0 at 0): y > 0 exactly where x > 0, so, as PyTorch, relu keeps its output, and
# writing its input in place afterwards is fine
Relu = _unary("Relu", S.RELU, S.RELU_GRAD, True)
Sigmoid = _unary("Sigmoid", S.SIGMOID, S.SIGMOID_GRAD, True)
Tanh = _unary("Tanh", S.TANH, S.TANH_GRAD, True)
LeakyRelu = _unary("LeakyRelu", S.LEAKY_RELU, S.LEAKY_RELU_GRAD, False)
StdFromVar = _unary("StdFromVar", S.SQRT, S.STD_GRAD, True)  # sqrt whose gradient is 0 at 0


class Neg(Function):
    def forward(self, x):
        if x.dtype == dt.bool_:  # PyTorch refuses too: -True is not a bool
            raise ops.DTypeError("neg: negation, the `-` operator, on a bool tensor is not "
                                 "supported; use `~x` or logical_not for a bool tensor")
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
    run only for the inputs that need a gradient.

    READS names the inputs each partial reads (grad_a's, grad_b's), OUTPUT_FOR_B whether
    grad_b reads the output. Forward keeps, and lists in SAVES for the in-place check, only
    what the partials that will run read: `d * 2` keeps the 2, not d, so `d += 1` afterwards
    is fine (as in PyTorch), and no array backward will not read stays alive."""
    OP = None
    READS = ((0, 1), (0, 1))
    OUTPUT_FOR_B = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        reads_a, reads_b = cls.READS  # the SAVES for each (need_a, need_b), worked out once
        cls.PLAN = {(na, nb): tuple(sorted(set((reads_a if na else ()) + (
            reads_b if nb else ())))) for na in (False, True) for nb in (False, True)}

    def forward(self, a, b):
        self.shapes = (a.shape, b.shape)
        need_b = self.needs_input_grad[1]
        self.SAVES = saves = self.PLAN[self.needs_input_grad]
        self.a = a if 0 in saves else None
        self.b = b if 1 in saves else None
        try:
            out = self.k.elementwise(self.OP, (a, b), a.dtype)
        except ValueError:  # say which op and which shapes
            ops.broadcast_shape(type(self).__name__.lower(), a.shape, b.shape)
            raise
        if self.OUTPUT_FOR_B and need_b:
            self.SAVES_OUTPUT, self.out = True, out
        return out

    def backward(self, g):
        k, (need_a, need_b), (shape_a, shape_b) = self.k, self.needs_input_grad, self.shapes
        return (sum_to_shape(k, self.grad_a(g), shape_a) if need_a else None,
                sum_to_shape(k, self.grad_b(g), shape_b) if need_b else None)


class Add(Binary):
    OP, READS = S.ADD, ((), ())

    def grad_a(self, g):
        return g

    grad_b = grad_a


class Sub(Add):
    OP = S.SUB

    def grad_b(self, g):
        return self.k.elementwise(S.NEG, (g,), g.dtype)


class Mul(Binary):
    OP, READS = S.MUL, ((1,), (0,))

    def grad_a(self, g):
        return self.k.elementwise(S.MUL, (g, self.b), g.dtype)

    def grad_b(self, g):
        return self.k.elementwise(S.MUL, (g, self.a), g.dtype)


class Div(Binary):
    OP, READS = S.DIV, ((1,), (0, 1))

    def grad_a(self, g):
        return self.k.elementwise(S.DIV, (g, self.b), g.dtype)

    def grad_b(self, g):
        return self.k.elementwise(S.DIV_GRAD_B, (g, self.a, self.b), g.dtype)


class Pow(Binary):
    OP, OUTPUT_FOR_B = S.POW, True

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
        self.shapes = (ops.broadcast_shape("where", cond.shape, a.shape, b.shape), a.shape,
                       b.shape)
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


FLOAT_ONLY = (Div, Exp, Log, Sqrt, Relu, Sigmoid, Tanh, LeakyRelu)  # ints become float32
COMPARISONS = {"eq": S.EQ, "ne": S.NE, "lt": S.LT, "le": S.LE, "gt": S.GT, "ge": S.GE}
_NUMBERS = (bool, int, float, np.number, np.bool_)
_SCALAR, _ZERO_DIM, _DIMMED = dt.SCALAR, dt.ZERO_DIM, dt.DIMMED


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


def _group(x):
    """x's group in PyTorch's promotion: a tensor with dims, a 0-d tensor, or a Python number
    (which counts only by its category: bool, int or float)."""
    if isinstance(x, ops.Tensor):
        return x.dtype, (_DIMMED if x.array.ndim else _ZERO_DIM)
    return dt.scalar_dtype(x), _SCALAR


def cast(x, dtype):
    """x as `dtype`: differentiable between floats, a plain copy otherwise."""
    dtype = dt.to_dtype(dtype)
    if dtype == x.dtype:
        return x
    if x.requires_grad and dt.is_float(dtype):
        return Copy.apply(x, dtype=dtype)
    return x._wrap(x.device.backend.elementwise(S.COPY, (x.array,), dtype), x.device, False)


def _as_tensor(ref, value, dtype, op):
    """A Tensor operand cast to `dtype`, or a Python number made a 0-d tensor of it."""
    if isinstance(value, ops.Tensor):
        return cast(value, dtype)
    return ref._wrap(ref.device.backend.full((), value, dtype), ref.device, False)


def binary(fn, a, b, reverse=False):
    """fn applied to tensor `a` and anything `b` (`b` first when reverse), both converted to
    the result dtype PyTorch gives: a 0-d tensor or a Python number takes part only by its
    category (bool < int < float), so `float32_tensor * float64_scalar_tensor` stays float32."""
    # The common case first, in a few attribute reads: two float tensors of one dtype on one
    # device, or a float tensor and a Python float or int. Everything else takes the general
    # path below, which gives the same answer for these too.
    a_dtype = a.array.dtype
    if a_dtype in dt.FLOATS:
        if isinstance(b, ops.Tensor):
            if b.device is a.device and b.array.dtype is a_dtype:
                return fn.apply(b, a) if reverse else fn.apply(a, b)
        elif b.__class__ is float or b.__class__ is int:
            b = a._wrap(a.device.backend.full((), b, a_dtype), a.device, False)
            return fn.apply(b, a) if reverse else fn.apply(a, b)
    if not isinstance(b, (ops.Tensor,) + _NUMBERS):
        b = operand(a, b, fn.__name__.lower())  # lists, arrays; TypeError for anything else
    elif isinstance(b, ops.Tensor) and b.device != a.device:
        operand(a, b, fn.__name__.lower())  # raises, naming both devices
    b_dtype, b_group = _group(b)
    dtype = a.dtype
    if b_dtype != dtype:
        dtype = dt.result_type(dtype, _DIMMED if a.array.ndim else _ZERO_DIM, b_dtype, b_group)
    if fn is Sub and (a.dtype == dt.bool_ or b_dtype == dt.bool_):
        raise ops.DTypeError(
            "sub: subtraction, the `-` operator, with a bool operand is not supported (got "
            f"{_describe(b if reverse else a)} - {_describe(a if reverse else b)}), as in "
            "PyTorch; convert the bool tensor with .long() or .float() first")
    if dtype not in dt.FLOATS:
        dtype = _integer_result(fn, a, b, reverse, dtype)
    if reverse:
        return fn.apply(_as_tensor(a, b, dtype, fn), cast(a, dtype))
    return fn.apply(cast(a, dtype), _as_tensor(a, b, dtype, fn))


def _describe(x):
    return f"a {x.dtype} tensor" if isinstance(x, ops.Tensor) else repr(x)


def _integer_result(fn, a, b, reverse, dtype):
    """The result dtype when the operands promote to int64 or bool, with PyTorch's refusals."""
    if fn is Pow:
        exponent = a if reverse else b
        if dtype == dt.bool_ and isinstance(exponent, ops.Tensor):  # PyTorch allows x ** True
            raise ops.DTypeError("pow: not implemented for two bool tensors; convert one "
                                 "with .long() or .float() first")
        if not isinstance(exponent, ops.Tensor) and exponent < 0:
            raise ops.DTypeError(f"pow: integers to negative integer powers are not allowed "
                                 f"(got exponent {exponent}); use a float base or exponent")
    return dt.float32 if fn in FLOAT_ONLY else dtype


def unary(fn, x, param=0.0):
    """fn on x; the Unary ops are float math, so integer and bool inputs become float32."""
    float_math = issubclass(fn, Unary)
    if (float_math or fn in FLOAT_ONLY) and not dt.is_float(x.dtype):
        x = cast(x, dt.float32)
    return fn.apply(x, param=param) if float_math else fn.apply(x)


def compare(name, a, b):
    """Comparisons give bool tensors and no gradient; the operands meet in PyTorch's result
    dtype (`int_tensor < 1.5` compares as floats)."""
    b = operand(a, b, name) if not isinstance(b, _NUMBERS) else b
    dtype = dt.result_type(a.dtype, _DIMMED if a.ndim else _ZERO_DIM, *_group(b))
    a, b = cast(a, dtype), _as_tensor(a, b, dtype, name)
    ops.broadcast_shape(name, a.shape, b.shape)
    out = a.device.backend.elementwise(COMPARISONS[name], (a.array, b.array), dt.bool_)
    return a._wrap(out, a.device, False)


_INT_LIMITS = (int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max))


def clip(x, low=None, high=None):
    """clamp(min, max), dtype as PyTorch gives it: an int tensor with int bounds stays int64,
    a float bound makes the result float32 (of a float tensor, its own dtype)."""
    if low is None and high is None:
        raise ValueError("clip: at least one of min and max must be given")
    dtype, group = x.dtype, (_DIMMED if x.ndim else _ZERO_DIM)
    for v in (low, high):
        if v is None:
            continue
        if not isinstance(v, _NUMBERS):
            raise TypeError(f"clip: min and max must be numbers or None, got "
                            f"{type(v).__name__}")
        dtype = dt.result_type(dtype, group, dt.scalar_dtype(v), _SCALAR)
    x = cast(x, dtype)
    k = x.device.backend
    lowest, highest = (-np.inf, np.inf) if dt.is_float(dtype) else (
        _INT_LIMITS if dtype == dt.int64 else (False, True))
    bounds = [k.full((), default if v is None else v, dtype)
              for v, default in ((low, lowest), (high, highest))]
    return Clip.apply(x, low=bounds[0], high=bounds[1])


def where(condition, x, y):
    """x where condition is true, else y; broadcasts all three. Gradients flow to x and y.
    x and y meet in PyTorch's result dtype (Python numbers count only by category)."""
    ref = next((t for t in (x, y, condition) if isinstance(t, ops.Tensor)), None)
    if ref is None:
        raise TypeError("where: expected at least one Tensor argument")
    cond = condition if isinstance(condition, ops.Tensor) else ops.Tensor(
        condition, device=ref.device)
    if cond.dtype != dt.bool_:
        raise TypeError(f"where: condition must be a bool tensor, got {cond.dtype}")
    x = x if isinstance(x, _NUMBERS) else operand(ref, x, "where")
    y = y if isinstance(y, _NUMBERS) else operand(ref, y, "where")
    (dx, gx), (dy, gy) = _group(x), _group(y)
    if gx == _SCALAR and gy == _SCALAR:  # two numbers: the condition's device, default dtypes
        dtype = dt.promote(dx, dy)
    else:
        dtype = dt.result_type(dx, gx, dy, gy)
    return Where.apply(cond, _as_tensor(cond, x, dtype, "where"),
                       _as_tensor(cond, y, dtype, "where"))
