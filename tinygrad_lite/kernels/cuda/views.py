"""Strided views of a C-contiguous array, as pure Python on shapes: what the CUDA movement
kernels need to turn an output position into a source (or destination) offset on the device.

A view is (offset, shape, strides) in elements, exactly what NumPy would give for the same
transpose, broadcast or basic index of a C-contiguous array. `launch_view` compacts one to at
most MAX_DIMS dimensions for the kernels in movement.py, which walk it with `view_offset`.
Nothing here allocates or uploads: a move costs a few small tuples, not an index map.
(Candidates for kernels/plan.py once the CPU backend wants them too.)
"""
import operator
from functools import lru_cache

import numpy as np
from numba import cuda

# Dimensions a kernel walks per element. Adjacent dimensions that address memory as one are
# merged first, so only a view with more than this many irreducible dimensions is refused.
MAX_DIMS = 8


@lru_cache(maxsize=1024)
def c_strides(shape):
    """Element strides of a C-contiguous array of `shape`."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


@lru_cache(maxsize=1024)
def permuted(shape, axes):
    if sorted(axes) != list(range(len(shape))):
        raise ValueError(f"permute: axes {axes} are not a permutation of {len(shape)} dims")
    strides = c_strides(shape)
    return 0, tuple(shape[a] for a in axes), tuple(strides[a] for a in axes)


@lru_cache(maxsize=1024)
def expanded(shape, out_shape):
    """Broadcast `shape` to `out_shape`: new leading dims and size-1 dims read stride 0."""
    lead = len(out_shape) - len(shape)
    if lead < 0 or any(n != 1 and n != m for n, m in zip(shape, out_shape[lead:])):
        raise ValueError(f"expand: shape {shape} cannot be broadcast to {out_shape}")
    strides = c_strides(shape)
    return 0, out_shape, (0,) * lead + tuple(
        0 if n == 1 and m != 1 else s for n, m, s in zip(shape, out_shape[lead:], strides))


def is_basic(key):
    """Does a normalised NumPy key make a view (ints, slices, None, Ellipsis), rather than
    advanced indexing (arrays; Python bools count as arrays, as in NumPy)?"""
    return all(k is None or k is Ellipsis or isinstance(k, slice)
               or (isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)))
               for k in key)


def basic_view(shape, key):
    """The view `a[key]` of a C-contiguous `shape` array, for a basic key (see is_basic)."""
    if key.count(Ellipsis) > 1:
        raise IndexError("getitem: an index can only have a single ellipsis ('...')")
    used = sum(k is not None and k is not Ellipsis for k in key)
    if used > len(shape):
        raise IndexError(f"getitem: too many indices for shape {shape}: {used} given")
    if Ellipsis not in key:
        key = key + (Ellipsis,)
    strides, offset, out_shape, out_strides, axis = c_strides(shape), 0, [], [], 0
    for k in key:
        if k is None:
            out_shape.append(1)
            out_strides.append(0)
        elif k is Ellipsis:
            rest = len(shape) - used
            out_shape += shape[axis:axis + rest]
            out_strides += strides[axis:axis + rest]
            axis += rest
        elif isinstance(k, slice):
            start, stop, step = k.indices(shape[axis])
            out_shape.append(len(range(start, stop, step)))
            out_strides.append(step * strides[axis])
            offset += start * strides[axis] if out_shape[-1] else 0
            axis += 1
        else:
            i, n = operator.index(k), shape[axis]
            if not -n <= i < n:
                raise IndexError(f"getitem: index {i} is out of bounds for axis {axis} "
                                 f"with size {n}")
            offset += (i % n) * strides[axis]
            axis += 1
    return offset, tuple(out_shape), tuple(out_strides)


def placed(out_shape, starts, shape):
    """The block out[starts : starts + shape] of a C-contiguous `out_shape` array (cat, pad)."""
    strides = c_strides(out_shape)
    return sum(s * t for s, t in zip(starts, strides)), shape, strides


@lru_cache(maxsize=4096)
def launch_view(op, offset, shape, strides):
    """(offset, dims, strides) with dims and strides exactly MAX_DIMS long: size-1 dimensions
    dropped (their index is always 0), neighbours merged where the outer stride equals inner
    stride x inner size, and the rest padded in front with (size 1, stride 0)."""
    dims, steps = [], []
    for n, s in zip(shape, strides):
        if n == 1:
            continue
        if dims and steps[-1] == s * n:
            dims[-1] *= n
            steps[-1] = s
        else:
            dims.append(n)
            steps.append(s)
    if len(dims) > MAX_DIMS:
        raise ValueError(f"{op}: a view of shape {shape} with strides {strides} needs "
                         f"{len(dims)} dimensions; the CUDA kernels walk at most {MAX_DIMS}")
    pad = MAX_DIMS - len(dims)
    return offset, (1,) * pad + tuple(dims), (0,) * pad + tuple(steps)


@cuda.jit(device=True)
def view_offset(t, offset, dims, strides):
    """Memory offset of the t-th element (in C order) of a launch_view."""
    for d in range(MAX_DIMS - 1, -1, -1):
        offset += (t % dims[d]) * strides[d]
        t //= dims[d]
    return offset
