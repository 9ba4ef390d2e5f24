"""Tensor: an array on a device, its gradient, and the Function that made it. Thin on purpose:
the math lives in ops/ and kernels/, the graph walk in autograd.py; this file turns Python
syntax and PyTorch-style methods into Function calls."""
from math import prod

import numpy as np

from . import autograd
from . import dtype as dt
from .device import get_device
from .kernels import scalar as S
from .kernels.plan import broadcast_shape, normalize_axes
from .ops import elementwise as E
from .ops import matmul as M
from .ops import movement as V
from .ops import reduce as R


class Tensor:
    __slots__ = ("data", "device", "requires_grad", "grad", "_ctx", "__weakref__")
    __array_priority__ = 1000  # numpy_array * tensor -> Tensor.__rmul__, not an object array

    def __init__(self, data, dtype=None, device=None, requires_grad=False):
        device = get_device(device)
        if isinstance(data, Tensor):
            data = data.numpy()
        elif not isinstance(data, np.ndarray) and hasattr(data, "copy_to_host"):
            data = data.copy_to_host()
        dtype = dt.to_dtype(dtype) or dt.infer(data)
        try:
            array = np.array(data, dtype=dtype)
        except (TypeError, ValueError) as e:
            raise TypeError(f"Tensor: cannot convert {type(data).__name__} to a {dtype} "
                            f"array: {e}") from None
        self.data = device.backend.from_numpy(array)
        self.device, self.grad, self._ctx, self.requires_grad = device, None, None, False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, data, device, requires_grad):
        t = object.__new__(cls)
        t.data, t.device, t.requires_grad, t.grad, t._ctx = data, device, requires_grad, None, None
        return t

    # ----- properties -----
    shape = property(lambda self: tuple(self.data.shape))
    ndim = property(lambda self: len(self.data.shape))
    size = property(lambda self: prod(self.data.shape))  # number of elements, as in NumPy
    dtype = property(lambda self: self.data.dtype)
    is_leaf = property(lambda self: self._ctx is None)
    grad_fn = property(lambda self: self._ctx)
    T = property(lambda self: self.transpose(-2, -1) if self.ndim >= 2 else self)

    def numel(self):
        return self.size

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def numpy(self):
        return self.device.backend.to_numpy(self.data)

    def tolist(self):
        return self.numpy().tolist()

    def item(self):
        if self.size != 1:
            raise ValueError(f"item(): only a tensor with one element converts to a Python "
                             f"scalar, this one has shape {self.shape}")
        return self.numpy().reshape(()).item()

    def __repr__(self):
        extra = ", requires_grad=True" if self.requires_grad else ""
        return (f"Tensor({np.array2string(self.numpy(), separator=', ', prefix='Tensor(')}, "
                f"dtype={self.dtype}, device='{self.device}'{extra})")

    def __hash__(self):
        return id(self)

    def __bool__(self):
        if self.size != 1:
            raise ValueError(f"the truth value of a tensor with shape {self.shape} is ambiguous")
        return bool(self.item())

    # ----- autograd -----
    def requires_grad_(self, requires_grad=True):
        if requires_grad and not dt.is_float(self.dtype):
            raise TypeError(f"requires_grad: only float32/float64 tensors can require "
                            f"gradients, this one is {self.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self):
        return Tensor._wrap(self.data, self.device, False)

    def backward(self, gradient=None, retain_graph=False):
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no "
                               "graph; create the inputs with requires_grad=True")
        if gradient is None:
            if self.size != 1:
                raise RuntimeError(f"backward(): a gradient can only be implied for a scalar "
                                   f"output; this one has shape {self.shape}, so pass "
                                   f"backward(gradient=...) of that shape")
            g = self.device.backend.full(self.shape, 1, self.dtype)
        else:
            gradient = gradient if isinstance(gradient, Tensor) else Tensor(
                gradient, dtype=self.dtype, device=self.device)
            if gradient.shape != self.shape or gradient.device != self.device:
                raise ValueError(f"backward(): gradient has shape {gradient.shape} on "
                                 f"{gradient.device}, expected {self.shape} on {self.device}")
            g = gradient.astype(self.dtype).data
        autograd.backward(self, g, retain_graph)

    def _accumulate_grad(self, g):
        if self.grad is None:
            self.grad = Tensor._wrap(g, self.device, False)
        else:
            self.grad = Tensor._wrap(self.device.backend.elementwise(
                S.ADD, (self.grad.data, g), g.dtype), self.device, False)

    # ----- devices and dtypes -----
    def to(self, device=None, dtype=None):
        out = self
        if dtype is not None:
            out = out.astype(dtype)
        device = get_device(device) if device is not None else self.device
        if device != out.device:
            out = _ToDevice.apply(out, device=device)
        return out

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def astype(self, dtype):
        dtype = dt.to_dtype(dtype)
        if dtype == self.dtype:
            return self
        if self.requires_grad and dt.is_float(dtype):
            return E.Cast.apply(self, dtype=dtype)
        return Tensor._wrap(self.device.backend.elementwise(S.COPY, (self.data,), dtype),
                            self.device, False)

    def float(self):
        return self.astype(dt.float32)

    def double(self):
        return self.astype(dt.float64)

    def long(self):
        return self.astype(dt.int64)

    def bool(self):
        return self.astype(dt.bool_)

    # ----- element-wise -----
    def _operand(self, other):
        """Bring a scalar, array or tensor to this tensor's device and a common dtype."""
        if isinstance(other, Tensor):
            if other.device != self.device:
                raise RuntimeError(f"expected both tensors on one device, got {self.device} "
                                   f"and {other.device}; move one with .to(device)")
            return other
        if isinstance(other, (bool, int, float, np.number, np.bool_)):
            dtype = dt.promote_scalar(self.dtype, other)
            return Tensor._wrap(self.device.backend.full((), other, dtype), self.device, False)
        return Tensor(other, device=self.device)

    def _binary(self, fn, other, reverse=False):
        other = self._operand(other)
        a, b = (other, self) if reverse else (self, other)
        dtype = a.dtype
        if b.dtype != dtype or (fn in E.FLOAT_ONLY and not dt.is_float(dtype)):
            dtype = dt.promote(a.dtype, b.dtype)
            if fn in E.FLOAT_ONLY and not dt.is_float(dtype):
                dtype = dt.float32
            a, b = a.astype(dtype), b.astype(dtype)
        return fn.apply(a, b)

    def _unary(self, fn):
        x = self if dt.is_float(self.dtype) or fn not in E.FLOAT_ONLY else self.float()
        return fn.apply(x)

    def _compare(self, name, other):
        other = self._operand(other)
        dtype = dt.promote(self.dtype, other.dtype)
        return E.compare(E.COMPARISONS[name], name, self.astype(dtype), other.astype(dtype))

    __add__ = lambda self, o: self._binary(E.Add, o)
    __radd__ = lambda self, o: self._binary(E.Add, o, True)
    __sub__ = lambda self, o: self._binary(E.Sub, o)
    __rsub__ = lambda self, o: self._binary(E.Sub, o, True)
    __mul__ = lambda self, o: self._binary(E.Mul, o)
    __rmul__ = lambda self, o: self._binary(E.Mul, o, True)
    __truediv__ = lambda self, o: self._binary(E.Div, o)
    __rtruediv__ = lambda self, o: self._binary(E.Div, o, True)
    __pow__ = lambda self, o: self._binary(E.Pow, o)
    __rpow__ = lambda self, o: self._binary(E.Pow, o, True)
    __neg__ = lambda self: E.Neg.apply(self)
    __matmul__ = lambda self, o: self.matmul(o)
    __rmatmul__ = lambda self, o: self._operand(o).matmul(self)
    __eq__ = lambda self, o: self._compare("eq", o)
    __ne__ = lambda self, o: self._compare("ne", o)
    __lt__ = lambda self, o: self._compare("lt", o)
    __le__ = lambda self, o: self._compare("le", o)
    __gt__ = lambda self, o: self._compare("gt", o)
    __ge__ = lambda self, o: self._compare("ge", o)

    add, sub, mul, div, pow = __add__, __sub__, __mul__, __truediv__, __pow__
    neg = __neg__
    maximum = lambda self, o: self._binary(E.Maximum, o)
    minimum = lambda self, o: self._binary(E.Minimum, o)
    exp = lambda self: self._unary(E.Exp)
    log = lambda self: self._unary(E.Log)
    sqrt = lambda self: self._unary(E.Sqrt)
    abs = lambda self: self._unary(E.Abs)
    __abs__ = abs

    def clip(self, min=None, max=None):
        if min is None and max is None:
            raise ValueError("clip: at least one of min and max must be given")
        if not dt.is_float(self.dtype):
            raise TypeError(f"clip: expected a float tensor, got {self.dtype}")
        k = self.device.backend
        low = k.full((), -np.inf if min is None else min, self.dtype)
        high = k.full((), np.inf if max is None else max, self.dtype)
        return E.Clip.apply(self, low=low, high=high)

    clamp = clip

    # ----- reductions -----
    def _axes(self, op, axis):
        return normalize_axes(op, axis, self.ndim)

    def sum(self, axis=None, keepdims=False):
        x = self if self.dtype != dt.bool_ else self.long()
        return R.Sum.apply(x, axes=self._axes("sum", axis), keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        axes = self._axes("mean", axis)
        count = prod(self.shape[a] for a in axes)
        x = self if dt.is_float(self.dtype) else self.float()
        return x.sum(axes, keepdims) * (1.0 / count if count else float("nan"))

    def var(self, axis=None, keepdims=False, correction=1):
        """Variance with Bessel's correction by default (PyTorch's unbiased=True)."""
        axes = self._axes("var", axis)
        count = prod(self.shape[a] for a in axes)
        centred = self - self.mean(axes, keepdims=True)
        scale = 1.0 / (count - correction) if count > correction else float("nan")
        return (centred * centred).sum(axes, keepdims) * scale

    def std(self, axis=None, keepdims=False, correction=1):
        return self.var(axis, keepdims, correction).sqrt()

    def _extreme(self, fn, name, axis, keepdims):
        axes = self._axes(name, axis)
        if any(self.shape[a] == 0 for a in axes):
            raise ValueError(f"{name}: cannot reduce over an empty dimension of shape {self.shape}")
        return fn.apply(self, axes=axes, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return self._extreme(R.Max, "max", axis, keepdims)

    def min(self, axis=None, keepdims=False):
        return self._extreme(R.Min, "min", axis, keepdims)

    def _arg(self, op, name, axis, keepdims):
        if axis is not None:
            axis = self._axes(name, axis)[0] if self.ndim else None
        if self.size == 0:
            raise ValueError(f"{name}: cannot take the {name} of an empty tensor")
        return R.argreduce(op, self, axis, keepdims)

    def argmax(self, axis=None, keepdims=False):
        return self._arg(S.MAX, "argmax", axis, keepdims)

    def argmin(self, axis=None, keepdims=False):
        return self._arg(S.MIN, "argmin", axis, keepdims)

    def _float_axis(self, name, axis):
        if not dt.is_float(self.dtype):
            raise TypeError(f"{name}: expected a float tensor, got {self.dtype}")
        return self._axes(name, axis)

    def logsumexp(self, axis=None, keepdims=False):
        return R.LogSumExp.apply(self, axes=self._float_axis("logsumexp", axis), keepdims=keepdims)

    def softmax(self, axis=-1):
        return R.Softmax.apply(self, axis=self._float_axis("softmax", axis)[0])

    def log_softmax(self, axis=-1):
        return R.LogSoftmax.apply(self, axis=self._float_axis("log_softmax", axis)[0])

    # ----- matmul -----
    def matmul(self, other):
        other = self._operand(other)
        dtype = dt.promote(self.dtype, other.dtype)
        a, b = self.astype(dtype), other.astype(dtype)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes "
                             f"{a.shape} and {b.shape}")
        squeeze = []  # PyTorch's 1-D rules: a vector is a row (left) or a column (right)
        if a.ndim == 1:
            a, squeeze = a.reshape(1, -1), squeeze + [-2]
        if b.ndim == 1:
            b, squeeze = b.reshape(-1, 1), squeeze + [-1]
        M.matmul_shape(a.shape, b.shape)
        out = M.MatMul.apply(a, b)
        return out.reshape(out.shape[:-2] + tuple(
            s for i, s in zip((-2, -1), out.shape[-2:]) if i not in squeeze)) if squeeze else out

    # ----- movement -----
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        shape = V.resolve_shape("reshape", shape, self.size)
        return self if shape == self.shape else V.Reshape.apply(self, shape=shape)

    view = reshape

    def permute(self, *axes):
        axes = axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        if len(axes) != self.ndim or sorted(
                a % max(self.ndim, 1) for a in axes) != list(range(self.ndim)):
            raise ValueError(f"permute: {tuple(axes)} is not a permutation of the "
                             f"{self.ndim} dimensions of shape {self.shape}")
        axes = tuple(a % self.ndim for a in axes)
        return self if axes == tuple(range(self.ndim)) else V.Permute.apply(self, axes=axes)

    def transpose(self, dim0=-2, dim1=-1):
        axes = list(range(self.ndim))
        d0, d1 = normalize_axes("transpose", dim0, self.ndim)[0], normalize_axes(
            "transpose", dim1, self.ndim)[0]
        axes[d0], axes[d1] = axes[d1], axes[d0]
        return self.permute(axes)

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        s = normalize_axes("flatten", start_dim, self.ndim)[0]
        e = normalize_axes("flatten", end_dim, self.ndim)[0]
        if s > e:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        return self.reshape(self.shape[:s] + (prod(self.shape[s:e + 1]),) + self.shape[e + 1:])

    def squeeze(self, axis=None):
        axes = self._axes("squeeze", axis)
        return self.reshape(tuple(s for i, s in enumerate(self.shape)
                                  if not (i in axes and s == 1)))

    def unsqueeze(self, axis):
        axis = normalize_axes("unsqueeze", axis, self.ndim + 1)[0]
        return self.reshape(self.shape[:axis] + (1,) + self.shape[axis:])

    def expand(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        lead = len(shape) - self.ndim
        if lead < 0:
            raise ValueError(f"expand: cannot expand shape {self.shape} to fewer dims {shape}")
        shape = tuple(self.shape[i - lead] if s == -1 and i >= lead else s
                      for i, s in enumerate(shape))
        if broadcast_shape("expand", self.shape, shape) != shape:
            raise ValueError(f"expand: cannot expand shape {self.shape} to {shape}")
        return self if shape == self.shape else V.Expand.apply(self, shape=shape)

    broadcast_to = expand

    def __getitem__(self, key):
        return V.GetItem.apply(self, key=V.normalize_key(self, key))

    def pad(self, pad_width, value=0.0):
        """Constant padding, NumPy style: pad_width is one (before, after) pair per dimension
        (or a single pair for all)."""
        widths = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (self.ndim, 2))
        if (widths < 0).any():
            raise ValueError(f"pad: widths must be non-negative, got {pad_width!r}")
        widths = tuple((int(b), int(a)) for b, a in widths)
        return V.Pad.apply(self, widths=widths, value=value)


class _ToDevice(autograd.Function):
    """Differentiable copy to another device: the gradient travels back the same way."""

    @classmethod
    def apply(cls, x, device):
        array = device.backend.from_numpy(x.device.backend.to_numpy(x.data))
        track = autograd.is_grad_enabled() and x.requires_grad
        out = Tensor._wrap(array, device, track)
        if track:
            fn = cls.__new__(cls)
            fn.k, fn.inputs, fn.source = device.backend, (x,), x.device
            out._ctx = fn
        return out

    def backward(self, g):
        return (self.source.backend.from_numpy(self.k.to_numpy(g)),)


autograd._make_tensor = Tensor._wrap
