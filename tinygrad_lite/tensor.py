"""Tensor: an array on a device, its gradient, and the Function that made it. Thin on purpose:
the math and the argument rules live in ops/ and kernels/, the graph walk in autograd.py; this
file turns Python syntax and PyTorch-style methods into calls of ops.

`t.array` is the raw backend array (NumPy or a CUDA device array); `t.data` is, as in
PyTorch, a Tensor sharing that storage that records no graph."""
import copy
from math import prod

import numpy as np

from . import autograd, ops
from . import dtype as dt
from .device import Device, get_device
from .kernels import scalar as S
from .ops import elementwise as E
from .ops import inplace as I
from .ops import matmul as M
from .ops import movement as V
from .ops import reduce as R
from .ops import torch_names


_new, _Version = object.__new__, autograd.Version


class Tensor:
    __slots__ = ("array", "device", "_requires_grad", "grad", "_ctx", "_output_index",
                 "_version", "_hooks", "__weakref__")
    __array_priority__ = 1000  # numpy_array * tensor -> Tensor.__rmul__, not an object array

    def __init__(self, data, dtype=None, device=None, requires_grad=False):
        device = get_device(device)
        if isinstance(data, Tensor):
            data = data.numpy()
        elif not isinstance(data, np.ndarray) and hasattr(data, "copy_to_host"):
            data = data.copy_to_host()
        array = dt.to_numpy(data, dtype)
        self._init(device.backend.from_numpy(array), device, False)
        if requires_grad:
            self.requires_grad = True

    def _init(self, array, device, requires_grad):
        self.array, self.device, self._requires_grad = array, device, requires_grad
        self.grad, self._ctx, self._output_index, self._hooks = None, None, 0, None
        self._version = autograd.Version()

    @staticmethod
    def _wrap(array, device, requires_grad):
        """A plain Tensor around a backend array (never a subclass: ops make plain tensors
        from Parameters too)."""
        t = _new(Tensor)  # _init, inlined: every op's output comes through here
        t.array, t.device, t._requires_grad = array, device, requires_grad
        t.grad, t._ctx, t._output_index, t._hooks = None, None, 0, None
        t._version = _Version()
        return t

    # ----- properties -----
    shape = property(lambda self: tuple(self.array.shape))
    ndim = property(lambda self: len(self.array.shape))
    size = property(lambda self: prod(self.array.shape))  # number of elements, as in NumPy
    dtype = property(lambda self: self.array.dtype)
    is_leaf = property(lambda self: self._ctx is None)
    grad_fn = property(lambda self: self._ctx)
    T = property(lambda self: self.transpose(-2, -1) if self.ndim >= 2 else self)

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value):
        if value and not dt.is_float(self.dtype):
            raise TypeError(f"requires_grad: only float32/float64 tensors can require "
                            f"gradients, this one is {self.dtype}")
        if not value and self._ctx is not None:
            raise RuntimeError("requires_grad: only a leaf's flag can be turned off; use "
                               ".detach() for a tensor that an op produced")
        self._requires_grad = bool(value)

    @property
    def data(self):
        """This tensor's storage as a tensor that records no graph (PyTorch's .data)."""
        return Tensor._wrap(self.array, self.device, False)

    @data.setter
    def data(self, value):
        if not isinstance(value, Tensor):
            raise TypeError(f"data: expected a Tensor, got {type(value).__name__}")
        if value.device != self.device:
            raise RuntimeError(f"data: expected a tensor on {self.device}, got {value.device}")
        self.array = value.array

    @property
    def version(self):
        """How many times this tensor's storage was written in place."""
        return self._version.value

    def _write(self, fill=None, *others, storage=None):
        """The one path by which the package writes tensors' storage outside the graph
        (in-place ops, optimiser steps, L-BFGS, running statistics, accumulated gradients,
        Module.to): fill(array, *others' arrays) writes into this tensor's storage and the
        others' (its result is ignored), or `storage` replaces this one's (a move to another
        dtype or device). Each version then goes up once, so a graph that saved the old values
        raises instead of differentiating the new ones."""
        if storage is not None:
            self.array = storage
        else:
            fill(self.array, *(t.array for t in others))
        for t in (self,) + others:
            t._version.value += 1
        return self

    def numel(self):
        return self.size

    def dim(self):
        return self.ndim

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def numpy(self):
        return self.device.backend.to_numpy(self.array)

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
            raise ValueError(f"the truth value of a tensor with shape {self.shape} is ambiguous; "
                             "reduce it first, e.g. with (t != 0).sum() > 0, or compare .item()")
        return bool(self.item())

    # ----- autograd -----
    def requires_grad_(self, requires_grad=True):
        self.requires_grad = requires_grad
        return self

    def detach(self):
        """The same storage (and version counter), cut from the graph."""
        t = Tensor._wrap(self.array, self.device, False)
        t._version = self._version
        return t

    def __deepcopy__(self, memo):
        """A new leaf of the same class (a Parameter stays one) with its own copy of the
        storage, on the same device, and a copy of .grad: what copy.deepcopy(model) needs. As
        in PyTorch, only leaves can be deep-copied; the graph is never copied."""
        if self._ctx is not None:
            raise RuntimeError("deepcopy: only a leaf tensor can be deep-copied (this one was "
                               f"made by {type(self._ctx).__name__}); detach() it first")
        new = object.__new__(type(self))
        with autograd.no_grad():
            new._init(self.detach().clone().array, self.device, self._requires_grad)
        memo[id(self)] = new
        if self.grad is not None:
            new.grad = copy.deepcopy(self.grad, memo)
        return new

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
            g = E.cast(gradient, self.dtype).array
        autograd.backward(self, g, retain_graph)

    def register_hook(self, hook):
        """Call hook(grad) with this tensor's gradient (a Tensor) whenever backward computes
        it; a hook may return a replacement. Returns a handle whose remove() undoes it."""
        if not callable(hook):
            raise TypeError(f"register_hook: expected a function hook(grad), got "
                            f"{type(hook).__name__}")
        if not self.requires_grad:
            raise RuntimeError("register_hook: this tensor does not require grad, so no "
                               "gradient will ever reach it")
        if self._ctx is not None:
            return self._ctx.register_output_hook(self._output_index, hook)
        hooks = self._hooks = self._hooks if self._hooks is not None else []
        hooks.append(hook)
        return autograd.HookHandle(hooks, hook)

    def _accumulate_grad(self, g, owned):
        """Add g to .grad. A new .grad gets its own storage unless g was made for it alone
        (`owned`): backward may hand the same array to several inputs, or the caller's own.
        An existing .grad is added into in place, as in PyTorch: the same Tensor object (so an
        optimiser's or a hook's reference sees the sum) and no new array per backward."""
        k, grad = self.device.backend, self.grad
        if grad is None:
            self.grad = Tensor._wrap(g if owned else k.elementwise(S.COPY, (g,), g.dtype),
                                     self.device, False)
        elif self._grad_writable(grad):
            grad._write(lambda a: k.elementwise(S.ADD, (a, g), grad.dtype, out=a))
        else:  # a .grad the user assigned that cannot hold the sum in place: a new one
            self.grad = Tensor._wrap(k.elementwise(S.ADD, (grad.array, g), g.dtype),
                                     self.device, False)

    def _grad_writable(self, grad):
        """Whether the sum can be written into `grad`'s storage: a tensor of this one's shape,
        dtype and device whose elements each have their own memory (an expanded tensor's do
        not; on CUDA the kernels write only C-contiguous arrays)."""
        if not isinstance(grad, Tensor) or grad.shape != self.shape or \
                grad.dtype != self.dtype or grad.device != self.device:
            return False
        array = grad.array
        if isinstance(array, np.ndarray):
            return array.flags.writeable and all(
                st != 0 or n <= 1 for n, st in zip(array.shape, array.strides))
        return array.is_c_contiguous()

    # ----- devices, dtypes, layout -----
    def to(self, *args, device=None, dtype=None, non_blocking=False, copy=False):
        """This tensor on `device` and/or as `dtype`, as PyTorch's: t.to(dtype),
        t.to(device), t.to(device, dtype), t.to(other_tensor) (its device and dtype), or the
        keywords. Returns self when nothing changes, unless copy=True. non_blocking is
        accepted for PyTorch code; copies here are synchronous anyway."""
        if len(args) > 2:
            raise TypeError(f"to: expected at most a device and a dtype, got {len(args)} "
                            "positional arguments")
        for arg in args:
            if arg is None:  # to(None, dtype), as Module.to passes: that one left unchanged
                continue
            if isinstance(arg, Tensor):
                if len(args) != 1 or device is not None or dtype is not None:
                    raise TypeError("to: a tensor argument gives both device and dtype; pass "
                                    "it alone")
                device, dtype = arg.device, arg.dtype
                continue
            is_dtype = _is_dtype(arg)
            if is_dtype and dtype is not None or not is_dtype and device is not None:
                raise TypeError(f"to: {'dtype' if is_dtype else 'device'} given twice "
                                f"(again as {arg!r})")
            if is_dtype:
                dtype = arg
            else:
                device = arg
        out = self if dtype is None else self.astype(dtype)
        out = out if device is None else V.to_device(out, get_device(device))
        return out.clone() if copy and out is self else out

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    astype = E.cast
    float = lambda self: E.cast(self, dt.float32)  # noqa: E731
    double = lambda self: E.cast(self, dt.float64)  # noqa: E731
    long = lambda self: E.cast(self, dt.int64)  # noqa: E731
    bool = lambda self: E.cast(self, dt.bool_)  # noqa: E731
    clone = lambda self: E.Copy.apply(self)  # noqa: E731
    contiguous = V.contiguous
    is_contiguous = V.is_contiguous

    def stride(self, dim=None):
        """Strides in elements, as in PyTorch."""
        strides = tuple(s // self.array.dtype.itemsize for s in self.array.strides)
        return strides if dim is None else strides[V.normalize_axes("stride", dim, self.ndim)[0]]

    # ----- element-wise -----
    __add__ = lambda self, o: E.binary(E.Add, self, o)  # noqa: E731
    __radd__ = lambda self, o: E.binary(E.Add, self, o, True)  # noqa: E731
    __sub__ = lambda self, o: E.binary(E.Sub, self, o)  # noqa: E731
    __rsub__ = lambda self, o: E.binary(E.Sub, self, o, True)  # noqa: E731
    __mul__ = lambda self, o: E.binary(E.Mul, self, o)  # noqa: E731
    __rmul__ = lambda self, o: E.binary(E.Mul, self, o, True)  # noqa: E731
    __truediv__ = lambda self, o: E.binary(E.Div, self, o)  # noqa: E731
    __rtruediv__ = lambda self, o: E.binary(E.Div, self, o, True)  # noqa: E731
    __pow__ = lambda self, o: E.binary(E.Pow, self, o)  # noqa: E731
    __rpow__ = lambda self, o: E.binary(E.Pow, self, o, True)  # noqa: E731
    __neg__ = lambda self: E.Neg.apply(self)  # noqa: E731
    __matmul__ = lambda self, o: M.matmul(self, o)  # noqa: E731
    __rmatmul__ = lambda self, o: M.matmul(E.operand(self, o, "matmul"), self)  # noqa: E731
    __eq__ = lambda self, o: E.compare("eq", self, o)  # noqa: E731
    __ne__ = lambda self, o: E.compare("ne", self, o)  # noqa: E731
    __lt__ = lambda self, o: E.compare("lt", self, o)  # noqa: E731
    __le__ = lambda self, o: E.compare("le", self, o)  # noqa: E731
    __gt__ = lambda self, o: E.compare("gt", self, o)  # noqa: E731
    __ge__ = lambda self, o: E.compare("ge", self, o)  # noqa: E731

    add, sub, mul, div, pow, neg = __add__, __sub__, __mul__, __truediv__, __pow__, __neg__
    maximum = lambda self, o: E.binary(E.Maximum, self, o)  # noqa: E731
    minimum = lambda self, o: E.binary(E.Minimum, self, o)  # noqa: E731
    exp = lambda self: E.unary(E.Exp, self)  # noqa: E731
    log = lambda self: E.unary(E.Log, self)  # noqa: E731
    sqrt = lambda self: E.unary(E.Sqrt, self)  # noqa: E731
    abs = __abs__ = lambda self: E.unary(E.Abs, self)  # noqa: E731
    relu = lambda self: E.unary(E.Relu, self)  # noqa: E731
    sigmoid = lambda self: E.unary(E.Sigmoid, self)  # noqa: E731
    tanh = lambda self: E.unary(E.Tanh, self)  # noqa: E731
    clip = clamp = lambda self, min=None, max=None: E.clip(self, min, max)  # noqa: E731

    # ----- in place (PyTorch's rules: see ops/inplace.py) -----
    def add_(self, other, alpha=1):
        return I.arithmetic(self, E.Add, other if alpha == 1 else other * alpha, "add_")

    def sub_(self, other, alpha=1):
        return I.arithmetic(self, E.Sub, other if alpha == 1 else other * alpha, "sub_")

    mul_ = lambda self, o: I.arithmetic(self, E.Mul, o, "mul_")  # noqa: E731
    div_ = lambda self, o: I.arithmetic(self, E.Div, o, "div_")  # noqa: E731
    __iadd__, __isub__, __imul__, __itruediv__ = add_, sub_, mul_, div_
    copy_ = I.copy_
    fill_ = I.fill_
    zero_ = lambda self: I.fill_(self, 0, "zero_")  # noqa: E731

    def clamp_(self, min=None, max=None):
        return I.update(self, "clamp_", lambda x: E.clip(x, min, max))

    clip_ = clamp_

    # ----- reductions -----
    sum = torch_names(R.sum)
    mean = torch_names(R.mean)
    var = torch_names(R.var)
    std = torch_names(R.std)
    max = torch_names(lambda self, axis=None, keepdims=False: R.extreme(
        R.Max, "max", self, axis, keepdims))
    min = torch_names(lambda self, axis=None, keepdims=False: R.extreme(
        R.Min, "min", self, axis, keepdims))
    amax = torch_names(R.amax)
    amin = torch_names(R.amin)
    argmax = torch_names(lambda self, axis=None, keepdims=False: R.argreduce(
        S.MAX, "argmax", self, axis, keepdims))
    argmin = torch_names(lambda self, axis=None, keepdims=False: R.argreduce(
        S.MIN, "argmin", self, axis, keepdims))
    logsumexp = torch_names(R.logsumexp)
    softmax = torch_names(R.softmax)
    log_softmax = torch_names(R.log_softmax)

    # ----- matmul and movement -----
    matmul = M.matmul
    reshape = view = V.reshape
    permute = V.permute
    transpose = V.transpose
    flatten = V.flatten
    squeeze = torch_names(V.squeeze)
    unsqueeze = torch_names(V.unsqueeze)
    expand = broadcast_to = V.expand
    split = torch_names(V.split)
    __getitem__ = V.getitem
    pad = V.pad


def _is_dtype(arg):
    """Whether a positional argument of Tensor.to names a dtype (else it is a device): NumPy
    dtypes and types, Python's float/int/bool, and dtype names such as "float64"."""
    if isinstance(arg, Device):
        return False
    if isinstance(arg, str):
        try:
            get_device(arg)
            return False
        except ValueError:
            pass
    try:
        dt.to_dtype(arg)
    except TypeError as e:
        error = ValueError if isinstance(arg, str) else TypeError
        raise error(f"to: expected a device ('cpu', 'cuda') or a dtype (float32, float64, "
                    f"int64, bool), got {arg!r}: unknown device, and {e}") from None
    return True


autograd._make_tensor = Tensor._wrap
ops.Tensor = Tensor
