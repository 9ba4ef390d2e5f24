"""Sanity checks to run before a long training run: the first steps of the lectures' recipe
(SPEC.md, "Choosing hyperparameters"), each reported with the number it measured.

`sanity_check(model, loader, loss_fn)` runs, on the first few batches of `loader`:

- initial loss: with regularisation off, a classifier's loss at initialisation is about
  log C (softmax over C classes spreads the probability evenly); far from it means a bad
  initialisation (e.g. final-layer weights too large). Then the regularised objective
  loss + wd/2 * sum(W^2) is reported: it must be larger, by the L2 term;
- input-independent baseline: a copy trained for a few steps on zeroed inputs must end with a
  higher loss than a copy trained on the real inputs (else the model does not use its input);
- overfit a small sample: a fresh copy with a fresh optimiser reaches 100% training accuracy
  on a few batches within a budget of steps;
- batch independence: in eval mode, the gradient of one sample's loss with respect to the
  other samples' inputs is exactly zero (catches layers and reshapes that mix the batch);
- gradients: `check_gradients` on a tiny batch, every parameter and the input against
  centred finite differences in float64.

Every check works on deep copies of the model, and the random generators it touches (the
package's, NumPy's global one, the loader's and its transforms' own) are put back as they
were, so the model's parameters, buffers, gradients and mode and the run's random stream are
unchanged afterwards: a sanity check does not change the training run that follows it.
"""
import contextlib
import copy
import math
from dataclasses import dataclass

import numpy as np

from .. import dtype as dt
from .. import random
from ..autograd import no_grad
from ..creation import zeros_like
from ..nn import functional as F
from ..nn.regularization import l2_penalty
from ..optim import Adam
from ..tensor import Tensor
from .callbacks import LambdaCallback
from .loop import NonFiniteLossError, _correct, _loss_value, _model_device, _split, _to, \
    evaluate, fit

__all__ = ["GradientCheckResult", "SanityCheck", "SanityReport", "check_gradients",
           "sanity_check"]

# A correct gradient agrees with centred differences in float64 to 1e-9 .. 1e-7 relative (the
# lectures: below 1e-7 "you should be happy"); an error in a hand-written backward is off by
# a factor, i.e. a relative error of order 0.1 to 1. 1e-6 sits well between the two.
GRADIENT_TOLERANCE = 1e-6


@contextlib.contextmanager
def preserved_rng(*generators):
    """Restore, on exit, the states of the package's generator (init, dropout, shuffles),
    NumPy's global generator and any further np.random.Generator in `generators`."""
    generators = (random.generator(),) + tuple(generators)
    saved = [g.bit_generator.state for g in generators]
    numpy_global = np.random.get_state()
    try:
        yield
    finally:
        for g, state in zip(generators, saved):
            g.bit_generator.state = state
        np.random.set_state(numpy_global)


def _loader_generators(loader):
    """The generators that iterating `loader` advances besides the package's own: the
    DataLoader's `generator` and those of transforms that carry their own."""
    found = []
    own = getattr(loader, "generator", None)
    if isinstance(own, np.random.Generator):
        found.append(own)
    transforms = getattr(loader, "_own_generator_transforms", None)
    if callable(transforms):
        found += [t.generator for t in transforms()
                  if isinstance(getattr(t, "generator", None), np.random.Generator)]
    return found


# ----- gradients against finite differences -----
class GradientCheckResult:
    """What check_gradients found. `errors`: name -> the worst relative error over the entries
    checked ("input" for the input); `entries`: name -> how many entries were checked;
    `passed` (also the truth value): every error is at most `tolerance`; `worst`: (name,
    error) of the largest error; `floor`: the gradient size below which entries were judged
    against the floor (see check_gradients)."""

    def __init__(self, errors, entries, tolerance, floor):
        self.errors, self.entries = errors, entries
        self.tolerance, self.floor = tolerance, floor

    @property
    def worst(self):
        if not self.errors:
            return None, 0.0
        name = max(self.errors, key=self.errors.get)
        return name, self.errors[name]

    @property
    def passed(self):
        return all(e <= self.tolerance for e in self.errors.values())

    def __bool__(self):
        return self.passed

    def failed(self):
        """The names whose error is above the tolerance."""
        return [name for name, e in self.errors.items() if e > self.tolerance]

    def __repr__(self):
        name, error = self.worst
        return (f"GradientCheckResult(passed={self.passed}, worst={name!r} {error:.3g}, "
                f"tolerance={self.tolerance:g}, errors={{" + ", ".join(
                    f"{n!r}: {e:.3g}" for n, e in self.errors.items()) + "})")


# The absolute error of a centred difference in float64 is about (rounding of the loss) / eps:
# |L| * 2.2e-16 / eps, times the rounding that a forward pass accumulates (a few ulps here; 10
# leaves room for deeper models). A gradient entry smaller than that error / tolerance cannot
# be resolved to the tolerance, so it is judged against that floor instead of its own size.
ROUNDING_ULPS = 10


def _resolution_floor(loss, eps, tolerance):
    """The smallest gradient entry that centred differences resolve to `tolerance`."""
    return ROUNDING_ULPS * abs(loss) * np.finfo(np.float64).eps / eps / tolerance


def _relative_error(analytic, numeric, floor):
    """max over entries of |a - n| / max(|a|, |n|, floor) (0 where a == n)."""
    diff = np.abs(analytic - numeric)
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), floor)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(diff == 0, 0.0, diff / scale)
    return float(rel.max()) if rel.size else 0.0


def check_gradients(model, x, y, loss_fn=F.cross_entropy, eps=1e-6, max_entries=20,
                    tolerance=GRADIENT_TOLERANCE, training=True, floor=None, seed=0):
    """Compare the gradients backward() gives for `model`'s parameters (and for x, if it is
    floating point) with centred differences (L(w + eps) - L(w - eps)) / 2 eps of the loss
    loss_fn(model(x), y), in float64, on a float64 deep copy of the model: `model` itself
    is not changed. Use a tiny batch (2-4 samples): every checked entry costs two forward
    passes.

    max_entries: per tensor, at most this many entries are checked, a random subset chosen
    with `seed` (None: all). training: check in training mode (default), where the gradients
    that training uses flow: batch norm's through its batch statistics (deterministic for a
    given batch), and dropout's. The package generator is reseeded with `seed` before every
    forward pass, so dropout draws the same masks each time and the loss is a fixed function
    of the weights; the generator is restored afterwards. training=False checks eval mode.

    Relative error per entry, as in the lectures: |a - n| / max(|a|, |n|), with a floor in
    the denominator. Centred differences resolve a gradient only to about
    10 * |loss| * 2.2e-16 / eps in absolute terms (1.1e-9 for a loss of 0.5 and eps 1e-6), so
    an entry smaller than that / tolerance (1.1e-3 here) cannot be checked to `tolerance` relative
    accuracy: such entries are judged against the floor (default: that size; pass floor= to
    choose). A backward that is off by a factor still shows errors of order 1. Returns a
    GradientCheckResult: the worst error per parameter name and "input", passed when every
    one is at most `tolerance` (1e-6)."""
    if max_entries is not None and (isinstance(max_entries, bool) or
                                    not isinstance(max_entries, int) or max_entries < 1):
        raise ValueError(f"check_gradients: max_entries must be a positive int or None, got "
                         f"{max_entries!r}")
    if not eps > 0:
        raise ValueError(f"check_gradients: eps must be positive, got {eps!r}")
    copy64 = copy.deepcopy(model).double().train(training)
    copy64.zero_grad()
    device = _model_device(copy64)
    x, y = _to(x, device, "check_gradients"), _to(y, device, "check_gradients")
    if dt.is_float(x.dtype):
        x = Tensor(x.numpy(), dtype=dt.float64, device=device, requires_grad=True)
    if dt.is_float(y.dtype):
        y = y.to(dt.float64)
    checked = {name: p for name, p in copy64.named_parameters() if p.requires_grad}
    if x.requires_grad:
        checked["input"] = x

    def loss_at_current_values():
        random.manual_seed(seed)  # the same dropout masks in every evaluation
        return loss_fn(copy64(x), y)

    errors, entries = {}, {}
    pick = np.random.default_rng(seed)
    with preserved_rng():
        loss = loss_at_current_values()
        if floor is None:
            floor = _resolution_floor(_loss_value(loss, "check_gradients"), eps, tolerance)
        loss.backward()
        with no_grad():
            for name, t in checked.items():
                base = t.numpy().astype(np.float64)
                analytic = (np.zeros_like(base) if t.grad is None else t.grad.numpy()).ravel()
                if max_entries is None or base.size <= max_entries:
                    where = np.arange(base.size)
                else:
                    where = np.sort(pick.choice(base.size, max_entries, replace=False))
                numeric = np.empty(where.size)
                for k, j in enumerate(where):
                    values = []
                    for delta in (eps, -eps):
                        moved = base.copy()
                        moved.flat[j] += delta
                        t.copy_(Tensor(moved, dtype=dt.float64, device=device))
                        values.append(float(loss_at_current_values().item()))
                    numeric[k] = (values[0] - values[1]) / (2 * eps)
                t.copy_(Tensor(base, dtype=dt.float64, device=device))
                errors[name] = _relative_error(analytic[where], numeric, floor)
                entries[name] = int(where.size)
    return GradientCheckResult(errors, entries, tolerance, floor)


# ----- the report -----
@dataclass
class SanityCheck:
    """One check: its name, passed (True, False, or None when it does not apply to this model
    and data), the number it measured, what was expected, and a one-line message."""
    name: str
    passed: object
    measured: object
    expected: str
    message: str

    def __str__(self):
        tag = {True: "PASS", False: "FAIL", None: "SKIP"}[self.passed]
        return f"[{tag}] {self.message}"


class SanityReport:
    """The checks sanity_check ran, in order. `passed` (also the truth value): no check
    failed. report["overfit"] gives a check by name."""

    def __init__(self, checks):
        self.checks = list(checks)

    @property
    def passed(self):
        return all(c.passed is not False for c in self.checks)

    def __bool__(self):
        return self.passed

    def __getitem__(self, name):
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"SanityReport: no check named {name!r}; there are "
                       f"{[c.name for c in self.checks]}")

    def failed(self):
        return [c for c in self.checks if c.passed is False]

    def __str__(self):
        return "\n".join(str(c) for c in self.checks)

    def __repr__(self):
        return f"SanityReport(passed={self.passed}, checks={[c.name for c in self.checks]})"


# ----- helpers of sanity_check -----
def _host_copy(t):
    """A batch tensor as an independent contiguous copy (a loader may reuse its buffers)."""
    if isinstance(t, np.ndarray):
        return Tensor(np.array(t), dtype=t.dtype)
    return Tensor(np.array(t.numpy()), dtype=t.dtype, device=t.device)


def _sample(loader, batches, device):
    """The first `batches` (x, y) batches of `loader`, copied and on `device`."""
    sample = []
    iterator = iter(loader)
    try:
        for batch in iterator:
            x, y = _split(batch, "sanity_check")
            sample.append((_to(_host_copy(x), device, "sanity_check"),
                           _to(_host_copy(y), device, "sanity_check")))
            if len(sample) == batches:
                break
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:  # a prefetching loader stops its worker threads
            close()
    if not sample:
        raise ValueError("sanity_check: the loader yielded no batches")
    return sample


def _mean_loss(model, batches, loss_fn):
    """The per-sample mean loss over `batches` in the model's current mode, without a graph."""
    total, count = 0.0, 0
    with no_grad():
        for x, y in batches:
            total += _loss_value(loss_fn(model(x), y), "sanity_check") * x.shape[0]
            count += x.shape[0]
    return total / count


def _classes(model, batches, num_classes):
    """C for the log C check: num_classes, else the output width (dim 1); None when the
    targets are not class labels or probabilities (a regression: no log C to expect)."""
    x, y = batches[0]
    with no_grad():
        output = model(x)
    if _correct(output, y) is None:
        return None
    return num_classes if num_classes is not None else int(output.shape[1])


def _train(model, batches, loss_fn, make_optimizer, steps, val_loader=None, callbacks=()):
    """Train `model` in place on `batches` (cycled) for at most `steps` steps with a fresh
    optimiser, through fit (so a NaN loss stops it with NonFiniteLossError). One epoch is a
    pass over the batches, so steps are rounded up to whole passes; the History's
    batches["loss"] has one entry per step taken."""
    epochs = max(1, math.ceil(steps / len(batches)))
    return fit(model, batches, make_optimizer(model.parameters()), loss_fn, epochs=epochs,
               val_loader=val_loader, callbacks=callbacks, progress=False)


def _default_optimizer(params):
    return Adam(params, lr=1e-3)


# ----- the checks -----
def _check_initial_loss(model, batches, loss_fn, num_classes, rtol, weight_decay):
    probe = copy.deepcopy(model).train()
    classes = _classes(probe, batches, num_classes)
    loss = _mean_loss(probe, batches, loss_fn)
    checks = []
    if classes is None:
        checks.append(SanityCheck(
            "initial loss", None, loss, "log C (classification only)",
            f"initial loss {loss:.4f}: the targets are not class labels or probabilities, so "
            f"there is no log C to expect"))
    else:
        expected = math.log(classes)
        ok = abs(loss - expected) <= rtol * expected
        checks.append(SanityCheck(
            "initial loss", ok, loss, f"log({classes}) = {expected:.4f} within {rtol:.0%}",
            f"initial loss {loss:.4f} vs log({classes}) = {expected:.4f} (softmax over "
            f"{classes} classes, regularisation off; allowed {rtol:.0%})" + (
                "" if ok else ": check the initialisation, e.g. the scale of the final layer's"
                " weights")))
    weights = [p for p in probe.parameters() if p.ndim >= 2]  # biases and norms: not decayed
    with no_grad():
        term = float(l2_penalty(weights, weight_decay / 2).item()) if weights else 0.0
    regularised = loss + term
    checks.append(SanityCheck(
        "weight decay", regularised > loss, regularised,
        f"> {loss:.4f} (the unregularised loss)",
        f"weight decay {weight_decay:g} raises the loss to {regularised:.4f} (+ {term:.4g} = "
        f"wd/2 * sum(W^2) over {len(weights)} weight tensors)" + (
            "" if regularised > loss else ": no weights to decay, or all of them zero")))
    return checks


def _check_baseline(model, batches, loss_fn, make_optimizer, steps, min_improvement):
    if not all(dt.is_float(x.dtype) for x, _ in batches):
        return SanityCheck("baseline", None, None, "real inputs beat zeroed ones",
                           "input-independent baseline: the inputs are not floating point, so "
                           "they cannot be zeroed meaningfully")
    zeroed = [(zeros_like(x), y) for x, y in batches]
    losses = []
    state = random.generator().bit_generator.state
    for data in (batches, zeroed):
        random.generator().bit_generator.state = state  # the same dropout masks for both
        trained = copy.deepcopy(model)
        try:
            taken = len(_train(trained, data, loss_fn, make_optimizer, steps).batches["loss"])
        except NonFiniteLossError as e:
            return SanityCheck("baseline", False, float("nan"), "a finite loss",
                               f"input-independent baseline: training diverged ({e})")
        losses.append(evaluate(trained, data, loss_fn)[0])
    real, baseline = losses
    ok = real <= (1 - min_improvement) * baseline
    return SanityCheck(
        "baseline", ok, real, f"<= {(1 - min_improvement) * baseline:.4f}",
        f"loss {real:.4f} on real inputs vs {baseline:.4f} on zeroed inputs after {taken} "
        f"steps (input-independent baseline" + (
            ")" if ok else "; the model does not learn from its input: is it used? or are "
                           "there too few steps?)"))


def _check_overfit(model, batches, loss_fn, make_optimizer, steps):
    trained = copy.deepcopy(model)

    def stop_at_full_accuracy(trainer, epoch, logs):
        if logs.get("val_accuracy") == 1.0:
            trainer.stop_training = True

    samples = sum(x.shape[0] for x, _ in batches)
    try:
        history = _train(trained, batches, loss_fn, make_optimizer, steps, val_loader=batches,
                         callbacks=[LambdaCallback(on_epoch_end=stop_at_full_accuracy)])
    except NonFiniteLossError as e:
        return SanityCheck("overfit", False, float("nan"), "100% training accuracy",
                           f"overfit {samples} samples: training diverged ({e})")
    if "val_accuracy" not in history:
        return SanityCheck("overfit", None, history["val_loss"][-1], "100% training accuracy",
                           f"overfit {samples} samples: the targets are not classes, so there "
                           f"is no accuracy; loss {history['val_loss'][-1]:.4g}")
    accuracy = history["val_accuracy"][-1]  # in eval mode, after the last pass
    ok = accuracy == 1.0
    used = len(history.batches["loss"])
    return SanityCheck(
        "overfit", ok, accuracy, "100% training accuracy",
        f"overfit {samples} samples ({len(batches)} batch{'es' * (len(batches) > 1)}): "
        f"training accuracy {accuracy:.1%} after {used} steps (budget {steps})" + (
            "" if ok else ": train longer, raise the learning rate, or look for a bug"))


def _check_independence(model, batches, loss_fn, probes):
    x, y = batches[0]
    n = x.shape[0]
    if not dt.is_float(x.dtype) or n < 2:
        return SanityCheck("batch independence", None, None, "0",
                           "batch independence: needs a float input batch of 2 or more samples")
    probe = copy.deepcopy(model).eval()
    probe.requires_grad_(False)  # only the input's gradient is wanted
    x = Tensor(x.numpy(), dtype=x.dtype, device=x.device, requires_grad=True)
    output = probe(x)
    leak = 0.0
    for i in range(min(n, probes)):
        x.grad = None
        loss_fn(output[i:i + 1], y[i:i + 1]).backward(retain_graph=True)
        grad = np.abs(x.grad.numpy())
        others = np.delete(grad, i, axis=0)
        leak = max(leak, float(others.max()))
    ok = leak == 0.0
    return SanityCheck(
        "batch independence", ok, leak, "0",
        f"batch independence: largest gradient of one sample's loss w.r.t. other samples' "
        f"inputs {leak:.3g} (eval mode, {min(n, probes)} samples probed" + (
            ")" if ok else "; some layer or reshape mixes samples. BatchNorm in training mode "
                           "legitimately mixes the batch, but not in eval mode)"))


def _check_gradients(model, batches, loss_fn, samples, max_entries, tolerance):
    x, y = batches[0]
    result = check_gradients(model, x[:samples], y[:samples], loss_fn,
                             max_entries=max_entries, tolerance=tolerance)
    name, error = result.worst
    failed = result.failed()
    return SanityCheck(
        "gradients", result.passed, error, f"<= {tolerance:g}",
        f"gradients vs finite differences: worst relative error {error:.3g} ({name}) on "
        f"{min(samples, x.shape[0])} samples, {len(result.errors)} tensors" + (
            "" if not failed else f"; wrong: {', '.join(failed)}"))


def sanity_check(model, loader, loss_fn=F.cross_entropy, num_classes=None, *, batches=2,
                 weight_decay=1e-3, initial_loss_rtol=0.25, baseline_steps=50,
                 min_improvement=0.01, overfit_steps=200, make_optimizer=None,
                 independence_probes=4, gradient_samples=4, max_entries=10,
                 gradient_tolerance=GRADIENT_TOLERANCE, verbose=True):
    """Run the checks of the lectures' recipe on the first `batches` batches of `loader`
    and print one line per check (verbose=False: silent). Returns a SanityReport.

    - "initial loss": the mean loss at initialisation (training mode, as the first step sees
      it) within initial_loss_rtol of log C, C = num_classes or the output width (skipped
      for targets that are not classes); "weight decay": loss + weight_decay/2 * sum(W^2)
      (weights: parameters with 2+ dimensions) is larger, by the L2 term;
    - "baseline": after baseline_steps steps, a copy trained on real inputs ends with a loss
      at least min_improvement (relative) below a copy trained on zeroed inputs;
    - "overfit": a copy reaches 100% accuracy on the sample within overfit_steps steps;
    - "batch independence": in eval mode, the gradient of each of the first
      independence_probes samples' loss w.r.t. the other samples' inputs is exactly zero;
    - "gradients": check_gradients on the first gradient_samples samples (max_entries per
      tensor, gradient_tolerance).

    Training uses make_optimizer(parameters) (default Adam, lr 1e-3), fresh for each copy.
    The model's parameters, buffers, gradients and mode, and the random generators' states,
    are as they were afterwards."""
    if isinstance(batches, bool) or not isinstance(batches, int) or batches < 1:
        raise ValueError(f"sanity_check: batches must be a positive int, got {batches!r}")
    make_optimizer = make_optimizer or _default_optimizer
    device = _model_device(model)
    checks = []
    with preserved_rng(*_loader_generators(loader)):
        sample = _sample(loader, batches, device)
        runs = [
            lambda: _check_initial_loss(model, sample, loss_fn, num_classes,
                                        initial_loss_rtol, weight_decay),
            lambda: [_check_baseline(model, sample, loss_fn, make_optimizer, baseline_steps,
                                     min_improvement)],
            lambda: [_check_overfit(model, sample, loss_fn, make_optimizer, overfit_steps)],
            lambda: [_check_independence(model, sample, loss_fn, independence_probes)],
            lambda: [_check_gradients(model, sample, loss_fn, gradient_samples, max_entries,
                                      gradient_tolerance)],
        ]
        for run in runs:
            with preserved_rng():  # every check starts from the same random state
                found = run()
            for check in found:
                checks.append(check)
                if verbose:
                    print(check, flush=True)
    return SanityReport(checks)
