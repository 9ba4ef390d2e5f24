"""The scalar math of every element-wise op and reduction, written once for both devices.

Each function here is plain Python over scalars. `compile_all(jit)` compiles them all for one
device (the CPU backend passes `numba.njit(inline="always")`, the CUDA backend
`numba.cuda.jit(device=True)`), and each backend calls them from its own loop (CPU: a prange
over chunks; CUDA: a grid-stride loop).

An op is named by an integer code that is unique across arities: the code says how many
operands the op reads (`arity(op)`), so a kernel never needs to be told. Constant parameters
(a slope, an alpha) are not operands: every kernel passes one scalar `p` to every op, and the
ops that have a parameter read it (0.0 for the others).
"""
import math
import types

_BLOCK = 32  # codes of arity n are (n - 1) * _BLOCK + i, i < _BLOCK

# unary: y = f(x)
(COPY, NEG, EXP, LOG, SQRT, ABS, SIGN, SQUARE, RELU, SIGMOID, TANH, LEAKY_RELU,
 ELU, SELU, GELU, GELU_TANH, SWISH) = range(17)
# binary: z = f(x, y). *_GRAD ops take x = upstream gradient and y = what forward saved.
(ADD, SUB, MUL, DIV, POW, MAXIMUM, MINIMUM, EQ, NE, LT, LE, GT, GE, SQRT_GRAD, STD_GRAD,
 RELU_GRAD, SIGMOID_GRAD, TANH_GRAD, LEAKY_RELU_GRAD,
 ELU_GRAD, SELU_GRAD, GELU_GRAD, GELU_TANH_GRAD, SWISH_GRAD, PRELU, PRELU_SLOPE,
 PRELU_GRAD_WEIGHT) = range(_BLOCK, _BLOCK + 27)
# ternary: w = f(x, y, z)
(WHERE, CLIP, IN_RANGE, DIV_GRAD_B, POW_GRAD_BASE, MAXIMUM_GRAD, MINIMUM_GRAD,
 TIE_SHARE) = range(2 * _BLOCK, 2 * _BLOCK + 8)
# quaternary: v = f(x, y, z, w)
(POW_GRAD_EXP,) = range(3 * _BLOCK, 3 * _BLOCK + 1)

_COUNTS = (17, 27, 8, 1)  # how many codes each arity defines
MAX_ARITY = len(_COUNTS)

# constants of the activations (floats, not op codes)
SELU_ALPHA = 1.6732632423543772  # SELU's fixed alpha and scale (Klambauer et al., 2017)
SELU_SCALE = 1.0507009873554805
INV_SQRT2 = 0.7071067811865476  # 1 / sqrt(2): GELU's Phi(x) = erfc(-x / sqrt(2)) / 2
INV_SQRT_2PI = 0.3989422804014327  # 1 / sqrt(2 pi): the normal density's factor
GELU_TANH_BETA = 0.7978845608028654  # sqrt(2 / pi), as in PyTorch's approximate="tanh"
GELU_TANH_KAPPA = 0.044715


def arity(op):
    """How many operands op reads; ValueError for a code no op has."""
    if isinstance(op, int) and op >= 0:
        n, i = divmod(op, _BLOCK)
        if n < MAX_ARITY and i < _COUNTS[n]:
            return n + 1
    raise ValueError(f"elementwise: unknown op code {op!r}")


def check(op, count):
    """Raise unless op is a known code that reads exactly `count` operands."""
    n = arity(op)
    if n != count:
        raise ValueError(f"elementwise: op code {op} reads {n} operand(s), got {count}")


def unary(op, x, p):
    return unary_core(op, x, p) if op < ELU else unary_activation(op, x, p)


def unary_core(op, x, p):
    """The unary ops up to LEAKY_RELU."""
    if op == COPY:
        return x
    if op == NEG:
        return -x
    if op == EXP:
        return math.exp(x)
    if op == LOG:
        return math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan)
    if op == SQRT:
        return math.sqrt(x) if x >= 0 else math.nan
    if op == ABS:
        return abs(x)
    if op == SIGN:  # NaN stays NaN (x * 0.0)
        return 1.0 if x > 0 else (-1.0 if x < 0 else x * 0.0)
    if op == SQUARE:
        return x * x
    if op == RELU:  # NaN propagates
        return 0.0 * x if x <= 0 else x
    if op == SIGMOID:  # exp of a non-positive number only: no overflow for any x
        if x >= 0:
            return 1.0 / (1.0 + math.exp(-x))
        e = math.exp(x)
        return e / (1.0 + e)
    if op == TANH:
        return math.tanh(x)
    # LEAKY_RELU, p = negative slope
    return x if x > 0 else x * p


def unary_activation(op, x, p):
    """The unary ops from ELU on. They exponentiate only non-positive numbers, so no input
    overflows."""
    if op == ELU:  # p = alpha; expm1 keeps the small negative values exact
        return x if x > 0 else p * math.expm1(x)
    if op == SELU:
        return SELU_SCALE * (x if x > 0 else SELU_ALPHA * math.expm1(x))
    if op == GELU:  # x * Phi(x); erfc keeps the left tail accurate (it is 0, not 0 * inf)
        return 0.5 * x * math.erfc(-x * INV_SQRT2)
    if op == GELU_TANH:
        return 0.5 * x * (1.0 + math.tanh(GELU_TANH_BETA * (x + GELU_TANH_KAPPA * x * x * x)))
    # SWISH, p = beta: x * sigmoid(beta * x), e = exp(-|beta x|)
    e = math.exp(-abs(p * x))
    return x / (1.0 + e) if p * x >= 0 else x * e / (1.0 + e)


def binary(op, x, y, p):
    return binary_core(op, x, y, p) if op < ELU_GRAD else binary_activation(op, x, y, p)


def binary_core(op, x, y, p):
    """The binary ops up to LEAKY_RELU_GRAD."""
    if op == ADD:
        return x + y
    if op == SUB:
        return x - y
    if op == MUL:
        return x * y
    if op == DIV:
        return x / y
    if op == POW:
        return x ** y
    if op == MAXIMUM:
        return x if (x >= y or x != x) else y  # NaN propagates, as in NumPy
    if op == MINIMUM:
        return x if (x <= y or x != x) else y
    if op == EQ:
        return x == y
    if op == NE:
        return x != y
    if op == LT:
        return x < y
    if op == LE:
        return x <= y
    if op == GT:
        return x > y
    if op == GE:
        return x >= y
    if op == SQRT_GRAD:  # y = sqrt output
        return x / (y + y)
    if op == STD_GRAD:  # y = std output; 0 where std is 0, as PyTorch: a constant row gives 0
        return x / (y + y) if y != 0 else 0.0 * x
    if op == RELU_GRAD:  # y = relu output (ReLU saves it, as PyTorch does); the gradient at 0 is 0
        return x if y > 0 else 0.0 * x
    if op == SIGMOID_GRAD:  # y = sigmoid output
        return x * y * (1.0 - y)
    if op == TANH_GRAD:  # y = tanh output
        return x * (1.0 - y * y)
    # LEAKY_RELU_GRAD, y = input, p = negative slope
    return x if y > 0 else x * p


def binary_activation(op, x, y, p):
    """The binary ops from ELU_GRAD on: activations' gradients and PReLU."""
    if op == ELU_GRAD:  # y = input, p = alpha
        return x if y > 0 else x * p * math.exp(y)
    if op == SELU_GRAD:  # y = input
        return x * SELU_SCALE * (1.0 if y > 0 else SELU_ALPHA * math.exp(y))
    if op == GELU_GRAD:  # y = input: Phi(y) + y * phi(y); y * y overflowing gives exp(-inf) = 0
        return x * (0.5 * math.erfc(-y * INV_SQRT2) + y * INV_SQRT_2PI * math.exp(-0.5 * y * y))
    if op == GELU_TANH_GRAD:  # y = input
        t = math.tanh(GELU_TANH_BETA * (y + GELU_TANH_KAPPA * y * y * y))
        s = 1.0 - t * t  # 0 far out, where y * y may be inf: no 0 * inf then
        return x * (0.5 * (1.0 + t) + (0.5 * y * s * GELU_TANH_BETA * (
            1.0 + 3.0 * GELU_TANH_KAPPA * y * y) if s != 0 else 0.0))
    if op == SWISH_GRAD:  # y = input, p = beta: s + beta y s (1 - s), s = sigmoid(beta y);
        e = math.exp(-abs(p * y))  # with e = exp(-|beta y|), s (1 - s) = e / (1 + e)^2
        q = 1.0 / (1.0 + e)
        return x * ((q if p * y >= 0 else e * q) + p * y * e * q * q)
    if op == PRELU:  # x = input, y = slope (broadcast)
        return x if x > 0 else y * x
    if op == PRELU_SLOPE:  # x = input, y = slope: d prelu / d input (the slope at 0, as PyTorch)
        return 1.0 if x > 0 else y
    # PRELU_GRAD_WEIGHT: x = upstream grad, y = input: d prelu / d slope times the gradient
    return 0.0 * x if y > 0 else x * y


def ternary(op, x, y, z, p):
    if op == WHERE:
        return y if x else z
    if op == CLIP:  # min(max(x, lo), hi) with NaN kept: all hi when lo > hi, as in PyTorch
        low = y if x < y else x
        return z if low > z else low
    if op == IN_RANGE:  # 1 where lo <= x <= hi: the pass-through mask of clip's gradient
        return 1.0 if (x >= y and x <= z) else 0.0
    if op == DIV_GRAD_B:  # x = upstream grad, y = numerator, z = denominator
        return -x * y / (z * z)
    if op == POW_GRAD_BASE:  # x = upstream grad, y = base, z = exponent
        return x * z * y ** (z - 1) if z != 0 else 0.0 * x
    # d max(y, z) / dy: 1 where y wins, 1/2 on a tie (split evenly, as PyTorch does), else 0
    if op == MAXIMUM_GRAD:  # x = upstream grad, y = this input, z = the other input
        return x * (1.0 if y > z else (0.5 if y == z else 0.0))
    if op == MINIMUM_GRAD:
        return x * (1.0 if y < z else (0.5 if y == z else 0.0))
    # TIE_SHARE: x = element, y = the reduced max/min, z = upstream grad / number of ties
    return z if x == y else 0.0 * z


def quaternary(op, x, y, z, w, p):
    # POW_GRAD_EXP: x = upstream grad, y = base, z = exponent, w = pow output. PyTorch's rule:
    # 0 where base == 0 and exponent >= 0 (so 0 ** 0 has d/d exponent 0, not -inf).
    if y == 0 and z >= 0:
        return 0.0 * x
    return x * w * math.log(y) if y > 0 else x * w * (-math.inf if y == 0 else math.nan)


def apply_unary_core(op, x, y, z, w, p):
    return unary_core(op, x, p)


def apply_unary_activation(op, x, y, z, w, p):
    return unary_activation(op, x, p)


def apply_binary_core(op, x, y, z, w, p):
    return binary_core(op, x, y, p)


def apply_binary_activation(op, x, y, z, w, p):
    return binary_activation(op, x, y, p)


def apply_ternary(op, x, y, z, w, p):
    return ternary(op, x, y, z, p)


def apply_quaternary(op, x, y, z, w, p):
    return quaternary(op, x, y, z, w, p)


# apply's signature over one short chain of branches: a kernel specialised on its op inlines
# just that chain (Numba types every branch it inlines: compiling an element-wise kernel
# measured 1.8 s with `apply`, 0.65 s with the chain of its arity, more as chains grow).
ADAPTERS = ("apply_unary_core", "apply_unary_activation", "apply_binary_core",
            "apply_binary_activation", "apply_ternary", "apply_quaternary")


def adapter(op):
    """The name of the shortest adapter in ADAPTERS that computes op."""
    n = arity(op)
    if n == 1:
        return "apply_unary_core" if op < ELU else "apply_unary_activation"
    if n == 2:
        return "apply_binary_core" if op < ELU_GRAD else "apply_binary_activation"
    return "apply_ternary" if n == 3 else "apply_quaternary"


def apply(op, x, y, z, w, p):
    """The op named by `op`, on as many of x, y, z, w as it reads; p is its parameter."""
    if op < _BLOCK:
        return unary(op, x, p)
    if op < 2 * _BLOCK:
        return binary(op, x, y, p)
    if op < 3 * _BLOCK:
        return ternary(op, x, y, z, p)
    return quaternary(op, x, y, z, w, p)


# reductions: over the middle axis of an (A, K, B) view
SUM, MAX, MIN = range(3)
REDUCTIONS = (SUM, MAX, MIN)


def reduce_step(op, acc, x):
    """Fold one element into a running reduction. NaN wins max and min, as in NumPy."""
    if op == SUM:
        return acc + x
    if op == MAX:
        return x if (x > acc or x != x) and acc == acc else acc
    return x if (x < acc or x != x) and acc == acc else acc


def arg_better(op, x, best):
    """Does x replace the running best of argmax (op MAX) / argmin (op MIN)? Strict comparison
    keeps the first of equal values, so ties resolve to the lowest index; the first NaN wins."""
    if best != best:
        return False
    if x != x:
        return True
    return x > best if op == MAX else x < best


def arg_index(op, x, base, K, B):
    """Position k of the best of x[base + k * B] for k < K (K >= 1), by arg_better."""
    best, arg = x[base], 0
    for k in range(1, K):
        v = x[base + k * B]
        if arg_better(op, v, best):
            best, arg = v, k
    return arg


# Callees before callers: each function is compiled after everything it calls.
_FUNCTIONS = ("unary_core", "unary_activation", "unary", "binary_core", "binary_activation",
              "binary", "ternary", "quaternary") + ADAPTERS + (
    "apply", "reduce_step", "arg_better", "arg_index")


def compile_all(jit):
    """Every function above compiled with `jit`, calling each other's compiled versions
    (a jitted function resolves its globals when compiled, so each copy gets a scope holding
    the compiled callees). Returns a namespace: compiled.apply, compiled.reduce_step, ..."""
    scope = dict(globals())
    for name in _FUNCTIONS:
        fn = globals()[name]
        scope[name] = jit(types.FunctionType(fn.__code__, scope, name, fn.__defaults__))
    return types.SimpleNamespace(**{name: scope[name] for name in _FUNCTIONS})
