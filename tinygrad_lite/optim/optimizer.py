"""The Optimizer base: parameter groups with their own hyperparameters, per-parameter state on
the parameter's device, zero_grad, step(closure), state_dict / load_state_dict; as PyTorch's
torch.optim.Optimizer.

A rule subclasses it, checks its hyperparameters in `_check_group` and updates each parameter
in `_update(p, grad, group, state)` with one fused in-place kernel call (kernels/*/optim.py).
The base skips frozen parameters (requires_grad False) and those without a gradient, never
writes `.grad`, and bumps each updated parameter's version counter, so a graph that saved the
old value raises instead of silently using the new one.

    opt = optim.SGD([{"params": backbone.parameters(), "lr": 1e-3},
                     {"params": head.parameters()}], lr=1e-2, momentum=0.9)
    opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
"""
import copy
import numbers

from .. import autograd
from ..dtype import is_float
from ..tensor import Tensor

__all__ = ["Optimizer", "required"]


class _Required:
    def __repr__(self):
        return "<required parameter>"


required = _Required()  # a default that a group must supply (SGD's lr in old PyTorch)


class _enable_grad:
    """Grad mode on for a closure, whatever the caller's mode (as torch.enable_grad)."""

    def __enter__(self):
        self.previous, autograd._grad_mode.enabled = autograd._grad_mode.enabled, True

    def __exit__(self, *exc):
        autograd._grad_mode.enabled = self.previous


def check_number(name, value, low=None, high=None, low_open=False, high_open=False):
    """Raise ValueError naming `name` unless low <(=) value <(=) high."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or value != value:
        raise ValueError(f"Invalid {name}: {value!r} (expected a real number)")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"Invalid {name}: {value} (expected {'>' if low_open else '>='} {low})")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"Invalid {name}: {value} (expected {'<' if high_open else '<='} "
                         f"{high})")


class Optimizer:
    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.state = {}  # parameter -> dict of its state (Tensors on its device, and "step")
        self.param_groups = []
        name = type(self).__name__
        if isinstance(params, (Tensor, dict)) or not hasattr(params, "__iter__"):
            raise TypeError(f"{name}: params must be an iterable of Tensors or of dicts "
                            f"(parameter groups), got {type(params).__name__}")
        groups = list(params)
        if not groups:
            raise ValueError(f"{name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines) + "\n)"

    # ----- groups -----
    def _check_group(self, group):
        """Raise ValueError for a hyperparameter out of range (each rule overrides)."""

    def add_param_group(self, param_group):
        """Add a group: a dict with "params" and any hyperparameters that override the
        defaults (a smaller lr for fine-tuned layers, weight_decay=0 for biases)."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}.add_param_group: expected a dict, got "
                            f"{type(param_group).__name__}")
        group = dict(param_group)
        params = group.get("params")
        if params is None:
            raise ValueError(f"{name}.add_param_group: the group has no 'params' entry")
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimise Tensors, got "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{name}: can't optimise a non-leaf Tensor (shape {p.shape}); "
                                 "optimise the leaves it was computed from")
        if len({id(p) for p in params}) != len(params):
            raise ValueError(f"{name}: a parameter appears twice in one parameter group")
        for key, value in self.defaults.items():
            if value is required and key not in group:
                raise ValueError(f"{name}: parameter group didn't specify a value of "
                                 f"required optimisation parameter '{key}'")
            group.setdefault(key, value)
        unknown = set(group) - set(self.defaults) - {"params", "initial_lr", "name"}
        if unknown:
            raise ValueError(f"{name}: unknown hyperparameter(s) {sorted(unknown)} in a "
                             f"parameter group; expected some of {sorted(self.defaults)}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        self._check_group(group)
        group["params"] = params
        self.param_groups.append(group)

    # ----- gradients -----
    def zero_grad(self, set_to_none=True):
        """Drop every parameter's gradient (set_to_none=True) or zero it in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad.zero_()

    # ----- stepping -----
    def step(self, closure=None):
        """One update of every parameter that has a gradient. `closure` re-evaluates the
        model and returns the loss (computed with grad mode on); step returns that loss."""
        loss = None
        if closure is not None:
            with _enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None or not p.requires_grad:
                    continue
                grad = self._check_grad(p)
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {}
                p._write(lambda _: self._update(p, grad, group, state))
        return loss

    def _check_grad(self, p):
        g = p.grad
        if g.shape != p.shape or g.device != p.device or g.dtype != p.dtype:
            raise RuntimeError(f"{type(self).__name__}.step: a parameter of shape {p.shape}, "
                               f"{p.dtype} on {p.device} has a gradient of shape {g.shape}, "
                               f"{g.dtype} on {g.device}")
        if not p.is_contiguous():  # the kernels write a flat view of the storage
            raise RuntimeError(f"{type(self).__name__}.step: parameters must be contiguous "
                               f"(this one has shape {p.shape} and strides {p.stride()}); "
                               "make it with .contiguous() before building the model")
        return g.array

    def _update(self, p, grad, group, state):
        raise NotImplementedError

    # ----- state helpers for the rules -----
    @staticmethod
    def _zeros(p, value=0.0):
        """A state tensor shaped and typed like p, on p's device."""
        return Tensor._wrap(p.device.backend.full(p.shape, value, p.dtype), p.device, False)

    _EMPTY = {}

    @classmethod
    def _unused(cls, p):
        """The empty array a kernel gets for a state array its switches leave unused."""
        key = (p.device.backend.NAME, p.dtype)
        if key not in cls._EMPTY:
            cls._EMPTY[key] = p.device.backend.empty((0,), p.dtype)
        return cls._EMPTY[key]

    # ----- saving and loading -----
    def state_dict(self):
        """{"state": {index: {name: value}}, "param_groups": [{..., "params": [index]}]}:
        parameters are numbered in group order, as in PyTorch. State tensors are copies, so
        the checkpoint does not change as training goes on."""
        index, groups = {}, []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                packed["params"].append(index[id(p)])
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = {
                        k: v.clone() if isinstance(v, Tensor) else copy.deepcopy(v)
                        for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    # group entries a scheduler may add (LRScheduler, OneCycleLR) besides the hyperparameters
    _SCHEDULER_KEYS = frozenset({"initial_lr", "max_lr", "min_lr", "max_momentum",
                                 "base_momentum", "name", "swa_lr"})

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and state saved by state_dict() of an optimiser of the same
        kind over parameters of the same shapes in the same group order. Float state tensors
        (or arrays) are cast onto each parameter's device and dtype, as PyTorch does.
        Everything is checked first (group count, parameters per group, hyperparameter names
        and values, state indices, shapes and dtypes), so a refused load changes nothing."""
        groups, state = self._check_state_dict(state_dict)
        for own in self.param_groups:
            own.update(groups[id(own)])
        self.state = state

    def _check_state_dict(self, state_dict):
        """({id(own group): hyperparameters to set}, the new state): every check of
        load_state_dict, raising ValueError (TypeError for a wrong kind of object) that names
        the optimiser and the problem, before anything is changed."""
        name = f"{type(self).__name__}.load_state_dict"
        groups = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
        if not isinstance(groups, (list, tuple)) or not isinstance(state_dict.get("state"),
                                                                   dict):
            raise ValueError(f"{name}: expected a dict with 'state' (a dict) and "
                            "'param_groups' (a list), as state_dict() returns")
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{name}: the state has {len(groups)} parameter groups, this "
                             f"optimiser {len(self.param_groups)}")
        by_index, new_groups = {}, {}
        for i, (saved, own) in enumerate(zip(groups, self.param_groups)):
            if not isinstance(saved, dict) or "params" not in saved:
                raise TypeError(f"{name}: saved group {i} is not a dict with 'params'")
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(f"{name}: saved group {i} has {len(saved['params'])} "
                                 f"parameters, this optimiser's {len(own['params'])}")
            hyper = {k: v for k, v in saved.items() if k != "params"}
            missing = sorted(set(self.defaults) - set(hyper))
            unknown = sorted(set(hyper) - set(self.defaults) - set(own) - self._SCHEDULER_KEYS)
            if missing or unknown:
                raise ValueError(f"{name}: saved group {i} is not a {type(self).__name__} "
                                 f"group (missing hyperparameters {missing}, unknown "
                                 f"{unknown})")
            merged = {**own, **hyper}
            self._check_group(merged)  # its values too (a negative lr, betas out of range)
            new_groups[id(own)] = {k: merged[k] for k in hyper}
            for j, p in zip(saved["params"], own["params"]):
                if j in by_index:
                    raise ValueError(f"{name}: parameter index {j} appears twice")
                by_index[j] = p
        state = {}
        for i, saved_state in state_dict["state"].items():
            try:
                p = by_index[int(i)]
            except (KeyError, TypeError, ValueError):
                raise ValueError(f"{name}: the state refers to parameter {i!r}, which no "
                                 f"saved group holds (indices {sorted(by_index)})") from None
            if not isinstance(saved_state, dict):
                raise TypeError(f"{name}: the state of parameter {i} is a "
                                f"{type(saved_state).__name__}, expected a dict")
            state[p] = {k: self._load_value(name, i, p, k, v) for k, v in saved_state.items()}
        return new_groups, state

    @staticmethod
    def _load_value(name, index, p, key, value):
        """A copy of one saved state entry for parameter p; tensors checked and cast."""
        if isinstance(value, Tensor):
            if value.shape != p.shape:
                raise ValueError(f"{name}: state '{key}' of parameter {index} has shape "
                                 f"{value.shape}, the parameter {p.shape}")
            if is_float(p.dtype) and not is_float(value.dtype):
                raise ValueError(f"{name}: state '{key}' of parameter {index} is {value.dtype},"
                                 f" expected a float tensor for a {p.dtype} parameter")
            return Tensor(value.numpy(), dtype=p.dtype, device=p.device)
        return copy.deepcopy(value)
