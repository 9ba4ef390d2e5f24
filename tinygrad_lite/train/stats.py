"""Looking inside a network: the lectures' "babysitting" instruments (SPEC: "Weight
initialisation" and "Choosing hyperparameters", item 8).

- `activation_stats(model, x)`: one forward pass (and, given targets and a loss, one backward
  pass) on a batch; per module, the mean, std, fraction of exact zeros, fraction saturated and
  a histogram of its output, and the same for the gradient of the loss w.r.t. that output.
  This is the "activation statistics per layer" experiment (demos/init_study.py).
- `ActivationStats(batch)`: a fit callback that takes those numbers on a fixed batch once per
  epoch (or every k iterations) and draws them over time, with fastai's "colorful dimension"
  (one image per layer: time on x, fixed histogram bins on y, log counts as colour).
- `dead_units(model, loader)`: the units after each ReLU that were never positive on the data.
- `UpdateRatio()`: a fit callback that records ||update|| / ||weight|| per parameter tensor at
  every step (about 1e-3 is healthy) and warns when a tensor's ratio sits far from that.

Measuring never disturbs what it measures: the model's train/eval modes, its hooks, its
parameters' .grad, its buffers (batch-norm running statistics) and the random state (the
package's generator and NumPy's global one) are as they were afterwards, also when the
model raises part-way; the numbers are computed on the host in float64 and no activation or
graph is kept.
"""
import contextlib
import math
import warnings

import numpy as np

from .. import random
from ..autograd import no_grad
from ..nn.activation import ReLU, Sigmoid, Tanh
from ..nn.module import Module
from ..nn.normalization import _BatchNorm
from ..tensor import Tensor
from .callbacks import Callback
from .loop import _model_device, _to
from .plots import _figure

__all__ = ["activation_stats", "ActivationStats", "dead_units", "UpdateRatio", "update_ratios"]

# Saturation thresholds (the lectures' "saturated" tanh and sigmoid units: where the local
# gradient has all but vanished; tanh'(y) = 1 - y^2 is below 0.02 for |y| > 0.99).
TANH_SATURATED = 0.99
SIGMOID_SATURATED = 0.01  # y < 0.01 or y > 1 - 0.01


# ----- the numbers of one array -----
def _histogram(values, bins):
    """(counts, edges) of the finite `values`: `bins` equal bins over their min..max (NumPy's
    rule: a constant array gets the range value +- 0.5), or the given edges, with values
    beyond them counted in the end bins (so every finite value is counted once)."""
    if isinstance(bins, (int, np.integer)):
        return np.histogram(values, int(bins))
    edges = np.asarray(bins, dtype=np.float64)
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), edges)
    return counts, edges


def _summary(array, bins):
    """mean, std (NumPy's, ddof=0: the spread of the values seen), frac_zero (exactly 0),
    frac_nonfinite and the histogram of the finite values, all over the whole array."""
    a = np.asarray(array, dtype=np.float64).ravel()  # float64: a float32 sum of 2M values drifts
    finite = np.isfinite(a)
    n, n_finite = a.size, int(finite.sum())
    with np.errstate(invalid="ignore", over="ignore"):
        mean = float(a.mean()) if n else math.nan
        std = float(a.std()) if n else math.nan
    counts, edges = _histogram(a if n_finite == n else a[finite], bins)
    return {"mean": mean, "std": std,
            "frac_zero": float(np.count_nonzero(a == 0) / n) if n else math.nan,
            "frac_nonfinite": (n - n_finite) / n if n else math.nan,
            "counts": counts.astype(np.int64), "edges": edges}


def _frac_saturated(module, array):
    """The fraction of saturated outputs of a Tanh (|y| > 0.99) or Sigmoid (y < 0.01 or
    y > 0.99) module; None for any other module, whose output has no saturation to speak of."""
    a = np.asarray(array)
    if isinstance(module, Tanh):
        return float(np.mean(np.abs(a) > TANH_SATURATED)) if a.size else math.nan
    if isinstance(module, Sigmoid):
        return float(np.mean((a < SIGMOID_SATURATED) | (a > 1 - SIGMOID_SATURATED))) \
            if a.size else math.nan
    return None


# ----- choosing modules, and leaving the model as it was -----
def _is_leaf(module):
    return next(iter(module.children()), None) is None


def _select(model, modules, who):
    """(name, module) pairs to watch: every leaf module (None), those of the given types (a
    class or a tuple of classes), or the given names / Module objects."""
    if not isinstance(model, Module):
        raise TypeError(f"{who}: expected an nn.Module, got {type(model).__name__}")
    named = list(model.named_modules())
    if modules is None:
        return [(n, m) for n, m in named if _is_leaf(m)]
    if isinstance(modules, type) or (isinstance(modules, tuple) and modules and
                                     all(isinstance(t, type) for t in modules)):
        chosen = [(n, m) for n, m in named if isinstance(m, modules)]
        if not chosen:
            raise ValueError(f"{who}: the model has no module of type {modules}")
        return chosen
    by_name, by_id = dict(named), {id(m): n for n, m in named}
    chosen = []
    for item in ([modules] if isinstance(modules, (str, Module)) else modules):
        if isinstance(item, str):
            if item not in by_name:
                raise ValueError(f"{who}: the model has no module named {item!r}; its modules "
                                 f"are {[n for n, _ in named]}")
            chosen.append((item, by_name[item]))
        elif isinstance(item, Module):
            if id(item) not in by_id:
                raise ValueError(f"{who}: {type(item).__name__} module {item!r:.60} is not "
                                 f"part of the model")
            chosen.append((by_id[id(item)], item))
        else:
            raise TypeError(f"{who}: modules must be None, a module type (or a tuple of "
                            f"types), or names / Modules of the model; got an item of type "
                            f"{type(item).__name__}")
    return list({id(m): (n, m) for n, m in chosen}.values())  # one hook per module


def _display(name):
    return name or "(model)"


@contextlib.contextmanager
def _preserved(model):
    """Restore on exit, also after an exception: every submodule's train/eval mode, every
    buffer that changed (batch norm's running statistics, written in place in training mode)
    and the state of the package's random generator and of NumPy's global one (dropout
    masks draw from the former; a user's own code may draw from the latter)."""
    modes = [(m, m.training) for m in model.modules()]
    buffers = [(b, np.array(b.numpy(), copy=True)) for b in model.buffers()]
    package_rng = random.generator().bit_generator.state
    numpy_rng = np.random.get_state()
    try:
        yield
    finally:
        for m, training in modes:
            object.__setattr__(m, "training", training)  # just this module, not its children
        with no_grad():
            for b, saved in buffers:
                if not np.array_equal(b.numpy(), saved, equal_nan=saved.dtype.kind == "f"):
                    b.copy_(Tensor(saved, dtype=b.dtype, device=b.device))
        random.generator().bit_generator.state = package_rng
        np.random.set_state(numpy_rng)


def _output_tensor(output, name, who):
    """The Tensor a module returned (the first one of a tuple, as MaxPool2d's
    return_indices=True gives (values, indices))."""
    if isinstance(output, Tensor):
        return output
    if isinstance(output, (tuple, list)):
        for item in output:
            if isinstance(item, Tensor):
                return item
    raise TypeError(f"{who}: module {_display(name)!r} returned a {type(output).__name__}, "
                    f"not a Tensor; leave it out with modules=")


def _input_batch(x, device, who):
    """x on the model's device as a fresh leaf (so measuring never touches a caller's x.grad);
    a float batch requires grad, so that gradients reach every module's output even when the
    parameters are frozen."""
    x = _to(x, device, who).detach()
    return x.requires_grad_() if np.dtype(x.dtype).kind == "f" else x


# ----- one measurement -----
def _measure(model, x, modules, y, loss_fn, bins, who, edges=None, initial_edges=None):
    """The rows of activation_stats. With `edges` (a dict), each (kind, name) histogram uses
    the fixed edges stored there, made by initial_edges(module, kind, values, bins) when the
    key is new: the callback's fixed bins."""
    if (y is None) != (loss_fn is None):
        raise ValueError(f"{who}: pass both y and loss_fn for the gradient statistics (a "
                         f"backward pass), or neither; got "
                         f"{'y' if y is not None else 'loss_fn'} alone")
    backward = y is not None
    targets = _select(model, modules, who)
    device = _model_device(model)
    rows, calls, handles = [], {}, []

    def hist_bins(kind, name, module, values):
        if edges is None:
            return bins
        key = f"{kind}:{name}"
        if key not in edges:
            edges[key] = initial_edges(module, kind, values, bins)
        return edges[key]

    def watch(name, module):
        def hook(mod, args, output):
            out = _output_tensor(output, name, who)
            calls[name] = calls.get(name, 0) + 1
            row_name = _display(name) + (f"#{calls[name]}" if calls[name] > 1 else "")
            values = out.numpy()
            row = {"name": row_name, "module": type(module).__name__,
                   "shape": tuple(out.shape)}
            row.update(_summary(values, hist_bins("output", row_name, module, values)))
            row["frac_saturated"] = _frac_saturated(module, values)
            row["grad"] = None
            rows.append(row)
            if backward and out.requires_grad:
                def grad_hook(grad):
                    g = grad.numpy()
                    row["grad"] = _summary(g, hist_bins("grad", row_name, module, g))
                handles.append(out.register_hook(grad_hook))
        return hook

    with _preserved(model):
        try:
            for name, module in targets:
                handles.append(module.register_forward_hook(watch(name, module)))
            if not backward:
                with no_grad():  # no graph: faster, and nothing outlives the call
                    model(_to(x, device, who))
            else:
                loss = loss_fn(model(_input_batch(x, device, who)),
                               _to(y, device, who).detach())
                if not isinstance(loss, Tensor) or loss.size != 1:
                    raise ValueError(f"{who}: loss_fn must return a one-element Tensor, got "
                                     f"{getattr(loss, 'shape', type(loss).__name__)}")
                if not loss.requires_grad:
                    raise ValueError(f"{who}: the loss does not depend on the model's output "
                                     f"through anything that requires grad")
                # backward adds into .grad: hand it empty slots, then put the caller's .grad
                # objects (untouched) back.
                saved = [(p, p.grad) for p in model.parameters()]
                try:
                    for p, _ in saved:
                        p.grad = None
                    loss.backward()
                finally:
                    for p, g in saved:
                        p.grad = g
        finally:
            for handle in handles:
                handle.remove()
    return rows


def activation_stats(model, x, modules=None, y=None, loss_fn=None, bins=40):
    """Statistics of each module's output on the batch `x`: one forward pass in the model's
    current mode (a BatchNorm in training mode uses the batch's statistics), and with `y` and
    `loss_fn(output, y)` one backward pass for the gradient of the loss w.r.t. each output.

    modules: None (every leaf module), a module type or tuple of types (every such module,
    e.g. (nn.Tanh, nn.ReLU)), or names / Module objects of the model.
    bins: the number of equal histogram bins over each output's min..max (negatives
    included), or an increasing sequence of edges used for every histogram (values beyond
    them are counted in the end bins).

    Returns one dict per module call, in the order the calls finished (forward order for
    leaves; a module called twice gives rows "name" and "name#2"; a module the forward did not
    call gives none):
      name, module (its class name), shape,
      mean, std (ddof=0), frac_zero (exactly 0), frac_nonfinite (NaN or Inf),
      frac_saturated: |y| > 0.99 after Tanh, y < 0.01 or y > 0.99 after Sigmoid, None for any
          other module (the output of a Linear or ReLU cannot saturate),
      counts, edges: the histogram of the finite values (len(edges) = len(counts) + 1),
      grad: None without a backward pass (or if no gradient reached this output), else
          {mean, std, frac_zero, frac_nonfinite, counts, edges} of d loss / d output.
    All numbers are computed in float64 on the host.

    The model's modes, hooks, buffers (running statistics), parameters and their .grad (the
    same objects, unchanged), the caller's x and the random state are as they were
    afterwards, also when the forward raises; no graph outlives the call.

    >>> for row in activation_stats(model, x, modules=nn.ReLU):
    ...     print(row["name"], row["std"], row["frac_zero"])
    """
    if not isinstance(bins, (int, np.integer)):
        edges = np.asarray(bins, dtype=np.float64)
        if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
            raise ValueError(f"activation_stats: bins must be a positive int or an increasing "
                             f"1-D sequence of at least 2 edges, got {bins!r:.80}")
    elif isinstance(bins, bool) or bins < 1:
        raise ValueError(f"activation_stats: bins must be a positive int, got {bins!r}")
    return _measure(model, x, modules, y, loss_fn, bins, "activation_stats")


# ----- the callback: activation statistics over a run -----
def _initial_edges(module, kind, values, bins, hist_range=None):
    """Fixed histogram edges for a layer, chosen at its first measurement: the output range of
    Tanh ([-1, 1]) and Sigmoid ([0, 1]); else `hist_range` for outputs when given; else the
    first values' range with room to grow (activations often grow several-fold early in
    training: one span more on each side; a non-negative output, such as a ReLU's, keeps 0 as
    its lower edge so its zeros fill the bottom bin). Gradients get a range symmetric about 0
    (1.5 times the largest first magnitude: they usually shrink)."""
    if kind == "output" and isinstance(module, Tanh):
        return np.linspace(-1.0, 1.0, bins + 1)
    if kind == "output" and isinstance(module, Sigmoid):
        return np.linspace(0.0, 1.0, bins + 1)
    if kind == "output" and hist_range is not None:
        return np.linspace(hist_range[0], hist_range[1], bins + 1)
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    if kind == "grad":
        reach = 1.5 * max(abs(lo), abs(hi)) or 1.0
        return np.linspace(-reach, reach, bins + 1)
    span = (hi - lo) or max(abs(hi), 1.0)
    lo = 0.0 if lo >= 0 else lo - span
    return np.linspace(lo, hi + span, bins + 1)


def _require_matplotlib(who):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(f"{who}: needs matplotlib (pip install 'tinygrad_lite[plots]')") \
            from None


def _grid_figure(rows, cols, width, height):
    """An Agg figure (plots' helper, no pyplot) resized to width x height inches with a
    rows x cols grid of axes (a 2-D array)."""
    fig, _ = _figure()
    fig.clear()
    fig.set_size_inches(width, height)
    return fig, fig.subplots(rows, cols, squeeze=False)


class ActivationStats(Callback):
    """Per-layer activation (and gradient) statistics on a fixed batch while fit trains: at the
    start of the run and after every epoch (every=None) or after every `every` iterations.

    batch: the inputs, or an (inputs, targets) pair: then each measurement also runs one
        backward pass with fit's loss_fn and records the gradient statistics (under "grad").
    modules, bins: as activation_stats. Histograms use fixed edges per layer, chosen at the
        layer's first measurement (see `hist_range`), so that they line up over time.
    hist_range: (low, high) edges for the outputs of layers other than Tanh and Sigmoid
        (whose output ranges are used); by default the first measurement's range with room to
        grow. Values beyond the edges are counted in the end bins.
    mode: "train" (default) measures the network as fit trains it (batch statistics, dropout
        masks), "eval" as it predicts.

    A measurement leaves the run exactly as it was: the modes, the parameters and their
    .grad, BN running statistics (restored after a training-mode forward) and the random
    state (restored after dropout's draws), so a run with this callback ends bit for bit where
    one without it does. Memory stays bounded: a measurement keeps a few numbers and `bins`
    counts per layer, never an activation.

    `measurements` holds one dict per measurement: {"iteration": optimiser steps done,
    "epochs_done", "rows": activation_stats' rows without the edges}; `edges[kind:name]` the
    fixed edges ("output:0.relu", "grad:0.relu"); `series(name, key)` one number over time.
    `plot(path)` draws them.

    >>> stats = ActivationStats(next(iter(val_loader)), every=50)
    >>> fit(model, loader, opt, epochs=5, callbacks=[stats])
    >>> stats.plot("out/activations.png"); stats.plot("out/gradients.png", grad=True)
    """

    MODES = ("train", "eval")

    def __init__(self, batch, modules=None, every=None, bins=40, hist_range=None, mode="train"):
        if isinstance(batch, (tuple, list)):
            if len(batch) != 2:
                raise ValueError(f"ActivationStats: batch must be the inputs or an (inputs, "
                                 f"targets) pair, got a {type(batch).__name__} of length "
                                 f"{len(batch)}")
            self.x, self.y = batch
        else:
            self.x, self.y = batch, None
        if every is not None and (isinstance(every, bool) or not isinstance(every, int) or
                                  every < 1):
            raise ValueError(f"ActivationStats: every must be None (once per epoch) or a "
                             f"positive int (iterations), got {every!r}")
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise ValueError(f"ActivationStats: bins must be a positive int, got {bins!r}")
        if hist_range is not None and not (len(hist_range) == 2 and
                                           hist_range[0] < hist_range[1]):
            raise ValueError(f"ActivationStats: hist_range must be (low, high) with low < "
                             f"high, got {hist_range!r}")
        if mode not in self.MODES:
            raise ValueError(f"ActivationStats: mode must be 'train' or 'eval', got {mode!r}")
        self.modules, self.every, self.bins = modules, every, bins
        self.hist_range, self.mode = hist_range, mode
        self.reset()

    def reset(self):
        self.measurements, self.edges = [], {}

    def _measure_now(self, trainer):
        iteration = len(trainer.history.batches["loss"])
        if self.measurements and self.measurements[-1]["iteration"] == iteration:
            return  # a resumed run starts where its last measurement was taken
        model = trainer.model
        with _preserved(model):
            model.train(self.mode == "train")
            rows = _measure(
                model, self.x, self.modules, self.y,
                trainer.loss_fn if self.y is not None else None, self.bins, "ActivationStats",
                edges=self.edges,
                initial_edges=lambda m, kind, v, bins: _initial_edges(m, kind, v, bins,
                                                                      self.hist_range))
        for row in rows:  # the edges are kept once per layer, in self.edges
            del row["edges"]
            if row["grad"] is not None:
                del row["grad"]["edges"]
        self.measurements.append({"iteration": iteration, "epochs_done": trainer.epochs_done,
                                  "rows": rows})

    def on_fit_start(self, trainer):
        self._measure_now(trainer)

    def on_batch_end(self, trainer, batch, logs):
        if self.every is not None and len(trainer.history.batches["loss"]) % self.every == 0:
            self._measure_now(trainer)

    def on_epoch_end(self, trainer, epoch, logs):
        if self.every is None:
            self._measure_now(trainer)

    # ----- reading and saving -----
    def layers(self):
        """The layers' names, in the order they first appeared."""
        return list(dict.fromkeys(r["name"] for m in self.measurements for r in m["rows"]))

    def series(self, name, key, grad=False):
        """(iterations, values) of one statistic of one layer over the run (NaN where a
        measurement has no value); key: mean, std, frac_zero, frac_saturated, frac_nonfinite,
        or counts (then values is a (measurements, bins) array)."""
        if name not in self.layers():
            raise KeyError(f"ActivationStats: no layer {name!r}; it has {self.layers()}")
        iterations, values = [], []
        width = len(self.edges.get(f"{'grad' if grad else 'output'}:{name}", ())) - 1
        for m in self.measurements:
            row = next((r for r in m["rows"] if r["name"] == name), None)
            stats = None if row is None else (row["grad"] if grad else row)
            iterations.append(m["iteration"])
            if key == "counts":
                values.append(stats["counts"] if stats is not None else
                              np.zeros(max(width, 0), np.int64))
            else:
                v = None if stats is None else stats[key]
                values.append(math.nan if v is None else v)
        return np.asarray(iterations), np.asarray(values, dtype=np.float64 if key != "counts"
                                                  else np.int64)

    def state_dict(self):
        """Plain lists and numbers (a checkpoint stores them as JSON)."""
        def plain(stats):
            return None if stats is None else {k: (v.tolist() if isinstance(v, np.ndarray)
                                                   else v) for k, v in stats.items()}
        return {"edges": {k: v.tolist() for k, v in self.edges.items()},
                "measurements": [{"iteration": m["iteration"], "epochs_done": m["epochs_done"],
                                  "rows": [dict(plain(r), shape=list(r["shape"]),
                                                grad=plain(r["grad"])) for r in m["rows"]]}
                                 for m in self.measurements]}

    def load_state_dict(self, state):
        def arrays(stats):
            return None if stats is None else dict(
                stats, counts=np.asarray(stats["counts"], dtype=np.int64))
        self.edges = {k: np.asarray(v, dtype=np.float64) for k, v in state["edges"].items()}
        self.measurements = [
            {"iteration": m["iteration"], "epochs_done": m["epochs_done"],
             "rows": [dict(arrays(r), shape=tuple(r["shape"]), grad=arrays(r["grad"]))
                      for r in m["rows"]]}
            for m in state["measurements"]]

    # ----- drawing -----
    def plot(self, path, grad=False, columns=4):
        """Write one PNG to `path`: the per-layer mean, std and % exact zeros over the run
        (one line per layer), then per layer (`columns` to a row, at least 3) the "colorful
        dimension": an image with the measurements on x, the fixed histogram bins on y and
        log(1 + count) as colour (a healthy layer is a steady band; collapse narrows it to 0,
        saturation pushes it to the edges, dead ReLUs fill the bottom bin). grad=True draws
        the gradients instead."""
        _require_matplotlib("ActivationStats.plot")
        if not self.measurements:
            raise ValueError("ActivationStats.plot: nothing measured yet (pass the callback "
                             "to fit first)")
        kind = "grad" if grad else "output"
        names = [n for n in self.layers() if f"{kind}:{n}" in self.edges]
        if not names:
            raise ValueError("ActivationStats.plot: no gradient statistics were recorded "
                             "(give the batch as an (inputs, targets) pair)" if grad else
                             "ActivationStats.plot: no layer was measured")
        columns = max(3, columns)  # the first row holds the three curves
        image_rows = -(-len(names) // columns)
        fig, axes = _grid_figure(1 + image_rows, columns, 4.0 * columns, 3.2 * (1 + image_rows))
        what = "gradient" if grad else "activation"
        for ax, key, label in zip(axes[0], ("mean", "std", "frac_zero"),
                                  ("mean", "std", "% exactly zero")):
            for name in names:
                it, v = self.series(name, key, grad=grad)
                ax.plot(it, v * (100 if key == "frac_zero" else 1), "o-", markersize=2.5,
                        label=name)
            ax.set(xlabel="iteration", title=f"{what} {label}")
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=7)
        for ax in axes[0][3:]:
            ax.set_visible(False)
        for i, ax in enumerate(axes[1:].ravel()):
            if i >= len(names):
                ax.set_visible(False)
                continue
            name = names[i]
            it, counts = self.series(name, "counts", grad=grad)
            edges = self.edges[f"{kind}:{name}"]
            ax.imshow(np.log1p(counts.T), origin="lower", aspect="auto", cmap="viridis",
                      interpolation="nearest",
                      extent=(-0.5, len(it) - 0.5, edges[0], edges[-1]))
            ticks = np.unique(np.linspace(0, len(it) - 1, min(len(it), 6)).round().astype(int))
            ax.set_xticks(ticks, [str(it[t]) for t in ticks])
            ax.set(title=f"{name} ({what}s)", xlabel="iteration", ylabel="value")
        fig.tight_layout()
        fig.savefig(path)
        return path


# ----- dead ReLUs -----
def _is_relu(module):
    return isinstance(module, ReLU) or (isinstance(module, _BatchNorm) and
                                        module.activation == "relu")


def dead_units(model, loader, max_batches=None, modules=None):
    """The units after each ReLU that were never positive on the batches of `loader` (the
    first `max_batches` of them, or all): a dead ReLU passes no gradient, so it never learns
    again (lectures: too high a learning rate, or an unlucky init, kills them).

    A unit is a channel (dim 1) of an (N, C, H, W) or (N, C, L) output, whatever its memory
    layout (tensors are indexed NCHW even over NHWC memory), or a feature of an (N, F) one.
    modules: as activation_stats; by default every nn.ReLU and every batch norm with a fused
    ReLU (activation="relu"); a ReLU written as F.relu inside a forward cannot be seen.
    The loader yields inputs or (inputs, targets) pairs.

    Runs in eval mode (deterministic: no dropout, running statistics, no BN update) without a
    graph; the model's modes, hooks, buffers and the random state are as they were afterwards.
    Returns one dict per ReLU module that ran, in forward order: name, units, dead (how many),
    fraction (dead / units).

    >>> for row in dead_units(model, train_loader, max_batches=20):
    ...     print(f"{row['name']}: {row['fraction']:.0%} dead")
    """
    who = "dead_units"
    if max_batches is not None and (isinstance(max_batches, bool) or
                                    not isinstance(max_batches, int) or max_batches < 1):
        raise ValueError(f"{who}: max_batches must be None or a positive int, got "
                         f"{max_batches!r}")
    targets = _select(model, modules, who) if modules is not None else [
        (n, m) for n, m in model.named_modules() if _is_relu(m)]
    if not targets:
        raise ValueError(f"{who}: the model has no ReLU module (nn.ReLU or a batch norm with "
                         f"activation='relu')")
    device = _model_device(model)
    alive, order, handles = {}, [], []

    def watch(name):
        def hook(mod, args, output):
            a = _output_tensor(output, name, who).numpy()
            if a.ndim < 2:
                raise ValueError(f"{who}: ReLU {_display(name)!r} gave a {a.ndim}-D output "
                                 f"{a.shape}; expected a batch (N, units, ...)")
            positive = (a > 0).any(axis=tuple(i for i in range(a.ndim) if i != 1))
            if name not in alive:
                order.append(name)
                alive[name] = positive
            elif alive[name].shape != positive.shape:
                raise ValueError(f"{who}: ReLU {_display(name)!r} gave {positive.size} units "
                                 f"here and {alive[name].size} before")
            else:
                alive[name] |= positive
        return hook

    batches = 0
    with _preserved(model), no_grad():
        model.eval()
        try:
            for name, module in targets:
                handles.append(module.register_forward_hook(watch(name)))
            for batch in loader:
                if max_batches is not None and batches >= max_batches:
                    break
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                model(_to(x, device, who))
                batches += 1
        finally:
            for handle in handles:
                handle.remove()
    if batches == 0:
        raise ValueError(f"{who}: the loader yielded no batches")
    return [{"name": _display(n), "units": int(alive[n].size),
             "dead": int((~alive[n]).sum()),
             "fraction": float((~alive[n]).sum() / alive[n].size) if alive[n].size else 0.0}
            for n in order]


# ----- update / weight ratio -----
UPDATE_RATIO = "update_ratio/"  # the History.batches key prefix: "update_ratio/<parameter>"


def update_ratios(history):
    """{parameter name: array of ||update|| / ||weight|| per iteration} that UpdateRatio
    recorded in `history` (in history.batches["update_ratio/<name>"])."""
    return {k[len(UPDATE_RATIO):]: np.asarray(v, dtype=np.float64)
            for k, v in history.batches.items() if k.startswith(UPDATE_RATIO)}


class UpdateRatio(Callback):
    """||W after the step - W before|| / ||W before|| for every parameter tensor that requires
    grad, at every iteration, recorded in the History: `history.batches["update_ratio/" +
    name]` (one float per iteration; a plain list, so History.state_dict and checkpoints
    carry it and a resumed run continues it); `update_ratios(history)` gathers them. The
    lectures' rule of thumb: about 1e-3 is healthy; much higher, the learning rate is too
    high (or the weights tiny); much lower, too low. A zero weight gives inf (nan if it did
    not move either).

    A warning (warnings.warn, once per weight per fit) when the median ratio of a weight
    (a parameter with 2 or more dimensions: a Linear's or a conv's) over the last `window`
    iterations is beyond `factor` times the healthy band [low, high], i.e. below 1e-5 or
    above 1e-1 by default. Why so: one step's ratio is noisy (a small gradient, a
    weight-decay-only step, the first steps of warm-up) and the median over a window ignores
    such spikes; a factor of 10 beyond the band keeps deliberate choices quiet (fine-tuning at
    a small lr, a short warm-up) and flags what is off by orders of magnitude, the mistakes
    the rule of thumb exists to catch. Biases and normalisation parameters are recorded but
    not judged: they start at or near 0 (a huge or infinite ratio that means nothing), and a
    bias just before a batch norm gets no gradient at all (a ratio of 0).

    The weights after each step are copied to the host (float64) to serve as the next step's
    "before": one copy of the parameters' size per iteration.

    >>> history = fit(model, loader, opt, epochs=3, callbacks=[UpdateRatio()])
    >>> update_ratios(history)["0.weight"][-10:]
    """

    def __init__(self, low=1e-4, high=1e-2, window=20, factor=10.0):
        if not 0 < low < high:
            raise ValueError(f"UpdateRatio: expected 0 < low < high, got low={low!r}, "
                             f"high={high!r}")
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"UpdateRatio: window must be a positive int, got {window!r}")
        if not factor >= 1:
            raise ValueError(f"UpdateRatio: factor must be >= 1, got {factor!r}")
        self.low, self.high, self.window, self.factor = low, high, window, float(factor)
        self.history = None
        self.reset()

    def reset(self):
        self._before, self._warned, self._params = {}, set(), []

    @staticmethod
    def _host(p):
        return np.array(p.numpy(), dtype=np.float64, copy=True)

    def _snapshot(self):
        self._before = {name: self._host(p) for name, p in self._params}

    def on_fit_start(self, trainer):
        self.history, self._warned = trainer.history, set()
        self._params = [(n, p) for n, p in trainer.model.named_parameters() if p.requires_grad]

    def on_epoch_start(self, trainer, epoch):
        self._snapshot()

    def on_batch_end(self, trainer, batch, logs):
        batches = trainer.history.batches
        for name, p in self._params:
            after, before = self._host(p), self._before[name]
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = float(np.float64(np.linalg.norm(after - before)) /
                              np.float64(np.linalg.norm(before)))
            self._before[name] = after
            ratios = batches.setdefault(UPDATE_RATIO + name, [])
            ratios.append(ratio)
            if p.ndim >= 2:
                self._check(name, ratios)

    def _check(self, name, ratios):
        if name in self._warned or len(ratios) < self.window:
            return
        recent = np.asarray(ratios[-self.window:], dtype=np.float64)
        recent = recent[~np.isnan(recent)]
        if recent.size == 0:
            return
        median = float(np.median(recent))
        if self.low / self.factor <= median <= self.high * self.factor:
            return
        self._warned.add(name)
        advice = ("the learning rate is probably too high (or the weights tiny)"
                  if median > self.high else "the learning rate is probably too low")
        warnings.warn(f"UpdateRatio: parameter {name!r} has a median update/weight ratio of "
                      f"{median:.3g} over the last {self.window} iterations, more than "
                      f"{self.factor:g}x outside the healthy [{self.low:g}, {self.high:g}] "
                      f"(about 1e-3 is healthy): {advice}", RuntimeWarning, stacklevel=2)

    def plot(self, path, history=None):
        """Write a PNG to `path`: log10 of every parameter's ratio per iteration, with the
        healthy band [low, high] shaded and 1e-3 marked. history: the run's History (default:
        the last fit's this callback watched)."""
        _require_matplotlib("UpdateRatio.plot")
        history = history if history is not None else self.history
        ratios = update_ratios(history) if history is not None else {}
        if not ratios:
            raise ValueError("UpdateRatio.plot: no update ratios recorded (pass the callback "
                             "to fit first, or the History of a run that had it)")
        fig, ax = _figure()
        fig.set_size_inches(8.0, 4.5)
        n_iter = len(history.batches["loss"])
        for name, r in ratios.items():
            it = np.arange(n_iter - len(r) + 1, n_iter + 1)  # a resumed run: aligned at the end
            with np.errstate(divide="ignore", invalid="ignore"):
                ax.plot(it, np.log10(r), linewidth=1.0, label=name)
        ax.axhspan(math.log10(self.low), math.log10(self.high), color="tab:green", alpha=0.12,
                   label=f"healthy [{self.low:g}, {self.high:g}]")
        ax.axhline(-3.0, color="tab:green", linestyle="--", linewidth=1.0)
        ax.set(xlabel="iteration", ylabel="log10(||update|| / ||weight||)",
               title="Update / weight ratio per parameter")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(path)
        return path
