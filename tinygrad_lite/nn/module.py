"""Module and Parameter: how layers hold parameters, buffers and sub-modules, switch between
training and evaluation, save and load their state, and let hooks watch them. As in PyTorch:
attributes that are Parameters, Modules or registered buffers are found by walking the tree."""
from collections import OrderedDict, namedtuple

from ..autograd import no_grad
from ..device import Device, get_device
from ..dtype import bool_, float32, float64, is_float, to_dtype
from ..tensor import Tensor

def _is_device_name(name):
    try:
        get_device(name)
        return True
    except ValueError:
        return False


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


class _ModuleHookHandle:
    """What register_forward_(pre_)hook returns. Keyed by a counter, not by the function, so
    removing one registration of a hook registered twice leaves the other in place."""
    _next_id = 0

    def __init__(self, table):
        self._table = table
        self.id = _ModuleHookHandle._next_id
        _ModuleHookHandle._next_id += 1

    def remove(self):
        self._table.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class Module:
    """Base class of every layer: subclasses call super().__init__() and define forward()."""

    def __init__(self):
        for name in ("_parameters", "_buffers", "_modules"):
            object.__setattr__(self, name, OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    # ----- registration -----
    def _check_init(self, what):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} before Module.__init__() is called "
                                 f"(call super().__init__() first in {type(self).__name__})")

    def __setattr__(self, name, value):
        # PyTorch's rules: a Parameter or Module (re)registers; a name already registered as a
        # parameter (or child module) takes only another one or None, so that
        # `layer.weight = layer.weight * 2` raises instead of silently turning the weight into
        # a plain attribute the optimiser and state_dict never see; a buffer name takes any
        # Tensor (it stays a buffer) or None.
        d = self.__dict__
        if isinstance(value, Parameter):
            self._check_init("parameters")
            self._forget(name)
            self._parameters[name] = value
        elif "_parameters" in d and name in self._parameters:
            if value is not None:
                raise TypeError(f"{type(self).__name__}: cannot assign "
                                f"'{type(value).__name__}' as parameter '{name}' (Parameter "
                                f"or None expected; wrap a new value in nn.Parameter, or "
                                f"change the values in place under no_grad())")
            self._parameters[name] = None
        elif isinstance(value, Module):
            self._check_init("modules")
            self._forget(name)
            self._modules[name] = value
        elif "_modules" in d and name in self._modules:
            if value is not None:
                raise TypeError(f"{type(self).__name__}: cannot assign "
                                f"'{type(value).__name__}' as child module '{name}' (Module "
                                f"or None expected)")
            self._modules[name] = None
        elif "_buffers" in d and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"{type(self).__name__}: cannot assign "
                                f"'{type(value).__name__}' as buffer '{name}' (Tensor or None "
                                f"expected)")
            self._buffers[name] = value
        else:
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
        # As PyTorch: pre-hooks see (and may replace) the positional inputs, forward runs on
        # what they left, and forward hooks see those final inputs and may replace the output.
        for hook, with_kwargs in list(self._forward_pre_hooks.values()):
            if with_kwargs:
                replaced = hook(self, args, kwargs)
                if replaced is not None:
                    if not (isinstance(replaced, tuple) and len(replaced) == 2):
                        raise RuntimeError(
                            f"{type(self).__name__}: a forward pre-hook registered with "
                            f"with_kwargs=True must return None or (args, kwargs), got "
                            f"{type(replaced).__name__}")
                    args, kwargs = replaced
            else:
                replaced = hook(self, args)
                if replaced is not None:
                    # a single value stands for a one-argument call, as in PyTorch
                    args = replaced if isinstance(replaced, tuple) else (replaced,)
        result = self.forward(*args, **kwargs)
        for hook, with_kwargs in list(self._forward_hooks.values()):
            replaced = hook(self, args, kwargs, result) if with_kwargs else hook(self, args,
                                                                                 result)
            if replaced is not None:
                result = replaced
        return result

    def _add_hook(self, table, hook, prepend, with_kwargs):
        handle = _ModuleHookHandle(table)
        table[handle.id] = (hook, bool(with_kwargs))
        if prepend:
            table.move_to_end(handle.id, last=False)
        return handle

    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """hook(module, args) runs before every forward; it may return replacement args (a
        tuple, or a single value for a one-argument forward). with_kwargs=True: hook(module,
        args, kwargs) returning None or (args, kwargs). Returns a handle whose remove()
        undoes it."""
        return self._add_hook(self._forward_pre_hooks, hook, prepend, with_kwargs)

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False):
        """hook(module, args, output) runs after every forward (with_kwargs=True:
        hook(module, args, kwargs, output)); it may return a replacement output. Returns a
        handle whose remove() undoes it."""
        return self._add_hook(self._forward_hooks, hook, prepend, with_kwargs)

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
    def to(self, *args, **kwargs):
        """to(device), to(dtype), to(device, dtype), to(tensor) or keywords, as PyTorch: move
        every parameter and buffer (and gradient) to the device, and cast the floating-point
        ones to the dtype (integer buffers such as num_batches_tracked keep theirs). In place:
        Parameters stay the same objects, so an optimiser built before still holds them; each
        changed tensor's version goes up, so a graph that saved the old value raises."""
        device, dtype = self._parse_to(args, kwargs)
        for t in list(self.parameters()) + list(self.buffers()):
            self._move(t, device, dtype if is_float(t.dtype) else None)
        return self

    @staticmethod
    def _move(t, device, dtype):
        moved = t.to(device, dtype)
        if moved.array is not t.array:
            t._write(storage=moved.array)
            t.device = moved.device
        if t.grad is not None:
            t.grad = t.grad.to(device, dtype)

    def _parse_to(self, args, kwargs):
        name = f"{type(self).__name__}.to"
        unknown = set(kwargs) - {"device", "dtype", "non_blocking"}
        if unknown:
            raise TypeError(f"{name}: unexpected keyword argument(s) {sorted(unknown)}")
        if len(args) > 2 or (len(args) == 2 and isinstance(args[0], Tensor)):
            raise TypeError(f"{name}: expected (device), (dtype), (device, dtype) or (tensor), "
                            f"got {len(args)} positional arguments")
        device, dtype = kwargs.get("device"), kwargs.get("dtype")
        if len(args) == 2:
            device, dtype = args
        elif len(args) == 1:
            a = args[0]
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, Device) or (isinstance(a, str) and _is_device_name(a)):
                device = a
            else:
                dtype = a
        device = get_device(device) if device is not None else None
        if dtype is not None:
            dtype = to_dtype(dtype)
            if not is_float(dtype):
                raise TypeError(f"{name} only accepts floating-point dtypes (float32, float64),"
                                f" got {dtype}: casting would turn the parameters into "
                                f"tensors that cannot require gradients")
        return device, dtype

    def cpu(self):
        return self.to("cpu")

    def cuda(self):
        return self.to("cuda")

    def float(self):
        """Cast floating-point parameters and buffers to float32 (in place)."""
        return self.to(float32)

    def double(self):
        """Cast floating-point parameters and buffers to float64 (in place), e.g. for
        gradient checks."""
        return self.to(float64)

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
        """Copy values in place into the parameters and persistent buffers of the same names
        (Tensors or NumPy arrays; float values are cast to the model's float dtype, as PyTorch
        does). Every key, shape and dtype is checked before the first copy, so a refused load
        changes nothing. strict: missing or unexpected keys are errors; otherwise they are
        returned as (missing_keys, unexpected_keys). A shape mismatch is always an error."""
        own = self.state_dict()
        values, problems = self._check_state_dict(own, state_dict, strict)
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(problems))
        for key, value in values.items():
            own[key].copy_(value)
        optional = self._optional_keys()
        return IncompatibleKeys([k for k in own if k not in state_dict and k not in optional],
                                [k for k in state_dict if k not in own])

    # Entries a checkpoint may lack without being incomplete (the norm layers' counter, which
    # old PyTorch checkpoints do not have): a missing one keeps its value and is not reported.
    _optional_state = ()

    def _optional_keys(self):
        return {f"{prefix}.{name}" if prefix else name for prefix, module in self.named_modules()
                for name in module._optional_state}

    def _check_state_dict(self, own, state_dict, strict):
        """(values to copy by key, a list of every problem found), changing nothing."""
        if not hasattr(state_dict, "keys"):
            return {}, [f"expected a mapping of names to tensors, got "
                        f"{type(state_dict).__name__}"]
        optional = self._optional_keys()
        missing = [k for k in own if k not in state_dict and k not in optional]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        if strict and missing:
            problems.append("Missing key(s) in state_dict: " + ", ".join(map(repr, missing)))
        if strict and unexpected:
            problems.append("Unexpected key(s) in state_dict: "
                            + ", ".join(map(repr, unexpected)))
        values = {}
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            if not isinstance(value, Tensor):
                try:
                    value = Tensor(value)
                except (TypeError, ValueError) as e:
                    problems.append(f"'{key}' is not a tensor ({type(value).__name__}): {e}")
                    continue
            if value.shape != target.shape:
                problems.append(f"size mismatch for '{key}': copying a param with shape "
                                f"{value.shape} from checkpoint, the shape in current model is "
                                f"{target.shape}")
            elif is_float(value.dtype) and not is_float(target.dtype):
                # a float into an integer buffer (num_batches_tracked) would be truncated
                problems.append(f"dtype mismatch for '{key}': a {value.dtype} tensor in the "
                                f"checkpoint, {target.dtype} in the current model")
            elif value.dtype == bool_ and target.dtype != bool_:
                problems.append(f"dtype mismatch for '{key}': a bool tensor in the checkpoint, "
                                f"{target.dtype} in the current model")
            else:
                values[key] = value
        return values, problems

    # ----- printing -----
    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(m).replace("\n", "\n  ")
                 for name, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + (")" if not lines else "\n  " + "\n  ".join(lines) + "\n)")
