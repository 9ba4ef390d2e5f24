"""Index arithmetic shared by both devices' kernels: how operands broadcast against an output,
how a reduction splits its input, which source element each element of a moved tensor reads,
and the memory layout of a new element-wise result (output_order: the one place that decides
it). Everything here is pure Python on shapes and strides, cached, so per-op overhead stays
small.
"""
from functools import lru_cache
from math import prod

import numpy as np

from .scalar import MAX_ARITY


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


def contiguous(x):
    """A C-contiguous version of a NumPy array, copying only when needed; unlike
    np.ascontiguousarray it keeps 0-d arrays 0-d."""
    return x if x.flags.c_contiguous else x.copy(order="C")


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
    (out_shape, dims, strides, expand) with strides padded to scalar.MAX_ARITY operands (unused
    ones read offset 0) and expand True when the operands must first be expanded to out_shape.
    C-contiguous semantics: output and operands are taken to be C-contiguous (see strided_plan
    for operands and outputs of any layout)."""
    out_shape = in_shapes[0]
    if any(s != out_shape for s in in_shapes) or (shape is not None and shape != out_shape):
        out_shape = tuple(np.broadcast_shapes(*in_shapes, *(() if shape is None else (shape,))))
    plan = broadcast_plan(out_shape, in_shapes)
    expand = plan is None
    if expand:  # more than three broadcast groups (rare): operands get expanded first
        plan = broadcast_plan(out_shape, (out_shape,) * len(in_shapes))
    dims, strides = plan
    return out_shape, dims, strides + ((0, 0, 0),) * (MAX_ARITY - len(strides)), expand


# ---- layouts: operands and outputs of any strides --------------------------------------------
# A layout is (shape, strides). Strides may be in bytes or elements: the functions below compare
# the strides of one array with each other only, or take element strides where they say so.

@lru_cache(maxsize=4096)
def memory_order(shape, strides):
    """The dims of an array from outermost to innermost in memory: decreasing |stride|, ties in
    logical order. A size-1 dim has no meaningful stride: it goes just before the next (in
    logical order) dim of size > 1, or last when none follows, so C order stays the identity."""
    ndim = len(shape)
    keys, following = [0.0] * ndim, float("inf")
    for a in range(ndim - 1, -1, -1):
        if shape[a] != 1:
            following = -abs(strides[a])
        keys[a] = following
    return tuple(sorted(range(ndim), key=keys.__getitem__))  # sorted is stable


@lru_cache(maxsize=4096)
def output_order(out_shape, operand_shapes, operand_strides):
    """THE rule for the memory layout of an element-wise result, as a permutation of its dims
    from outermost to innermost: the memory order of the first operand that has the full output
    shape and no broadcast (stride 0) dim, so an NHWC-strided (N, C, H, W) operand gives an NHWC
    result; C order when no operand qualifies. A broadcast operand has no order along its
    stride-0 dims, so it does not decide. Both devices' new arrays follow this."""
    for shape, strides in zip(operand_shapes, operand_strides):
        if tuple(shape) == tuple(out_shape) and all(s or n == 1 for n, s in zip(shape, strides)):
            return memory_order(tuple(shape), tuple(strides))
    return tuple(range(len(out_shape)))


@lru_cache(maxsize=4096)
def output_strides(out_shape, operand_shapes, operand_strides, itemsize):
    """Byte strides of the result that output_order chooses: dense, with its dims laid out in
    that order."""
    order = output_order(out_shape, operand_shapes, operand_strides)
    strides, step = [0] * len(out_shape), itemsize
    for a in reversed(order):
        strides[a] = step
        step *= out_shape[a]
    return tuple(strides)


@lru_cache(maxsize=4096)
def memory_extent(shape, strides):
    """(low, span) of a non-empty array with element strides: its lowest element lies `low`
    (<= 0, from negative strides) elements from its first one, and its elements all lie within
    `span` consecutive elements from there."""
    low = sum((n - 1) * s for n, s in zip(shape, strides) if s < 0)
    return low, 1 + sum((n - 1) * abs(s) for n, s in zip(shape, strides))


@lru_cache(maxsize=4096)
def strided_plan(out_shape, out_strides, in_shapes, in_strides):
    """An element-wise launch over arrays of any layout as a loop nest of at most three dims.

    All strides are in elements. Operands broadcast against out_shape (missing leading dims and
    size-1 dims read stride 0). The loop walks the OUTPUT in its memory order (dims sorted by
    decreasing |stride|, a reversed output dim walked backwards), and adjacent dims merge
    wherever every array allows it (outer stride == inner stride * inner size for the output
    and each operand), so dense arrays in one common layout become a single run.

    Returns (dims, layouts): dims = (n0, n1, n2), and layouts[i] = (offset, s0, s1, s2) for
    the output (i = 0) then each operand: the element offset, from that array's first element,
    of the first element visited, and the element step per loop dim. Returns None when more
    than three dims remain after merging; the caller then makes the operands agree first.
    """
    ndim = len(out_shape)
    table = [list(out_strides)]
    for shape, strides in zip(in_shapes, in_strides):
        pad = ndim - len(shape)
        table.append([0 if a < pad or shape[a - pad] == 1 else strides[a - pad]
                      for a in range(ndim)])
    offsets = [0] * len(table)
    order = [a for a in memory_order(tuple(out_shape), tuple(out_strides)) if out_shape[a] != 1]
    for a in order:
        if out_strides[a] < 0:  # walk this dim backwards so the output is written forwards
            for i, row in enumerate(table):
                offsets[i] += (out_shape[a] - 1) * row[a]
                row[a] = -row[a]
    groups = []  # [size, per-array strides], outermost first
    for a in order:
        n, st = out_shape[a], tuple(row[a] for row in table)
        if groups and all(g == s * n for g, s in zip(groups[-1][1], st)):
            groups[-1] = [groups[-1][0] * n, st]
        else:
            groups.append([n, st])
    if len(groups) > 3:
        return None
    groups = [[1, (0,) * len(table)]] * (3 - len(groups)) + groups
    dims = tuple(g[0] for g in groups)
    return dims, tuple((offsets[i],) + tuple(g[1][i] for g in groups) for i in range(len(table)))
