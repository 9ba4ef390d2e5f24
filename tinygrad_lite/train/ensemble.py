"""Model ensembles: average the predicted class probabilities of several models (the lectures:
about +2% from independently trained models), and snapshot ensembles along one run with
warm restarts (Huang et al., 2017: "Snapshot Ensembles: Train 1, get M for free").

`Ensemble(models)` is a Module. Its forward returns the log of the members' averaged softmax
probabilities, log(mean_i softmax(f_i(x))), computed stably as a logsumexp. Log-probabilities
are what F.nll_loss takes, and since they already sum to 1 after exp, F.cross_entropy (which
applies log_softmax) gives the same value; their argmax is the averaged probabilities'. So
train.evaluate(ensemble, loader) reports the ensemble's accuracy and loss with either loss.
`ensemble.probs(x)` gives the averaged probabilities themselves (Ensemble(models, log=False)
makes them the forward's output).

`SnapshotEnsemble(path, cycle, k)` is a Callback for train.fit: at the end of every cycle of a
warm-restart schedule (when the lr is lowest, before it jumps up again) it writes the model's
state_dict to path/snapshot_epochNNNN.npz (save_checkpoint: one .npz, atomically); afterwards
`callback.ensemble(model)` builds the Ensemble of the last k snapshots.

    sched = optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=10)
    snapshots = SnapshotEnsemble("run/snapshots")          # cycles read from sched
    fit(model, train_loader, opt, epochs=40, scheduler=sched, callbacks=[snapshots])
    ensemble = snapshots.ensemble(model, k=3)              # the last 3 of 4 snapshots
    loss, accuracy = evaluate(ensemble, test_loader)
"""
import copy
import math
import os

from ..creation import stack
from ..nn import functional as F
from ..nn.layers import ModuleList
from ..nn.module import Module
from ..optim.lr_scheduler import CosineAnnealingWarmRestarts
from .callbacks import Callback
from .checkpoint import load_checkpoint, save_checkpoint

__all__ = ["Ensemble", "SnapshotEnsemble"]


class Ensemble(Module):
    """The average of the members' softmax probabilities over dim 1 (the classes). forward:
    their log (log=True, the default: for nll_loss, cross_entropy and train.evaluate) or the
    probabilities (log=False). Members are sub-modules: eval(), to() and state_dict() reach
    them; they run on the same input and must give outputs of one shape."""

    def __init__(self, models, log=True):
        super().__init__()
        models = list(models)
        if not models or not all(isinstance(m, Module) for m in models):
            raise TypeError(f"Ensemble: expected a non-empty list of Modules, got "
                            f"{[type(m).__name__ for m in models]}")
        self.members = ModuleList(models)
        self.log = bool(log)

    def _outputs(self, x):
        outputs = [m(x) for m in self.members]
        shapes = {tuple(o.shape) for o in outputs}
        if len(shapes) > 1 or outputs[0].ndim < 2:
            raise ValueError(f"Ensemble: members must give outputs of one shape (N, classes, "
                             f"...), got shapes {[tuple(o.shape) for o in outputs]}")
        return outputs

    def log_probs(self, x):
        """log(mean_i softmax(f_i(x))) = logsumexp_i(log_softmax(f_i(x))) - log(M)."""
        logs = [F.log_softmax(o, dim=1) for o in self._outputs(x)]
        if len(logs) == 1:
            return logs[0]
        return stack(logs).logsumexp(axis=0) - math.log(len(logs))

    def probs(self, x):
        """mean_i softmax(f_i(x)): the ensemble's class probabilities."""
        return stack([F.softmax(o, dim=1) for o in self._outputs(x)]).mean(axis=0)

    def forward(self, x):
        return self.log_probs(x) if self.log else self.probs(x)

    def extra_repr(self):
        return f"{len(self.members)} members, log={self.log}"


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"SnapshotEnsemble: {name} must be a positive int, got {value!r}")
    return value


class SnapshotEnsemble(Callback):
    """Save a snapshot of the model at the end of every cycle of a warm-restart schedule, and
    build the Ensemble of the last k of them (Huang et al., 2017).

    path: the folder for the snapshots (snapshot_epochNNNN.npz, NNNN the epochs done).
    cycle: epochs per cycle (an int), or a CosineAnnealingWarmRestarts stepped per epoch (its
    T_0 and T_mult: cycles of T_0, T_0 * T_mult, ... epochs), or None: the scheduler given to
    fit, which must then be one. k: how many of the last snapshots ensemble() uses by default
    (None: all). `snapshots` lists the files written in this run."""

    def __init__(self, path, cycle=None, k=None):
        self.path = os.fspath(path)
        self._cycle_source = cycle
        self._cycle = None if cycle is None else self._read_cycle(cycle)
        self.k = None if k is None else _check_positive_int("k", k)
        self.reset()

    @staticmethod
    def _read_cycle(cycle):
        """(first cycle's epochs, growth factor) from an int or a warm-restart scheduler."""
        if isinstance(cycle, CosineAnnealingWarmRestarts):
            return cycle.T_0, cycle.T_mult
        if isinstance(cycle, int) and not isinstance(cycle, bool):
            return _check_positive_int("cycle", cycle), 1
        raise TypeError(f"SnapshotEnsemble: cycle must be the epochs per cycle (an int) or a "
                        f"CosineAnnealingWarmRestarts, got {type(cycle).__name__}")

    def reset(self):
        self.snapshots = []

    def on_fit_start(self, trainer):
        scheduler = trainer.scheduler
        if self._cycle_source is None:
            if not isinstance(scheduler, CosineAnnealingWarmRestarts):
                raise ValueError(f"SnapshotEnsemble: without cycle= it reads the cycles from "
                                 f"fit's scheduler, which must be a "
                                 f"CosineAnnealingWarmRestarts, got "
                                 f"{type(scheduler).__name__}; pass cycle=epochs per cycle")
            self._cycle = self._read_cycle(scheduler)
        uses_scheduler = isinstance(self._cycle_source, CosineAnnealingWarmRestarts) or \
            self._cycle_source is None
        if uses_scheduler and trainer.scheduler_step != "epoch":
            raise ValueError("SnapshotEnsemble: the warm-restart scheduler is stepped per "
                             "batch, so its T_0 counts batches, not epochs; pass cycle=epochs "
                             "per cycle")

    def cycle_ends(self, epochs):
        """The epoch counts (1-based: after that many epochs) at which cycles end, up to
        `epochs`."""
        if self._cycle is None:
            raise RuntimeError("SnapshotEnsemble: the cycle is not known before fit starts "
                               "(cycle=None reads it from fit's scheduler)")
        length, growth = self._cycle
        ends, end = [], length
        while end <= epochs:
            ends.append(end)
            length *= growth
            end += length
        return ends

    def on_epoch_end(self, trainer, epoch, logs):
        done = epoch + 1
        if done in self.cycle_ends(done):
            path = os.path.join(self.path, f"snapshot_epoch{done:04d}.npz")
            save_checkpoint(path, {"model": trainer.model.state_dict(), "epoch": done})
            self.snapshots.append(path)

    def state_dict(self):
        return {"snapshots": list(self.snapshots)}

    def load_state_dict(self, state):
        self.snapshots = list(state["snapshots"])

    def ensemble(self, model, k=None, device=None, log=True):
        """The Ensemble of the last k snapshots (k: this call's, else the callback's, else
        all). `model`: a Module of the trained architecture (copied for each member) or a
        function that builds one. Members are in eval mode, on `device` when given (else
        where `model` or the function puts them)."""
        k = k if k is not None else self.k
        if not self.snapshots:
            raise ValueError("SnapshotEnsemble.ensemble: no snapshot was saved (one is saved "
                             "at the end of each cycle; did fit run a whole cycle?)")
        if k is not None:
            _check_positive_int("k", k)
            if k > len(self.snapshots):
                raise ValueError(f"SnapshotEnsemble.ensemble: asked for the last {k} "
                                 f"snapshots, {len(self.snapshots)} were saved")
        if not isinstance(model, Module) and not callable(model):
            raise TypeError(f"SnapshotEnsemble.ensemble: expected a Module or a function that "
                            f"builds one, got {type(model).__name__}")
        members = []
        for path in self.snapshots[-k if k else 0:]:
            member = copy.deepcopy(model) if isinstance(model, Module) else model()
            if not isinstance(member, Module):
                raise TypeError(f"SnapshotEnsemble.ensemble: the model function returned a "
                                f"{type(member).__name__}, expected a Module")
            member.load_state_dict(load_checkpoint(path)["model"])
            if device is not None:
                member.to(device)
            members.append(member.eval())
        return Ensemble(members, log=log)
