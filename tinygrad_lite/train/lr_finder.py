"""The learning-rate range test (Smith, 2017; the lectures' recipe, step 3 and 8): train for a
few iterations with a learning rate that grows exponentially from `start_lr` to `end_lr`, and
watch where the loss starts to drop and where it explodes.

    result = lr_find(model, train_loader, optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    print(result.suggestion, result.method)   # e.g. 0.012 steepest descent of the smoothed loss
    result.plot("out/lr_find.png")

Iteration i (0-based, of num_iter) trains with lr_i = start_lr * (end_lr / start_lr) **
(i / (num_iter - 1)), set on every parameter group. The loss is smoothed by an exponential
moving average with bias correction, as Smith and fastai do:

    avg_i = beta * avg_{i-1} + (1 - beta) * loss_i,   smoothed_i = avg_i / (1 - beta ** (i + 1))

(the correction makes each smoothed value a true weighted mean, so the first ones are not
pulled towards the average's zero start). The test stops after num_iter iterations, when the
smoothed loss exceeds `diverge_factor` times its best (that iteration is kept: the plot shows
the explosion), or at the first NaN/Inf loss (that iteration is not kept and its step is not
taken). The loader is iterated again from the start when it runs out first.

The suggestion: the learning rate where the smoothed loss falls fastest per decade of
learning rate (the steepest negative slope of smoothed loss against log10(lr)), looked for
after the first SKIP_START points (a tenth of a short test), whose average is still noise, and
before the smoothed loss's minimum, since past it the loss only rises. When the curve is too
short to have a meaningful slope (fewer than MIN_POINTS_FOR_SLOPE points in that range, as
when it never falls: the minimum is then the first point), the fallback is the learning rate
at the minimum divided by 10: at the minimum the loss is about to blow up, and a tenth of it
is the classic safe choice (fastai's "lr_min"). `result.method` says which rule chose it.

Unlike fastai's finder, everything is put back afterwards, even when the test fails with an
error: the model's parameters and buffers (bit for bit; the parameters' .grad objects too),
each module's train/eval mode, the optimiser's state_dict (momentum buffers, Adam moments,
step counts) and every group's hyperparameters (learning rates included), and the random
generators it advanced: the package's, NumPy's global one, the loader's own `generator` and
the generators of its transforms. So running it before fit() (or in the middle of training,
on an optimiser with state) changes nothing that fit() will see.
"""
import math
import numbers

import numpy as np

from .. import random
from ..autograd import no_grad
from ..device import get_device
from ..nn import functional as F
from .loop import _loss_value, _model_device, _split, _to

__all__ = ["lr_find", "LRFinderResult"]

# The slope is not read over the first SKIP_START points: there the bias-corrected average is
# the mean of a handful of mini-batch losses, and each new batch moves it by about 1/(i + 1) of
# the batch-to-batch noise while the lr moves by a small step: a slope of noise (it picked
# start_lr itself on a mini-batch problem).
SKIP_START = 10
# Fewer points than this between SKIP_START and the smoothed minimum make a slope of noise too
# (a short, quickly diverging test): use the minimum / 10 instead.
MIN_POINTS_FOR_SLOPE = 5

STEEPEST = "steepest descent of the smoothed loss"
MINIMUM_OVER_10 = "minimum of the smoothed loss / 10"


class LRFinderResult:
    """What lr_find measured: lrs (the learning rate of each recorded iteration), losses (the
    raw loss of each), smoothed_losses (their bias-corrected moving average), suggestion (a
    learning rate, float), method (the rule that chose it: STEEPEST or MINIMUM_OVER_10),
    stop_reason ("num_iter", "diverged": the smoothed loss exceeded diverge_factor x its best,
    or "non-finite loss") and plot(path)."""

    def __init__(self, lrs, losses, smoothed_losses, stop_reason, beta):
        self.lrs = [float(v) for v in lrs]
        self.losses = [float(v) for v in losses]
        self.smoothed_losses = [float(v) for v in smoothed_losses]
        self.stop_reason, self.beta = stop_reason, beta
        self.suggestion_index, self.method = _suggest(self.lrs, self.smoothed_losses)
        self.suggestion = (self.lrs[self.suggestion_index] / 10 if self.method == MINIMUM_OVER_10
                           else self.lrs[self.suggestion_index])

    def __repr__(self):
        return (f"LRFinderResult(suggestion={self.suggestion:.3g} ({self.method}), "
                f"{len(self.lrs)} iterations, lr {self.lrs[0]:.3g}..{self.lrs[-1]:.3g}, "
                f"stopped: {self.stop_reason})")

    def plot(self, path):
        """Save the loss against the learning rate (log axis) as a PNG at `path`: the raw loss,
        the smoothed loss and a vertical line at the suggestion. Returns path."""
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ImportError("LRFinderResult.plot: needs matplotlib (pip install "
                              "'tinygrad_lite[plots]')") from None
        from .plots import _figure
        fig, ax = _figure()
        ax.plot(self.lrs, self.losses, color="tab:blue", alpha=0.3, linewidth=0.8,
                label="loss")
        ax.plot(self.lrs, self.smoothed_losses, color="tab:blue",
                label=f"smoothed (beta {self.beta})")
        ax.axvline(self.suggestion, color="tab:red", linestyle="--", linewidth=1,
                   label=f"suggestion {self.suggestion:.2g} ({self.method})")
        if self.method == STEEPEST:
            i = self.suggestion_index
            ax.plot([self.lrs[i]], [self.smoothed_losses[i]], "o", color="tab:red")
        ax.set_xscale("log")
        # the explosion at the end would squash the interesting part: cap the axis at twice the
        # starting level (the loss of the untrained model)
        top = 2 * max(self.smoothed_losses[0], min(self.smoothed_losses))
        if max(self.losses) > top > 0:
            low = min(self.losses)
            ax.set_ylim(low - 0.05 * (top - low), top)
        ax.set(xlabel="learning rate", ylabel="loss", title="Learning-rate range test")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.savefig(path)
        return path


def _suggest(lrs, smoothed):
    """(index, method): the steepest descent of smoothed loss against log10(lr) up to the
    smoothed minimum, or the minimum itself (the caller divides its lr by 10)."""
    smoothed = np.asarray(smoothed, dtype=np.float64)
    lowest = int(np.argmin(smoothed))
    skip = min(SKIP_START, len(smoothed) // 10)  # a short test keeps most of its points
    if lowest + 1 - skip >= MIN_POINTS_FOR_SLOPE:
        # lowest is the first minimum, so the curve falls into it: some slope is negative
        slope = np.gradient(smoothed[skip:lowest + 1], np.log10(lrs[skip:lowest + 1]))
        return skip + int(np.argmin(slope)), STEEPEST
    return lowest, MINIMUM_OVER_10


def _check_args(start_lr, end_lr, num_iter, beta, diverge_factor):
    for name, value in (("start_lr", start_lr), ("end_lr", end_lr)):
        if not isinstance(value, numbers.Real) or isinstance(value, bool) or \
                not math.isfinite(value) or value <= 0:
            raise ValueError(f"lr_find: {name} must be a finite number > 0, got {value!r}")
    if not start_lr < end_lr:
        raise ValueError(f"lr_find: start_lr must be below end_lr (the learning rate grows), "
                         f"got start_lr={start_lr!r}, end_lr={end_lr!r}")
    if not isinstance(num_iter, numbers.Integral) or isinstance(num_iter, bool) or num_iter < 2:
        raise ValueError(f"lr_find: num_iter must be an int >= 2, got {num_iter!r}")
    if not isinstance(beta, numbers.Real) or isinstance(beta, bool) or not 0 <= beta < 1:
        raise ValueError(f"lr_find: beta (the smoothing of the loss) must be in [0, 1), got "
                         f"{beta!r}")
    if not isinstance(diverge_factor, numbers.Real) or isinstance(diverge_factor, bool) or \
            not diverge_factor > 1:
        raise ValueError(f"lr_find: diverge_factor must be a number > 1 (how many times its "
                         f"best the smoothed loss may grow), got {diverge_factor!r}")


class _Snapshot:
    """Everything the test changes, copied before it starts and put back by restore()."""

    def __init__(self, model, optimizer, loader):
        with no_grad():
            self.tensors = [(t, t.detach().clone())
                            for t in list(model.parameters()) + list(model.buffers())]
        # the .grad objects themselves: lr_find sets them to None first, so its backward
        # passes make new ones and never accumulate into these
        self.grads = [(p, p.grad) for p in model.parameters()]
        self.modes = [(m, m.training) for m in model.modules()]
        self.optimizer_state = optimizer.state_dict()
        self.generators = [random.generator()]
        if isinstance(getattr(loader, "generator", None), np.random.Generator):
            self.generators.append(loader.generator)
        own = getattr(loader, "_own_generator_transforms", None)  # a DataLoader's transforms
        if callable(own):
            self.generators += [t.generator for t in own()]
        self.generator_states = [g.bit_generator.state for g in self.generators]
        self.numpy_state = np.random.get_state()

    def restore(self, optimizer):
        with no_grad():
            for t, saved in self.tensors:
                t.copy_(saved)
        for p, grad in self.grads:
            p.grad = grad
        for m, training in self.modes:
            object.__setattr__(m, "training", training)  # as Module.train does, per module
        optimizer.load_state_dict(self.optimizer_state)
        for g, state in zip(self.generators, self.generator_states):
            g.bit_generator.state = state
        np.random.set_state(self.numpy_state)


def _batches(loader):
    """The loader's batches, from the start again whenever it runs out."""
    while True:
        empty = True
        iterator = iter(loader)
        try:
            for batch in iterator:
                empty = False
                yield batch
        finally:  # a DataLoader with workers shuts its threads down on close()
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
        if empty:
            raise ValueError("lr_find: the loader yielded no batches")


def lr_find(model, loader, optimizer, loss_fn=F.cross_entropy, start_lr=1e-7, end_lr=10.0,
            num_iter=100, beta=0.98, diverge_factor=4.0, device=None):
    """Learning-rate range test: `num_iter` training steps of `model` on batches of `loader`
    with `optimizer`, the learning rate growing exponentially from start_lr to end_lr on every
    parameter group; returns an LRFinderResult (lrs, losses, smoothed_losses, suggestion,
    method, stop_reason, plot(path)). Stops early when the smoothed loss (beta: its moving
    average's decay) exceeds diverge_factor x its best, or at a NaN/Inf loss (not recorded,
    not stepped). The loss should be non-negative (a cross-entropy, an MSE): the divergence
    test compares it with a multiple of its best. Everything it changes is restored afterwards
    (see the module's docstring): weights, buffers, gradients, modes, optimiser state and
    learning rates, random generators."""
    _check_args(start_lr, end_lr, num_iter, beta, diverge_factor)
    device = get_device(device) if device is not None else _model_device(model)
    snapshot = _Snapshot(model, optimizer, loader)
    lrs, losses, smoothed = [], [], []
    stop_reason, average, best = "num_iter", 0.0, math.inf
    ratio = end_lr / start_lr
    batches = _batches(loader)
    try:
        model.train()
        model.zero_grad()  # our backward passes must not add into the user's gradients
        for i in range(num_iter):
            lr = start_lr * ratio ** (i / (num_iter - 1))
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = _split(next(batches), "lr_find")
            x, y = _to(x, device, "lr_find"), _to(y, device, "lr_find")
            loss = loss_fn(model(x), y)
            value = _loss_value(loss, "lr_find")
            if not math.isfinite(value):
                stop_reason = "non-finite loss"
                break
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            average = beta * average + (1 - beta) * value
            smooth = average / (1 - beta ** (i + 1))
            lrs.append(lr), losses.append(value), smoothed.append(smooth)
            if 0 < best and diverge_factor * best < smooth:
                stop_reason = "diverged"
                break
            best = min(best, smooth)
    finally:
        batches.close()
        snapshot.restore(optimizer)
    if not lrs:
        raise ValueError(f"lr_find: the loss was {value} at the first iteration (lr "
                         f"{start_lr:.3g}), before any step: nothing to suggest from; check "
                         f"the data and the model's initialisation")
    return LRFinderResult(lrs, losses, smoothed, stop_reason, beta)
