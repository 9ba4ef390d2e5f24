"""The graph behind a tensor as a `graphviz.Digraph`.

What there is to draw: every Function recorded on the way to the tensor (only ops whose inputs
require grad are recorded) and the leaves they read, walked through autograd's public API:
`graph_order(t)` lists the Functions, each one's `next_functions` gives per input its producer
(Function and output index), a leaf (`AccumulateGrad(leaf)`), or None for an input that needs
no gradient (data, labels, constants), and `output_meta` the shape, dtype and device of its
outputs. That structure outlives backward(), so a graph can be drawn after it. Constant inputs
are not drawn unless `show_constants=True`, which draws each as a small "const" node: the graph
holds nothing about them (no shape, no identity), so they only say "an input came from outside
the graph".

Which op a Module made is not in the graph either; `trace_modules(model)` records it while the
forward runs, with a forward pre-hook and a forward hook on every module (the modules are not
changed otherwise, and the hooks come off on exit): the pre-hook notes the ops that made the
module's inputs, the forward hook claims the ops between its outputs and those that no inner
module claimed. Gradient norms of intermediate ops come from hooks on the Functions' outputs
(`capture_grads`), those of leaves from their `.grad`.
"""
import math
from collections.abc import Mapping

import numpy as np

from ..autograd import AccumulateGrad, graph_order
from ..tensor import Tensor

GRAD_LOW, GRAD_HIGH = 1e-5, 1e3  # default ends of the colour scale: vanishing .. exploding
_BLUE, _MID, _RED = (0x4a, 0x90, 0xd9), (0xff, 0xf5, 0xc0), (0xe8, 0x4a, 0x3c)
_NONFINITE = "#c026d3"  # magenta: inf or NaN, never a colour of the scale
_FILL = {"op": "#eeeeee", "param": "#d9ead3", "leaf": "#fff2cc", "group": "#dde7f5",
         "summary": "#ffffff", "const": "#ffffff"}
_SHAPE = {"op": "box", "param": "ellipse", "leaf": "ellipse", "group": "box3d",
          "summary": "note", "const": "plaintext"}


def grad_colour(norm, low=GRAD_LOW, high=GRAD_HIGH):
    """Fill colour for a gradient norm on a log scale: blue at or below `low` (vanishing), pale
    yellow at the geometric middle, red at or above `high` (exploding), magenta for inf/NaN.
    Log, because healthy and sick layers differ by orders of magnitude, not by percents."""
    if not 0 < low < high:
        raise ValueError(f"grad_colour: expected 0 < low < high, got low={low}, high={high}")
    if not math.isfinite(norm):
        return _NONFINITE
    t = 0.0 if norm <= low else min(1.0, math.log(norm / low) / math.log(high / low))
    a, b, s = (_BLUE, _MID, 2 * t) if t < 0.5 else (_MID, _RED, 2 * t - 1)
    return "#" + "".join(f"{round(x + (y - x) * s):02x}" for x, y in zip(a, b))


def _norm(array):
    return float(np.linalg.norm(np.asarray(array, dtype=np.float64).ravel()))


def inputs_of(fn):
    """Per input of `fn`: ("op", producer Function, output index), ("leaf", tensor) or None
    for an input that needs no gradient."""
    found = []
    for node, i in fn.next_functions:
        found.append(None if node is None else ("leaf", node.variable)
                     if isinstance(node, AccumulateGrad) else ("op", node, i))
    return found


def _tensors(obj):
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (tuple, list)):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, Mapping):
        for item in obj.values():
            yield from _tensors(item)


class ModuleTrace:
    """Context manager that records which Module's forward made each op. Use
    `with trace_modules(model) as trace: out = model(x)`, then `draw_graph(..., modules=trace)`.
    An op belongs to the innermost module whose forward made it; paths are
    `model.named_modules()` names ("" for the model itself)."""

    def __init__(self, model):
        if not hasattr(model, "named_modules"):
            raise TypeError(f"trace_modules: expected an nn.Module, got {type(model).__name__}")
        self.model, self.types, self._owner, self._handles = model, {}, {}, []
        self._inputs = {}  # module path -> a stack (a module may be called re-entrantly)

    def __enter__(self):
        for path, module in self.model.named_modules():
            self.types[path] = type(module).__name__
            # The pre-hook runs after any other pre-hook (so it sees the inputs forward gets);
            # the forward hook runs before any other (so it sees forward's own output).
            self._handles.append(module.register_forward_pre_hook(
                self._before(path), with_kwargs=True))
            self._handles.append(module.register_forward_hook(self._after(path),
                                                              prepend=True))
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles, self._inputs = [], {}

    def _before(self, path):
        def before(module, args, kwargs):
            self._inputs.setdefault(path, []).append(
                {id(t._ctx) for t in _tensors((args, kwargs)) if t._ctx is not None})
        return before

    def _after(self, path):
        def after(module, args, out):
            pending = self._inputs.get(path)
            stop = pending.pop() if pending else set()
            stack = [t._ctx for t in _tensors(out) if t._ctx is not None]
            seen = set()
            while stack:  # walk back to the inputs; claim what no inner module claimed
                fn = stack.pop()
                if id(fn) in seen or id(fn) in stop:
                    continue
                seen.add(id(fn))
                self._owner.setdefault(id(fn), (fn, path))
                stack.extend(e[1] for e in inputs_of(fn) if e is not None and e[0] == "op")
        return after

    def owner(self, fn):
        """The path of the module that made `fn`, or None if it was made outside them."""
        entry = self._owner.get(id(fn))
        return entry[1] if entry is not None and entry[0] is fn else None


def trace_modules(model):
    """`with trace_modules(model) as trace:` records which module made each op."""
    return ModuleTrace(model)


class GradCapture:
    """Records the norm of the gradient that reaches each op's outputs in later backward
    passes (hooks on the Functions' outputs, as Tensor.register_hook puts them). `norms` maps
    (id(fn), output index) to the latest norm; `remove()` (or leaving the `with`) takes the
    hooks off."""

    def __init__(self, output):
        self.norms, self._handles = {}, []
        for fn in graph_order(output):
            for i in range(len(fn.output_meta)):
                self._handles.append(fn.register_output_hook(i, self._recorder((id(fn), i))))

    def _recorder(self, key):
        def record(grad):
            self.norms[key] = _norm(grad.numpy())
        return record

    def norm(self, fn, outputs=None):
        """The norm over `fn`'s outputs (all, or the given indices) that got a gradient."""
        found = [self.norms[(id(fn), i)] for i in (outputs if outputs is not None else
                 range(len(fn.output_meta))) if (id(fn), i) in self.norms]
        return math.sqrt(sum(n * n for n in found)) if found else None

    def remove(self):
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def capture_grads(output):
    """Hook every op behind `output` so that the next backward records its gradient norms."""
    if not isinstance(output, Tensor):
        raise TypeError(f"capture_grads: expected a Tensor, got {type(output).__name__}")
    return GradCapture(output)


def _param_names(params):
    if params is None:
        return {}
    items = params.named_parameters() if hasattr(params, "named_parameters") else (
        params.items() if isinstance(params, Mapping) else params)
    names = {}
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Tensor)):
            raise TypeError("draw_graph: params must be a Module, a dict of name -> Tensor or "
                            f"(name, Tensor) pairs, got an item {item!r:.60}")
        names[id(item[1])] = item[0]
    return names


def _meta_line(shape, dtype, device):
    return f"{tuple(shape)} {np.dtype(dtype).name} {device}"
