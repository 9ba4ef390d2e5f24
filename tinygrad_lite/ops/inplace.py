"""In-place ops (`add_ sub_ mul_ div_ copy_ fill_ zero_ clamp_` and `+= -= *= /=`), with
PyTorch's rules:

- a leaf that requires grad may be written in place only under no_grad() (as optimisers do);
  otherwise its gradient would silently describe values it no longer holds;
- every write bumps the tensor's version counter, so backward() raises a clear error if a
  Function had saved the old values;
- under grad mode a non-leaf (or a tensor written with a value that requires grad) takes the
  history of the write: the op runs on a clone of the old values, which the graph keeps.

Without a graph to record, arithmetic updates run as one kernel writing into the tensor's own
storage (`out=`); anything else computes the new value and copies it in.
"""
from .. import dtype as dt
from .. import ops
from ..autograd import Function, is_grad_enabled
from ..kernels import scalar as S
from ..kernels.plan import broadcast_shape
from . import elementwise as E

_DIRECT = {E.Add: S.ADD, E.Sub: S.SUB, E.Mul: S.MUL, E.Div: S.DIV}


class Replace(Function):
    """The value of `new` in place of `old`: old's history stays in the graph with a zero
    gradient, as in PyTorch (how copy_ and fill_ overwrite a tensor in a graph)."""

    def forward(self, old, new):
        return new

    def backward(self, g):
        need_old, need_new = self.needs_input_grad
        return (self.k.full(g.shape, 0, g.dtype) if need_old else None), (g if need_new else None)


def _check_writable(t, name):
    if any(stride == 0 and size > 1 for size, stride in zip(t.shape, t.stride())):
        raise RuntimeError(f"{name}: the tensor of shape {t.shape} is expanded (strides "
                           f"{t.stride()}): several of its elements share one memory "
                           "location, so it cannot be written in place; clone() it first")


def update(t, name, compute, *others, overwrite=False):
    """Write compute(t_as_it_was, *others) into t's storage; returns t. `overwrite`: the new
    value does not depend on the old one (copy_, fill_), and may have any dtype."""
    _check_writable(t, name)
    tracking = is_grad_enabled() and (t._requires_grad or any(
        getattr(o, "_requires_grad", False) for o in others))
    if tracking and t._ctx is None and t._requires_grad:
        raise RuntimeError(f"{name}: a leaf tensor that requires grad cannot be modified in "
                           "place (its gradient would describe values it no longer holds); "
                           "do the update under `with tl.no_grad():`, as optimisers do")
    # The graph keeps t's old history through this clone's edge (fixed when it is recorded).
    source = E.Copy.apply(t) if tracking else t
    result = compute(source, *others)
    if result.shape != t.shape:
        raise RuntimeError(f"{name}: the result has shape {result.shape}, which cannot be "
                           f"written into a tensor of shape {t.shape}")
    if not overwrite and dt.promote(result.dtype, t.dtype) != t.dtype:
        raise TypeError(f"{name}: the result is {result.dtype}, which cannot be written into "
                        f"a {t.dtype} tensor in place")
    if tracking and overwrite:
        result = Replace.apply(source, result)
    t._write(lambda a: t.device.backend.elementwise(S.COPY, (result.array,), t.dtype, out=a))
    if tracking:
        t._ctx, t._output_index, t._requires_grad = result._ctx, result._output_index, True
    return t


def arithmetic(t, fn, other, name):
    """t = fn(t, other) for Add/Sub/Mul/Div, in one kernel when no graph is recorded."""
    other = E.operand(t, other, name)
    _check_writable(t, name)
    if (not is_grad_enabled() or not (t._requires_grad or other._requires_grad)) and \
            other.dtype == t.dtype and broadcast_shape(name, t.shape, other.shape) == t.shape:
        return t._write(lambda a: t.device.backend.elementwise(
            _DIRECT[fn], (a, other.array), t.dtype, out=a))
    return update(t, name, lambda x, o: E.binary(fn, x, o), other)


def copy_(t, src, name="copy_"):
    if isinstance(src, ops.Tensor) and src.device != t.device:
        src = src.to(t.device)  # copy_ is the one op that moves between devices implicitly
    src = E.operand(t, src, name)
    broadcast_shape(name, src.shape, t.shape)
    return update(t, name, lambda x, s: E.cast(s, t.dtype).expand(t.shape), src,
                  overwrite=True)


def fill_(t, value, name="fill_"):
    return copy_(t, t._wrap(t.device.backend.full((), value, t.dtype), t.device, False), name)
