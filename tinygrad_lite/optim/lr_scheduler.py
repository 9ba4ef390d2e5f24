"""Learning-rate schedules (PyTorch's torch.optim.lr_scheduler: same classes, arguments and
values). A scheduler only writes `group["lr"]` of its optimiser's groups; call its step()
after optimizer.step(), once per epoch or once per iteration, whichever the schedule counts
(`step_per`: "epoch", or "batch" for OneCycleLR and InverseSqrtLR; a training loop reads
`getattr(scheduler, "step_per", "epoch")`).

As in PyTorch, StepLR, MultiStepLR, ExponentialLR, LinearLR, CosineAnnealingLR (and
InverseSqrtLR) are chainable: each step() scales the group's *current* lr, so two schedulers
on one optimiser multiply (ExponentialLR(0.9) and StepLR(3, 0.5) give 0.1, 0.09, 0.081,
0.0365, ...) and a hand-made change of group["lr"] carries on through later steps. Alone they
give their closed forms lr_t = f(base_lr, t), base_lr being the group's "initial_lr"; the closed
form itself is used only for step(epoch) (`_get_closed_form_lr`). LambdaLR,
CosineAnnealingWarmRestarts and OneCycleLR set absolute values, as in PyTorch.
SequentialLR hands over between schedules at milestones (warm-up, then anything).

    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    for epoch in range(100):
        train_one_epoch(); sched.step()
"""
import math
from bisect import bisect_right

from .optimizer import Optimizer

__all__ = ["LRScheduler", "LambdaLR", "StepLR", "MultiStepLR", "ExponentialLR", "LinearLR",
           "CosineAnnealingLR", "CosineAnnealingWarmRestarts", "OneCycleLR", "InverseSqrtLR",
           "SequentialLR", "ReduceLROnPlateau"]


class LRScheduler:
    """Base: subclasses define get_lr() (the next lr of every group, usually from its current
    one) and, where the schedule has one, `_closed_form(base_lr, t)`."""
    step_per = "epoch"  # how often a training loop should call step(): "epoch" or "batch"

    def __init__(self, optimizer, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"{type(self).__name__}: param 'initial_lr' is not specified in "
                               f"param_groups[{i}] when resuming (last_epoch={last_epoch})")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        """The step a new scheduler takes to set the lr of epoch last_epoch + 1 (epoch 0 for a
        new schedule). Chainable forms leave the lr as it is here (except LinearLR's
        start_factor), so a second scheduler built on the same optimiser does not scale it
        twice."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self):
        raise NotImplementedError

    def _current(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        """The lrs the last step() set, one per parameter group."""
        return list(self._last_lr)

    def step(self, epoch=None):
        """Advance one step, or jump to `epoch` (PyTorch's deprecated form; it uses the closed
        form where the schedule has one), and write the new lr into every group."""
        self._step_count += 1
        self._update_lr(epoch)

    def _update_lr(self, epoch=None):
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = epoch
            values = (self._get_closed_form_lr() if hasattr(self, "_closed_form")
                      else self.get_lr())
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = self._current()

    def _get_closed_form_lr(self):
        return [self._closed_form(base, self.last_epoch) for base in self.base_lrs]

    # ----- saving and loading -----
    _NOT_SAVED = ("optimizer", "lr_lambdas", "_schedulers")

    def state_dict(self):
        """Everything but the optimiser (and functions, which do not serialise)."""
        return {k: v for k, v in self.__dict__.items() if k not in self._NOT_SAVED}

    def _check_state_dict(self, state_dict):
        """Raise, naming the scheduler, unless state_dict is this kind of scheduler's state
        for as many parameter groups as its optimiser has. Changes nothing."""
        name = type(self).__name__
        if not isinstance(state_dict, dict):
            raise TypeError(f"{name}.load_state_dict: expected a dict from state_dict(), got "
                            f"{type(state_dict).__name__}")
        own = set(self.state_dict()) | ({"_schedulers"} if hasattr(self, "_schedulers")
                                        else set())
        missing, unexpected = sorted(own - set(state_dict)), sorted(set(state_dict) - own)
        if missing or unexpected:
            raise ValueError(f"{name}.load_state_dict: not the state of a {name} (missing keys "
                             f"{missing}, unexpected keys {unexpected})")
        n = len(self.optimizer.param_groups)
        for key in ("base_lrs", "_last_lr", "min_lrs"):
            if key in state_dict and len(state_dict[key]) != n:
                raise ValueError(f"{name}.load_state_dict: '{key}' has "
                                 f"{len(state_dict[key])} entries, the optimiser {n} "
                                 f"parameter groups")

    def load_state_dict(self, state_dict):
        """Restore what state_dict() returned; the state is checked first (its keys must be
        this scheduler's, one lr per parameter group), so a refused load changes nothing."""
        self._check_state_dict(state_dict)
        self.__dict__.update(state_dict)


def _check_positive_int(scheduler, name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{scheduler}: expected a positive integer {name}, got {value!r}")


def _check_gamma(scheduler, gamma):
    """A decay factor must be a positive finite number: a NaN (which torch accepts) would turn
    every later learning rate into NaN without a word."""
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or \
            not 0 < gamma < float("inf"):
        raise ValueError(f"{scheduler}: expected a positive finite gamma, got {gamma!r}")


class LambdaLR(LRScheduler):
    """lr_t = base_lr * lr_lambda(t); one function, or one per parameter group."""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        n = len(optimizer.param_groups)
        lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if len(lambdas) != n or not all(callable(f) for f in lambdas):
            raise ValueError(f"LambdaLR: expected one function or {n} functions (one per "
                             f"parameter group), got {lr_lambda!r}")
        self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [base * f(self.last_epoch) for base, f in zip(self.base_lrs, self.lr_lambdas)]


class StepLR(LRScheduler):
    """lr_t = base_lr * gamma^floor(t / step_size): step decay."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        _check_positive_int("StepLR", "step_size", step_size)
        _check_gamma("StepLR", gamma)
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t = self.last_epoch
        if t == 0 or t % self.step_size:
            return self._current()
        return [lr * self.gamma for lr in self._current()]

    def _closed_form(self, base, t):
        return base * self.gamma ** (t // self.step_size)


class MultiStepLR(LRScheduler):
    """lr_t = base_lr * gamma^(number of milestones <= t), e.g. x0.1 at epochs 30, 60, 90."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        _check_gamma("MultiStepLR", gamma)
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        hits = self.milestones.count(self.last_epoch)  # a milestone given twice cuts twice
        if not hits:
            return self._current()
        return [lr * self.gamma ** hits for lr in self._current()]

    def _closed_form(self, base, t):
        return base * self.gamma ** bisect_right(self.milestones, t)


class ExponentialLR(LRScheduler):
    """lr_t = base_lr * gamma^t."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        _check_gamma("ExponentialLR", gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial:
            return self._current()
        return [lr * self.gamma for lr in self._current()]

    def _closed_form(self, base, t):
        return base * self.gamma ** t


class LinearLR(LRScheduler):
    """lr_t = base_lr * (start_factor + (end_factor - start_factor) * min(t, total_iters) /
    total_iters): a linear warm-up (start_factor < 1) or decay, then constant."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1):
        if not 0 < start_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1], got {start_factor}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1], got {end_factor}")
        _check_positive_int("LinearLR", "total_iters", total_iters)
        self.start_factor, self.end_factor, self.total_iters = (start_factor, end_factor,
                                                                total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t, s, e = self.last_epoch, self.start_factor, self.end_factor
        if t == 0:
            return [lr * s for lr in self._current()]
        if self._is_initial or t > self.total_iters:
            return self._current()
        # factor(t) / factor(t - 1), factor(t) = s + (e - s) * t / total_iters
        ratio = 1.0 + (e - s) / (self.total_iters * s + (t - 1) * (e - s))
        return [lr * ratio for lr in self._current()]

    def _closed_form(self, base, t):
        frac = min(t, self.total_iters) / self.total_iters
        return base * (self.start_factor + (self.end_factor - self.start_factor) * frac)


class CosineAnnealingLR(LRScheduler):
    """lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi t / T_max)) / 2."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        _check_positive_int("CosineAnnealingLR", "T_max", T_max)
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t, T, eta = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current()
        if (t - 1 - T) % (2 * T) == 0:
            # the cosine's trough: the ratio below would be 0/0, so step up from eta_min by
            # the first step's amount, as PyTorch does (the curve continues past T_max)
            return [lr + (base - eta) * (1 - math.cos(math.pi / T)) / 2
                    for lr, base in zip(self._current(), self.base_lrs)]
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [eta + (lr - eta) * ratio for lr in self._current()]

    def _closed_form(self, base, t):
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


class CosineAnnealingWarmRestarts(LRScheduler):
    """SGDR (Loshchilov and Hutter, 2017): cosine annealing from base_lr to eta_min over T_i
    epochs, then a restart, with T_0 the first period and T_{i+1} = T_mult * T_i:
    lr = eta_min + (base_lr - eta_min) * (1 + cos(pi T_cur / T_i)) / 2.
    step() counts epochs; step(epoch + i / iters) steps per iteration with fractional epochs."""

    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1):
        _check_positive_int("CosineAnnealingWarmRestarts", "T_0", T_0)
        _check_positive_int("CosineAnnealingWarmRestarts", "T_mult", T_mult)
        self.T_0, self.T_i, self.T_mult, self.eta_min = T_0, T_0, T_mult, eta_min
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        cos = (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
        return [self.eta_min + (base - self.eta_min) * cos for base in self.base_lrs]

    def step(self, epoch=None):
        if epoch is None and self.last_epoch < 0:  # the first step, or a SequentialLR reset
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur -= self.T_i
                self.T_i *= self.T_mult
        else:
            if epoch < 0:
                raise ValueError(f"CosineAnnealingWarmRestarts: epoch must be >= 0, got {epoch}")
            if epoch >= self.T_0 and self.T_mult == 1:
                self.T_cur = epoch % self.T_0
            elif epoch >= self.T_0:  # periods T_0 * T_mult^n: find the one holding epoch
                n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
                self.T_i = self.T_0 * self.T_mult ** n
            else:
                self.T_i, self.T_cur = self.T_0, epoch
        self.last_epoch = math.floor(epoch)
        self._last_lr = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith and Topin, 2018), stepped once per batch: lr rises from
    max_lr / div_factor to max_lr over pct_start of total_steps, then anneals to
    initial_lr / final_div_factor (three_phase: back to the initial lr first, then down).
    Momentum (or Adam's beta1) cycles the opposite way between max_momentum and
    base_momentum when cycle_momentum. anneal_strategy "cos" or "linear". Absolute values,
    as in PyTorch: it overwrites whatever another scheduler set."""
    step_per = "batch"

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True,
                 base_momentum=0.85, max_momentum=0.95, div_factor=25.0,
                 final_div_factor=1e4, three_phase=False, last_epoch=-1):
        groups = optimizer.param_groups
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
            _check_positive_int("OneCycleLR", "epochs", epochs)
            _check_positive_int("OneCycleLR", "steps_per_epoch", steps_per_epoch)
            total_steps = epochs * steps_per_epoch
        _check_positive_int("OneCycleLR", "total_steps", total_steps)
        if not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got "
                             f"{anneal_strategy!r}")
        self.total_steps, self.anneal_strategy = total_steps, anneal_strategy
        up = float(pct_start * total_steps) - 1
        if three_phase:
            self._phases = [(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                            (2 * up, "max_lr", "initial_lr", "base_momentum",
                             "max_momentum"),
                            (total_steps - 1, "initial_lr", "min_lr", "max_momentum",
                             "max_momentum")]
        else:
            self._phases = [(up, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                            (total_steps - 1, "max_lr", "min_lr", "base_momentum",
                             "max_momentum")]
        self._refuse_reachable_empty_phase(pct_start)
        max_lrs = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * len(groups)
        if len(max_lrs) != len(groups):
            raise ValueError(f"OneCycleLR: expected {len(groups)} max_lr values, got "
                             f"{len(max_lrs)}")
        self.cycle_momentum = cycle_momentum
        if cycle_momentum and not any(k in groups[0] for k in ("momentum", "betas")):
            raise ValueError("OneCycleLR: cycle_momentum needs an optimiser with 'momentum' "
                             "or 'betas'; pass cycle_momentum=False")
        for group, m in zip(groups, max_lrs):
            if last_epoch == -1:
                group["initial_lr"] = m / div_factor
                group["max_lr"], group["min_lr"] = m, group["initial_lr"] / final_div_factor
            if cycle_momentum:
                group["max_momentum"], group["base_momentum"] = max_momentum, base_momentum
                if last_epoch == -1:
                    self._set_momentum(group, max_momentum)
        super().__init__(optimizer, last_epoch)

    def _refuse_reachable_empty_phase(self, pct_start):
        """Each phase interpolates over its own length, so a step that lands in a phase of no
        length divides by zero (PyTorch's ZeroDivisionError at that step). A phase that no
        step reaches is harmless (pct_start * total_steps < 1 just skips the warm-up, as in
        PyTorch), so only an empty phase that some step 0..total_steps lands in is refused."""
        ends = [phase[0] for phase in self._phases]
        for i, end in enumerate(ends):
            start = ends[i - 1] if i else 0.0
            if end != start:
                continue
            first = 0 if i == 0 else math.floor(max(ends[:i])) + 1  # steps after earlier phases
            last = self.total_steps if i == len(ends) - 1 else math.floor(end)
            if max(first, 0) <= last:
                raise ValueError(
                    f"OneCycleLR: pct_start={pct_start} of total_steps={self.total_steps} "
                    f"leaves phase {i + 1} without steps (it starts and ends at step {end:g}), "
                    f"and step {max(first, 0)} lands in it; expected a phase of at least one "
                    f"step: change pct_start or total_steps")

    @staticmethod
    def _set_momentum(group, value):
        if "betas" in group:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self):
        t = self.last_epoch
        if t > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {t} times, more than total_steps "
                             f"{self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, (end, lr0, lr1, m0, m1) in enumerate(self._phases):
                if t <= end or i == len(self._phases) - 1:
                    pct = (t - start) / (end - start)
                    lrs.append(self._anneal(group[lr0], group[lr1], pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(group[m0], group[m1], pct))
                    break
                start = end
        return lrs


class InverseSqrtLR(LRScheduler):
    """lr_t = base_lr * sqrt(timescale / max(t, timescale)): constant for `timescale` steps,
    then decaying as 1/sqrt(t) (the Transformer's schedule after warm-up; compose a warm-up
    with SequentialLR). timescale=1 gives lr0 / sqrt(t). Not in PyTorch; chainable like its
    decays: each step scales the current lr by sqrt(max(t - 1, timescale) / max(t,
    timescale)). Counted in optimiser updates (the Transformer's form), so step_per="batch"."""
    step_per = "batch"

    def __init__(self, optimizer, timescale=1, last_epoch=-1):
        _check_positive_int("InverseSqrtLR", "timescale", timescale)
        self.timescale = timescale
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t, ts = self.last_epoch, self.timescale
        if self._is_initial or t <= ts:
            return self._current()
        ratio = math.sqrt(max(t - 1, ts) / t)
        return [lr * ratio for lr in self._current()]

    def _closed_form(self, base, t):
        return base * math.sqrt(self.timescale / max(t, self.timescale))


class SequentialLR(LRScheduler):
    """schedulers[i] runs from milestones[i-1] (restarted at its epoch 0) to milestones[i]:
    e.g. LinearLR warm-up for 5 epochs, then CosineAnnealingLR:
    SequentialLR(opt, [LinearLR(opt, 0.1, total_iters=5), CosineAnnealingLR(opt, 95)], [5])."""

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        schedulers, milestones = list(schedulers), list(milestones)
        if len(schedulers) < 1 or len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: expected len(milestones) = len(schedulers) - 1, "
                             f"got {len(milestones)} milestones for {len(schedulers)} "
                             "schedulers")
        for i, s in enumerate(schedulers):
            if isinstance(s, ReduceLROnPlateau):
                raise ValueError(f"SequentialLR: scheduler {i} is a ReduceLROnPlateau, whose "
                                 "step() needs a metric; step it yourself (as in PyTorch)")
            if getattr(s, "optimizer", None) is not optimizer:
                raise ValueError(f"SequentialLR: scheduler {i} belongs to another optimiser")
        if sorted(milestones) != milestones:
            raise ValueError(f"SequentialLR: milestones must increase, got {milestones}")
        self._schedulers, self._milestones = schedulers, milestones
        self.optimizer, self.last_epoch = optimizer, last_epoch + 1
        # Building the schedulers stepped each once: undo that (lr back to initial_lr, every
        # schedule's epoch back one) and take the initial step of the one that runs first.
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self._undo(self)
        first = schedulers[bisect_right(milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    @property
    def step_per(self):
        """"batch" when one of its schedules counts batches (a warm-up in front of OneCycleLR
        counts them too), else "epoch"."""
        return "batch" if any(getattr(s, "step_per", "epoch") == "batch"
                              for s in self._schedulers) else "epoch"

    @classmethod
    def _undo(cls, scheduler):
        for s in getattr(scheduler, "_schedulers", ()):
            if hasattr(s, "_schedulers"):
                cls._undo(s)
            else:
                s.last_epoch -= 1

    def step(self, epoch=None):
        if epoch is not None:
            raise TypeError("SequentialLR.step() takes no epoch (as in PyTorch)")
        self.last_epoch += 1
        i = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[i]
        if i > 0 and self._milestones[i - 1] == self.last_epoch:
            scheduler._update_lr(0)  # the next schedule starts over from its own epoch 0
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()

    def state_dict(self):
        state = super().state_dict()
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def _check_state_dict(self, state_dict):
        super()._check_state_dict(state_dict)
        saved = state_dict["_schedulers"]
        if not isinstance(saved, (list, tuple)) or len(saved) != len(self._schedulers):
            raise ValueError(f"SequentialLR.load_state_dict: the state holds "
                             f"{len(saved) if isinstance(saved, (list, tuple)) else saved!r} "
                             f"schedules, this SequentialLR {len(self._schedulers)}")
        for s, sub in zip(self._schedulers, saved):
            s._check_state_dict(sub)

    def load_state_dict(self, state_dict):
        self._check_state_dict(state_dict)  # every schedule's state before any is loaded
        state = dict(state_dict)
        for s, saved in zip(self._schedulers, state.pop("_schedulers")):
            s.load_state_dict(saved)
        self.__dict__.update(state)


class ReduceLROnPlateau:
    """Multiply the lr by `factor` when a metric (passed to step(metric)) has not improved for
    more than `patience` epochs; wait `cooldown` epochs after a cut; never below min_lr.
    mode "min" or "max"; threshold_mode "rel" (better than best * (1 -+ threshold)) or "abs"
    (better than best -+ threshold). Cuts smaller than eps are skipped. It scales the current
    lr, so it chains with the other schedules as in PyTorch."""
    step_per = "epoch"

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0.0, eps=1e-8):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"ReduceLROnPlateau: expected an Optimizer, got "
                            f"{type(optimizer).__name__}")
        if not factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor should be < 1.0, got {factor}")
        if mode not in ("min", "max") or threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max' and "
                             f"threshold_mode 'rel' or 'abs', got {mode!r}, {threshold_mode!r}")
        n = len(optimizer.param_groups)
        min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * n
        if len(min_lrs) != n:
            raise ValueError(f"ReduceLROnPlateau: expected {n} min_lr values, got {len(min_lrs)}")
        self.optimizer, self.min_lrs = optimizer, min_lrs
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.eps = cooldown, eps
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs, self.cooldown_counter, self.last_epoch = 0, 0, 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def _is_better(self, a):
        if self.mode == "min":
            bound = self.best * (1 - self.threshold) if self.threshold_mode == "rel" else \
                self.best - self.threshold
            return a < bound
        bound = self.best * (1 + self.threshold) if self.threshold_mode == "rel" else \
            self.best + self.threshold
        return a > bound

    def step(self, metrics):
        current = float(metrics.item() if hasattr(metrics, "item") else metrics)
        self.last_epoch += 1
        if self._is_better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                new = max(group["lr"] * self.factor, min_lr)
                if group["lr"] - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self):
        return list(self._last_lr)

    state_dict = LRScheduler.state_dict
    _NOT_SAVED = LRScheduler._NOT_SAVED
    _check_state_dict = LRScheduler._check_state_dict
    load_state_dict = LRScheduler.load_state_dict
