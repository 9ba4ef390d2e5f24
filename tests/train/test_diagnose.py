"""train.diagnose reads curves as the lectures do: one synthetic history per kind is
classified as that kind (and no other problem), healthy histories raise no alarm, missing
validation metrics skip the validation kinds, History and dict agree, bad input is refused;
fit(diagnose=True) prints and stores the findings (also when a NaN stops the run), and
save_curves marks them on the plots.

The synthetic runs have 10 epochs of 20 iterations; per-batch losses carry multiplicative
noise from a seeded generator, as mini-batch losses do."""
import math

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import nn, optim
from tinygrad_lite.nn import functional as F
from tinygrad_lite.train.callbacks import History
from tinygrad_lite.train.diagnose import (KINDS, PROBLEMS, Finding, diagnose,
                                          format_findings)
from tinygrad_lite.train.loop import NonFiniteLossError, fit
from tinygrad_lite.train.plots import save_curves

EPOCHS, PER_EPOCH = 10, 20
T = np.arange(EPOCHS * PER_EPOCH)
E = np.arange(EPOCHS)


def run(batch_loss, accuracy=None, val_accuracy=None, val_gap=0.1, lr=0.1, noise=0.08,
        seed=0):
    """A history dict from a per-iteration loss curve (noise added) and per-epoch accuracies;
    the epoch loss is the mean of its iterations, the validation loss that plus `val_gap`."""
    rng = np.random.default_rng(seed)
    batches = np.asarray(batch_loss, dtype=np.float64) * (1 + noise * rng.standard_normal(
        len(T)))
    loss = batches.reshape(EPOCHS, PER_EPOCH).mean(axis=1)
    h = {"loss": list(loss), "val_loss": list(loss + val_gap),
         "lr": list(np.broadcast_to(lr, EPOCHS)), "batches": {"loss": list(batches)}}
    if accuracy is not None:
        h["accuracy"] = list(accuracy)
    if val_accuracy is not None:
        h["val_accuracy"] = list(val_accuracy)
    return h


def healthy_improving():
    """Fast first drop then a slower fall, accuracies rising with a small constant gap,
    still gaining about a point per epoch at the end."""
    acc = 0.95 - 0.6 * np.exp(-E / 3)
    return run(0.4 + 1.9 * np.exp(-T / 40), acc, acc - 0.03)


def healthy_settled():
    """Converged after a step decay of the lr at epoch 6: nothing to do."""
    acc = 0.93 - 0.6 * np.exp(-E / 1.5)
    lr = np.where(E < 6, 0.1, 0.01)
    curve = 0.3 + 2.0 * np.exp(-T / 25) + np.where(T < 120, 0.1 * np.exp(-T / 60), 0.0)
    return run(curve, acc, acc - 0.04, lr=lr)


def problems(findings):
    return {f.kind for f in findings if f.kind in PROBLEMS}


# ----- healthy runs -----
def test_a_healthy_run_still_improving_gives_only_still_improving():
    findings = diagnose(healthy_improving(), num_classes=10)
    assert [f.kind for f in findings] == ["still_improving"]
    assert findings[0].epoch == EPOCHS - 1 and findings[0].batch is None
    assert "train longer" in findings[0].advice


def test_a_healthy_settled_run_gives_no_findings():
    assert diagnose(healthy_settled(), num_classes=10) == []
    assert format_findings([]) == "diagnose: the curves show no problem"


# ----- one history per kind -----
def test_diverged_at_the_first_nan_and_nothing_read_after_it():
    h = healthy_improving()
    b = h["batches"]["loss"]
    b[70:75] = [5.0, 20.0, 1e3, math.inf, math.nan]
    b[75:] = [math.nan] * (len(b) - 75)
    h["loss"][3:] = [math.nan] * (EPOCHS - 3)
    findings = diagnose(h, num_classes=10)
    assert [f.kind for f in findings] == ["diverged"]
    assert (findings[0].epoch, findings[0].batch) == (73 // PER_EPOCH, 73)
    assert "learning rate is too high" in findings[0].advice
    # at the very first iteration: nothing before it to read
    first = diagnose({"loss": [math.nan], "batches": {"loss": [math.inf]}}, num_classes=10)
    assert [(f.kind, f.epoch, f.batch) for f in first] == [("diverged", 0, 0)]
    # from the epoch losses alone
    del h["batches"]
    assert [(f.kind, f.epoch) for f in diagnose(h)] == [("diverged", 3)]


def test_lr_too_high_when_the_loss_rises_early():
    rising = 2.3 + 1.5 * (1 - np.exp(-T / 20))
    findings = diagnose(run(rising, val_gap=0.0))
    assert problems(findings) == {"lr_too_high"}
    first = findings[0]
    assert first.kind == "lr_too_high" and first.batch is not None and first.batch < 60


def test_lr_too_high_when_the_loss_swings_without_falling():
    swing = 2.3 * (1 + 0.7 * np.where(T % 2 == 0, 1.0, -0.6))
    found = problems(diagnose(run(swing, noise=0.02)))
    assert found == {"lr_too_high"}
    # the same mean level with healthy mini-batch noise is not a swing (but a loss that
    # does not move)
    assert problems(diagnose(run(np.full(len(T), 2.3), noise=0.1))) == {"lr_too_low"}


def test_lr_too_high_from_epoch_losses_when_there_are_no_batches():
    h = run(2.3 + 1.5 * (1 - np.exp(-T / 20)), val_gap=0.0)
    del h["batches"]
    findings = diagnose(h)
    assert problems(findings) == {"lr_too_high"} and findings[0].batch is None


def test_lr_too_low_when_the_loss_falls_slowly_and_linearly_or_not_at_all():
    findings = diagnose(run(2.3 - 0.004 * T, noise=0.05))
    assert problems(findings) == {"lr_too_low"}
    assert "almost linearly" in next(f for f in findings if f.kind == "lr_too_low").advice
    findings = diagnose(run(np.full(len(T), 2.3), noise=0.1))
    assert problems(findings) == {"lr_too_low"}
    assert "barely moves" in next(f for f in findings if f.kind == "lr_too_low").advice
    # a convex fall to the same final loss is healthy
    assert "lr_too_low" not in problems(diagnose(run(1.5 + 0.8 * np.exp(-T / 30), noise=0.05)))


def test_bad_init_when_the_start_is_flat_then_drops():
    flat_then_drop = np.where(T < 60, 2.3, 0.5 + 1.8 * np.exp(-(T - 60) / 15))
    findings = diagnose(run(flat_then_drop, noise=0.03))
    assert problems(findings) == {"bad_init"}
    f = next(f for f in findings if f.kind == "bad_init")
    assert 60 <= f.batch <= 80 and f.epoch == f.batch // PER_EPOCH


def test_bad_init_when_the_initial_loss_is_far_above_log_c():
    h = run(0.4 * np.exp(-T / 150) + 9.0 * np.exp(-T / 10), noise=0.0)
    findings = diagnose(h, num_classes=10)
    assert problems(findings) == {"bad_init"}
    assert (findings[0].epoch, findings[0].batch) == (0, 0) and "log(10)" in findings[0].advice
    # log C is the reference: the same curve is fine for 10000 classes (log C = 9.2)
    assert problems(diagnose(h, num_classes=10000)) == set()
    assert problems(diagnose(h)) == set()  # and not checked without num_classes


def test_overfitting_from_a_growing_accuracy_gap():
    acc = 1.0 - 0.7 * np.exp(-E / 2)
    val = np.minimum(acc - 0.02, 0.8) - 0.015 * np.maximum(E - 4, 0)
    findings = diagnose(run(0.05 + 2.2 * np.exp(-T / 40), acc, val))
    assert problems(findings) == {"overfitting"}
    f = findings[0]
    assert f.kind == "overfitting" and f.epoch <= 4 and "regularise" in f.advice


def test_overfitting_from_the_validation_loss_of_a_regression():
    h = run(0.05 + 2.2 * np.exp(-T / 40))
    h["val_loss"] = list(0.6 + 0.05 * (E - 3) ** 2)  # a U: best at epoch 3
    findings = diagnose(h)
    assert problems(findings) == {"overfitting"} and findings[0].epoch == 3


def test_underfitting_when_both_accuracies_are_low_and_close():
    acc = 0.5 - 0.1 * np.exp(-E / 2)
    findings = diagnose(run(1.2 + 1.1 * np.exp(-T / 80), acc, acc - 0.01))
    assert problems(findings) == {"underfitting"}
    assert findings[-1].epoch == EPOCHS - 1


def test_still_improving_from_the_validation_loss_without_accuracies():
    h = run(0.4 + 1.9 * np.exp(-T / 40))
    h["val_loss"] = list(1.0 - 0.05 * E)
    assert [f.kind for f in diagnose(h)] == ["still_improving"]
    h["val_loss"][-1] = h["val_loss"][-2] + 0.01  # the last epoch is no longer the best
    assert diagnose(h) == []


def test_plateau_at_a_constant_lr_and_not_after_a_decay():
    curve = np.maximum(0.8, 2.3 - 0.025 * T)  # flat from iteration 60 (epoch 3) on
    acc = np.minimum(0.9, 0.5 + 0.2 * E)
    findings = diagnose(run(curve, acc, acc - 0.02, noise=0.0))
    assert problems(findings) == {"plateau"}
    f = findings[0]  # epoch 3 still improved on epoch 2; no progress from epoch 4 on
    assert (f.kind, f.epoch) == ("plateau", 4) and "decay the learning rate" in f.advice
    # the same curve with the lr decayed every 3 epochs: each stretch is too short
    decayed = diagnose(run(curve, acc, acc - 0.02, noise=0.0, lr=0.1 ** (E // 3)))
    assert "plateau" not in problems(decayed)


def test_every_kind_is_covered_by_a_test_above():
    assert set(KINDS) == set(PROBLEMS) | {"still_improving"} and len(KINDS) == 8


# ----- inputs -----
def test_without_validation_metrics_the_validation_kinds_are_skipped():
    acc = 1.0 - 0.7 * np.exp(-E / 2)
    val = np.minimum(acc - 0.02, 0.8) - 0.015 * np.maximum(E - 4, 0)
    h = run(0.05 + 2.2 * np.exp(-T / 40), acc, val)
    for key in ("val_loss", "val_accuracy"):
        del h[key]
    assert diagnose(h) == []  # the same run had overfitting with its validation metrics


def test_a_history_and_its_dict_give_the_same_findings():
    h = healthy_improving()
    h["batches"]["loss"][:60] = list(np.linspace(2.3, 4.0, 60))
    history = History()
    for b in h["batches"]["loss"]:
        history.log_batch(b, 0.1)
    for e in range(EPOCHS):
        history.log_epoch({k: h[k][e] for k in ("loss", "accuracy", "val_loss",
                                                "val_accuracy", "lr")})
    expected = diagnose(h, num_classes=10)
    assert {f.kind for f in expected} >= {"lr_too_high"}
    assert diagnose(history, num_classes=10) == expected


def test_findings_print_kind_epoch_and_advice():
    f = Finding("plateau", 4, "decay the learning rate")
    assert str(f) == "plateau at epoch 5: decay the learning rate"
    assert str(Finding("diverged", 0, "x", batch=6)) == "diverged at epoch 1 (iteration 7): x"
    assert format_findings([f]) == "diagnose:\n  plateau at epoch 5: decay the learning rate"


@pytest.mark.parametrize("history, num_classes, match", [
    ({"loss": [1.0], "val_acc": [0.5]}, None, "unknown keys \\['val_acc'\\]"),
    ({"loss": [1.0, 0.9], "accuracy": [0.5]}, None, "one value per epoch"),
    ({"loss": [1.0]}, 1, "num_classes must be an int >= 2"),
    ([1.0, 0.9], None, "expected a train.History or a dict"),
    ({"loss": [1.0], "batches": [1.0]}, None, "'batches' must be a dict"),
])
def test_bad_input_is_refused_by_name(history, num_classes, match):
    with pytest.raises((ValueError, TypeError), match=match):
        diagnose(history, num_classes=num_classes)


# ----- fit(diagnose=True) and save_curves -----
FEATURES, CLASSES = 6, 3


def blob_batches(n=48, batch=12, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(1).standard_normal((CLASSES, FEATURES)) * 2
    y = rng.integers(0, CLASSES, n)
    x = (centres[y] + rng.standard_normal((n, FEATURES))).astype(np.float32)
    return [(tl.Tensor(x[i:i + batch]), tl.Tensor(y[i:i + batch].astype(np.int64)))
            for i in range(0, n, batch)]


def test_fit_with_diagnose_prints_and_stores_the_findings(capsys):
    train, val = blob_batches(), blob_batches(seed=1)
    tl.manual_seed(0)
    model = nn.Sequential(nn.Linear(FEATURES, 8), nn.ReLU(), nn.Linear(8, CLASSES))
    with tl.no_grad():
        model[2].weight *= 30  # large initial logits: a loss far above log(3)
    history = fit(model, train, optim.SGD(model.parameters(), lr=0.1), epochs=3,
                  val_loader=val, progress=False, diagnose=True)
    out = capsys.readouterr().out
    assert ("bad_init", 0, 0) in [(f.kind, f.epoch, f.batch) for f in history.findings]
    assert "log(3)" in out  # fit knew the number of classes of its cross-entropy
    assert history.findings == diagnose(history, num_classes=CLASSES,
                                        batches_per_epoch=len(train))
    assert format_findings(history.findings) in out
    # without the flag: nothing printed, nothing stored
    history = fit(model, train, optim.SGD(model.parameters(), lr=0.1), epochs=1,
                  progress=False)
    assert not hasattr(history, "findings") and capsys.readouterr().out == ""


def test_fit_with_diagnose_reports_divergence_when_a_nan_stops_the_run(capsys):
    train = blob_batches()
    calls = []

    def loss_fn(output, y):  # NaN from the 7th batch (epoch 2, batch 3) on
        calls.append(1)
        loss = F.cross_entropy(output, y)
        return loss * math.nan if len(calls) >= 7 else loss

    tl.manual_seed(0)
    model = nn.Sequential(nn.Linear(FEATURES, CLASSES))
    with pytest.raises(NonFiniteLossError):
        fit(model, train, optim.SGD(model.parameters(), lr=0.1), loss_fn=loss_fn, epochs=3,
            progress=False, diagnose=True)
    assert "diverged at epoch 2 (iteration 7)" in capsys.readouterr().out


def _pixels(path):
    from matplotlib.image import imread
    return imread(path)


def test_save_curves_marks_the_findings(tmp_path):
    h = healthy_improving()
    history = History()
    for b in h["batches"]["loss"]:
        history.log_batch(b, 0.1)
    for e in range(EPOCHS):
        history.log_epoch({k: h[k][e] for k in ("loss", "accuracy", "val_loss",
                                                "val_accuracy", "lr")})
    marks = [Finding("plateau", 4, "decay"), Finding("lr_too_high", 0, "lower", batch=10)]
    plain = save_curves(history, tmp_path / "plain", findings=())
    marked = save_curves(history, tmp_path / "marked", findings=marks)
    for a, b in zip(plain, marked):
        assert _pixels(a).shape == _pixels(b).shape and not np.array_equal(_pixels(a),
                                                                           _pixels(b))
    history.findings = marks  # as fit(diagnose=True) leaves it: marked by default
    default = save_curves(history, tmp_path / "default")
    for a, b in zip(marked, default):
        assert np.array_equal(_pixels(a), _pixels(b))
