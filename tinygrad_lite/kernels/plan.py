"""Index arithmetic shared by both devices' kernels: how operands broadcast against an output,
how a reduction splits its input, and which source element each element of a moved tensor
reads. Everything here is pure Python on shapes, cached, so per-op overhead stays small.
"""
from functools import lru_cache
from math import prod

import numpy as np


@lru_cache(maxsize=4096)
def broadcast_shape(op, *shapes):
    """NumPy's broadcasting rule, with an error that names the op and every shape."""
    ndim = max(len(s) for s in shapes)
    out = []
    for axis in range(-ndim, 0):
        sizes = {s[axis] for s in shapes if len(s) >= -axis} - {1}
        if len(sizes) > 1:
            listed = " and ".join(str(tuple(s)) for s in shapes)
            raise ValueError(f"{op}: shapes {listed} cannot be broadcast together "
                             f"(dimension {axis} has sizes {sorted(sizes)})")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


@lru_cache(maxsize=4096)
def broadcast_plan(out_shape, in_shapes):
    """Describe an element-wise op as a loop nest over at most three dimensions.

    Returns (dims, strides) where dims = (n0, n1, n2) covers the C-contiguous output and
    strides[i] = (s0, s1, s2) are the element strides into the i-th C-contiguous input (0 along
    a broadcast dimension). Adjacent output dimensions merge when every operand broadcasts
    along both or along neither, so `(N, D) + (D,)` becomes (1, N, D) and `(N, C, H, W) +
    (1, C, 1, 1)` becomes (N, C, H*W). Returns None when more than three groups remain; the
    caller then expands the operands first.
    """
    ndim = len(out_shape)
    padded = [(1,) * (ndim - len(s)) + tuple(s) for s in in_shapes]
    groups = []  # [output size, per-operand "broadcasts here" flags]
    for axis, size in enumerate(out_shape):
        if size == 1:
            continue
        flags = tuple(s[axis] == 1 for s in padded)
        if groups and groups[-1][1] == flags:
            groups[-1][0] *= size
        else:
            groups.append([size, flags])
    if len(groups) > 3:
        return None
    groups = [[1, tuple(True for _ in in_shapes)]] * (3 - len(groups)) + groups
    dims = tuple(g[0] for g in groups)
    strides = []
    for i in range(len(in_shapes)):
        st, running = [0, 0, 0], 1
        for g in (2, 1, 0):
            if not groups[g][1][i]:
                st[g] = running
                running *= dims[g]
        strides.append(tuple(st))
    return dims, tuple(strides)


def normalize_axes(op, axis, ndim):
    """axis given as None, an int or a tuple -> sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)):
            raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(int(a) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: axis {axis!r} repeats a dimension")
    return tuple(sorted(out)) if ndim else ()


@lru_cache(maxsize=4096)
def reduce_plan(shape, axes):
    """Split a reduction over `axes` into passes, each over a (A, K, B) view of a C-contiguous
    array: reduce the middle dimension K, keep A (before) and B (after).

    Returns a list of (A, K, B) triples applied in order, each to the previous pass's output.
    Consecutive reduced axes form one pass; separated runs take one pass each, last run first.
    """
    runs, current = [], []
    for a in axes:
        if current and a == current[-1] + 1:
            current.append(a)
        else:
            if current:
                runs.append(current)
            current = [a]
    if current:
        runs.append(current)
    passes, shape = [], list(shape)
    for run in reversed(runs):
        a, b = run[0], run[-1] + 1
        passes.append((prod(shape[:a]), prod(shape[a:b]), prod(shape[b:])))
        shape[a:b] = [1] * (b - a)
    return passes


def reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if i in axes else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def contiguous(array):
    """A C-contiguous version of a NumPy array, copying only when needed; unlike
    np.ascontiguousarray it keeps 0-d arrays 0-d."""
    return array if array.flags.c_contiguous else array.copy(order="C")


def index_map(shape, view):
    """Flat source index of every element of `view(source)`, where `view` is any NumPy
    movement (transpose, slicing, integer or boolean indexing, broadcast_to). Devices that cannot
    take NumPy views (CUDA) gather with it; scatter-add with it is the gradient of the move."""
    return contiguous(np.asarray(view(np.arange(prod(shape), dtype=np.int64).reshape(shape))))


@lru_cache(maxsize=1024)
def permute_map(shape, axes):
    return index_map(shape, lambda a: a.transpose(axes))


@lru_cache(maxsize=1024)
def expand_map(shape, out_shape):
    return index_map(shape, lambda a: np.broadcast_to(a, out_shape))


@lru_cache(maxsize=4096)
def elementwise_plan(in_shapes, shape=None):
    """Everything an element-wise launch needs, cached per input shapes (and target shape):
    (out_shape, dims, strides, expand) with strides padded to three operands (unused ones read
    offset 0) and expand True when the operands must first be expanded to out_shape."""
    out_shape = in_shapes[0]
    if any(s != out_shape for s in in_shapes) or (shape is not None and shape != out_shape):
        out_shape = tuple(np.broadcast_shapes(*in_shapes, *(() if shape is None else (shape,))))
    plan = broadcast_plan(out_shape, in_shapes)
    expand = plan is None
    if expand:  # more than three broadcast groups (rare): operands get expanded first
        plan = broadcast_plan(out_shape, (out_shape,) * len(in_shapes))
    dims, strides = plan
    return out_shape, dims, strides + ((0, 0, 0),) * (3 - len(strides)), expand
