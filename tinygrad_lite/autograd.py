"""How gradients flow: the Function base every op derives from, grad mode, and the reverse walk.

A Function's `forward` maps input arrays (NumPy or CUDA device arrays) to an output array and
keeps what `backward` needs on `self`; `backward` maps the output's gradient array to one
gradient array (or None) per input. Both reach kernels only through `self.k`, the backend of the
inputs' device. Nothing outside this file decides which gradient goes where.
"""
import functools
import threading

from .kernels import scalar

_make_tensor = None  # set by tensor.py: (array, device, requires_grad) -> Tensor


class _GradMode(threading.local):
    enabled = True


_grad_mode = _GradMode()


def is_grad_enabled():
    return _grad_mode.enabled


class no_grad:
    """Context manager and decorator (`@no_grad` or `@no_grad()`) that records no graph."""

    def __new__(cls, fn=None):
        self = super().__new__(cls)
        return self(fn) if callable(fn) else self

    def __enter__(self):
        self._previous = _grad_mode.enabled
        _grad_mode.enabled = False
        return self

    def __exit__(self, *exc):
        _grad_mode.enabled = self._previous

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)
        return wrapper


class Function:
    """One recorded op. Subclasses implement forward(*arrays, **params) and backward(grad)."""

    def save_for_backward(self, *arrays):
        self.saved = arrays

    @classmethod
    def apply(cls, *inputs, **params):
        device = inputs[0].device
        for t in inputs[1:]:
            if t.device != device:
                raise RuntimeError(f"{cls.__name__}: expected all tensors on one device, got "
                                   f"{device} and {t.device}; move them with .to(device)")
        fn = cls.__new__(cls)
        fn.k = device.backend
        out = fn.forward(*[t.data for t in inputs], **params)
        track = _grad_mode.enabled and any(t.requires_grad for t in inputs)
        result = _make_tensor(out, device, track)
        if track:
            fn.inputs = inputs
            result._ctx = fn
        return result

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    def release(self):
        """Drop saved arrays and inputs once backward has used them (unless retain_graph)."""
        self.__dict__.clear()
        self.released = True


def _topological_order(root):
    order, seen, stack = [], {id(root)}, [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        stack.append((node, True))
        fn = node._ctx
        if fn is None:
            continue
        if getattr(fn, "released", False):
            raise RuntimeError(
                "backward(): the graph behind this tensor was already freed by an earlier "
                "backward(); call backward(retain_graph=True) the first time to walk it twice")
        for parent in fn.inputs:
            if parent.requires_grad and id(parent) not in seen:
                seen.add(id(parent))
                stack.append((parent, False))
    return order


def backward(root, grad, retain_graph=False):
    """Accumulate d(root)/d(leaf) * grad into every leaf's .grad, walking ops in reverse
    topological order so that each op sees the full sum of its output's gradients."""
    grads = {id(root): grad}
    for node in reversed(_topological_order(root)):
        g = grads.pop(id(node), None)
        if g is None:
            continue
        fn = node._ctx
        if fn is None:  # a leaf: the gradient lands in .grad, added to what is there
            node._accumulate_grad(g)
            continue
        input_grads = fn.backward(g)
        for parent, pg in zip(fn.inputs, input_grads):
            if pg is None or not parent.requires_grad:
                continue
            assert pg.shape == parent.shape, (type(fn).__name__, pg.shape, parent.shape)
            key = id(parent)
            grads[key] = pg if key not in grads else fn.k.elementwise(
                scalar.ADD, (grads[key], pg), pg.dtype)
        if not retain_graph:
            fn.release()
