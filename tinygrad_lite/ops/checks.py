"""Argument checks that several ops share, written once so that every op words the same
mistake the same way: the op's name, what it got and what it expected."""
import numbers

from .. import dtype as dt
from .. import ops


def pair(name, what, value, minimum):
    """An int >= minimum, or a pair of them (conv and pool sizes, strides, paddings), as a pair
    of ints. Not ints: TypeError; a sequence that is not a pair, or too small: ValueError."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in values):
        raise TypeError(f"{name}: {what} must be an int or a pair of ints, got {value!r}")
    if len(values) != 2 or any(v < minimum for v in values):
        raise ValueError(f"{name}: {what} must be an int >= {minimum} or a pair of them, got "
                         f"{value!r}")
    return int(values[0]), int(values[1])


def float_tensor(name, what, x):
    """x itself, when it is a float32 or float64 Tensor."""
    if not isinstance(x, ops.Tensor):
        raise TypeError(f"{name}: expected {what} to be a Tensor, got {type(x).__name__}")
    if not dt.is_float(x.dtype):
        raise TypeError(f"{name}: expected a float32 or float64 {what}, got {x.dtype}")
    return x
