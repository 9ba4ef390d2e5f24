"""How gradients flow: the Function base every op derives from, grad mode, version counters,
and the reverse walk.

A Function's `forward` maps input arrays (NumPy or CUDA device arrays) to one output array or a
tuple of them, keeping what `backward` needs on `self`; `backward` takes one gradient array per
output and returns one gradient array (or None) per input. `self.needs_input_grad` says which
inputs want a gradient, so backward skips the others. Both reach kernels only through `self.k`,
the backend of the inputs' device. Nothing outside this file decides which gradient goes where.

The graph is public for tools that read it (the graph drawing): `graph_order(t)` lists the
Functions behind a tensor, `fn.next_functions` gives each one's inputs as PyTorch's
grad_fn.next_functions does, `fn.output_meta` the (shape, dtype, device) of its outputs. That
structure outlives backward(): backward frees only what the Functions saved for their
gradients. `detect_anomaly()` checks every value and gradient for NaN/inf (a debug mode).
"""
import functools
import os
import sys
import threading

import numpy as np

from .kernels import scalar

_make_tensor = None  # set by tensor.py: (array, device, requires_grad) -> Tensor


class _GradMode(threading.local):
    enabled = True


_grad_mode = _GradMode()


def is_grad_enabled():
    return _grad_mode.enabled


class _AnomalyMode(threading.local):
    enabled = False


# Thread-local like grad mode. Function.apply reads it once per op; everything else anomaly
# mode does (stack walks, host copies, finiteness checks) happens only when it is on.
_anomaly_mode = _AnomalyMode()


def is_anomaly_enabled():
    return _anomaly_mode.enabled


class detect_anomaly:
    """Context manager and decorator (`@detect_anomaly` or `@detect_anomaly()`): while it is
    on (in this thread), every op's outputs are checked for NaN/inf in forward and every
    gradient in backward, and the first non-finite value raises a RuntimeError naming the op,
    its inputs and the line of your code that called it. For debugging: it copies CUDA values
    to the host and records a stack frame per op."""

    def __new__(cls, fn=None):
        self = super().__new__(cls)
        return self(fn) if callable(fn) else self

    def __enter__(self):
        self._previous = _anomaly_mode.enabled
        _anomaly_mode.enabled = True
        return self

    def __exit__(self, *exc):
        _anomaly_mode.enabled = self._previous

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly():
                return fn(*args, **kwargs)
        return wrapper


class set_detect_anomaly:
    """set_detect_anomaly(True/False) turns anomaly detection on or off in this thread, as
    PyTorch's does; used as `with set_detect_anomaly(mode):` it restores the previous mode on
    exit."""

    def __init__(self, mode):
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f"set_detect_anomaly: expected True or False, got {mode!r}")
        self._previous = _anomaly_mode.enabled
        _anomaly_mode.enabled = bool(mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _anomaly_mode.enabled = self._previous


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
    input 0 (on the CPU), so they share its version counter. NON_DIFFERENTIABLE_OUTPUTS lists
    the outputs that carry no gradient (integer results such as max pooling's argmax): they
    never require grad, have no grad_fn, and backward receives None for them."""
    SAVES = ()
    SAVES_OUTPUT = False
    VIEW = False
    NON_DIFFERENTIABLE_OUTPUTS = ()
    released = False  # set by release(): the saved values are gone, the structure stays

    @classmethod
    def apply(cls, *inputs, **params):
        # Plain loops, not generators, and no method calls that can be inlined: this runs for
        # every op, and Python's overhead per op is the cost of small tensors.
        device, wants_grad = inputs[0].device, False
        for t in inputs:
            if t.device is not device and t.device != device:
                raise RuntimeError(f"{cls.__name__}: expected all tensors on one device, got "
                                   f"{device} and {t.device}; move them with .to(device)")
            if t._requires_grad:
                wants_grad = True
        track = wants_grad and _grad_mode.enabled
        fn = _new(cls)
        fn.k = device._backend or device.backend
        if track:
            fn.needs_input_grad = tuple([t._requires_grad for t in inputs])
        else:
            n = len(inputs)
            fn.needs_input_grad = _NO_GRAD[n] if n < 4 else (False,) * n
        if len(inputs) == 1:
            out = fn.forward(inputs[0].array, **params)
        elif len(inputs) == 2:
            out = fn.forward(inputs[0].array, inputs[1].array, **params)
        else:
            out = fn.forward(*[t.array for t in inputs], **params)
        if out.__class__ is tuple:
            constant = cls.NON_DIFFERENTIABLE_OUTPUTS
            outputs = tuple([_make_tensor(a, device, track and i not in constant)
                             for i, a in enumerate(out)])
        else:
            outputs = (_make_tensor(out, device, track),)
        if cls.VIEW:
            for t in outputs:
                t._version = inputs[0]._version
        if _anomaly_mode.enabled:
            _anomaly_forward(fn, inputs, outputs, track)
        if track:
            record(fn, inputs, outputs)
        return outputs if out.__class__ is tuple else outputs[0]

    def forward(self, *arrays, **params):
        raise NotImplementedError

    def backward(self, *grads):
        raise NotImplementedError

    def release(self):
        """Drop what forward saved for backward once backward has used it (unless
        retain_graph). The structure stays, as in PyTorch, so the graph can still be walked
        and drawn while its output is referenced; a second backward through it raises."""
        kept = self.__dict__
        self.__dict__ = {name: kept[name] for name in _STRUCTURE if name in kept}
        self.released = True

    def name(self):
        """The op's name (its class name), as PyTorch's grad_fn.name()."""
        return type(self).__name__

    @property
    def next_functions(self):
        """Per input, as PyTorch's grad_fn.next_functions: (the Function that made it, which
        of its outputs) for a tensor an op made, (AccumulateGrad(leaf), 0) for a leaf that
        requires grad, (None, 0) for an input that needs no gradient."""
        return tuple([(None, 0) if e is None else (e[0], e[1]) if e[0] is not None else
                      (AccumulateGrad(e[2]), 0) for e in self.edges])

    def register_output_hook(self, index, hook):
        """Call hook(grad) with the complete gradient of output `index` in every backward
        through this Function; it may return a replacement. Returns a handle to remove it."""
        if not callable(hook):
            raise TypeError(f"register_output_hook: expected a function hook(grad), got "
                            f"{type(hook).__name__}")
        if not 0 <= index < len(self.output_meta):
            raise IndexError(f"register_output_hook: {self.name()} has "
                             f"{len(self.output_meta)} output(s), got index {index}")
        hooks = self.__dict__.setdefault("output_hooks", {}).setdefault(index, [])
        hooks.append(hook)
        return HookHandle(hooks, hook)


_new = object.__new__
_NO_GRAD = ((), (False,), (False, False), (False, False, False))

# What release() keeps: the graph's structure (edges, output shapes, dtypes and devices, which
# inputs wanted a gradient), the hooks on it and where it was created. Everything else a
# Function holds was saved by forward for backward, and is what the memory goes to.
_STRUCTURE = ("k", "needs_input_grad", "edges", "output_meta", "output_hooks", "created_at")


class AccumulateGrad:
    """The node next_functions gives for a leaf, as in PyTorch: `.variable` is the leaf whose
    .grad backward accumulates into."""
    __slots__ = ("variable",)
    next_functions = ()

    def __init__(self, variable):
        self.variable = variable

    def name(self):
        return "AccumulateGrad"


def graph_order(tensor):
    """The Functions behind `tensor`, each after the Functions that made its inputs (data-flow
    order; empty for a leaf). Walks graphs whose saved values backward already freed."""
    return _post_order(tensor._ctx, None) if tensor._ctx is not None else []


def record(fn, inputs, outputs):
    """Link `outputs` to the Function that made them, and remember the versions of the
    tensors whose values its backward will read.

    Each input becomes an edge fixed now: (the Function that produced it, which of its
    outputs, None) for a tensor an op made, (None, 0, the tensor) for a leaf, None for an
    input that needs no gradient. Fixed now, because an in-place op later gives the tensor
    object a new history that this Function must not follow."""
    edges = []
    for t in inputs:
        if t._requires_grad:
            ctx = t._ctx
            edges.append((None, 0, t) if ctx is None else (ctx, t._output_index, None))
        else:
            edges.append(None)
    fn.edges = edges
    fn.output_meta = [(t.array.shape, t.array.dtype, t.device) for t in outputs]
    saves = fn.SAVES
    if saves or fn.SAVES_OUTPUT:
        versions = []
        for i in saves:
            v = inputs[i]._version
            versions.append((v, v.value))
        if fn.SAVES_OUTPUT:
            for t in outputs:
                v = t._version
                versions.append((v, v.value))
        fn.saved_versions = versions
    else:
        fn.saved_versions = ()
    i = 0
    for t in outputs:
        if t._requires_grad:  # not a NON_DIFFERENTIABLE_OUTPUTS one
            t._ctx, t._output_index = fn, i
        i += 1


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
    `who` names the caller in the error for a freed graph; None walks freed graphs too."""
    order, visited, stack = [], set(), [(root, False)]
    while stack:
        fn, finished = stack.pop()
        if finished:
            order.append(fn)
            continue
        if id(fn) in visited:
            continue
        if who is not None and fn.released:
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


# ----- anomaly mode: none of this runs unless detect_anomaly() is on -----
_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _user_site():
    """'file:line in function' of the innermost caller outside this package: the line of the
    user's code that made the op."""
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame = frame.f_back
    if frame is None:
        return "an unknown place (no caller outside tinygrad_lite)"
    return f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}"


def _nonfinite(array):
    """None when `array` is finite (integers and bools always are), else what it holds, e.g.
    '2 NaN and 1 inf among 6 values'. CUDA arrays are copied to the host to look."""
    if array.dtype.kind not in "fc":
        return None
    host = array if isinstance(array, np.ndarray) else array.copy_to_host()
    if np.isfinite(host).all():
        return None
    nan = int(np.isnan(host).sum())
    return f"{nan} NaN and {host.size - nan - int(np.isfinite(host).sum())} inf among " \
           f"{host.size} values"


def _describe(shapes_dtypes_devices):
    return ", ".join(f"{tuple(s)} {np.dtype(d).name} on {dev}" for s, d, dev in
                     shapes_dtypes_devices) or "none"


def _anomaly_forward(fn, inputs, outputs, track):
    if track:  # where the op was made, for the error its backward may raise later
        fn.created_at = _user_site()
    for i, t in enumerate(outputs):
        found = _nonfinite(t.array)
        if found is None:
            continue
        bad_inputs = [(j, f) for j, f in ((j, _nonfinite(x.array)) for j, x in
                                          enumerate(inputs)) if f is not None]
        cause = ("; it was given non-finite inputs (" + "; ".join(
            f"input {j}: {f}" for j, f in bad_inputs) + "), so they came from outside the "
                 "checked ops (data, a parameter, or a write in place)") if bad_inputs else \
            " from finite inputs"
        raise RuntimeError(
            f"detect_anomaly: {fn.name()} produced {found} in output {i} "
            f"({t.shape} {t.dtype.name}){cause}. Inputs: "
            f"{_describe((x.shape, x.dtype, x.device) for x in inputs)}. "
            f"The op was called at {_user_site()}")


def _anomaly_backward(fn, grads, what):
    """Raise if one of `grads` (arrays or None) is not finite. `what` says whose they are."""
    for i, g in enumerate(grads):
        found = None if g is None else _nonfinite(g)
        if found is None:
            continue
        site = fn.__dict__.get("created_at",
                               "an unknown place (it was made outside detect_anomaly)")
        raise RuntimeError(
            f"detect_anomaly: {what(i)} holds {found} ({tuple(g.shape)} {g.dtype.name}). "
            f"{fn.name()} was created at {site}; its outputs: "
            f"{_describe(fn.output_meta)}")


def backward(root, grad, retain_graph=False):
    """Accumulate d(root)/d(leaf) * grad into every leaf's .grad. Functions run in reverse
    post-order, so each sees the full sum of its outputs' gradients before it runs."""
    anomaly = _anomaly_mode.enabled
    if anomaly and _nonfinite(grad) is not None:
        raise RuntimeError(f"detect_anomaly: the gradient given to backward() holds "
                           f"{_nonfinite(grad)}")
    leaves = _walk(root, grad, retain_graph, anomaly)
    for key in list(leaves):  # popped, so that the only references left to g are counted
        leaf, g, owned = leaves.pop(key)
        if leaf._hooks:
            hooked = run_hooks(leaf._hooks, leaf.device, g)
            g, owned = hooked, owned and hooked is g
        if anomaly and _nonfinite(g) is not None:
            raise RuntimeError(f"detect_anomaly: the gradient for a leaf of shape {leaf.shape} "
                               f"(summed over its uses, after hooks) holds {_nonfinite(g)}")
        owned = owned or _sole_owner(g)  # not inside the call: g would be on the stack
        leaf._accumulate_grad(g, owned)


def _sole_owner(g):
    """Whether nothing but the caller's own local variable can reach g's memory: a NumPy
    array that owns its data, or a whole-array view of one, that no other object (another
    view, a Function's saved values under retain_graph, the caller's `gradient`, a second
    input's gradient) refers to. Such a gradient can become .grad without a copy, as PyTorch's
    AccumulateGrad steals a gradient whose use count says it is the only holder. Anything else
    (CUDA arrays, memory NumPy does not own) is copied."""
    if g.__class__ is not np.ndarray or sys.getrefcount(g) > _SOLE_REFS:
        return False
    flags = g.flags  # dense and writable: not a broadcast view, not read-only
    if not flags.writeable or not (flags.c_contiguous or flags.f_contiguous):
        return False
    base = g.base
    if base is None:
        return flags.owndata
    # all of the base (not a slice that would keep more memory alive), which only g refers to
    return base.__class__ is np.ndarray and base.flags.owndata and \
        base.nbytes == g.nbytes and sys.getrefcount(base) <= _SOLE_BASE_REFS


def _reference_counts(g):
    base = g.base
    return sys.getrefcount(g), sys.getrefcount(base)


def _calibrate():
    """The reference counts _sole_owner sees for an array held by one local variable of its
    caller (and for the base of such a view), measured in the same call shape on this
    interpreter: how many of them the call itself adds differs between Python versions, and a
    count too high would alias .grad with memory something else still uses."""
    g = np.empty(2)[:]
    return _reference_counts(g)


_SOLE_REFS, _SOLE_BASE_REFS = _calibrate()


def _walk(root, grad, retain_graph, anomaly):
    """The reverse walk of backward(): runs every Function's backward and returns, per leaf,
    (leaf, the sum of its gradients, whether that sum was made here)."""
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
            if anomaly:  # a sum of gradients or a hook's replacement may be the first inf
                _anomaly_backward(fn, grads, lambda i, fn=fn: f"the gradient reaching output "
                                  f"{i} of {fn.name()} (summed over its readers, after hooks)")
            for i, (shape, dtype, device) in enumerate(fn.output_meta):
                if grads[i] is None and i not in fn.NON_DIFFERENTIABLE_OUTPUTS:
                    # an output nobody used: its gradient is zero
                    grads[i] = device.backend.full(shape, 0, dtype)
            input_grads = fn.backward(*grads)
            if anomaly:
                _anomaly_backward(fn, input_grads, lambda i, fn=fn: f"the gradient that "
                                  f"{fn.name()}.backward returned for its input {i}")
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
    return leaves
