"""Training: the fit loop, evaluation, callbacks (early stopping), checkpoints (one atomic
.npz with everything needed to resume bit for bit) and training curves; and the lectures'
tools for watching a run (sanity checks, activation and update statistics, the learning-rate
range test, a monitor that names what the curves show) and for choosing hyperparameters
(random, grid and successive-halving search on any concurrent.futures executor).

>>> from tinygrad_lite.train import fit, EarlyStopping, save_curves
>>> history = fit(model, train_loader, opt, epochs=10, val_loader=val_loader,
...               scheduler=sched, callbacks=[EarlyStopping("val_accuracy", patience=3)],
...               checkpoint_path="out/ckpt.npz", diagnose=True)
>>> save_curves(history, "out/")
"""
from .callbacks import Callback, EarlyStopping, History, LambdaCallback
from .checkpoint import load_checkpoint, save_checkpoint
from . import tta
from .diagnose import Finding, diagnose, format_findings
from .ensemble import Ensemble, SnapshotEnsemble
from .loop import NonFiniteLossError, Trainer, evaluate, fit
from .lr_finder import LRFinderResult, lr_find
from .plots import moving_average, save_curves
from .sanity import (GradientCheckResult, SanityCheck, SanityReport, check_gradients,
                     sanity_check)
from .search import (Choice, IntUniform, LogUniform, RangeEdgeWarning, SearchResult, Trial,
                     Uniform, search)
from .stats import ActivationStats, UpdateRatio, activation_stats, dead_units, update_ratios
from .transfer import freeze, unfreeze
from .tta import TTAResult, evaluate_tta, tta_predict

__all__ = ["Callback", "EarlyStopping", "History", "LambdaCallback", "load_checkpoint",
           "NonFiniteLossError", "save_checkpoint", "Trainer", "evaluate", "fit",
           "moving_average", "save_curves",
           # babysitting
           "ActivationStats", "UpdateRatio", "activation_stats", "dead_units", "update_ratios",
           "GradientCheckResult", "SanityCheck", "SanityReport", "check_gradients",
           "sanity_check", "LRFinderResult", "lr_find", "Finding", "diagnose",
           "format_findings",
           # hyperparameter search (sequential, local processes or a Dask cluster)
           "search", "SearchResult", "Trial", "Uniform", "LogUniform", "IntUniform", "Choice",
           "RangeEdgeWarning",
           # evaluation: ensembles and test-time augmentation (views in train.tta)
           "Ensemble", "SnapshotEnsemble", "tta", "TTAResult", "evaluate_tta", "tta_predict",
           # transfer learning
           "freeze", "unfreeze"]
