"""Movement on the GPU. Device arrays have no strided views here, so every move but reshape
materialises: a gather through an index map from `kernels.plan` (computed on the host,
uploaded), a scatter into a bigger output (cat, pad), or an atomic scatter-add (the gradient of
a gather, where repeated indices must not race)."""
from functools import lru_cache

import numpy as np
from numba import cuda

from ..plan import expand_map, index_map, permute_map
from .jit import kernel, launch
from .memory import empty, flat, full, is_array, upload


@kernel
def _gather(x, index, out):
    for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[t] = x[index[t]]


@kernel
def _scatter(values, index, out):
    for t in range(cuda.grid(1), index.size, cuda.gridsize(1)):
        out[index[t]] = values[t]


@kernel
def _scatter_add(values, index, out):
    for t in range(cuda.grid(1), index.size, cuda.gridsize(1)):
        cuda.atomic.add(out, index[t], values[t])


# Device copies of the maps that depend on shapes only, so that repeated moves skip the
# host-to-device copy. Kept few: a map holds 8 bytes per element of its output.
@lru_cache(maxsize=64)
def _permute_index(shape, axes):
    return upload(permute_map(shape, axes))


@lru_cache(maxsize=64)
def _expand_index(shape, out_shape):
    return upload(expand_map(shape, out_shape))


@lru_cache(maxsize=64)
def _block_index(out_shape, starts, sizes):
    """Flat indices of the block out[starts : starts + sizes] of an `out_shape` array."""
    key = tuple(slice(s, s + n) for s, n in zip(starts, sizes))
    return upload(index_map(out_shape, lambda a: a[key]))


def _gathered(x, index, shape):
    out = empty(shape, x.dtype)
    if out.size:
        launch(_gather, out.size)(flat(x), index, flat(out))
    return out


def _place(out, x, starts):
    """Assign x into out at offset `starts` (one start per axis)."""
    if x.size:
        index = _block_index(out.shape, tuple(starts), tuple(x.shape))
        launch(_scatter, x.size)(flat(x), index, flat(out))


def reshape(x, shape):
    return x.reshape(tuple(int(s) for s in shape))


def permute(x, axes):
    axes = tuple(int(a) for a in axes)
    if axes == tuple(range(x.ndim)):
        return x
    return _gathered(x, _permute_index(x.shape, axes), tuple(x.shape[a] for a in axes))


def expand(x, shape):
    shape = tuple(int(s) for s in shape)
    if shape == x.shape:  # nothing to broadcast; arrays are never written after creation
        return x
    return _gathered(x, _expand_index(x.shape, shape), shape)


def getitem(x, key):
    # The output shape comes from a zero-size broadcast view, since index_map reports a 0-d
    # result (every axis indexed by an int) as shape (1,).
    shape = np.broadcast_to(np.int8(0), x.shape)[key].shape
    return _gathered(x, upload(index_map(x.shape, lambda a: a[key])), shape)


def cat(arrays, axis):
    shape = list(arrays[0].shape)
    shape[axis] = sum(a.shape[axis] for a in arrays)
    out = empty(shape, np.result_type(*(a.dtype for a in arrays)))
    starts = [0] * len(shape)
    for a in arrays:
        _place(out, a, starts)
        starts[axis] += a.shape[axis]
    return out


def pad(x, widths, value):
    widths = [(int(lo), int(hi)) for lo, hi in widths]
    out = full(tuple(lo + n + hi for (lo, hi), n in zip(widths, x.shape)), value, x.dtype)
    _place(out, x, [lo for lo, _ in widths])
    return out


def scatter_add(shape, index, values):
    """out = zeros(shape); out.flat[index[i]] += values.flat[i] for every i."""
    out = full(shape, 0, values.dtype)
    index = flat(index) if is_array(index) else upload(index)
    if index.size:
        launch(_scatter_add, index.size)(flat(values), index, flat(out))
    return out
