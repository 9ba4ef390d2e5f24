"""Module and Parameter: how layers hold parameters, buffers and sub-modules, switch between
training and evaluation, save and load their state, and let hooks watch them. As in PyTorch:
attributes that are Parameters, Modules or registered buffers are found by walking the tree."""
from collections import OrderedDict, namedtuple

from .. import autograd
from ..autograd import no_grad
from ..device import get_device
from ..tensor import Tensor

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Parameter(Tensor):
    """A Tensor that a Module registers as a parameter (requires grad by default). Built
    from a Tensor it shares that tensor's storage."""
    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        t = data if isinstance(data, Tensor) else Tensor(data)
        self._init(t.array, t.device, False)
        self._version = t._version
        self.requires_grad = requires_grad

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer: subclasses call super().__init__() and define forward()."""

    def __init__(self):
        for name in ("_parameters", "_buffers", "_modules"):
            object.__setattr__(self, name, OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_forward_hooks", [])
        object.__setattr__(self, "training", True)

    # ----- registration -----
    def _check_init(self, what):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} before Module.__init__() is called "
                                 f"(call super().__init__() first in {type(self).__name__})")

    def __setattr__(self, name, value):
        if isinstance(value, Parameter):
            self._check_init("parameters")
            self._forget(name)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._check_init("modules")
            self._forget(name)
            self._modules[name] = value
        elif "_buffers" in self.__dict__ and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"{type(self).__name__}: buffer '{name}' must be a Tensor or "
                                f"None, got {type(value).__name__}")
            self._buffers[name] = value
        elif "_parameters" in self.__dict__ and name in self._parameters and value is None:
            self._parameters[name] = None
        else:
            if "_parameters" in self.__dict__:
                self._forget(name)
            object.__setattr__(self, name, value)

    def _forget(self, name):
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        self.__dict__.pop(name, None)

    def __getattr__(self, name):  # only called when normal lookup fails
        for table in ("_parameters", "_buffers", "_modules"):
            found = self.__dict__.get(table)
            if found is not None and name in found:
                return found[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                return
        object.__delattr__(self, name)

    def _register(self, op, table, name, value, kind):
        if value is not None and not isinstance(value, kind):
            raise TypeError(f"{op}: '{name}' must be a {kind.__name__} or None, got "
                            f"{type(value).__name__}")
        self._check_init(table.strip("_"))
        self._forget(name)
        getattr(self, table)[name] = value

    def register_parameter(self, name, param):
        self._register("register_parameter", "_parameters", name, param, Parameter)

    def register_buffer(self, name, tensor, persistent=True):
        """A tensor that is state but not a parameter (running statistics): moved by to(),
        saved in state_dict() unless persistent=False, never given to an optimiser."""
        self._register("register_buffer", "_buffers", name, tensor, Tensor)
        (self._non_persistent.discard if persistent else self._non_persistent.add)(name)

    def add_module(self, name, module):
        self._register("add_module", "_modules", name, module, Module)

    # ----- calling -----
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        result = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks):
            replaced = hook(self, args, result)
            if replaced is not None:
                result = replaced
        return result

    def register_forward_hook(self, hook):
        """hook(module, inputs, output) runs after every forward; it may return a
        replacement output. Returns a handle whose remove() undoes it."""
        self._forward_hooks.append(hook)
        return autograd.HookHandle(self._forward_hooks, hook)

    # ----- walking the tree -----
    def named_modules(self, prefix=""):
        seen, stack = set(), [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{n}" if name else n, m) for n, m in module._modules.items()
                        if m is not None]
            stack.extend(reversed(children))

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_children(self):
        return ((n, m) for n, m in self._modules.items() if m is not None)

    def children(self):
        return (m for _, m in self.named_children())

    def _named(self, table, recurse):
        seen = set()
        for prefix, module in (self.named_modules() if recurse else [("", self)]):
            for name, t in getattr(module, table).items():
                if t is not None and id(t) not in seen:
                    seen.add(id(t))
                    yield (f"{prefix}.{name}" if prefix else name), t

    def named_parameters(self, recurse=True):
        return self._named("_parameters", recurse)

    def parameters(self, recurse=True):
        return (p for _, p in self.named_parameters(recurse))

    def named_buffers(self, recurse=True):
        return self._named("_buffers", recurse)

    def buffers(self, recurse=True):
        return (b for _, b in self.named_buffers(recurse))

    # ----- modes and bulk changes -----
    def train(self, mode=True):
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    def apply(self, fn):
        """fn(module) for every sub-module, children first, then this one."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    @no_grad()
    def to(self, device=None, dtype=None):
        """Move (and cast) every parameter and buffer in place: Parameters stay the same
        objects, so an optimiser built before still holds them."""
        device = get_device(device) if device is not None else None
        for t in list(self.parameters()) + list(self.buffers()):
            moved = t.to(device, dtype)
            t.array, t.device = moved.array, moved.device
            if t.grad is not None:
                t.grad = t.grad.to(device, dtype)
        return self

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    # ----- saving and loading -----
    def state_dict(self):
        """Parameters and persistent buffers by dotted name, as tensors that share storage and
        record no graph."""
        state = OrderedDict()
        for prefix, module in self.named_modules():
            dot = f"{prefix}." if prefix else ""
            for name, p in module._parameters.items():
                if p is not None:
                    state[dot + name] = p.detach()
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    state[dot + name] = b.detach()
        return state

    @no_grad()
    def load_state_dict(self, state_dict, strict=True):
        """Copy values in place into the parameters and buffers of the same names. strict:
        missing or unexpected keys raise; otherwise they are returned."""
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict of {type(self).__name__}: missing keys {missing}, "
                           f"unexpected keys {unexpected}")
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            value = value if isinstance(value, Tensor) else Tensor(value, dtype=target.dtype)
            if value.shape != target.shape:
                raise ValueError(f"load_state_dict of {type(self).__name__}: '{key}' has shape "
                                 f"{value.shape} in the checkpoint, {target.shape} in the model")
            target.copy_(value)
        return IncompatibleKeys(missing, unexpected)

    # ----- printing -----
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(m).replace("\n", "\n  ")
                 for name, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + (")" if not lines else "\n  " + "\n  ".join(lines) + "\n)")
