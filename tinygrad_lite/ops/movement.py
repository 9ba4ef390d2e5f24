"""Movement ops: reshape, permute, expand, indexing, split, cat, pad, contiguous, device
transfer. The CPU backend answers most of them with NumPy views (which share storage, and so
the version counter); the CUDA backend materialises them on the device. The gradient of
indexing is `index_add`, on either device."""
from math import prod

import numpy as np

from .. import ops
from ..autograd import Function, is_grad_enabled, record
from . import ShapeError, broadcast_shape, normalize_axes
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
        raise ShapeError(f"{op}: invalid shape {shape}: at most one -1 and no other negatives")
    known = prod(s for s in shape if s != -1)
    if -1 in shape:
        if known == 0 or size % known:
            raise ShapeError(f"{op}: cannot infer -1 in shape {shape} for {size} elements")
        shape = tuple(size // known if s == -1 else s for s in shape)
    if prod(shape) != size:
        raise ShapeError(f"{op}: cannot reshape {size} elements into shape {shape}")
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
        raise ShapeError(f"{op}: expected a non-empty sequence of tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, ops.Tensor):
            raise TypeError(f"{op}: expected a sequence of Tensors, got {type(t).__name__} at "
                            f"position {i}")


def check_cat(tensors, axis, op="cat"):
    check_tensors(op, tensors)
    first = tensors[0]
    if first.ndim == 0:
        raise ShapeError(f"{op}: zero-dimensional tensors cannot be concatenated")
    axis = normalize_axes(op, axis, first.ndim)[0]
    for t in tensors[1:]:
        if t.ndim != first.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape))
                                        if i != axis):
            raise ShapeError(f"{op}: shapes {tuple(first.shape)} and {tuple(t.shape)} differ "
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
    if len(axes) != x.ndim:
        raise ShapeError(f"permute: {tuple(axes)} names {len(axes)} dims, but the tensor of "
                         f"shape {x.shape} has {x.ndim}: give a permutation of all of them")
    # each dim checked on its own (DimError when out of range, as torch's IndexError), then
    # that none repeats
    axes = tuple(normalize_axes("permute", a, x.ndim)[0] if x.ndim else a for a in axes)
    if len(set(axes)) != len(axes):
        raise ShapeError(f"permute: {axes} repeats a dim: expected a "
                         f"permutation of the {x.ndim} dims of shape {x.shape}")
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
        raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
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
        raise ShapeError(f"expand: cannot expand shape {x.shape} to fewer dims {shape}")
    shape = tuple(x.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(shape))
    if broadcast_shape("expand", x.shape, shape) != shape:
        raise ShapeError(f"expand: cannot expand shape {x.shape} to {shape}")
    return x if shape == x.shape else Expand.apply(x, shape=shape)


def getitem(x, key):
    for part in split_key(x.shape, key):
        x = GetItem.apply(x, key=part)
    return x


def pad(x, pad_width, value=0.0):
    """Constant padding, NumPy style: one (before, after) pair per dimension, first dim first
    (or one pair, or one int, for every dim). A flat (before, after) on a tensor of 2+ dims is
    refused: NumPy reads it as every dim, PyTorch's F.pad as the last dim only."""
    widths = np.asarray(pad_width)
    if widths.dtype.kind not in "iu" or widths.ndim > 2 or (widths.ndim == 2 and (
            widths.shape[1] != 2 or widths.shape[0] not in (1, x.ndim))) or (
            widths.ndim == 1 and widths.shape[0] != 2):
        raise ShapeError(f"pad: expected (before, after) pairs of ints, one per dim of shape "
                         f"{x.shape} (e.g. {((0, 0),) * max(x.ndim - 1, 0) + ((1, 1),)}), "
                         f"one pair or one int for all dims, got {pad_width!r}; for "
                         "PyTorch's flat, last-dim-first form use nn.functional.pad")
    if widths.ndim == 1 and x.ndim > 1:
        raise ShapeError(f"pad: the flat pair {tuple(pad_width)} is ambiguous for shape "
                         f"{x.shape}: NumPy pads every dim by it, PyTorch's F.pad only the "
                         f"last; write the pairs per dim, "
                         f"{((0, 0),) * (x.ndim - 1) + (tuple(pad_width),)} for the last dim, "
                         "or call nn.functional.pad")
    widths = np.broadcast_to(widths.astype(np.int64), (x.ndim, 2))
    if (widths < 0).any():
        raise ValueError(f"pad: widths must be non-negative, got {pad_width!r}")
    return Pad.apply(x, widths=tuple((int(b), int(a)) for b, a in widths), value=value)


PAD_MODES = ("constant", "reflect", "replicate", "circular")


def torch_pad(x, pad, mode="constant", value=None):
    """torch.nn.functional.pad: `pad` is flat and starts at the LAST dim, (left, right) for it,
    then (top, bottom) for the one before, and so on. A negative width crops, first, as in
    PyTorch; reflect (mirror without the edge), replicate (repeat the edge) and circular (wrap
    around) gather with an index array per padded dim, so their gradient is index_add's."""
    if not isinstance(x, ops.Tensor):
        raise TypeError(f"pad: expected a Tensor, got {type(x).__name__}")
    if not isinstance(pad, (tuple, list)) or any(
            isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, np.integer)) for p in pad):
        raise TypeError(f"pad: expected a tuple of ints (left, right, top, bottom, ...), got "
                        f"{pad!r}")
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ShapeError(f"pad: the flat padding {tuple(pad)} must have an even length of at "
                         f"most twice the {x.ndim} dims of shape {x.shape} (pairs for the "
                         "last dims, last dim first)")
    if mode not in PAD_MODES:
        raise ValueError(f"pad: mode must be one of {', '.join(PAD_MODES)}, got {mode!r}")
    if mode != "constant" and value is not None:
        raise ValueError(f"pad: mode {mode!r} takes no value (only 'constant' fills with one)")
    pairs = {x.ndim - 1 - i: (int(pad[2 * i]), int(pad[2 * i + 1]))
             for i in range(len(pad) // 2)}
    if any(min(p) < 0 for p in pairs.values()):  # negative widths crop first, in every mode
        crop = tuple(slice(max(-pairs[d][0], 0), x.shape[d] - max(-pairs[d][1], 0))
                     if d in pairs else slice(None) for d in range(x.ndim))
        if any(s.start > s.stop for s in crop if s.start is not None):
            raise ShapeError(f"pad: the negative padding {tuple(pad)} crops more than shape "
                             f"{x.shape} holds")
        x = getitem(x, crop)
        pairs = {d: (max(b, 0), max(a, 0)) for d, (b, a) in pairs.items()}
    if mode == "constant":
        widths = tuple(pairs.get(d, (0, 0)) for d in range(x.ndim))
        return Pad.apply(x, widths=widths, value=0.0 if value is None else value) if any(
            b or a for b, a in widths) else x
    for d, (before, after) in pairs.items():
        if before or after:
            index = _pad_index(mode, x.shape[d], before, after, d, x.shape)
            x = getitem(x, (slice(None),) * d + (index,))
    return x


def _pad_index(mode, n, before, after, dim, shape):
    """The source position of every element of one dim padded by (before, after)."""
    limit = {"reflect": n - 1, "replicate": None, "circular": n}[mode]
    if n == 0 or (limit is not None and max(before, after) > limit):
        raise ShapeError(f"pad: {mode} padding ({before}, {after}) of dim {dim} of shape "
                         f"{shape} needs " + ("a non-empty dim" if limit is None else
                                              f"padding of at most {limit}"))
    inner = np.arange(n)
    if mode == "reflect":  # mirror around the edge element, which is not repeated
        return np.concatenate([inner[1:before + 1][::-1], inner, inner[::-1][1:after + 1]])
    if mode == "replicate":
        return np.concatenate([np.zeros(before, np.int64), inner,
                               np.full(after, n - 1, np.int64)])
    return np.concatenate([inner[n - before:], inner, inner[:after]])  # circular


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
            raise ShapeError(f"split: sizes {sizes} do not add up to {n}, the size of axis "
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
