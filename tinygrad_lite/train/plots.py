"""Training curves as PNG files: the two plots the lectures read a run from.

- loss per iteration with a moving average: the raw mini-batch loss is noisy, the average
  shows the trend (flat start: bad init; explosion: lr too high);
- train vs validation accuracy per epoch: a big gap means overfitting, no gap underfitting.

Findings of train.diagnose (fit(..., diagnose=True) keeps them as history.findings) are marked
on both: a dashed vertical line at the finding's iteration (or the end of its epoch) with its
kind.

Figures are drawn with matplotlib's Agg canvas directly (no pyplot), so saving curves never
opens a window and does not change the backend of a user's own pyplot session.
"""
import os

import numpy as np

__all__ = ["moving_average", "save_curves"]


def moving_average(values, window):
    """Mean of each run of `window` consecutive values (len(values) - window + 1 of them)."""
    values = np.asarray(values, dtype=np.float64)
    if window < 1 or window > len(values):
        raise ValueError(f"moving_average: window must be in [1, {len(values)}], got {window}")
    csum = np.cumsum(np.concatenate(([0.0], values)))
    return (csum[window:] - csum[:-window]) / window


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _mark_findings(ax, findings, x_of):
    """A dashed vertical line and the kind's name at x_of(finding) for each finding."""
    for f in findings:
        x = x_of(f)
        ax.axvline(x, color="tab:red", linestyle="--", linewidth=1, alpha=0.7)
        ax.text(x, 0.98, f" {f.kind}", transform=ax.get_xaxis_transform(), rotation=90,
                va="top", ha="right", fontsize=8, color="tab:red")


def save_curves(history, out_dir, prefix="", window=None, val_name="validation",
                findings=None):
    """Write `{prefix}loss.png` and, when the run reported accuracy (classification targets),
    `{prefix}accuracy.png` into out_dir; returns the paths written.
    window: moving-average length in iterations (default: about a tenth of the run, at most
    50). val_name: what the val_loader held, for the legends ("test" when it was the test
    set). findings: train.diagnose's findings to mark (default: history.findings when fit
    stored them; () marks none)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError("save_curves: needs matplotlib (pip install 'tinygrad_lite[plots]')") \
            from None
    os.makedirs(out_dir, exist_ok=True)
    losses = np.asarray(history.batches["loss"], dtype=np.float64)
    if len(losses) == 0:
        raise ValueError("save_curves: the history has no iterations to plot")
    window = window or max(1, min(50, len(losses) // 10))
    window = min(window, len(losses))
    if findings is None:
        findings = getattr(history, "findings", None) or ()
    # a finding's place in iterations: its batch, else the end of its epoch (where the epoch's
    # metrics are drawn)
    iterations_per_epoch = len(losses) / len(history) if len(history) else len(losses)

    def iteration(f):
        return f.batch + 1 if f.batch is not None else iterations_per_epoch * (f.epoch + 1)

    fig, ax = _figure()
    it = np.arange(1, len(losses) + 1)
    ax.plot(it, losses, color="tab:blue", alpha=0.3, linewidth=0.8, label="mini-batch loss")
    ax.plot(it[window - 1:], moving_average(losses, window), color="tab:blue",
            label=f"moving average ({window})")
    val_loss = np.asarray(history["val_loss"] if "val_loss" in history else [],
                          dtype=np.float64)
    if len(val_loss) and not np.isnan(val_loss).all():
        per_epoch = len(losses) / len(val_loss)
        ax.plot(per_epoch * np.arange(1, len(val_loss) + 1), val_loss, "o-",
                color="tab:orange", label=f"{val_name} loss (epoch end)")
    _mark_findings(ax, findings, iteration)
    ax.set(xlabel="iteration", ylabel="loss", title="Training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    loss_path = os.path.join(out_dir, f"{prefix}loss.png")
    fig.savefig(loss_path)
    if "accuracy" not in history:  # a regression: there is no accuracy to draw
        return (loss_path,)

    fig, ax = _figure()
    epochs = np.arange(1, len(history) + 1)
    ax.plot(epochs, history["accuracy"], "o-", label="train")
    if "val_accuracy" in history and \
            not np.isnan(np.asarray(history["val_accuracy"], dtype=np.float64)).all():
        ax.plot(epochs, history["val_accuracy"], "o-", label=val_name)
    _mark_findings(ax, findings, lambda f: iteration(f) / iterations_per_epoch)
    ax.set(xlabel="epoch", ylabel="accuracy", title=f"Train vs {val_name} accuracy")
    ax.grid(alpha=0.3)
    ax.legend()
    acc_path = os.path.join(out_dir, f"{prefix}accuracy.png")
    fig.savefig(acc_path)
    return loss_path, acc_path
