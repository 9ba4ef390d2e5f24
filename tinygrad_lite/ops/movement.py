"""Movement ops: reshape, permute, expand, indexing, split, cat, pad, contiguous, device
transfer. The CPU backend answers most of them with NumPy views (which share storage, and so
the version counter); the CUDA backend materialises them on the device. The gradient of
indexing is `index_add`, on either device."""
from math import prod

import numpy as np

from .. import ops
from ..autograd import Function, is_grad_enabled, record
from ..kernels.plan import broadcast_shape, normalize_axes
from .elementwise import sum_to_shape


def check_sizes(op, shape):
    """A shape given as ints (Python or NumPy, not bool): anything else is a TypeError, not a
    silent truncation (`zeros(2.7)`)."""
    for s in shape:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"{op}: sizes must be ints, got {s!r} in {tuple(shape)}")
    return tuple(int(s) for s in shape)


def resolve_shape(op, shape, size):
    """Fill in one -1 and check that the element count is unchanged."""
    shape = check_sizes(op, shape)
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
    VIEW = True

    def forward(self, x, shape):
        self.shape = x.shape
        return self.k.reshape(x, shape)

    def backward(self, g):
        return (self.k.reshape(g, self.shape),)


class Permute(Function):
    VIEW = True

    def forward(self, x, axes):
        self.inverse = tuple(int(i) for i in np.argsort(axes))
        return self.k.permute(x, axes)

    def backward(self, g):
        return (self.k.permute(g, self.inverse),)


class Expand(Function):
    VIEW = True

    def forward(self, x, shape):
        self.shape = x.shape
        return self.k.expand(x, shape)

    def backward(self, g):
        return (sum_to_shape(self.k, g, self.shape),)


class GetItem(Function):
    VIEW = True

    def forward(self, x, key):
        self.shape, self.key = x.shape, key
        return self.k.getitem(x, key)

    def backward(self, g):
        return (self.k.index_add(self.shape, self.key, g),)


class Contiguous(Function):
    def forward(self, x):
        return self.k.contiguous(x)

    def backward(self, g):
        return (g,)


class Split(Function):
    """Several outputs from one input: the pieces of `x` along `axis` (multi-output
    Functions get one gradient per output, zeros for pieces nobody used)."""
    VIEW = True

    def forward(self, x, axis, sizes):
        self.axis, self.sizes = axis, sizes
        pieces, start = [], 0
        for size in sizes:
            pieces.append(self.k.getitem(x, (slice(None),) * axis + (slice(start, start + size),)))
            start += size
        return tuple(pieces)

    def backward(self, *grads):
        return (self.k.cat(grads, self.axis),)


class Cat(Function):
    def forward(self, *arrays, axis):
        self.axis, self.sizes = axis, [a.shape[axis] for a in arrays]
        return self.k.cat(arrays, axis)

    def backward(self, g):
        grads, start = [], 0
        for size, needed in zip(self.sizes, self.needs_input_grad):
            key = (slice(None),) * self.axis + (slice(start, start + size),)
            grads.append(self.k.getitem(g, key) if needed else None)
            start += size
        return tuple(grads)


class Pad(Function):
    def forward(self, x, widths, value):
        self.key = tuple(slice(before, before + n) for (before, _), n in zip(widths, x.shape))
        return self.k.pad(x, widths, value)

    def backward(self, g):
        return (self.k.getitem(g, self.key),)


class ToDevice(Function):
    """Differentiable copy to another device: the gradient travels back the same way."""

    @classmethod
    def apply(cls, x, device):
        array = device.backend.from_numpy(x.device.backend.to_numpy(x.array))
        track = is_grad_enabled() and x.requires_grad
        out = x._wrap(array, device, track)
        if track:
            fn = cls.__new__(cls)
            fn.k, fn.source, fn.needs_input_grad = device.backend, x.device, (True,)
            record(fn, (x,), (out,))
        return out

    def backward(self, g):
        return (self.source.backend.from_numpy(self.k.to_numpy(g)),)


def _index_item(item):
    """One entry of an indexing key as an int, slice, None, Ellipsis or int64/bool array."""
    if hasattr(item, "numpy") and hasattr(item, "device"):  # a Tensor
        item = item.numpy()
    if isinstance(item, (list, np.ndarray)):
        item = np.asarray(item)
        if item.dtype.kind == "b":
            return item
        if item.dtype.kind not in "iu" and item.size:
            raise IndexError(f"getitem: index arrays must hold integers or bools, got dtype "
                             f"{item.dtype}")
        # a 0-d integer index selects, like an int (PyTorch's rule)
        return item.astype(np.int64) if item.ndim else int(item)
    if isinstance(item, (bool, np.bool_)):
        return np.asarray(item)
    if isinstance(item, (int, np.integer)):
        return int(item)
    if item is None or item is Ellipsis or isinstance(item, slice):
        return item
    raise IndexError(f"getitem: unsupported index {item!r} of type {type(item).__name__}; "
                     "use ints, slices, None, Ellipsis, int or bool arrays")


def _check_key(shape, key):
    stand_in = np.lib.stride_tricks.as_strided(np.zeros(1, np.bool_), shape, (0,) * len(shape))
    try:  # NumPy's own indexing rules, checked on a zero-stride stand-in that costs no memory
        return stand_in[key].shape
    except IndexError as e:
        raise IndexError(f"getitem: index {key!r} is invalid for shape {tuple(shape)}: "
                         f"{e}") from None


def split_key(shape, key):
    """An indexing key as a list of NumPy keys to apply one after the other, so that the
    result follows PyTorch's rule: integers select first, then the index arrays that remain
    follow NumPy's placement. (NumPy treats an int beside an index array as one more index
    array, so `x[0, :, [0, 1]]` on (2, 3, 4) is (2, 3) there and (3, 2) in PyTorch.)"""
    key = tuple(_index_item(i) for i in (key if isinstance(key, tuple) else (key,)))
    _check_key(shape, key)
    if not (any(isinstance(i, np.ndarray) for i in key) and any(isinstance(i, int) for i in key)):
        return [key]
    explicit = sum(_dims_indexed(i) for i in key if i is not Ellipsis)
    selects, rest = [], []
    for item in key:
        if isinstance(item, int):
            selects.append(item)
            continue
        count = len(shape) - explicit if item is Ellipsis else _dims_indexed(item)
        selects += [slice(None)] * count
        rest.append(item)
    return [tuple(selects), tuple(rest)]


def _dims_indexed(item):
    """How many dimensions of the source an index entry consumes (not for Ellipsis)."""
    if item is None:
        return 0
    if isinstance(item, np.ndarray) and item.dtype == np.bool_:
        return item.ndim
    return 1


def check_tensors(op, tensors):
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty sequence of tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, ops.Tensor):
            raise TypeError(f"{op}: expected a sequence of Tensors, got {type(t).__name__} at "
                            f"position {i}")


def check_cat(tensors, axis, op="cat"):
    check_tensors(op, tensors)
    first = tensors[0]
    if first.ndim == 0:
        raise ValueError(f"{op}: zero-dimensional tensors cannot be concatenated")
    axis = normalize_axes(op, axis, first.ndim)[0]
    for t in tensors[1:]:
        if t.ndim != first.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape))
                                        if i != axis):
            raise ValueError(f"{op}: shapes {tuple(first.shape)} and {tuple(t.shape)} differ "
                             f"outside axis {axis}")
        if t.dtype != first.dtype:
            raise TypeError(f"{op}: dtypes {first.dtype} and {t.dtype} differ")
    return axis


# ----- the Tensor-level entry points -----
def _sizes(args):
    """f(2, 3) and f((2, 3)) alike."""
    return tuple(args[0]) if len(args) == 1 and isinstance(args[0], (tuple, list)) else args


def reshape(x, *shape):
    shape = resolve_shape("reshape", _sizes(shape), x.size)
    return x if shape == x.shape else Reshape.apply(x, shape=shape)


def permute(x, *axes):
    axes = check_sizes("permute", _sizes(axes))
    if len(axes) != x.ndim or sorted(a % max(x.ndim, 1) for a in axes) != list(range(x.ndim)):
        raise ValueError(f"permute: {tuple(axes)} is not a permutation of the {x.ndim} "
                         f"dimensions of shape {x.shape}")
    axes = tuple(a % x.ndim for a in axes)
    return x if axes == tuple(range(x.ndim)) else Permute.apply(x, axes=axes)


def transpose(x, dim0=-2, dim1=-1):
    axes = list(range(x.ndim))
    d0 = normalize_axes("transpose", dim0, x.ndim)[0]
    d1 = normalize_axes("transpose", dim1, x.ndim)[0]
    axes[d0], axes[d1] = axes[d1], axes[d0]
    return permute(x, axes)


def flatten(x, start_dim=0, end_dim=-1):
    if x.ndim == 0:
        return reshape(x, 1)
    s = normalize_axes("flatten", start_dim, x.ndim)[0]
    e = normalize_axes("flatten", end_dim, x.ndim)[0]
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    return reshape(x, x.shape[:s] + (prod(x.shape[s:e + 1]),) + x.shape[e + 1:])


def squeeze(x, axis=None):
    axes = normalize_axes("squeeze", axis, x.ndim)
    return reshape(x, tuple(s for i, s in enumerate(x.shape) if not (i in axes and s == 1)))


def unsqueeze(x, axis):
    axis = normalize_axes("unsqueeze", axis, x.ndim + 1)[0]
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def expand(x, *shape):
    shape = check_sizes("expand", _sizes(shape))
    lead = len(shape) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: cannot expand shape {x.shape} to fewer dims {shape}")
    shape = tuple(x.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(shape))
    if broadcast_shape("expand", x.shape, shape) != shape:
        raise ValueError(f"expand: cannot expand shape {x.shape} to {shape}")
    return x if shape == x.shape else Expand.apply(x, shape=shape)


def getitem(x, key):
    for part in split_key(x.shape, key):
        x = GetItem.apply(x, key=part)
    return x


def pad(x, pad_width, value=0.0):
    """Constant padding, NumPy style: one (before, after) pair per dimension (or one pair for
    all)."""
    widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (x.ndim, 2))
    if (widths < 0).any():
        raise ValueError(f"pad: widths must be non-negative, got {pad_width!r}")
    widths = tuple((int(b), int(a)) for b, a in widths)
    return Pad.apply(x, widths=widths, value=value)


def split(x, split_size, axis=0):
    """PyTorch's split: pieces of `split_size` along axis (the last may be smaller), or of the
    sizes listed."""
    axis = normalize_axes("split", axis, x.ndim)[0]
    n = x.shape[axis]
    if isinstance(split_size, (int, np.integer)):
        if split_size <= 0:
            raise ValueError(f"split: split_size must be positive, got {split_size}")
        sizes = [min(split_size, n - s) for s in range(0, n, split_size)] or [0]
    else:
        sizes = list(check_sizes("split", split_size))
        if sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} do not add up to {n}, the size of axis "
                             f"{axis} of shape {x.shape}")
    return Split.apply(x, axis=axis, sizes=tuple(sizes))


def is_contiguous(x):
    """C order in memory (sizes of 1 may have any stride, as in PyTorch)."""
    expected = x.array.dtype.itemsize
    for size, stride in zip(reversed(x.shape), reversed(x.array.strides)):
        if size != 1 and stride != expected:
            return False
        expected *= size
    return True


def contiguous(x):
    return x if is_contiguous(x) else Contiguous.apply(x)


def to_device(x, device):
    return x if device == x.device else ToDevice.apply(x, device=device)
