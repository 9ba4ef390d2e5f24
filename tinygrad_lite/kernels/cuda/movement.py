"""Movement on the GPU. Device arrays here are always dense and C-contiguous, so every move but
reshape materialises: permute, expand and basic indexing are one strided gather, and cat, pad
and the basic-key index_add one strided scatter. Each thread turns its own position into a
memory offset from a few small tuples (views.launch_view), so no index map of the output's
size is ever built on the host or uploaded. Only advanced indexing (integer or boolean array
keys) still builds a host map: its offsets are data, not arithmetic on the shape.
"""
import numpy as np
from numba import cuda

from ... import determinism
from .jit import kernel, launch
from .memory import empty, flat, from_numpy, full, upload
from .views import basic_view, expanded, is_basic, launch_view, permuted, placed, view_offset


@kernel
def _gather(x, offset, dims, strides, out):
    for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[t] = x[view_offset(t, offset, dims, strides)]


@kernel
def _scatter(values, offset, dims, strides, out):
    # The destination view never repeats an element (strides come from a real view of out),
    # so plain stores suffice: no two threads write one address.
    for t in range(cuda.grid(1), values.size, cuda.gridsize(1)):
        out[view_offset(t, offset, dims, strides)] = values[t]


@kernel
def _gather_map(x, index, out):
    for t in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[t] = x[index[t]]


@kernel
def _scatter_add_map(values, index, out):
    # Advanced keys may repeat an index: atomics make the repeats add up instead of racing.
    for t in range(cuda.grid(1), index.size, cuda.gridsize(1)):
        cuda.atomic.add(out, index[t], values[t])


def _gathered(op, x, view):
    """A new C-contiguous array holding the strided view (offset, shape, strides) of x."""
    offset, shape, strides = view
    out = empty(shape, x.dtype)
    if out.size:
        launch(_gather, out.size)(flat(x), *launch_view(op, offset, shape, strides), flat(out))
    return out


def _scattered(op, values, view, out):
    """Store `values` (C-contiguous, of the view's shape) into the strided view of `out`."""
    offset, shape, strides = view
    if values.size:
        launch(_scatter, values.size)(flat(values), *launch_view(op, offset, shape, strides),
                                      flat(out))


def _host_map(shape, key):
    """Flat offsets of a[key] for an advanced key, by NumPy on an index array (only here:
    array keys give offsets that no stride arithmetic describes)."""
    return np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)[key]


def _key(key):
    return key if isinstance(key, tuple) else (key,)


def reshape(x, shape):
    return x.reshape(tuple(int(s) for s in shape))


def permute(x, axes):
    axes = tuple(int(a) for a in axes)
    if axes == tuple(range(x.ndim)):
        return x
    return _gathered("permute", x, permuted(x.shape, axes))


def expand(x, shape):
    shape = tuple(int(s) for s in shape)
    if shape == x.shape:  # nothing to broadcast; callers never write into the result
        return x
    return _gathered("expand", x, expanded(x.shape, shape))


def getitem(x, key):
    """x[key] for a normalised NumPy key, as a new array (NumPy's semantics and shape)."""
    key = _key(key)
    if is_basic(key):
        return _gathered("getitem", x, basic_view(x.shape, key))
    index = _host_map(x.shape, key)
    out = empty(index.shape, x.dtype)
    if out.size:
        launch(_gather_map, out.size)(flat(x), upload(index), flat(out))
    return out


def cat(arrays, axis):
    shape = list(arrays[0].shape)
    shape[axis] = sum(a.shape[axis] for a in arrays)
    out = empty(shape, np.result_type(*(a.dtype for a in arrays)))
    starts = [0] * len(shape)
    for a in arrays:
        _scattered("cat", a, placed(out.shape, starts, a.shape), out)
        starts[axis] += a.shape[axis]
    return out


def pad(x, widths, value):
    widths = [(int(lo), int(hi)) for lo, hi in widths]
    if any(lo < 0 or hi < 0 for lo, hi in widths):
        raise ValueError(f"pad: widths must be non-negative, got {widths}")
    out = full(tuple(lo + n + hi for (lo, hi), n in zip(widths, x.shape)), value, x.dtype)
    _scattered("pad", x, placed(out.shape, [lo for lo, _ in widths], x.shape), out)
    return out


def index_add(shape, key, values):
    """out = zeros(shape, values.dtype), then values added into out[key] with repeated indices
    summed, as np.add.at(out, key, values) (values broadcast to out[key]'s shape). This is the
    gradient of getitem."""
    shape, key = tuple(int(s) for s in shape), _key(key)
    out = full(shape, 0, values.dtype)
    if is_basic(key):  # a view never repeats an element: a strided store into zeros
        view = basic_view(shape, key)
        _scattered("index_add", expand(values, view[1]), view, out)
        return out
    index = _host_map(shape, key)
    if not index.size:
        return out
    values = flat(expand(values, index.shape))
    if determinism.are_deterministic_algorithms_enabled() and \
            np.unique(index).size < index.size:
        # Repeated indices: atomic adds land in any order, so float sums round differently
        # from run to run. Sum them on the host in index order (the CPU kernel's order); this
        # path is rare (the gradient of an integer-array key that repeats).
        host = np.zeros(out.size, values.dtype)
        np.add.at(host, index.ravel(), values.copy_to_host())
        return from_numpy(host.reshape(shape))
    launch(_scatter_add_map, index.size)(values, upload(index), flat(out))
    return out
