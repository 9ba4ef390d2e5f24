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
    if isinstance(data, np.ndarray):
        kind = data.dtype.kind
        if kind == "f":
            return float64 if data.dtype == float64 else float32
    else:
        kind = np.asarray(data).dtype.kind
    if kind == "b":
        return bool_
    if kind in "iu":
        return int64
    if kind == "f":
        return float32
    raise TypeError(f"cannot make a Tensor from data of dtype {np.asarray(data).dtype}: "
                    "expected numbers or bools")


def promote(a, b):
    """Result dtype of a binary op between two tensor dtypes (bool < int64 < float32 < float64)."""
    if a == b:
        return a
    order = (bool_, int64, float32, float64)
    return order[max(order.index(a), order.index(b))]


def promote_scalar(tensor_dtype, scalar):
    """A Python scalar adopts the tensor's dtype unless it is a float meeting an integer/bool
    tensor (then float32), exactly as PyTorch does for `int_tensor * 0.5`."""
    if isinstance(scalar, (bool, np.bool_)):
        return tensor_dtype
    if isinstance(scalar, (int, np.integer)):
        return int64 if tensor_dtype == bool_ else tensor_dtype
    return tensor_dtype if is_float(tensor_dtype) else float32
