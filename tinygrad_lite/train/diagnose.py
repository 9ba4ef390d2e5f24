"""Read a run's curves the way the lectures do (SPEC "Choosing hyperparameters", step 6) and say
what they show, with the advice that goes with it.

    findings = diagnose(history, num_classes=10)
    print(format_findings(findings))
    # diagnose:
    #   lr_too_high at epoch 1 (iteration 11): the loss rose from 2.3 to 3.1 early in the
    #   run: the learning rate is too high; lower it 3-10x (lr_find shows where the loss ...)

Each finding is a Finding(kind, epoch, advice, batch): kind is one of KINDS, epoch the 0-based
epoch where it shows (an index into the history's lists; printed 1-based, as fit prints
epochs), batch the 0-based iteration for findings read from the per-batch loss (else None),
advice a sentence with the numbers behind it. Findings come in the order of the run.

What is read from where:
- diverged: the first NaN/Inf in the per-batch or per-epoch training loss. After it, only
  the early-dynamics and initial-loss checks run, on what came before it (a rise before the
  NaN says why); the validation and plateau kinds describe a run that finished.
- lr_too_high (the loss rises, or swings widely without falling, early in the run),
  lr_too_low (a slow, near-linear decrease, or none) and bad_init's flat start (flat, then a
  sudden drop) read the shape of the per-batch loss when there are at least MIN_BATCHES of them
  (medians of segments of the run, which mini-batch noise does not move much), else the
  per-epoch training loss (at least MIN_EPOCHS_FOR_SHAPE epochs).
- bad_init also compares the first loss with log(num_classes) (a softmax classifier with small
  random weights predicts about uniformly) when num_classes is given.
- overfitting, underfitting and still_improving read the validation metrics and are skipped
  when the history has none; plateau reads the per-epoch training loss (and lr, when there)
  once it has made progress (a loss that never did is an early-dynamics problem: one that
  barely moves from the start is lr_too_low).

A healthy run that is still improving at its end gives only still_improving (it is advice,
not a problem: train longer); a healthy run that has settled gives nothing. The kinds other
than still_improving are PROBLEMS.
"""
import math
from collections import namedtuple

import numpy as np

__all__ = ["diagnose", "format_findings", "Finding", "KINDS", "PROBLEMS"]

KINDS = ("diverged", "lr_too_high", "lr_too_low", "bad_init", "overfitting", "underfitting",
         "still_improving", "plateau")
PROBLEMS = tuple(k for k in KINDS if k != "still_improving")
EPOCH_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr")

# ----- reading the shape of the loss curve -----
# Below this many per-batch losses the curve is too short to split into segments of several
# batches each; the per-epoch losses are read instead.
MIN_BATCHES = 40
# A segment's median over at least this many batches: mini-batch noise of +-10-20% shrinks to a
# few percent, below the tolerances that follow.
MIN_SEGMENT_BATCHES = 8
# At most this many segments (5% of the run each): enough resolution to see a flat start or an
# early rise, few enough that each has many batches in a long run.
MAX_SEGMENTS = 20
# Per-epoch losses are averages already; a shape needs at least this many of them.
MIN_EPOCHS_FOR_SHAPE = 4
# "Early" is the first 30% of the curve: the lectures judge the lr from the first ~100
# iterations, and a too-high lr shows at once, long before the end of a run.
EARLY_FRACTION = 0.3

# lr_too_high: a healthy loss never stays 20% above where it started early on (a segment's
# median moves by a few percent from noise alone), so a lasting rise of more than this is the
# optimiser overshooting.
RISE_MARGIN = 0.2
# ... or it swings: healthy mini-batch losses move by ~5-15% from one batch to the next; a
# median jump of a third of the loss, with no net fall early on, is the loss bouncing between
# the walls of a valley.
OSCILLATION_RATIO = 0.33

# lr_too_low: a loss that falls by less than this over the run barely moves: the lectures'
# "loss not going down: learning rate too low" (or dead units). Segment medians of a flat
# noisy loss differ by a few percent, so a smaller threshold would miss flat runs.
NO_PROGRESS = 0.1
# ... or falls at an almost constant rate: a well-tuned loss falls fastest at first (a convex
# curve: in the first half of the run it falls several times as fast as in the second).
# "Near-linear": the first half's slope is less than this times the second's.
LINEAR_RATIO = 1.5
# ... and slowly: at the end the loss still keeps more than this fraction of its start
# (a fast, linear fall that halves the loss is not what a too-low lr looks like).
SLOW_REMAINING = 0.5

# bad_init, initial loss: with num_classes C, small random weights give a loss within a few
# percent of log C; 50% above it means the logits start large (weights too big, inputs not
# normalised). A loss far below log C at the start is not flagged: a pre-trained model has it.
INIT_LOSS_TOLERANCE = 0.5
# bad_init, flat start: the loss takes at least this fraction of the run to fall by
# FLAT_FALL (a healthy loss does so within its first segment) ...
FLAT_MIN_FRACTION = 0.15
FLAT_FALL = 0.1
# ... and then falls by as much again, twice over (to DROP_AFTER_FLAT below its start), at
# least SHARPNESS times as fast: a flat stretch then a sudden drop. A steady slow fall
# (lr_too_low) takes twice as long for the second part, never less.
DROP_AFTER_FLAT = 0.3
SHARPNESS = 4

# overfitting: a train-validation accuracy gap of ten points is the lectures' "big gap" (a few
# points are normal) ...
OVERFIT_GAP = 0.10
# ... that has grown by at least five points since its smallest (a constant gap is a
# distribution shift, not overfitting setting in).
GAP_GROWTH = 0.05
# ... or, without accuracies: the validation loss 10% above its minimum while the training loss
# kept falling.
VAL_LOSS_RISE = 0.10

# underfitting: final training accuracy below this (a net that can learn its task fits most of
# its training set; step 2 of the recipe expects 100% on a small sample) ...
UNDERFIT_ACCURACY = 0.7
# ... with validation accuracy within this of it: no gap, so capacity is not the limit yet.
CLOSE_GAP = 0.05

# still_improving: over the last TAIL_EPOCHS epochs the validation accuracy gained at least
# half a point per epoch (or the validation loss fell 1% per epoch), ending at its best: more
# epochs would still pay.
TAIL_EPOCHS = 3
IMPROVING_ACCURACY_GAIN = 0.005
IMPROVING_LOSS_FALL = 0.01

# plateau: this many epochs in a row without the training loss beating its best by 1%, at a
# constant learning rate: the step-decay picture of the lectures, where decaying the lr would
# drop the loss again.
PLATEAU_EPOCHS = 5
PLATEAU_MIN_DELTA = 0.01
# ... after the loss has fallen this far below its first epoch's: a stall after progress. A
# loss that never made progress is an early-dynamics problem, and noise of a percent must not
# count as progress.
PROGRESS_BEFORE_PLATEAU = 0.1


class Finding(namedtuple("Finding", "kind epoch advice batch")):
    """One thing the curves show: kind (one of KINDS), epoch (0-based), advice (a sentence),
    batch (0-based iteration, or None for findings read from per-epoch metrics)."""

    __slots__ = ()

    def __new__(cls, kind, epoch, advice, batch=None):
        return super().__new__(cls, kind, epoch, advice, batch)

    def __str__(self):
        where = f"epoch {self.epoch + 1}" + (f" (iteration {self.batch + 1})"
                                              if self.batch is not None else "")
        return f"{self.kind} at {where}: {self.advice}"


def format_findings(findings):
    """The findings as printable lines ("diagnose: ..." when there are none)."""
    if not findings:
        return "diagnose: the curves show no problem"
    return "diagnose:\n" + "\n".join(f"  {f}" for f in findings)


class _Curve:
    """A loss curve reduced to points: values, and for each the epoch and (per-batch curves)
    first batch it covers."""

    def __init__(self, values, epochs, batches):
        self.values, self.epochs, self.batches = values, epochs, batches

    def finding(self, kind, i, advice):
        return Finding(kind, int(self.epochs[i]),
                       advice, None if self.batches is None else int(self.batches[i]))


def _read(history):
    """({epoch metric: float array}, per-batch losses (array or None)) from a History or a
    dict, with the lengths checked."""
    if hasattr(history, "epochs") and hasattr(history, "batches"):  # a train.History
        epochs = {k: v for k, v in history.epochs.items() if k in EPOCH_KEYS}
        batch_losses = history.batches.get("loss")
    elif isinstance(history, dict):
        unknown = sorted(set(history) - set(EPOCH_KEYS) - {"batches"})
        if unknown:
            raise ValueError(f"diagnose: unknown keys {unknown}; expected some of "
                             f"{list(EPOCH_KEYS)} (per-epoch lists) and 'batches' (a dict with "
                             f"a per-iteration 'loss' list)")
        epochs = {k: v for k, v in history.items() if k != "batches"}
        batches = history.get("batches", {})
        if not isinstance(batches, dict):
            raise TypeError(f"diagnose: 'batches' must be a dict like {{'loss': [...]}}, got "
                            f"{type(batches).__name__}")
        batch_losses = batches.get("loss")
    else:
        raise TypeError(f"diagnose: expected a train.History or a dict of per-epoch lists, got "
                        f"{type(history).__name__}")
    epochs = {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in epochs.items()}
    lengths = {k: len(v) for k, v in epochs.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"diagnose: the per-epoch lists must have one value per epoch, got "
                         f"lengths {lengths}")
    if batch_losses is not None:
        batch_losses = np.asarray(batch_losses, dtype=np.float64).reshape(-1)
        if len(batch_losses) == 0:
            batch_losses = None
    return epochs, batch_losses


def diagnose(history, num_classes=None, batches_per_epoch=None):
    """Findings (a list of Finding, in the order of the run) about a run's curves. history: a
    train.History, or a dict with per-epoch lists (any of loss, accuracy, val_loss,
    val_accuracy, lr) and optionally batches={"loss": per-iteration losses}. num_classes: the
    number of classes of a softmax cross-entropy, to check the initial loss against log C.
    batches_per_epoch: to place per-batch findings in epochs (default: the per-batch losses
    split evenly over the epochs)."""
    if num_classes is not None and (not isinstance(num_classes, (int, np.integer)) or
                                    isinstance(num_classes, bool) or num_classes < 2):
        raise ValueError(f"diagnose: num_classes must be an int >= 2 (or None), got "
                         f"{num_classes!r}")
    epochs, batch_losses = _read(history)
    n_epochs = len(next(iter(epochs.values()))) if epochs else 0
    if batches_per_epoch is None:
        per_epoch = (len(batch_losses) / n_epochs if batch_losses is not None and n_epochs
                     else math.inf)
    elif batches_per_epoch > 0:
        per_epoch = batches_per_epoch
    else:
        raise ValueError(f"diagnose: batches_per_epoch must be > 0, got {batches_per_epoch!r}")

    def epoch_of(batch):
        return int(batch // per_epoch) if math.isfinite(per_epoch) else 0

    findings = []
    stop = _diverged(epochs, batch_losses, epoch_of, findings)
    if stop is not None:  # read only how the loss got to the NaN/Inf
        epoch_stop, batch_stop = stop
        epochs = {k: v[:epoch_stop] for k, v in epochs.items()}
        if batch_losses is not None:
            batch_losses = batch_losses[:batch_stop] if batch_stop else None
        n_epochs = min(n_epochs, epoch_stop)

    curve = _loss_curve(epochs, batch_losses, epoch_of)
    if curve is not None:
        findings += _early_dynamics(curve, batch_losses)
    if num_classes is not None:
        findings += _initial_loss(epochs, batch_losses, num_classes)
    if n_epochs and stop is None:  # how a run generalised or stalled: only a run that finished
        findings += _generalisation(epochs)
        findings += _plateau(epochs)
    # in the order of the run; a per-epoch finding is read at the end of its epoch
    findings.sort(key=lambda f: (f.epoch, math.inf if f.batch is None else f.batch))
    return findings


def _diverged(epochs, batch_losses, epoch_of, findings):
    """Append a `diverged` finding at the first NaN/Inf loss; return (epochs, batches) to keep
    before it, or None."""
    if batch_losses is not None and not np.isfinite(batch_losses).all():
        b = int(np.argmin(np.isfinite(batch_losses)))
        e = epoch_of(b)
        last = f"{batch_losses[b - 1]:.4g}" if b else "none"
        findings.append(Finding("diverged", e, (
            f"the loss became {batch_losses[b]} at iteration {b + 1} (last finite: {last}): the "
            f"learning rate is too high; lower it 3-10x (lr_find shows where the loss "
            f"explodes), or look for NaN/Inf in the data (detect_anomaly=True names the op)"),
            b))
        return e, b
    loss = epochs.get("loss")
    if loss is not None and not np.isfinite(loss).all():
        e = int(np.argmin(np.isfinite(loss)))
        findings.append(Finding("diverged", e, (
            f"the training loss is {loss[e]} at epoch {e + 1}: the learning rate is too high; "
            f"lower it 3-10x (lr_find shows where the loss explodes), or look for NaN/Inf in "
            f"the data")))
        return e, 0 if batch_losses is None else len(batch_losses)
    return None


def _loss_curve(epochs, batch_losses, epoch_of):
    """The training loss as segment medians of the per-batch losses, or the per-epoch losses
    when there are too few batches; None when neither has enough points for a shape."""
    if batch_losses is not None and len(batch_losses) >= MIN_BATCHES:
        n = min(MAX_SEGMENTS, len(batch_losses) // MIN_SEGMENT_BATCHES)
        pieces = np.array_split(np.arange(len(batch_losses)), n)
        values = np.array([np.median(batch_losses[p]) for p in pieces])
        starts = np.array([p[0] for p in pieces])
        return _Curve(values, np.array([epoch_of(s) for s in starts]), starts)
    loss = epochs.get("loss")
    if loss is not None and len(loss) >= MIN_EPOCHS_FOR_SHAPE:
        return _Curve(loss, np.arange(len(loss)), None)
    return None


def _running_median3(values):
    """Each point's median with its neighbours: one noisy segment cannot end a flat stretch or
    fake a drop on its own."""
    padded = np.concatenate(([values[0]], values, [values[-1]]))
    return np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)


def _early_dynamics(curve, batch_losses):
    """lr_too_high, else bad_init's flat start, else lr_too_low: the three early shapes
    exclude each other (a rise, a flat stretch then a drop, a slow or no fall)."""
    m, n = curve.values, len(curve.values)
    if not m[0] > 0:  # a loss that starts at 0 (or below) has no shape to read here
        return []
    early = max(2, math.ceil(n * EARLY_FRACTION))
    # the rise must last (the median of the early points after the first), so that one noisy
    # segment is not taken for it
    if np.median(m[1:early]) > m[0] * (1 + RISE_MARGIN):
        i = next(i for i in range(1, early) if m[i] > m[0] * (1 + RISE_MARGIN))
        return [curve.finding("lr_too_high", i, (
            f"the loss rose from {m[0]:.4g} to {m[i]:.4g} early in the run: the learning rate "
            f"is too high; lower it 3-10x (lr_find shows where the loss starts to explode)"))]
    if batch_losses is not None and curve.batches is not None:
        window = batch_losses[:curve.batches[early]] if early < n else batch_losses
        if len(window) >= 2 and np.median(window) > 0:
            swing = np.median(np.abs(np.diff(window))) / np.median(window)
            if swing > OSCILLATION_RATIO and m[early - 1] > m[0] * (1 - FLAT_FALL):
                return [curve.finding("lr_too_high", 0, (
                    f"the loss swings by {swing:.0%} from one batch to the next without "
                    f"falling early in the run: the learning rate is too high; lower it 3-10x"))]

    level = _running_median3(m)
    start_fall = np.flatnonzero(level < level[0] * (1 - FLAT_FALL))
    big_fall = np.flatnonzero(level < level[0] * (1 - DROP_AFTER_FLAT))
    if len(start_fall) and len(big_fall):
        t1, t2 = start_fall[0], big_fall[0]
        # first FLAT_FALL took t1 points; the next (DROP_AFTER_FLAT - FLAT_FALL) = 2 x as much
        # must come SHARPNESS times as fast
        fast = (t2 - t1) * FLAT_FALL * SHARPNESS <= t1 * (DROP_AFTER_FLAT - FLAT_FALL)
        if t1 >= FLAT_MIN_FRACTION * n and fast:
            return [curve.finding("bad_init", t1, (
                f"the loss stayed near {level[0]:.4g} for the first {t1 / n:.0%} of the run, "
                f"then dropped: a bad initialisation (weights too small or too large for the "
                f"depth: use kaiming/xavier init, or batch norm); if the lr warms up, a slow "
                f"start is expected"))]

    # the level of each quarter of the run (medians again: single points are noisy)
    q = [np.median(part) for part in np.array_split(m, 4)]
    if m[0] * (1 - NO_PROGRESS) < min(q) and max(q) <= m[0] * (1 + RISE_MARGIN):
        return [curve.finding("lr_too_low", n - 1, (
            f"the loss barely moves ({m[0]:.4g} at the start, {q[3]:.4g} in the last quarter of "
            f"the run): the learning rate is too low; raise it 3-10x (lr_find shows where the "
            f"loss starts to drop), or check for dead units and a loss that is not connected "
            f"to the parameters"))]
    # the slope of each half of the run (least squares: every point counts against the noise)
    half = n // 2
    first, second = (np.polyfit(np.arange(len(part)), part, 1)[0]
                     for part in (m[:half], m[half:]))
    if first < 0 and second < 0 and q[0] - q[3] >= NO_PROGRESS * q[0] and \
            first > LINEAR_RATIO * second and q[3] > SLOW_REMAINING * q[0]:
        return [curve.finding("lr_too_low", n - 1, (
            f"the loss falls slowly and almost linearly ({q[0]:.4g} in the first quarter of the "
            f"run, {q[3]:.4g} in the last; as fast at the end as at the start): the learning "
            f"rate is too low; raise it 3-10x (lr_find shows where the loss starts to drop)"))]
    return []


def _initial_loss(epochs, batch_losses, num_classes):
    """bad_init when the first loss is far above log(num_classes)."""
    if batch_losses is not None:
        first, batch, what = batch_losses[0], 0, "first mini-batch loss"
    elif "loss" in epochs and len(epochs["loss"]):
        # the mean of the first epoch is below the initial loss, so a high one is higher still
        first, batch, what = epochs["loss"][0], None, "mean loss of the first epoch"
    else:
        return []
    expected = math.log(num_classes)
    if first > expected * (1 + INIT_LOSS_TOLERANCE):
        return [Finding("bad_init", 0, (
            f"the {what} is {first:.4g}, where a softmax classifier with small random weights "
            f"starts near log({num_classes}) = {expected:.3g}: the initial logits are too large; "
            f"scale the initial weights down (kaiming/xavier init, a small last layer), check "
            f"the input normalisation, and check with weight decay off"), batch)]
    return []


def _generalisation(epochs):
    """overfitting, underfitting, still_improving: from the validation metrics."""
    findings = []
    acc, val_acc = epochs.get("accuracy"), epochs.get("val_accuracy")
    loss, val_loss = epochs.get("loss"), epochs.get("val_loss")
    if acc is not None and val_acc is not None and not np.isnan(acc + val_acc).all():
        ok = ~np.isnan(acc + val_acc)
        # a negative gap counts as none: the training accuracy is averaged over an epoch of a
        # model that is still learning, the validation one measured at its end
        gap = np.where(ok, np.maximum(acc - val_acc, 0.0), np.nan)
        smallest = int(np.nanargmin(gap))
        last = int(np.flatnonzero(ok)[-1])
        if gap[last] >= OVERFIT_GAP and gap[last] - gap[smallest] >= GAP_GROWTH:
            findings.append(Finding("overfitting", smallest, (
                f"train accuracy {acc[last]:.1%} vs validation {val_acc[last]:.1%} at the end, "
                f"a gap grown from {gap[smallest]:.1%} at epoch {smallest + 1}: overfitting; "
                f"regularise more (weight decay, dropout, data augmentation), get more data, or "
                f"stop early (EarlyStopping keeps the best epoch)")))
        elif acc[last] < UNDERFIT_ACCURACY and abs(acc[last] - val_acc[last]) <= CLOSE_GAP:
            findings.append(Finding("underfitting", last, (
                f"train accuracy {acc[last]:.1%} and validation {val_acc[last]:.1%} are both low "
                f"and close: underfitting; train longer, use a bigger model, or regularise "
                f"less")))
    elif loss is not None and val_loss is not None and not np.isnan(val_loss).all():
        best = int(np.nanargmin(val_loss))
        last = int(np.flatnonzero(~np.isnan(val_loss))[-1])
        if val_loss[last] >= val_loss[best] * (1 + VAL_LOSS_RISE) and loss[last] < loss[best]:
            findings.append(Finding("overfitting", best, (
                f"the validation loss rose from {val_loss[best]:.4g} at epoch {best + 1} to "
                f"{val_loss[last]:.4g} while the training loss kept falling: overfitting; "
                f"regularise more (weight decay, dropout, data augmentation), get more data, or "
                f"stop early (EarlyStopping keeps the best epoch)")))
    findings += _still_improving(epochs)
    return findings


def _still_improving(epochs):
    val_acc, val_loss = epochs.get("val_accuracy"), epochs.get("val_loss")
    for values, higher_is_better in ((val_acc, True), (val_loss, False)):
        if values is None or np.isnan(values).any() or len(values) < 2:
            continue
        k = min(TAIL_EPOCHS, len(values) - 1)
        end, before = values[-1], values[-1 - k]
        if higher_is_better:
            gaining = (end - before) / k >= IMPROVING_ACCURACY_GAIN and end >= values.max()
            change = f"validation accuracy rose from {before:.1%} to {end:.1%}"
        else:
            gaining = (before - end) / (k * before) >= IMPROVING_LOSS_FALL and \
                end <= values.min()
            change = f"validation loss fell from {before:.4g} to {end:.4g}"
        if gaining:
            return [Finding("still_improving", len(values) - 1, (
                f"the {change} over the last {k} epochs and is at its best: train longer"))]
        return []
    return []


def _plateau(epochs):
    """plateau: PLATEAU_EPOCHS epochs in a row in which the training loss never beat its best
    by PLATEAU_MIN_DELTA, at one learning rate, after it had improved on its first epoch (the
    first such stretch)."""
    loss, lr = epochs.get("loss"), epochs.get("lr")
    if loss is None or np.isnan(loss).any():
        return []
    best, start = loss[0], None
    for e in range(1, len(loss)):
        if loss[e] < best * (1 - PLATEAU_MIN_DELTA):
            best, start = loss[e], None
            continue
        if best > loss[0] * (1 - PROGRESS_BEFORE_PLATEAU):
            continue  # no real progress yet: not a plateau (see _early_dynamics)
        start = e if start is None else start
        same_lr = lr is None or np.all(lr[start:e + 1] == lr[start])
        if not same_lr:  # the lr changed inside the stretch: count from this epoch
            start = e
        elif e - start + 1 >= PLATEAU_EPOCHS:
            rate = f" at lr {lr[start]:.3g}" if lr is not None else ""
            return [Finding("plateau", start, (
                f"the training loss has not improved on its best ({best:.4g}) by "
                f"{PLATEAU_MIN_DELTA:.0%} for {e - start + 1} epochs{rate}: decay the learning "
                f"rate (StepLR, ReduceLROnPlateau, cosine), or raise it if the loss is still "
                f"high"))]
    return []
