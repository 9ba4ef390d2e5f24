"""summary(model, input_size): a table of the layers one forward pass runs, with each layer's
output shape, parameter count, whether its parameters train, and its multiply-adds (torchinfo's
habit). It is the quick check before training: do the shapes fit, where are the parameters,
where is the compute, and which layers are frozen (see train.freeze).

    >>> print(nn.summary(model, (1, 3, 32, 32)))
    Layer (name)                  Output shape       Params  Trainable  Mult-adds
    Sequential                    (1, 10)                --  trainable          0
      Conv2d (0)                  (1, 16, 32, 32)       432  trainable    442,368
      ...
"""
import numbers
from collections import namedtuple

from .. import creation
from ..autograd import no_grad
from ..dtype import float32, is_float, to_dtype
from ..tensor import Tensor
from .conv import Conv2d
from .layers import Linear

__all__ = ["summary", "ModelSummary", "LayerRow"]

# One module call: `name` as named_modules gives it ("" for the model itself), `depth` its
# nesting (0 for the model), `params` the elements of its own parameters (not its children's)
# that no earlier row counted, `trainable` over all its parameters, children's included.
LayerRow = namedtuple("LayerRow", "name layer depth output_shape params trainable macs")


def _macs(module, output):
    """Multiply-adds of one call of `module` (the whole batch): the weight products of Linear
    (in_features * out_features per sample and position) and Conv2d (per output element,
    in_channels / groups * kh * kw). Bias additions, normalisation, activations and pooling
    count 0: the weight products are the cost the lectures count. Containers count 0 here;
    their children have rows of their own."""
    if not isinstance(output, Tensor):
        return 0
    if isinstance(module, Linear):  # DropConnect too: a Linear whose weights are masked
        return output.size * module.in_features
    if isinstance(module, Conv2d):
        kh, kw = module.kernel_size
        return output.size * (module.in_channels // module.groups) * kh * kw
    return 0


def _trainable(module):
    """'trainable', 'frozen' or 'partial' over all of a module's parameters; '--' for none."""
    flags = {p.requires_grad for p in module.parameters()}
    if not flags:
        return "--"
    return "partial" if len(flags) == 2 else "trainable" if True in flags else "frozen"


def _shape_of(output):
    """A Tensor's shape, a list of shapes for a tuple or list of outputs, else None."""
    if isinstance(output, Tensor):
        return output.shape
    if isinstance(output, (tuple, list)):
        return [_shape_of(o) for o in output]
    return None


def _format_shape(shape):
    if shape is None:
        return "--"
    if isinstance(shape, list):
        return ", ".join(_format_shape(s) for s in shape)
    return str(tuple(shape))


def _input_shapes(input_size, batch_size):
    """A list of shapes, one per input: input_size is one shape (a tuple of ints) or a list
    of shapes; batch_size, when given, goes in front of each."""
    def is_shape(s):
        return isinstance(s, (tuple, list)) and all(
            isinstance(d, numbers.Integral) and not isinstance(d, bool) for d in s)

    if is_shape(input_size) and len(input_size):
        shapes = [tuple(input_size)]
    elif isinstance(input_size, (tuple, list)) and input_size and all(
            is_shape(s) for s in input_size):
        shapes = [tuple(s) for s in input_size]
    else:
        raise TypeError(f"summary: input_size must be a shape (a tuple of ints such as (2, 3, "
                        f"32, 32), batch dimension first) or a list of shapes for a model with "
                        f"several inputs, got {input_size!r}")
    if batch_size is not None:
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool):
            raise TypeError(f"summary: batch_size must be an int or None, got {batch_size!r}")
        shapes = [(batch_size,) + s for s in shapes]
    for s in shapes:
        if any(d < 1 for d in s):
            raise ValueError(f"summary: input sizes must be positive, got the shape {s}")
    return shapes


def _default_device_and_dtype(model):
    """The device of the model's first parameter (or buffer), and its dtype when float."""
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device, (t.dtype if is_float(t.dtype) else float32)
    return "cpu", float32


class ModelSummary:
    """What summary() returns: `rows` (LayerRow per module call, in call order),
    `total_params`, `trainable_params`, `frozen_params`, `total_macs`, `input_shapes`.
    str() and repr() are the table."""

    def __init__(self, rows, total_params, trainable_params, input_shapes, dtype, device):
        self.rows = rows
        self.total_params, self.trainable_params = total_params, trainable_params
        self.frozen_params = total_params - trainable_params
        self.total_macs = sum(r.macs for r in rows)
        self.input_shapes, self.dtype, self.device = input_shapes, dtype, device

    def _table(self):
        header = ("Layer (name)", "Output shape", "Params", "Trainable", "Mult-adds")
        body = [("  " * r.depth + r.layer + (f" ({r.name})" if r.name else ""),
                 _format_shape(r.output_shape), f"{r.params:,}" if r.params else "--",
                 r.trainable, f"{r.macs:,}") for r in self.rows]
        widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]

        def line(cells):  # names and shapes to the left, numbers to the right
            return "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        rule = "=" * len(line(header))
        lines = [rule, line(header), rule] + [line(cells) for cells in body] + [rule]
        counted = sum(r.params for r in self.rows)
        lines += [f"Total params: {self.total_params:,}",
                  f"Trainable params: {self.trainable_params:,}",
                  f"Frozen params: {self.frozen_params:,}"]
        if counted != self.total_params:
            lines.append(f"(of which {self.total_params - counted:,} in modules the forward "
                         f"pass did not call)")
        shapes = ", ".join(str(s) for s in self.input_shapes)
        lines += [f"Total mult-adds: {self.total_macs:,}",
                  f"Input: {shapes} {self.dtype} on {self.device}, eval mode, no grad", rule]
        return "\n".join(lines)

    def __str__(self):
        return self._table()

    __repr__ = __str__


def summary(model, input_size, dtype=None, device=None, batch_size=None):
    """Run one forward pass of `model` on zeros of `input_size`, in eval mode and without
    grad, and return a ModelSummary: one row per module call in call order (nested calls
    indented by depth; a module called twice has two rows, its parameters counted in the
    first), with the output shape, the module's own parameter count, 'trainable' / 'frozen'
    / 'partial' over all its parameters (requires_grad), and its multiply-adds (Linear and
    Conv2d weight products for the whole batch; everything else 0, see _macs).

    input_size: the input's shape with the batch dimension first, as torchinfo takes it
    ((2, 3, 32, 32)), or a list of shapes for a model whose forward takes several inputs.
    batch_size: when given, input_size is a sample's shape and this batch size goes in front
    (the older pytorch-summary habit). dtype and device default to those of the model's first
    parameter (float32 on the CPU for a model without any).

    Eval mode, so batch norm uses (and does not update) its running statistics and dropout
    draws nothing from the random generator; each module's own training flag and the model's
    hooks are as they were afterwards, even when the forward pass raises. The totals are
    over model.parameters(), each parameter once, called in the forward pass or not."""
    shapes = _input_shapes(input_size, batch_size)
    own_device, own_dtype = _default_device_and_dtype(model)
    device = own_device if device is None else device
    dtype = own_dtype if dtype is None else to_dtype(dtype)
    inputs = [creation.zeros(*s, dtype=dtype, device=device) for s in shapes]

    names = {id(m): name for name, m in model.named_modules()}
    rows, open_calls, counted = [], [], set()

    def before(module, args):
        own = [p for p in module.parameters(recurse=False) if id(p) not in counted]
        counted.update(id(p) for p in own)
        open_calls.append(len(rows))
        rows.append(dict(name=names[id(module)], layer=type(module).__name__,
                         depth=len(open_calls) - 1, output_shape=None,
                         params=sum(p.size for p in own), trainable=_trainable(module),
                         macs=0))

    def after(module, args, output):
        row = rows[open_calls.pop()]
        row["output_shape"], row["macs"] = _shape_of(output), _macs(module, output)

    modes = [(m, m.training) for m in model.modules()]
    handles = []
    try:
        for m in model.modules():
            handles += [m.register_forward_pre_hook(before), m.register_forward_hook(after)]
        model.eval()
        with no_grad():
            try:
                model(*inputs)
            except Exception as e:
                e.add_note(f"(raised in summary's forward pass of {type(model).__name__} on "
                           f"zeros of shape {', '.join(map(str, shapes))})")
                raise
    finally:
        for handle in handles:
            handle.remove()
        for m, training in modes:
            m.training = training

    params = list(model.parameters())
    return ModelSummary([LayerRow(**r) for r in rows], sum(p.size for p in params),
                        sum(p.size for p in params if p.requires_grad), shapes, dtype,
                        inputs[0].device)
