"""The training loop: `fit` (or a `Trainer`, which fit builds) and `evaluate`.

One epoch: model.train(); for each (x, y) batch: forward, loss, a check that the loss is
finite (a NaN or Inf stops the run with an error before optimizer.step() can spread it into
the parameters), zero_grad, backward, optimizer.step(), scheduler.step() when scheduler_step
== "batch"; then validation (model.eval() under no_grad), scheduler.step() when scheduler_step
== "epoch" (a ReduceLROnPlateau is given the epoch's val_loss, or without validation its
training loss), the History entry, on_epoch_end callbacks, and the checkpoint. A tqdm bar
shows the running loss, accuracy and images/s.

The scheduler is stepped once per epoch unless told otherwise, as in PyTorch recipes and
Lightning (StepLR(step_size=30) means 30 epochs): `scheduler_step="batch"` steps it every
iteration, and a scheduler that counts iterations (OneCycleLR, warm-up) declares it with a
class attribute `step_per = "batch"`, which fit reads when scheduler_step is not given.

Any loss trains: accuracy (argmax over dim 1) is reported only when the targets are class
labels (integers, the output's shape without dim 1) or class probabilities (floats, the
output's shape, each row a distribution over dim 1); a regression reports its loss only.

Resuming: a checkpoint holds everything a run's future depends on (model, optimiser,
scheduler, epochs done, history, callback states, and the states of the package's random
generator and of the train loader's generator), saved at the end of an epoch. So
`fit(..., resume_from=path)` continues exactly where the run stopped, and a resumed run
ends bit for bit where the uninterrupted one does.
"""
import contextlib
import math
import time

import numpy as np
from tqdm import tqdm

from .. import random
from ..autograd import no_grad
from ..device import get_device
from ..nn import functional as F
from ..nn.loss import CrossEntropyLoss
from ..optim.lr_scheduler import ReduceLROnPlateau
from ..tensor import Tensor
from .callbacks import Callback, History
from .checkpoint import load_checkpoint, save_checkpoint

__all__ = ["Trainer", "fit", "evaluate", "NonFiniteLossError"]

SCHEDULER_STEPS = ("batch", "epoch")
FIT_KEYS = ("model", "optimizer", "scheduler", "epochs_done", "stop_training", "history",
            "callbacks", "rng")


class NonFiniteLossError(FloatingPointError):
    """fit stopped because a batch's loss was NaN or infinite. Attributes: epoch and batch
    (0-based), loss, last_finite_loss (None if there was none), checkpoint (the path of the
    last checkpoint written or resumed from by this run, or None)."""

    def __init__(self, message, epoch, batch, loss, last_finite_loss, checkpoint):
        super().__init__(message)
        self.epoch, self.batch, self.loss = epoch, batch, loss
        self.last_finite_loss, self.checkpoint = last_finite_loss, checkpoint


def _resolve_scheduler_step(scheduler, scheduler_step):
    """'batch' or 'epoch': as given, else as the scheduler declares (`step_per`), else per
    epoch."""
    if scheduler_step is not None:
        if scheduler_step not in SCHEDULER_STEPS:
            raise ValueError(f"fit: scheduler_step must be 'batch' or 'epoch' (or None: ask "
                             f"the scheduler), got {scheduler_step!r}")
        return scheduler_step
    if scheduler is None or isinstance(scheduler, ReduceLROnPlateau):
        return "epoch"
    declared = getattr(scheduler, "step_per", "epoch")
    if declared not in SCHEDULER_STEPS:
        raise ValueError(f"fit: {type(scheduler).__name__}.step_per must be 'batch' or 'epoch', "
                         f"got {declared!r}")
    return declared


def _model_device(model):
    for p in model.parameters():
        return p.device
    return get_device("cpu")


def _to(batch, device, name):
    if isinstance(batch, Tensor):
        return batch if batch.device == device else batch.to(device)
    if isinstance(batch, np.ndarray):
        return Tensor(batch, dtype=batch.dtype, device=device)
    raise TypeError(f"{name}: expected batches of Tensors or NumPy arrays, got "
                    f"{type(batch).__name__}")


def _split(batch, name):
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise TypeError(f"{name}: a loader must yield (inputs, targets) pairs, got "
                        f"{type(batch).__name__}" + (f" of length {len(batch)}"
                                                     if isinstance(batch, (tuple, list)) else ""))
    return batch


def _correct(output, y):
    """(right, total) predictions, the argmax over dim 1 (classes) against the label, or
    against the target's largest class for probability targets (mixup, label smoothing); None
    when the targets are neither (a regression), so no accuracy is reported."""
    if output.ndim < 2:
        return None
    labels = y.numpy()
    if labels.dtype.kind in "iu":
        if labels.shape != output.shape[:1] + output.shape[2:]:
            return None
    elif labels.dtype.kind == "f" and labels.shape == output.shape and output.shape[1] > 1:
        # class probabilities: non-negative and summing to 1 over dim 1 (float32 rounding
        # of a sum of C terms stays far below 1e-3)
        if not ((labels >= 0).all() and np.abs(labels.sum(axis=1) - 1).max() <= 1e-3):
            return None
        labels = labels.argmax(axis=1)
    else:
        return None
    pred = output.argmax(axis=1).numpy()
    return int((pred == labels).sum()), pred.size


def _loss_value(loss, name):
    """The loss as a Python float (one scalar read back per batch)."""
    if not isinstance(loss, Tensor) or loss.size != 1:
        got = f"shape {loss.shape}" if isinstance(loss, Tensor) else type(loss).__name__
        raise ValueError(f"{name}: loss_fn must return a one-element Tensor (a reduced loss), "
                         f"got {got}")
    return float(loss.item())


def evaluate(model, loader, loss_fn=F.cross_entropy, device=None):
    """(mean loss per sample, accuracy) of `model` over `loader`, in eval mode and without a
    graph; the model's train/eval mode is restored afterwards. accuracy is None unless every
    batch's targets are class labels or class probabilities (see _correct): a regression has
    a loss and no accuracy."""
    device = get_device(device) if device is not None else _model_device(model)
    was_training = model.training
    model.eval()
    total_loss, correct, predictions, count, classified = 0.0, 0, 0, 0, True
    try:
        with no_grad():
            for batch in loader:
                x, y = _split(batch, "evaluate")
                x, y = _to(x, device, "evaluate"), _to(y, device, "evaluate")
                output = model(x)
                n = x.shape[0]
                total_loss += _loss_value(loss_fn(output, y), "evaluate") * n
                count += n
                hits = _correct(output, y) if classified else None
                if hits is None:
                    classified = False
                else:
                    correct, predictions = correct + hits[0], predictions + hits[1]
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("evaluate: the loader yielded no batches")
    return total_loss / count, (correct / predictions if classified else None)


class Trainer:
    """Holds what a run needs and what callbacks may read: model, optimizer, scheduler,
    history, epoch (the one running or just finished, 0-based), stop_training (set it to end
    the run after this epoch), has_validation, last_checkpoint (path of the last checkpoint
    this run wrote or resumed from, or None).

    diagnose=True: at the end of fit (and when a NaN/Inf loss stops it) the curves are read by
    train.diagnose (lr too high or low, bad init, over/underfitting, plateau...), the findings
    printed and stored as `history.findings`; a cross-entropy run's initial loss is checked
    against log(number of classes).

    >>> trainer = Trainer(model, opt, scheduler=sched, callbacks=[EarlyStopping("val_loss")])
    >>> history = trainer.fit(train_loader, epochs=10, val_loader=val_loader)
    """

    def __init__(self, model, optimizer, loss_fn=F.cross_entropy, scheduler=None,
                 scheduler_step=None, callbacks=(), device=None, progress=True,
                 checkpoint_path=None, detect_anomaly=False, diagnose=False):
        scheduler_step = _resolve_scheduler_step(scheduler, scheduler_step)
        if isinstance(scheduler, ReduceLROnPlateau) and scheduler_step != "epoch":
            raise ValueError("fit: ReduceLROnPlateau reacts to an epoch's validation loss; "
                             "pass scheduler_step='epoch' (or leave it out)")
        callbacks = list(callbacks)
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"fit: callbacks must be Callback instances, got "
                                f"{type(cb).__name__}")
        if checkpoint_path is not None and not str(checkpoint_path).endswith(".npz"):
            raise ValueError(f"fit: checkpoint_path must end in .npz, got {checkpoint_path!r}")
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        self.scheduler, self.scheduler_step = scheduler, scheduler_step
        self.callbacks, self.progress = callbacks, progress
        self.device = get_device(device) if device is not None else _model_device(model)
        self.checkpoint_path, self.detect_anomaly = checkpoint_path, bool(detect_anomaly)
        self.diagnose = bool(diagnose)
        self.num_classes = None  # the model's output width (dim 1) on class targets
        self.history = History()
        self.epoch, self.epochs_done, self.stop_training = -1, 0, False
        self.has_validation, self.train_loader, self.last_checkpoint = False, None, None

    # ----- the state a checkpoint holds -----
    def _generators(self):
        """The random generators whose state decides the run's future: the package's (init,
        dropout, augmentation) and the train loader's own, if it has one."""
        gens = {"global": random.generator()}
        loader_gen = getattr(self.train_loader, "generator", None)
        if isinstance(loader_gen, np.random.Generator):
            gens["train_loader"] = loader_gen
        return gens

    def state_dict(self):
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "optimizer_type": type(self.optimizer).__name__,
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "scheduler_type": None if self.scheduler is None else type(self.scheduler).__name__,
            "scheduler_step": self.scheduler_step,
            "epochs_done": self.epochs_done,
            "stop_training": self.stop_training,
            "history": self.history.state_dict(),
            "callbacks": [{"type": type(cb).__name__, "state": cb.state_dict()}
                          for cb in self.callbacks],
            "rng": {name: g.bit_generator.state for name, g in self._generators().items()},
        }

    def _check_parts(self, state, source):
        """The model's, optimiser's and scheduler's own load checks (each validates without
        changing anything), reported as one error that names the checkpoint."""
        own = self.model.state_dict()
        _, problems = self.model._check_state_dict(own, state["model"], strict=True)
        if problems:
            raise ValueError(f"fit: {source} holds another model's weights: "
                             f"{'; '.join(problems)}; nothing was loaded")
        saved_type = state.get("optimizer_type")
        if saved_type is not None and saved_type != type(self.optimizer).__name__:
            raise ValueError(f"fit: {source} was saved with a {saved_type} optimiser, this run "
                             f"has a {type(self.optimizer).__name__}; nothing was loaded")
        parts = [(self.optimizer, state["optimizer"])]
        if self.scheduler is not None:
            parts.append((self.scheduler, state["scheduler"]))
        for part, saved in parts:
            try:
                part._check_state_dict(saved)
            except (TypeError, ValueError) as e:
                raise ValueError(f"fit: {source}: {e}; nothing was loaded") from None

    def _check_state(self, state, source):
        """Everything that can mismatch, checked before anything is changed."""
        if not isinstance(state, dict) or any(k not in state for k in FIT_KEYS):
            lacks = [k for k in FIT_KEYS if not isinstance(state, dict) or k not in state]
            raise ValueError(f"fit: {source} is not a checkpoint that fit wrote (it lacks "
                             f"{lacks}); nothing was loaded")
        if (state["scheduler"] is None) != (self.scheduler is None):
            raise ValueError(f"fit: {source} was saved " + (
                "without a scheduler, but one was given" if state["scheduler"] is None else
                "with a scheduler, but none was given"))
        if self.scheduler is not None:
            saved_type = state.get("scheduler_type")
            if saved_type is not None and saved_type != type(self.scheduler).__name__:
                raise ValueError(f"fit: {source} was saved with a {saved_type}, this run has a "
                                 f"{type(self.scheduler).__name__}; nothing was loaded")
            saved_step = state.get("scheduler_step")
            if saved_step is not None and saved_step != self.scheduler_step:
                raise ValueError(f"fit: {source} stepped its scheduler per {saved_step}, this "
                                 f"run per {self.scheduler_step}; pass "
                                 f"scheduler_step={saved_step!r} to resume it")
        saved_cbs, names = state["callbacks"], [type(cb).__name__ for cb in self.callbacks]
        if [c["type"] for c in saved_cbs] != names:
            raise ValueError(f"fit: {source} has callbacks {[c['type'] for c in saved_cbs]}"
                             f", this run has {names}; pass the same callbacks to resume")
        gens = self._generators()
        for name in state["rng"]:
            if name not in gens:
                raise ValueError(f"fit: {source} has the state of a {name!r} generator "
                                 f"that this run does not have (a train loader without its own "
                                 f"generator?)")
        self._check_parts(state, source)

    def load_state_dict(self, state, source="the checkpoint"):
        """Restore a run from state_dict()'s output. Everything that can mismatch is checked
        before anything is changed, so a refused checkpoint leaves the run as it was."""
        self._check_state(state, source)
        # Callbacks first: their load_state_dict is the one step not checked above, and if it
        # fails the model and optimiser are still untouched.
        for cb, saved in zip(self.callbacks, state["callbacks"]):
            cb.reset()
            cb.load_state_dict(saved["state"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epochs_done, self.stop_training = state["epochs_done"], state["stop_training"]
        self.epoch = self.epochs_done - 1
        self.history.load_state_dict(state["history"])
        gens = self._generators()
        for name, saved in state["rng"].items():
            gens[name].bit_generator.state = saved

    def save(self, path):
        """Write this run's state to `path` (one .npz, atomically)."""
        save_checkpoint(path, self.state_dict())
        self.last_checkpoint = path
        return path

    # ----- running -----
    def _lr(self):
        groups = getattr(self.optimizer, "param_groups", None)
        return float(groups[0]["lr"]) if groups else float("nan")

    def _call(self, hook, *args):
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def fit(self, train_loader, epochs, val_loader=None, resume_from=None):
        """Train until `epochs` epochs are done in total (a resumed run counts those already
        done) or a callback sets stop_training. Returns the History. Callbacks start afresh
        (reset()) unless the run resumes, when they get the checkpoint's state."""
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}")
        if self.detect_anomaly:  # imported here: only runs that ask for it need it
            from ..autograd import detect_anomaly
            self._anomaly = detect_anomaly
        else:
            self._anomaly = contextlib.nullcontext
        self.train_loader, self.has_validation = train_loader, val_loader is not None
        self.stop_training = False  # a second fit() trains on; a resumed one keeps the flag
        if resume_from is not None:
            self.load_state_dict(load_checkpoint(resume_from, device=self.device),
                                 source=repr(str(resume_from)))
            self.last_checkpoint = resume_from
        else:
            for cb in self.callbacks:
                cb.reset()
        self._call("on_fit_start")
        try:
            self._run_epochs(train_loader, epochs, val_loader)
        except NonFiniteLossError as err:
            if self.diagnose:  # the NaN/Inf loss is not in the history: add it for diagnose
                self._report_findings(failed_loss=err.loss)
            raise
        self._call("on_fit_end")
        if self.diagnose:
            self._report_findings()
        return self.history

    def _report_findings(self, failed_loss=None):
        """Print train.diagnose's findings about this run's curves and store them as
        history.findings."""
        from .diagnose import diagnose, format_findings  # here: `diagnose` is also fit's flag
        curves = self.history
        if failed_loss is not None:
            curves = {**self.history.epochs,
                      "batches": {"loss": self.history.batches["loss"] + [failed_loss]}}
        cross_entropy = self.loss_fn is F.cross_entropy or isinstance(self.loss_fn,
                                                                       CrossEntropyLoss)
        per_epoch = len(self.train_loader) if hasattr(self.train_loader, "__len__") else None
        self.history.findings = diagnose(
            curves, num_classes=self.num_classes if cross_entropy else None,
            batches_per_epoch=per_epoch or None)
        print(format_findings(self.history.findings))

    def _run_epochs(self, train_loader, epochs, val_loader):
        while self.epochs_done < epochs and not self.stop_training:
            self.epoch = self.epochs_done
            logs = self._train_epoch(train_loader, epochs)
            if val_loader is not None:
                val_loss, val_accuracy = evaluate(self.model, val_loader, self.loss_fn,
                                                  self.device)
                logs["val_loss"] = val_loss
                if val_accuracy is not None:
                    logs["val_accuracy"] = val_accuracy
            if isinstance(self.scheduler, ReduceLROnPlateau):
                self.scheduler.step(logs["val_loss" if val_loader is not None else "loss"])
            elif self.scheduler is not None and self.scheduler_step == "epoch":
                self.scheduler.step()
            self.history.log_epoch(logs)
            self.epochs_done += 1
            self._call("on_epoch_end", self.epoch, logs)
            if self.progress:
                tqdm.write(f"epoch {self.epoch + 1}/{epochs}: " + "  ".join(
                    f"{k} {v:.4g}" for k, v in logs.items()))
            if self.checkpoint_path is not None:
                self.save(self.checkpoint_path)

    def _diverged(self, loss_value, i, total, epochs):
        """The error that stops a run whose loss is not finite."""
        losses = self.history.batches["loss"]
        last = losses[-1] if losses else None
        where = f"epoch {self.epoch + 1}/{epochs}, batch {i + 1}" + (
            f"/{total}" if total is not None else "")
        before = (f"the last finite loss was {last!r} (the iteration before)" if last is not None
                  else "no batch of this run had a finite loss")
        if self.last_checkpoint is not None:
            ckpt = (f"the last good checkpoint is {str(self.last_checkpoint)!r} "
                    f"({self.epochs_done} epochs done); fit(..., resume_from=...) continues "
                    f"from it")
        else:
            ckpt = "no checkpoint was written (pass checkpoint_path= to keep one per epoch)"
        return NonFiniteLossError(
            f"fit: the loss is {loss_value} at {where}; {before}. Training stopped before "
            f"this batch's backward pass and optimizer step, so the parameters are those that "
            f"produced it (lr {self._lr():.4g}: too high? or NaN/Inf in the data); {ckpt}",
            self.epoch, i, loss_value, last, self.last_checkpoint)

    def _train_epoch(self, loader, epochs):
        model, opt, sched = self.model, self.optimizer, self.scheduler
        per_batch_sched = sched is not None and self.scheduler_step == "batch"
        model.train()
        self._call("on_epoch_start", self.epoch)
        logs = {"lr": self._lr()}
        total_loss, correct, predictions, count, classified = 0.0, 0, 0, 0, True
        start = time.perf_counter()
        total = len(loader) if hasattr(loader, "__len__") else None
        bar = tqdm(loader, total=total, desc=f"epoch {self.epoch + 1}/{epochs}",
                   disable=not self.progress, leave=False, unit="batch")
        for i, batch in enumerate(bar):
            x, y = _split(batch, "fit")
            x, y = _to(x, self.device, "fit"), _to(y, self.device, "fit")
            lr = self._lr()
            with self._anomaly():
                output = model(x)
                loss = self.loss_fn(output, y)
                loss_value = _loss_value(loss, "fit")  # the bar needs it anyway
                if not math.isfinite(loss_value):
                    bar.close()
                    raise self._diverged(loss_value, i, total, epochs)
                opt.zero_grad()
                loss.backward()
            opt.step()
            if per_batch_sched:
                sched.step()
            n = x.shape[0]
            total_loss, count = total_loss + loss_value * n, count + n
            hits = _correct(output, y) if classified else None
            if hits is None:
                classified = False  # one batch without class targets: no accuracy this epoch
            else:
                correct, predictions = correct + hits[0], predictions + hits[1]
                self.num_classes = output.shape[1]
            self.history.log_batch(loss_value, lr)
            self._call("on_batch_end", i, {"loss": loss_value, "lr": lr})
            if self.progress:
                shown = dict(loss=f"{total_loss / count:.4f}")
                if classified:
                    shown["acc"] = f"{correct / predictions:.3f}"
                shown["img_s"] = f"{count / (time.perf_counter() - start):.0f}"
                bar.set_postfix(refresh=False, **shown)
        bar.close()
        if count == 0:
            raise ValueError("fit: the train loader yielded no batches")
        logs["loss"] = total_loss / count
        if classified:
            logs["accuracy"] = correct / predictions
        return logs


def fit(model, train_loader, optimizer, loss_fn=F.cross_entropy, epochs=1, val_loader=None,
        scheduler=None, scheduler_step=None, callbacks=(), device=None, progress=True,
        checkpoint_path=None, resume_from=None, detect_anomaly=False, diagnose=False):
    """Train `model` on `train_loader` (batches of (inputs, targets)) with `optimizer`;
    returns the History. A checkpoint is written to `checkpoint_path` (.npz) after every
    epoch; `resume_from` continues a run from one (the same model, optimiser, scheduler and
    callbacks must be passed; a checkpoint of another model is refused and changes nothing).

    scheduler_step: "epoch" or "batch"; None (default) asks the scheduler (its `step_per`,
    "batch" for OneCycleLR) and otherwise steps it once per epoch, as PyTorch recipes do.
    detect_anomaly: run every forward and backward pass under autograd's detect_anomaly()
    (slow; names the op that made a NaN). A NaN or Inf loss always stops the run with a
    NonFiniteLossError (epoch, batch, last finite loss, last checkpoint) before the optimizer
    step. diagnose: print what the curves show at the end (train.diagnose: lr too high or
    low, bad init, over/underfitting, plateau, still improving) and keep it as
    history.findings. See Trainer.

    >>> history = fit(model, train_loader, optim.SGD(model.parameters(), lr=0.1), epochs=5,
    ...               val_loader=val_loader, callbacks=[EarlyStopping("val_accuracy")])
    """
    trainer = Trainer(model, optimizer, loss_fn=loss_fn, scheduler=scheduler,
                      scheduler_step=scheduler_step, callbacks=callbacks, device=device,
                      progress=progress, checkpoint_path=checkpoint_path,
                      detect_anomaly=detect_anomaly, diagnose=diagnose)
    return trainer.fit(train_loader, epochs, val_loader=val_loader, resume_from=resume_from)
