"""How gradients flow: the Function base every op derives from, grad mode, version counters,
and the reverse walk.

A Function's `forward` maps input arrays (NumPy or CUDA device arrays) to one output array or a
tuple of them, keeping what `backward` needs on `self`; `backward` takes one gradient array per
output and returns one gradient array (or None) per input. `self.needs_input_grad` says which
inputs want a gradient, so backward skips the others. Both reach kernels only through `self.k`,
the backend of the inputs' device. Nothing outside this file decides which gradient goes where.
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


class Version:
    """How many times a storage was written in place. Tensors that share storage (a view, a
    detach()) share one; a Function remembers the value for every tensor whose values its
    backward reads, so that a later in-place write is an error instead of a wrong gradient."""
    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


class Function:
    """One recorded op. Subclasses implement forward(*arrays, **params) and backward(*grads).

    SAVES lists the inputs whose values backward reads, SAVES_OUTPUT whether it reads its
    output(s); both feed the in-place check. VIEW marks ops whose outputs may share storage with
    input 0 (on the CPU), so they share its version counter."""
    SAVES = ()
    SAVES_OUTPUT = False
    VIEW = False

    @classmethod
    def apply(cls, *inputs, **params):
        # Plain loops, not generators: this runs for every op, and Python's overhead per op is
        # the cost of small tensors.
        device, wants_grad = inputs[0].device, False
        for t in inputs:
            if t.device is not device and t.device != device:
                raise RuntimeError(f"{cls.__name__}: expected all tensors on one device, got "
                                   f"{device} and {t.device}; move them with .to(device)")
            wants_grad = wants_grad or t._requires_grad
        track = wants_grad and _grad_mode.enabled
        fn = cls.__new__(cls)
        fn.k = device.backend
        fn.needs_input_grad = tuple([t._requires_grad for t in inputs]) if track else \
            (False,) * len(inputs)
        out = fn.forward(*[t.array for t in inputs], **params)
        multi = isinstance(out, tuple)
        outputs = tuple([_make_tensor(a, device, track) for a in out]) if multi else \
            (_make_tensor(out, device, track),)
        if cls.VIEW:
            for t in outputs:
                t._version = inputs[0]._version
        if track:
            record(fn, inputs, outputs)
        return outputs if multi else outputs[0]

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, *grads):
        raise NotImplementedError

    def release(self):
        """Drop saved arrays and inputs once backward has used them (unless retain_graph)."""
        self.__dict__.clear()
        self.released = True


def record(fn, inputs, outputs):
    """Link `outputs` to the Function that made them, and remember the versions of the
    tensors whose values its backward will read.

    Each input becomes an edge fixed now: (the Function that produced it, which of its
    outputs, None) for a tensor an op made, (None, 0, the tensor) for a leaf, None for an
    input that needs no gradient. Fixed now, because an in-place op later gives the tensor
    object a new history that this Function must not follow."""
    edges = []
    for t in inputs:
        if not t._requires_grad:
            edges.append(None)
        elif t._ctx is not None:
            edges.append((t._ctx, t._output_index, None))
        else:
            edges.append((None, 0, t))
    fn.edges = edges
    fn.output_meta = [(tuple(t.array.shape), t.array.dtype, t.device) for t in outputs]
    if fn.SAVES or fn.SAVES_OUTPUT:
        saved = [inputs[i] for i in fn.SAVES] + (list(outputs) if fn.SAVES_OUTPUT else [])
        fn.saved_versions = [(t._version, t._version.value) for t in saved]
    else:
        fn.saved_versions = ()
    for i, t in enumerate(outputs):
        t._ctx, t._output_index = fn, i


class HookHandle:
    """What register_hook returns: remove() takes the hook off again."""

    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def run_hooks(hooks, device, grad):
    """Each hook sees the gradient as a Tensor and may return a replacement."""
    for hook in list(hooks):
        result = hook(_make_tensor(grad, device, False))
        if result is not None:
            if tuple(result.shape) != tuple(grad.shape):
                raise RuntimeError(f"register_hook: a hook returned a gradient of shape "
                                   f"{tuple(result.shape)} for one of shape {tuple(grad.shape)}")
            grad = result.array
    return grad


def _check_versions(fn):
    for counter, value in fn.saved_versions:
        if counter.value != value:
            raise RuntimeError(
                f"backward(): a tensor that {type(fn).__name__} saved for its gradient was "
                f"modified by an in-place operation (version {value}, now {counter.value}); "
                "use an out-of-place op, or .clone() the tensor before changing it")


def _post_order(root, who="backward()"):
    """Every Function reachable from `root` through inputs that require grad, each listed
    after all the Functions that produce its inputs (a true post-order: a Function is appended
    only when every path below it is finished, whatever the path lengths). Inputs are visited
    first to last, so the order also reads as the data flowed (the graph drawing uses it).
    `who` names the caller in the error for a freed graph."""
    order, visited, stack = [], set(), [(root, False)]
    while stack:
        fn, finished = stack.pop()
        if finished:
            order.append(fn)
            continue
        if id(fn) in visited:
            continue
        if getattr(fn, "released", False):
            raise RuntimeError(
                f"{who}: the graph behind this tensor was already freed by an earlier "
                "backward(); call backward(retain_graph=True) the first time to keep it")
        visited.add(id(fn))
        stack.append((fn, True))
        for edge in reversed(fn.edges):
            if edge is not None and edge[0] is not None and id(edge[0]) not in visited:
                stack.append((edge[0], False))
    return order


def _add(sums, key, holder, grad):
    """sums[key] = (holder, grad summed with what is there, owned); added on the holder's own
    device. `owned` says the array was made by the sum, so no caller can hold it."""
    if key in sums:
        held = sums[key][1]
        grad = holder.device.backend.elementwise(scalar.ADD, (held, grad), grad.dtype)
        sums[key] = (holder, grad, True)
    else:
        sums[key] = (holder, grad, False)


def backward(root, grad, retain_graph=False):
    """Accumulate d(root)/d(leaf) * grad into every leaf's .grad. Functions run in reverse
    post-order, so each sees the full sum of its outputs' gradients before it runs."""
    leaves = {}
    if root._ctx is None:
        _add(leaves, id(root), root, grad)
    else:
        output_grads = {id(root._ctx): {root._output_index: grad}}
        for fn in reversed(_post_order(root._ctx)):
            received = output_grads.pop(id(fn), None)
            if received is None:
                continue
            _check_versions(fn)
            hooks = getattr(fn, "output_hooks", None)
            if hooks:  # a hook sees an output's gradient once it is complete
                for i, g in list(received.items()):
                    if hooks.get(i):
                        received[i] = run_hooks(hooks[i], fn.output_meta[i][2], g)
            grads = [received.get(i) for i in range(len(fn.output_meta))]
            for i, (shape, dtype, device) in enumerate(fn.output_meta):
                if grads[i] is None:  # an output nobody used: its gradient is zero
                    grads[i] = device.backend.full(shape, 0, dtype)
            input_grads = fn.backward(*grads)
            for edge, g in zip(fn.edges, input_grads):
                if g is None or edge is None:
                    continue
                producer, i, leaf = edge
                shape, _, device = producer.output_meta[i] if leaf is None else (
                    leaf.shape, leaf.dtype, leaf.device)
                if tuple(g.shape) != shape:
                    raise RuntimeError(f"{type(fn).__name__}.backward returned a gradient of "
                                       f"shape {tuple(g.shape)} for an input of shape {shape}")
                if leaf is not None:
                    _add(leaves, id(leaf), leaf, g)
                    continue
                slots = output_grads.setdefault(id(producer), {})
                slots[i] = g if i not in slots else device.backend.elementwise(
                    scalar.ADD, (slots[i], g), g.dtype)
            if not retain_graph:
                fn.release()
    for leaf, g, owned in leaves.values():
        if leaf._hooks:
            hooked = run_hooks(leaf._hooks, leaf.device, g)
            g, owned = hooked, owned and hooked is g
        leaf._accumulate_grad(g, owned)
