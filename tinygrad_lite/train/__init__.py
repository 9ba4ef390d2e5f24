"""Training: the fit loop, evaluation, callbacks (early stopping), checkpoints (one atomic
.npz with everything needed to resume bit for bit) and training curves.

>>> from tinygrad_lite.train import fit, EarlyStopping, save_curves
>>> history = fit(model, train_loader, opt, epochs=10, val_loader=val_loader,
...               scheduler=sched, callbacks=[EarlyStopping("val_accuracy", patience=3)],
...               checkpoint_path="out/ckpt.npz")
>>> save_curves(history, "out/")
"""
from .callbacks import Callback, EarlyStopping, History, LambdaCallback
from .checkpoint import load_checkpoint, save_checkpoint
from .loop import NonFiniteLossError, Trainer, evaluate, fit
from .plots import moving_average, save_curves

__all__ = ["Callback", "EarlyStopping", "History", "LambdaCallback", "load_checkpoint",
           "NonFiniteLossError", "save_checkpoint", "Trainer", "evaluate", "fit",
           "moving_average", "save_curves"]
