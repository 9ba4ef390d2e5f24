"""The training loop: `fit` (or a `Trainer`, which fit builds) and `evaluate`.

One epoch: model.train(); for each (x, y) batch: forward, loss, zero_grad, backward,
optimizer.step(), scheduler.step() when scheduler_step == "batch"; then validation
(model.eval() under no_grad), scheduler.step() when scheduler_step == "epoch" (a
ReduceLROnPlateau is given the epoch's val_loss, or without validation its training loss),
the History entry, on_epoch_end callbacks, and the checkpoint. A tqdm bar shows the running loss,
accuracy and images/s.

Resuming: a checkpoint holds everything a run's future depends on (model, optimiser,
scheduler, epochs done, history, callback states, and the states of the package's random
generator and of the train loader's generator), saved at the end of an epoch. So
`fit(..., resume_from=path)` continues exactly where the run stopped, and a resumed run
ends bit for bit where the uninterrupted one does.
"""
import time

import numpy as np
from tqdm import tqdm

from .. import random
from ..autograd import no_grad
from ..device import get_device
from ..nn import functional as F
from ..optim.lr_scheduler import ReduceLROnPlateau
from ..tensor import Tensor
from .callbacks import Callback, History
from .checkpoint import load_checkpoint, save_checkpoint

__all__ = ["Trainer", "fit", "evaluate"]

SCHEDULER_STEPS = ("batch", "epoch")


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


def _correct(logits, y):
    """(right, total) predictions: the argmax over dim 1 (classes) against the label; for
    probability targets (mixup) against the target's largest class."""
    pred = logits.argmax(axis=1).numpy()
    labels = y.numpy()
    if labels.ndim == pred.ndim + 1:
        labels = labels.argmax(axis=1)
    return int((pred == labels).sum()), pred.size


def evaluate(model, loader, loss_fn=F.cross_entropy, device=None):
    """(mean loss per sample, accuracy) of `model` over `loader`, in eval mode and without a
    graph; the model's train/eval mode is restored afterwards."""
    device = get_device(device) if device is not None else _model_device(model)
    was_training = model.training
    model.eval()
    total_loss, correct, predictions, count = 0.0, 0, 0, 0
    try:
        with no_grad():
            for batch in loader:
                x, y = _split(batch, "evaluate")
                x, y = _to(x, device, "evaluate"), _to(y, device, "evaluate")
                logits = model(x)
                n = x.shape[0]
                total_loss += float(loss_fn(logits, y).item()) * n
                right, total = _correct(logits, y)
                correct, predictions, count = correct + right, predictions + total, count + n
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("evaluate: the loader yielded no batches")
    return total_loss / count, correct / predictions


class Trainer:
    """Holds what a run needs and what callbacks may read: model, optimizer, scheduler,
    history, epoch (the one running or just finished, 0-based), stop_training (set it to end
    the run after this epoch), has_validation.

    >>> trainer = Trainer(model, opt, scheduler=sched, callbacks=[EarlyStopping("val_loss")])
    >>> history = trainer.fit(train_loader, epochs=10, val_loader=val_loader)
    """

    def __init__(self, model, optimizer, loss_fn=F.cross_entropy, scheduler=None,
                 scheduler_step="batch", callbacks=(), device=None, progress=True,
                 checkpoint_path=None):
        if scheduler_step not in SCHEDULER_STEPS:
            raise ValueError(f"fit: scheduler_step must be 'batch' or 'epoch', got "
                             f"{scheduler_step!r}")
        if isinstance(scheduler, ReduceLROnPlateau) and scheduler_step != "epoch":
            raise ValueError("fit: ReduceLROnPlateau reacts to an epoch's validation loss; "
                             "pass scheduler_step='epoch'")
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
        self.checkpoint_path = checkpoint_path
        self.history = History()
        self.epoch, self.epochs_done, self.stop_training = -1, 0, False
        self.has_validation, self.train_loader = False, None

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
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "epochs_done": self.epochs_done,
            "stop_training": self.stop_training,
            "history": self.history.state_dict(),
            "callbacks": [{"type": type(cb).__name__, "state": cb.state_dict()}
                          for cb in self.callbacks],
            "rng": {name: g.bit_generator.state for name, g in self._generators().items()},
        }

    def load_state_dict(self, state):
        """Restore a run from state_dict()'s output. Everything that can mismatch is checked
        before anything is changed, so a refused checkpoint leaves the run as it was."""
        if (state["scheduler"] is None) != (self.scheduler is None):
            raise ValueError("fit: the checkpoint was saved " + (
                "without a scheduler, but one was given" if state["scheduler"] is None else
                "with a scheduler, but none was given"))
        saved_cbs, names = state["callbacks"], [type(cb).__name__ for cb in self.callbacks]
        if [c["type"] for c in saved_cbs] != names:
            raise ValueError(f"fit: the checkpoint has callbacks {[c['type'] for c in saved_cbs]}"
                             f", this run has {names}; pass the same callbacks to resume")
        gens = self._generators()
        for name in state["rng"]:
            if name not in gens:
                raise ValueError(f"fit: the checkpoint has the state of a {name!r} generator "
                                 f"that this run does not have (a train loader without its own "
                                 f"generator?)")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        for cb, saved in zip(self.callbacks, saved_cbs):
            cb.load_state_dict(saved["state"])
        self.epochs_done, self.stop_training = state["epochs_done"], state["stop_training"]
        self.epoch = self.epochs_done - 1
        self.history.load_state_dict(state["history"])
        for name, saved in state["rng"].items():
            gens[name].bit_generator.state = saved

    def save(self, path):
        """Write this run's state to `path` (one .npz, atomically)."""
        return save_checkpoint(path, self.state_dict())

    # ----- running -----
    def _lr(self):
        groups = getattr(self.optimizer, "param_groups", None)
        return float(groups[0]["lr"]) if groups else float("nan")

    def _call(self, hook, *args):
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def fit(self, train_loader, epochs, val_loader=None, resume_from=None):
        """Train until `epochs` epochs are done in total (a resumed run counts those already
        done) or a callback sets stop_training. Returns the History."""
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}")
        self.train_loader, self.has_validation = train_loader, val_loader is not None
        self.stop_training = False  # a second fit() trains on; a resumed one keeps the flag
        if resume_from is not None:
            self.load_state_dict(load_checkpoint(resume_from, device=self.device))
        self._call("on_fit_start")
        while self.epochs_done < epochs and not self.stop_training:
            self.epoch = self.epochs_done
            logs = self._train_epoch(train_loader, epochs)
            if val_loader is not None:
                logs["val_loss"], logs["val_accuracy"] = evaluate(
                    self.model, val_loader, self.loss_fn, self.device)
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
        self._call("on_fit_end")
        return self.history

    def _train_epoch(self, loader, epochs):
        model, opt, sched = self.model, self.optimizer, self.scheduler
        per_batch_sched = sched is not None and self.scheduler_step == "batch"
        model.train()
        self._call("on_epoch_start", self.epoch)
        logs = {"lr": self._lr()}
        total_loss, correct, predictions, count = 0.0, 0, 0, 0
        start = time.perf_counter()
        total = len(loader) if hasattr(loader, "__len__") else None
        bar = tqdm(loader, total=total, desc=f"epoch {self.epoch + 1}/{epochs}",
                   disable=not self.progress, leave=False, unit="batch")
        for i, batch in enumerate(bar):
            x, y = _split(batch, "fit")
            x, y = _to(x, self.device, "fit"), _to(y, self.device, "fit")
            lr = self._lr()
            logits = model(x)
            loss = self.loss_fn(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if per_batch_sched:
                sched.step()
            n, loss_value = x.shape[0], float(loss.item())
            right, total = _correct(logits, y)
            total_loss, count = total_loss + loss_value * n, count + n
            correct, predictions = correct + right, predictions + total
            self.history.log_batch(loss_value, lr)
            self._call("on_batch_end", i, {"loss": loss_value, "lr": lr})
            if self.progress:
                bar.set_postfix(loss=f"{total_loss / count:.4f}",
                                acc=f"{correct / predictions:.3f}",
                                img_s=f"{count / (time.perf_counter() - start):.0f}",
                                refresh=False)
        bar.close()
        if count == 0:
            raise ValueError("fit: the train loader yielded no batches")
        logs["loss"], logs["accuracy"] = total_loss / count, correct / predictions
        return logs


def fit(model, train_loader, optimizer, loss_fn=F.cross_entropy, epochs=1, val_loader=None,
        scheduler=None, scheduler_step="batch", callbacks=(), device=None, progress=True,
        checkpoint_path=None, resume_from=None):
    """Train `model` on `train_loader` (batches of (inputs, targets)) with `optimizer`;
    returns the History. A checkpoint is written to `checkpoint_path` (.npz) after every
    epoch; `resume_from` continues a run from one (the same model, optimiser, scheduler and
    callbacks must be passed). See Trainer.

    >>> history = fit(model, train_loader, optim.SGD(model.parameters(), lr=0.1), epochs=5,
    ...               val_loader=val_loader, callbacks=[EarlyStopping("val_accuracy")])
    """
    trainer = Trainer(model, optimizer, loss_fn=loss_fn, scheduler=scheduler,
                      scheduler_step=scheduler_step, callbacks=callbacks, device=device,
                      progress=progress, checkpoint_path=checkpoint_path)
    return trainer.fit(train_loader, epochs, val_loader=val_loader, resume_from=resume_from)
