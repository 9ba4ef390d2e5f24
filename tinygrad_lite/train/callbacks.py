"""What a training run records (History) and the hooks that watch it (Callback, EarlyStopping).

Hooks, in the order a run calls them (Keras' and Lightning's points, with the Trainer passed in
so a callback can read the model, optimiser and history or set `trainer.stop_training`):

    reset()                                   at the start of every fit (Keras resets in
                                              on_train_begin), then on resuming
                                              load_state_dict(the checkpoint's state)
    on_fit_start(trainer)
      on_epoch_start(trainer, epoch)          for each epoch (0-based)
        on_batch_end(trainer, batch, logs)    logs: {"loss", "lr"}
      on_epoch_end(trainer, epoch, logs)      logs: {"loss", "lr", "val_loss", "accuracy",
                                              "val_accuracy"}: val_* with a val_loader,
                                              accuracies for classification targets only
    on_fit_end(trainer)

Callbacks run in the order given. A callback with state that a resumed run needs (early
stopping's best value and weights) returns it from state_dict(); the checkpoint stores it. A
callback reused in a second fit starts afresh (reset), unless that fit resumes a checkpoint.
"""
import math

import numpy as np

from ..tensor import Tensor

__all__ = ["History", "Callback", "EarlyStopping", "LambdaCallback"]

EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr")


class History:
    """Per-epoch metrics (`history["val_accuracy"]`, Keras' names: loss, accuracy, val_loss,
    val_accuracy, lr at the epoch's start) and per-iteration training loss and lr
    (`history.batches["loss"]`), the raw material of the curves.

    Only the metrics a run reports are there: val_* only with a val_loader, accuracies only for
    classification targets (a regression's history has loss, val_loss and lr). `"accuracy" in
    history` tells which. A metric missing from some epochs' logs is NaN there."""

    def __init__(self):
        self.epochs = {}
        self.batches = {"loss": [], "lr": []}

    def __getitem__(self, name):
        if name not in self.epochs:
            why = {"val_loss": " (it is reported when fit has a val_loader)",
                   "val_accuracy": " (it is reported when fit has a val_loader and the targets "
                                   "are class labels or class probabilities)",
                   "accuracy": " (it is reported when the targets are class labels or class "
                               "probabilities)"}.get(name, "")
            raise KeyError(f"History: no metric {name!r}{why}; it has {list(self.epochs)}")
        return self.epochs[name]

    def __contains__(self, name):
        return name in self.epochs

    def __len__(self):
        return len(self.epochs.get("loss", ()))

    def log_batch(self, loss, lr):
        self.batches["loss"].append(float(loss))
        self.batches["lr"].append(float(lr))

    def log_epoch(self, logs):
        done = len(self)
        for name in EPOCH_METRICS:  # this order, whichever order logs has
            if name in logs and name not in self.epochs:
                self.epochs[name] = [math.nan] * done
        self.epochs = {name: self.epochs[name] for name in EPOCH_METRICS if name in self.epochs}
        for name, values in self.epochs.items():
            values.append(float(logs[name]) if name in logs else math.nan)

    def state_dict(self):
        return {"epochs": {k: list(v) for k, v in self.epochs.items()},
                "batches": {k: list(v) for k, v in self.batches.items()}}

    def load_state_dict(self, state):
        self.epochs = {k: list(v) for k, v in state["epochs"].items()}
        self.batches = {k: list(v) for k, v in state["batches"].items()}

    def __repr__(self):
        last = {k: v[-1] for k, v in self.epochs.items() if v}
        return f"History({len(self)} epochs, last {last})"


class Callback:
    """Base class: override the hooks you need; each does nothing by default. A callback with
    state overrides reset() (back to its state before any fit), state_dict() and
    load_state_dict()."""

    def reset(self):
        pass

    def on_fit_start(self, trainer):
        pass

    def on_epoch_start(self, trainer, epoch):
        pass

    def on_batch_end(self, trainer, batch, logs):
        pass

    def on_epoch_end(self, trainer, epoch, logs):
        pass

    def on_fit_end(self, trainer):
        pass

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


class LambdaCallback(Callback):
    """A callback from functions: LambdaCallback(on_epoch_end=lambda trainer, epoch, logs: ...)."""

    HOOKS = ("on_fit_start", "on_epoch_start", "on_batch_end", "on_epoch_end", "on_fit_end")

    def __init__(self, **hooks):
        unknown = sorted(set(hooks) - set(self.HOOKS))
        if unknown:
            raise ValueError(f"LambdaCallback: unknown hooks {unknown}; expected some of "
                             f"{list(self.HOOKS)}")
        for name, fn in hooks.items():
            setattr(self, name, fn)


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` epochs,
    and (restore_best_weights) put the weights of the best epoch back at the end of the run.
    This is the lectures' "track validation accuracy and keep the best snapshot".

    mode: "min", "max" or "auto" (min for names with "loss" in them, max otherwise).

    >>> fit(model, train, opt, epochs=50, val_loader=val,
    ...     callbacks=[EarlyStopping("val_accuracy", patience=3)])
    """

    def __init__(self, monitor="val_loss", patience=5, mode="auto", min_delta=0.0,
                 restore_best_weights=True):
        if monitor not in EPOCH_METRICS:
            raise ValueError(f"EarlyStopping: unknown monitor {monitor!r}; expected one of "
                             f"{list(EPOCH_METRICS)}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'auto', 'min' or 'max', got {mode!r}")
        if not isinstance(patience, int) or isinstance(patience, bool) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be a non-negative int, got "
                             f"{patience!r}")
        if not min_delta >= 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta!r}")
        self.monitor, self.patience, self.min_delta = monitor, patience, float(min_delta)
        self.mode = mode if mode != "auto" else ("min" if "loss" in monitor else "max")
        self.restore_best_weights = restore_best_weights
        self.reset()

    def reset(self):
        """Forget earlier fits (Keras does this in on_train_begin): a stopper reused for a
        second run would otherwise compare against the first run's best and its patience."""
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch, self.stopped_epoch, self.wait = -1, -1, 0
        self.best_weights = None

    def _improved(self, value):
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_fit_start(self, trainer):
        if self.monitor.startswith("val_") and not trainer.has_validation:
            raise ValueError(f"EarlyStopping: monitor {self.monitor!r} needs a val_loader; "
                             f"pass one to fit() or monitor 'loss' or 'accuracy'")

    def on_epoch_end(self, trainer, epoch, logs):
        if self.monitor not in logs:
            raise ValueError(f"EarlyStopping: monitor {self.monitor!r} is not in this run's "
                             f"logs {sorted(logs)}; accuracies are reported only for "
                             f"classification targets (class labels or probabilities)")
        value = float(logs[self.monitor])
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:  # a copy: the state_dict shares the live storage
                self.best_weights = {k: np.array(v.numpy(), copy=True)
                                     for k, v in trainer.model.state_dict().items()}
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = epoch
                trainer.stop_training = True

    def on_fit_end(self, trainer):
        if self.restore_best_weights and self.best_weights is not None:
            own = trainer.model.state_dict()  # rebuild on the model's device(s)
            trainer.model.load_state_dict({k: Tensor(a, dtype=a.dtype, device=own[k].device)
                                           for k, a in self.best_weights.items() if k in own})

    def state_dict(self):
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "stopped_epoch": self.stopped_epoch, "best_weights": self.best_weights}

    def load_state_dict(self, state):
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.wait, self.stopped_epoch = state["wait"], state["stopped_epoch"]
        self.best_weights = state["best_weights"]
