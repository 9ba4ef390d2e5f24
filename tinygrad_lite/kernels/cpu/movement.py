"""Movement on the CPU: NumPy views where NumPy has them (no copy), and an index-add kernel
for the gradient of indexing (which may read one element many times)."""
import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..plan import index_map
from .jit import kernel


def reshape(x, shape):
    return x.reshape(shape)


def permute(x, axes):
    return x.transpose(axes)


def expand(x, shape):
    # The same stride-0 view as np.broadcast_to, but writable: Numba types a read-only array
    # differently, so read-only operands compiled a second copy of every kernel. Nothing
    # writes through it: in-place ops refuse tensors whose elements share memory.
    view = np.broadcast_to(x, shape)
    return as_strided(x, view.shape, view.strides)


def getitem(x, key):
    return x[key]


def cat(arrays, axis):
    return np.concatenate(arrays, axis=axis)


def pad(x, widths, value):
    return np.pad(x, widths, mode="constant", constant_values=value)


@kernel
def _index_add_loop(out, index, values):
    # Serial on purpose: repeated indices make a parallel add race.
    for i in range(index.size):
        out[index[i]] += values[i]


def index_add(shape, key, values):
    """out = zeros(shape, values.dtype), then out[key] += values with repeated positions summed
    (np.add.at semantics): the gradient of x[key]. `key` is a normalised NumPy key (ints,
    slices, None, Ellipsis, int64 and bool arrays)."""
    out = np.zeros(shape, values.dtype)
    parts = key if isinstance(key, tuple) else (key,)
    if not any(isinstance(k, np.ndarray) for k in parts):
        out[key] = values  # basic indexing: every position at most once, so a plain store
        return out
    index = index_map(shape, lambda a: a[key])
    values = np.broadcast_to(values, index.shape).ravel()  # a copy only when strided
    _index_add_loop(out.reshape(-1), index.reshape(-1), values)
    return out
