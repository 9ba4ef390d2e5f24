"""Weight averaging, as torch.optim.swa_utils: stochastic weight averaging (SWA, Izmailov et al.,
2018) and exponential moving averages (EMA, Polyak averaging with exponential weights).

- `AveragedModel(model)` keeps a copy of `model` whose parameters are a running average of the
  ones `update_parameters(model)` is given: the equal-weight mean by default (SWA), or any rule
  given as `avg_fn` (one tensor at a time, returns the new value) or `multi_avg_fn` (lists of
  tensors of one device and dtype, updated in place). The first call copies; `n_averaged`
  counts the calls. `use_buffers=True` averages the buffers (batch-norm statistics) too;
  otherwise they are copied from the model at every call.
- `SWALR(optimizer, swa_lr)` anneals every group's lr to swa_lr over `anneal_epochs` steps
  ("cos" or "linear") and keeps it there; chainable like the package's other schedules.
- `update_bn(loader, model)` recomputes batch-norm running statistics with one pass over
  `loader`: averaged weights never produced the activations their BN statistics describe.

Writes go through copy_/add_ under no_grad(), which bump each tensor's version, so a graph that
saved an averaged parameter's old value raises instead of using the new one.

    swa_model = AveragedModel(model)
    swa_sched = SWALR(opt, swa_lr=0.05, anneal_epochs=5)
    for epoch in range(100):
        train_one_epoch()
        if epoch >= 75:
            swa_model.update_parameters(model); swa_sched.step()
    update_bn(train_loader, swa_model)
"""
import copy
import math
import numbers

import numpy as np

from ..autograd import no_grad
from ..device import get_device
from ..dtype import is_float
from ..nn.module import Module
from ..nn.normalization import _BatchNorm
from ..tensor import Tensor
from .lr_scheduler import LRScheduler

__all__ = ["AveragedModel", "SWALR", "update_bn", "get_ema_multi_avg_fn",
           "get_swa_multi_avg_fn", "get_ema_avg_fn", "get_swa_avg_fn"]


def _check_decay(name, decay):
    if isinstance(decay, bool) or not isinstance(decay, numbers.Real) or not 0.0 <= decay <= 1.0:
        raise ValueError(f"{name}: decay must be a number in [0, 1], got {decay!r}")


def _lerp_(start, end, weight):
    """start <- start + weight * (end - start), in place, with torch.lerp's two forms (the one
    that stays exact at its end: weight 1 gives `end` itself)."""
    if weight < 0.5:
        start.add_(end - start, alpha=weight)
    else:
        start.copy_(end - (end - start) * (1.0 - weight))


def get_ema_multi_avg_fn(decay=0.999):
    """An in-place multi_avg_fn for AveragedModel: W_ema <- decay W_ema + (1 - decay) W, over
    lists of tensors. Integer tensors (batch-norm counters, with use_buffers=True) take the
    float result truncated toward zero, as in PyTorch."""
    _check_decay("get_ema_multi_avg_fn", decay)

    @no_grad()
    def ema_update(averaged, current, num_averaged):
        for avg, cur in zip(averaged, current):
            if is_float(avg.dtype):
                _lerp_(avg, cur, 1.0 - decay)
            else:
                avg.copy_(avg * decay + cur * (1.0 - decay))
    return ema_update


def get_swa_multi_avg_fn():
    """The in-place multi_avg_fn of the equal-weight running mean (SWA):
    W_avg <- W_avg + (W - W_avg) / (n + 1), n the number of models averaged so far."""

    @no_grad()
    def swa_update(averaged, current, num_averaged):
        n = float(num_averaged.item() if isinstance(num_averaged, Tensor) else num_averaged)
        for avg, cur in zip(averaged, current):
            if is_float(avg.dtype):
                _lerp_(avg, cur, 1.0 / (n + 1.0))
            else:
                avg.copy_(avg + (cur - avg) / (n + 1.0))
    return swa_update


def get_ema_avg_fn(decay=0.999):
    """An avg_fn (one tensor, returns the new value): decay W_ema + (1 - decay) W."""
    _check_decay("get_ema_avg_fn", decay)

    @no_grad()
    def ema_update(ema_param, current_param, num_averaged):
        return decay * ema_param + (1 - decay) * current_param
    return ema_update


def get_swa_avg_fn():
    """An avg_fn (one tensor, returns the new value): W_avg + (W - W_avg) / (n + 1)."""

    @no_grad()
    def swa_update(averaged_param, current_param, num_averaged):
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)
    return swa_update


class AveragedModel(Module):
    """A copy of `model` (on `device` if given) whose parameters (and buffers, with
    use_buffers) are running averages of those update_parameters() is given; calling it runs
    the averaged copy (`self.module`). Give at most one of avg_fn(averaged, current,
    n_averaged) -> new value, or multi_avg_fn(averaged list, current list, n_averaged)
    updating in place; neither means the equal-weight mean (SWA). The functions are not part
    of the state_dict; `n_averaged` (an int64 buffer) is."""

    def __init__(self, model, device=None, avg_fn=None, multi_avg_fn=None, use_buffers=False):
        super().__init__()
        if not isinstance(model, Module):
            raise TypeError(f"AveragedModel: expected a Module to average, got "
                            f"{type(model).__name__}")
        if avg_fn is not None and multi_avg_fn is not None:
            raise ValueError("AveragedModel: give avg_fn or multi_avg_fn, not both")
        for name, fn in (("avg_fn", avg_fn), ("multi_avg_fn", multi_avg_fn)):
            if fn is not None and not callable(fn):
                raise TypeError(f"AveragedModel: {name} must be callable, got "
                                f"{type(fn).__name__}")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module.to(device)
        self.register_buffer("n_averaged", Tensor(np.zeros((), np.int64), device=device))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _averaged_tensors(self, model):
        """(ours, theirs): the tensors to average, pairwise, checked to correspond."""
        def tensors(m):
            found = list(m.parameters())
            return found + list(m.buffers()) if self.use_buffers else found
        ours, theirs = tensors(self.module), tensors(model)
        what = "parameters and buffers" if self.use_buffers else "parameters"
        if len(ours) != len(theirs):
            raise ValueError(f"AveragedModel.update_parameters: the model has {len(theirs)} "
                             f"{what}, the averaged copy {len(ours)}; pass the model it was "
                             f"built from")
        for i, (a, b) in enumerate(zip(ours, theirs)):
            if a.shape != b.shape:
                raise ValueError(f"AveragedModel.update_parameters: {what} number {i} has "
                                 f"shape {b.shape} in the model, {a.shape} in the averaged "
                                 f"copy; pass the model it was built from")
        return ours, [b.detach().to(a.device) for a, b in zip(ours, theirs)]

    @no_grad()
    def update_parameters(self, model):
        """Fold `model`'s current parameters into the average: copied the first time, then
        averaged by avg_fn / multi_avg_fn (default the equal-weight mean). Without use_buffers
        the buffers are copied from `model`. n_averaged goes up by one."""
        ours, theirs = self._averaged_tensors(model)
        if not self.use_buffers:
            buffers = list(self.module.buffers()), list(model.buffers())
            if len(buffers[0]) != len(buffers[1]):
                raise ValueError(f"AveragedModel.update_parameters: the model has "
                                 f"{len(buffers[1])} buffers, the averaged copy "
                                 f"{len(buffers[0])}")
        if int(self.n_averaged.item()) == 0:
            for avg, cur in zip(ours, theirs):
                avg.copy_(cur)
        elif self.avg_fn is not None:
            for avg, cur in zip(ours, theirs):
                avg.copy_(self.avg_fn(avg.detach(), cur, self.n_averaged.to(avg.device)))
        else:
            # As PyTorch: multi_avg_fn sees lists of one device and dtype at a time.
            multi_avg_fn = self.multi_avg_fn or get_swa_multi_avg_fn()
            groups = {}
            for avg, cur in zip(ours, theirs):
                group = groups.setdefault((str(avg.device), avg.dtype), ([], [], avg.device))
                group[0].append(avg.detach())
                group[1].append(cur)
            for averaged, current, device in groups.values():
                multi_avg_fn(averaged, current, self.n_averaged.to(device))
        if not self.use_buffers:  # the buffers follow the model
            for avg, cur in zip(*buffers):
                avg.copy_(cur.detach())
        self.n_averaged.add_(1)


@no_grad()
def update_bn(loader, model, device=None):
    """Recompute the running statistics of every batch norm in `model` with one pass over
    `loader`, as PyTorch's update_bn: each BN's statistics are reset and averaged with equal
    weight over the batches (momentum None: a cumulative average), then the momenta and the
    model's train/eval mode are put back. A batch is a Tensor (or NumPy array), or a
    tuple/list whose first element is the input; `device`: move the input there first
    (arrays go to the model's device by default)."""
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    target = get_device(device) if device is not None else next(
        (p.device for p in model.parameters()), get_device("cpu"))
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    try:
        for batch in loader:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            if isinstance(x, np.ndarray):
                x = Tensor(x, dtype=x.dtype, device=target)
            elif not isinstance(x, Tensor):
                raise TypeError(f"update_bn: expected batches of Tensors or arrays, or "
                                f"tuples/lists whose first element is one, got "
                                f"{type(x).__name__}")
            elif device is not None:
                x = x.to(target)
            model(x)
    finally:
        for module, momentum in momenta.items():
            module.momentum = momentum
        model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's lr from its current value to swa_lr (one value, or one per group)
    over anneal_epochs steps, along a cosine ("cos") or a line ("linear"), then hold it (the
    schedule of the SWA phase). As PyTorch's SWALR: chainable, each step works from the
    group's current lr, so it takes over from whatever schedule ran before; anneal_epochs=0
    sets swa_lr at once. The value is stored in each group as "swa_lr"."""

    def __init__(self, optimizer, swa_lr, anneal_epochs=10, anneal_strategy="cos",
                 last_epoch=-1):
        groups = getattr(optimizer, "param_groups", None)
        if groups is None:
            raise TypeError(f"SWALR: expected an Optimizer, got {type(optimizer).__name__}")
        swa_lrs = list(swa_lr) if isinstance(swa_lr, (list, tuple)) else [swa_lr] * len(groups)
        if len(swa_lrs) != len(groups):
            raise ValueError(f"SWALR: expected one swa_lr or {len(groups)} (one per parameter "
                             f"group), got {len(swa_lrs)}")
        for value in swa_lrs:
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
                    not 0 <= value < math.inf:
                raise ValueError(f"SWALR: swa_lr must be a finite number >= 0, got {value!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"SWALR: anneal_strategy must be 'cos' or 'linear', got "
                             f"{anneal_strategy!r}")
        if isinstance(anneal_epochs, bool) or not isinstance(anneal_epochs, int) or \
                anneal_epochs < 0:
            raise ValueError(f"SWALR: anneal_epochs must be an int >= 0, got {anneal_epochs!r}")
        for group, value in zip(groups, swa_lrs):
            group["swa_lr"] = value
        self.anneal_epochs, self.anneal_strategy = anneal_epochs, anneal_strategy
        super().__init__(optimizer, last_epoch)

    def anneal_func(self, t):
        """The fraction of the way from the start lr to swa_lr at progress t in [0, 1]."""
        if self.anneal_strategy == "cos":
            return (1 - math.cos(math.pi * t)) / 2
        return t

    def _progress(self, step):
        return max(0.0, min(1.0, step / max(1, self.anneal_epochs)))

    def get_lr(self):
        # Chainable: recover the start lr from the current one (the lr of the previous step,
        # a fraction prev_alpha of the way to swa_lr), then go to this step's fraction alpha.
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_alpha = self.anneal_func(self._progress(step - 1))
        alpha = self.anneal_func(self._progress(step))
        lrs = []
        for group in self.optimizer.param_groups:
            swa = group["swa_lr"]
            if prev_alpha == 1:
                start = swa
            else:
                start = (group["lr"] - prev_alpha * swa) / (1 - prev_alpha)
            lrs.append(swa * alpha + start * (1 - alpha))
        return lrs
