"""The dtypes a Tensor may hold, and how two of them combine.

float32 is the default; float64 exists for gradient checks; int64 and bool hold labels, indices
and masks and never carry gradients.
"""
import numpy as np

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)

SUPPORTED = (float32, float64, int64, bool_)
FLOATS = (float32, float64)
_ALIASES = {"float32": float32, "float": float32, "float64": float64, "double": float64,
            "int64": int64, "long": int64, "int": int64, "bool": bool_}


def to_dtype(dtype):
    """Normalise a dtype given as a name, NumPy dtype or Python type; reject anything else."""
    if dtype is None:
        return None
    if isinstance(dtype, str):
        if dtype in _ALIASES:
            return _ALIASES[dtype]
        raise TypeError(f"unknown dtype {dtype!r}: expected one of {sorted(_ALIASES)}")
    if dtype is float:
        return float32
    if dtype is int:
        return int64
    if dtype is bool:
        return bool_
    try:
        d = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}: expected float32, float64, int64 "
                        "or bool") from None
    if d not in SUPPORTED:
        raise TypeError(f"dtype {d} is not supported: expected float32, float64, int64 or bool")
    return d


def is_float(dtype):
    return dtype in FLOATS


def infer(data):
    """The dtype a Tensor built from `data` gets when none is named: floats become float32
    (float64 arrays keep float64, as in PyTorch's from_numpy), ints int64, bools bool."""
    is_array = isinstance(data, np.ndarray)
    return _infer(data if is_array else np.asarray(data), is_array)


def _infer(array, keep_float64):
    kind = array.dtype.kind
    if kind == "b":
        return bool_
    if kind in "iu":
        return int64
    if kind == "f":
        return float64 if keep_float64 and array.dtype == float64 else float32
    raise TypeError(f"cannot make a Tensor from data of dtype {array.dtype}: expected numbers "
                    "or bools")


def to_numpy(data, dtype=None):
    """`data` (nested lists, scalars, arrays) as a NumPy array of `dtype` (inferred when None),
    with an error that says what was wrong: ragged nesting, values that overflow int64,
    strings or other objects."""
    dtype = to_dtype(dtype)
    try:
        raw = np.asarray(data)
    except ValueError as e:
        raise ValueError(f"Tensor: cannot make a tensor from a ragged nested sequence (every "
                         f"row must have the same length): {e}") from None
    if raw.dtype == object:
        for v in raw.reshape(-1):
            if isinstance(v, int) and not isinstance(v, bool) and not (
                    -2 ** 63 <= v < 2 ** 63):
                raise OverflowError(f"Tensor: the integer {v} does not fit in int64")
        raise TypeError(f"Tensor: expected numbers or bools, got an element of type "
                        f"{type(next(iter(raw.reshape(-1)), None)).__name__}")
    if raw.dtype.kind not in "biuf":
        raise TypeError(f"Tensor: expected numbers or bools, got data of dtype {raw.dtype}")
    dtype = dtype or _infer(raw, isinstance(data, np.ndarray))
    if raw.dtype.kind in "iu" and dtype == int64 and raw.dtype == np.uint64 and raw.size and \
            raw.max() >= 2 ** 63:
        raise OverflowError(f"Tensor: the integer {raw.max()} does not fit in int64")
    return np.array(raw, dtype=dtype)


def promote(a, b):
    """Result dtype of a binary op between two tensor dtypes (bool < int64 < float32 < float64)."""
    if a == b:
        return a
    order = (bool_, int64, float32, float64)
    return order[max(order.index(a), order.index(b))]


def promote_scalar(tensor_dtype, scalar):
    """A Python scalar adopts the tensor's dtype unless its category (bool < int < float) is
    higher: an int meeting a bool tensor gives int64, a float meeting an integer/bool tensor the
    default float32, exactly as PyTorch does for `int_tensor * 0.5`."""
    return result_type(tensor_dtype, 2, scalar_dtype(scalar), 0)


# PyTorch's categories: bool < integer < floating
_CATEGORY = {bool_: 0, int64: 1, float32: 2, float64: 2}
DIMMED, ZERO_DIM, SCALAR = 2, 1, 0  # the three groups of operands in PyTorch's promotion


def scalar_dtype(value):
    """The dtype a Python (or NumPy) scalar stands for in promotion: bool, int64, or the default
    float32 (a Python float is 'a float', not a float64)."""
    if isinstance(value, (bool, np.bool_)):
        return bool_
    if isinstance(value, (int, np.integer)):
        return int64
    return float32


def _combine(higher, lower):
    """PyTorch's combine_categories: the higher-priority group's dtype wins unless the lower
    group is of a higher category (bool < int < float); then the two are promoted."""
    if higher is None:
        return lower
    if lower is None or _CATEGORY[higher] >= _CATEGORY[lower]:
        return higher
    return promote(higher, lower)


def result_type(a, a_group, b, b_group):
    """The result dtype of a binary op as PyTorch computes it. Each operand is a dtype and its
    group: DIMMED (a tensor with dims), ZERO_DIM (a 0-d tensor) or SCALAR (a Python number,
    given as scalar_dtype's dtype). A group takes part only through its category: a 0-d
    float64 tensor times a float32 tensor is float32, an int64 tensor times a 0-d float64 tensor
    float64, an int64 tensor times 0.5 float32."""
    if a == b or a_group == b_group:
        return promote(a, b)
    if a_group < b_group:
        a, a_group, b, b_group = b, b_group, a, a_group
    return _combine(a, b)
