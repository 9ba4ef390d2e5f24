"""Movement ops: reshape, permute, expand, indexing, cat, pad. The CPU backend answers most of
them with NumPy views; the CUDA backend gathers through `kernels.plan.index_map`. The gradient
of indexing is a scatter-add through the same index map, on either device."""
from math import prod

import numpy as np

from ..autograd import Function
from ..kernels.plan import index_map
from .elementwise import sum_to_shape


def resolve_shape(op, shape, size):
    """Fill in one -1 and check that the element count is unchanged."""
    shape = tuple(int(s) for s in shape)
    if shape.count(-1) > 1 or any(s < -1 for s in shape):
        raise ValueError(f"{op}: invalid shape {shape}: at most one -1 and no other negatives")
    known = prod(s for s in shape if s != -1)
    if -1 in shape:
        if known == 0 or size % known:
            raise ValueError(f"{op}: cannot infer -1 in shape {shape} for {size} elements")
        shape = tuple(size // known if s == -1 else s for s in shape)
    if prod(shape) != size:
        raise ValueError(f"{op}: cannot reshape {size} elements into shape {shape}")
    return shape


class Reshape(Function):
    def forward(self, x, shape):
        self.shape = x.shape
        return self.k.reshape(x, shape)

    def backward(self, g):
        return (self.k.reshape(g, self.shape),)


class Permute(Function):
    def forward(self, x, axes):
        self.inverse = tuple(np.argsort(axes))
        return self.k.permute(x, axes)

    def backward(self, g):
        return (self.k.permute(g, self.inverse),)


class Expand(Function):
    def forward(self, x, shape):
        self.shape = x.shape
        return self.k.expand(x, shape)

    def backward(self, g):
        return (sum_to_shape(self.k, g, self.shape),)


class GetItem(Function):
    def forward(self, x, key):
        self.shape, self.key = x.shape, key
        return self.k.getitem(x, key)

    def backward(self, g):
        index = index_map(self.shape, lambda a: a[self.key])
        return (self.k.scatter_add(self.shape, index, g),)


class Cat(Function):
    def forward(self, *arrays, axis):
        self.axis, self.sizes = axis, [a.shape[axis] for a in arrays]
        return self.k.cat(arrays, axis)

    def backward(self, g):
        grads, start = [], 0
        for size in self.sizes:
            key = (slice(None),) * self.axis + (slice(start, start + size),)
            grads.append(self.k.getitem(g, key))
            start += size
        return tuple(grads)


class Pad(Function):
    def forward(self, x, widths, value):
        self.key = tuple(slice(before, before + n) for (before, _), n in zip(widths, x.shape))
        return self.k.pad(x, widths, value)

    def backward(self, g):
        return (self.k.getitem(g, self.key),)


def normalize_key(x, key):
    """Turn an indexing key into ints, slices, None, Ellipsis and NumPy int64/bool arrays, and
    check integer indices against the shape so that no kernel ever reads out of bounds."""
    if not isinstance(key, tuple):
        key = (key,)
    out = []
    for item in key:
        if hasattr(item, "numpy") and hasattr(item, "device"):  # a Tensor
            item = item.numpy()
        if isinstance(item, (list, np.ndarray)):
            item = np.asarray(item)
            if item.dtype.kind == "b":
                out.append(item)
                continue
            if item.dtype.kind not in "iu" and item.size:
                raise IndexError(f"getitem: index arrays must hold integers or bools, "
                                 f"got dtype {item.dtype}")
            item = item.astype(np.int64)
        elif isinstance(item, (bool, np.bool_)):
            item = np.asarray(item)
        elif isinstance(item, (int, np.integer)):
            item = int(item)
        elif not (item is None or item is Ellipsis or isinstance(item, slice)):
            raise IndexError(f"getitem: unsupported index {item!r} of type {type(item).__name__}; "
                             "use ints, slices, None, Ellipsis, int or bool arrays")
        out.append(item)
    key = tuple(out)
    stand_in = np.lib.stride_tricks.as_strided(np.zeros(1, np.bool_), x.shape, (0,) * x.ndim)
    try:  # NumPy's own indexing rules, checked on a zero-stride stand-in that costs no memory
        stand_in[key]
    except IndexError as e:
        raise IndexError(f"getitem: index {key!r} is invalid for shape {tuple(x.shape)}: "
                         f"{e}") from None
    return key


def check_cat(tensors, axis, op="cat"):
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty sequence of tensors")
    first = tensors[0]
    if first.ndim == 0:
        raise ValueError(f"{op}: zero-dimensional tensors cannot be concatenated")
    axis = axis + first.ndim if axis < 0 else axis
    if not 0 <= axis < first.ndim:
        raise ValueError(f"{op}: axis {axis} out of range for {first.ndim}-d tensors")
    for t in tensors[1:]:
        if t.ndim != first.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape))
                                        if i != axis):
            raise ValueError(f"{op}: shapes {tuple(first.shape)} and {tuple(t.shape)} differ "
                             f"outside axis {axis}")
        if t.dtype != first.dtype:
            raise TypeError(f"{op}: dtypes {first.dtype} and {t.dtype} differ")
    return axis
