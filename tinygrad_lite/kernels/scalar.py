"""The scalar math of every element-wise op and reduction, written once for both devices.

Each function here is plain Python over scalars. `compile_all(jit)` compiles them all for one
device (the CPU backend passes `numba.njit(inline="always")`, the CUDA backend
`numba.cuda.jit(device=True)`), and each backend calls them from its own loop (CPU: a prange
over chunks; CUDA: a grid-stride loop). An op is named by an integer code.
"""
import math
import types

# unary: y = f(x)
COPY, NEG, EXP, LOG, SQRT, ABS, SIGN, SQUARE = range(8)
# binary: z = f(x, y)
ADD, SUB, MUL, DIV, POW, MAXIMUM, MINIMUM, EQ, NE, LT, LE, GT, GE, SQRT_GRAD = range(14)
# ternary: w = f(x, y, z)
(WHERE, CLIP, IN_RANGE, DIV_GRAD_B, POW_GRAD_BASE, POW_GRAD_EXP, MAXIMUM_GRAD, MINIMUM_GRAD,
 TIE_SHARE) = range(9)


def unary(op, x):
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
    return x * x  # SQUARE


def binary(op, x, y):
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
    # SQRT_GRAD: x = upstream grad, y = sqrt output
    return x / (y + y)


def apply(arity, op, x, y, z):
    """The op of an element-wise kernel with `arity` operands (unused ones are ignored)."""
    if arity == 1:
        return unary(op, x)
    if arity == 2:
        return binary(op, x, y)
    return ternary(op, x, y, z)


def ternary(op, x, y, z):
    if op == WHERE:
        return y if x else z
    if op == CLIP:  # min(max(x, lo), hi), NaN kept
        return y if x < y else (z if x > z else x)
    if op == IN_RANGE:  # 1 where lo <= x <= hi: the pass-through mask of clip's gradient
        return 1.0 if (x >= y and x <= z) else 0.0
    if op == DIV_GRAD_B:  # x = upstream grad, y = numerator, z = denominator
        return -x * y / (z * z)
    if op == POW_GRAD_BASE:  # x = upstream grad, y = base, z = exponent
        return x * z * y ** (z - 1) if z != 0 else 0.0 * x
    if op == POW_GRAD_EXP:  # x = upstream grad, y = base, z = pow output; 0 where output is 0
        return x * z * math.log(y) if z != 0 else 0.0 * x
    # d max(y, z) / dy: 1 where y wins, 1/2 on a tie (split evenly, as PyTorch does), else 0
    if op == MAXIMUM_GRAD:  # x = upstream grad, y = this input, z = the other input
        return x * (1.0 if y > z else (0.5 if y == z else 0.0))
    if op == MINIMUM_GRAD:
        return x * (1.0 if y < z else (0.5 if y == z else 0.0))
    # TIE_SHARE: x = element, y = the reduced max/min, z = upstream grad / number of ties
    return z if x == y else 0.0 * z


# reductions: over the middle axis of an (A, K, B) view
SUM, MAX, MIN = range(3)


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
_FUNCTIONS = ("unary", "binary", "ternary", "apply", "reduce_step", "arg_better", "arg_index")


def compile_all(jit):
    """Every function above compiled with `jit`, calling each other's compiled versions
    (a jitted function resolves its globals when compiled, so each copy gets a scope holding
    the compiled callees). Returns a namespace: compiled.apply, compiled.reduce_step, ..."""
    scope = dict(globals())
    for name in _FUNCTIONS:
        fn = globals()[name]
        scope[name] = jit(types.FunctionType(fn.__code__, scope, name, fn.__defaults__))
    return types.SimpleNamespace(**{name: scope[name] for name in _FUNCTIONS})
