"""Training curves as PNG files: the two plots the lectures read a run from.

- loss per iteration with a moving average: the raw mini-batch loss is noisy, the average
  shows the trend (flat start: bad init; explosion: lr too high);
- train vs validation accuracy per epoch: a big gap means overfitting, no gap underfitting.

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


def save_curves(history, out_dir, prefix="", window=None, val_name="validation"):
    """Write `{prefix}loss.png` and, when the run reported accuracy (classification targets),
    `{prefix}accuracy.png` into out_dir; returns the paths written.
    window: moving-average length in iterations (default: about a tenth of the run, at most
    50). val_name: what the val_loader held, for the legends ("test" when it was the test
    set)."""
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
    ax.set(xlabel="epoch", ylabel="accuracy", title=f"Train vs {val_name} accuracy")
    ax.grid(alpha=0.3)
    ax.legend()
    acc_path = os.path.join(out_dir, f"{prefix}accuracy.png")
    fig.savefig(acc_path)
    return loss_path, acc_path
