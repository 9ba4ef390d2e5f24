"""Movement on the CPU: NumPy views where NumPy has them (no copy), and a scatter-add kernel
for the gradient of indexing (which may read one element many times)."""
import numpy as np

from .jit import kernel


def reshape(x, shape):
    return x.reshape(shape)


def permute(x, axes):
    return x.transpose(axes)


def expand(x, shape):
    return np.broadcast_to(x, shape)


def getitem(x, key):
    return x[key]


def cat(arrays, axis):
    return np.concatenate(arrays, axis=axis)


def pad(x, widths, value):
    return np.pad(x, widths, mode="constant", constant_values=value)


@kernel
def _scatter_add_loop(out, index, values):
    # Serial on purpose: repeated indices make a parallel add race.
    for i in range(index.size):
        out[index[i]] += values[i]


def scatter_add(shape, index, values):
    """out = zeros(shape); out.flat[index[i]] += values.flat[i] for every i."""
    out = np.zeros(int(np.prod(shape)), values.dtype)
    _scatter_add_loop(out, index.reshape(-1), values.ravel())
    return out.reshape(shape)
