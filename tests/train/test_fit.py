"""The training loop (train/loop.py, callbacks.py, checkpoint.py, plots.py): a short run learns,
a resumed run ends bit for bit where an uninterrupted one does, early stopping restores the best
weights, checkpoints are atomic, callbacks fire in order, curves are written, errors are clear.

The data is a small synthetic problem (Gaussian blobs, 4 classes) and the model a two-layer
MLP with dropout, so every test runs in well under a second once the kernels are compiled."""
import os

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import nn, optim
from tinygrad_lite.nn import functional as F
from tinygrad_lite.train import (Callback, EarlyStopping, LambdaCallback, NonFiniteLossError,
                                 Trainer, evaluate, fit, load_checkpoint, moving_average,
                                 save_checkpoint, save_curves)
from tinygrad_lite.train import checkpoint as C

CLASSES, FEATURES = 4, 8


def blobs(n, seed, label_shift=0):
    """n points around 4 well-separated centres; labels shifted by `label_shift` (mod 4)
    make a validation set that disagrees with training more the better the model fits."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(123).standard_normal((CLASSES, FEATURES)) * 2.0
    y = rng.integers(0, CLASSES, n)
    x = centres[y] + rng.standard_normal((n, FEATURES))
    return x.astype(np.float32), ((y + label_shift) % CLASSES).astype(np.int64)


class Batches:
    """A minimal loader: (x, y) Tensor batches, reshuffled every epoch by its own generator
    (which a checkpoint must save, as it does a DataLoader's)."""

    def __init__(self, x, y, batch_size, shuffle=True, seed=0):
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.generator = np.random.default_rng(seed)

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __iter__(self):
        order = (self.generator.permutation(len(self.x)) if self.shuffle
                 else np.arange(len(self.x)))
        for i in range(0, len(order), self.batch_size):
            idx = order[i:i + self.batch_size]
            yield tl.Tensor(self.x[idx]), tl.Tensor(self.y[idx])


def mlp(seed=0, p=0.2):
    tl.manual_seed(seed)
    return nn.Sequential(nn.Linear(FEATURES, 16), nn.ReLU(), nn.Dropout(p), nn.Linear(16, CLASSES))


def sgd(model, lr=0.1):
    return optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=1e-4)


def loaders(n_train=192, n_val=64, batch=32, val_shift=0):
    return (Batches(*blobs(n_train, 1), batch, seed=5),
            Batches(*blobs(n_val, 2, val_shift), batch, shuffle=False))


def weights(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


# ----- learning -----
def test_short_run_learns_and_evaluate_agrees():
    train, val = loaders()
    model = mlp()
    history = fit(model, train, sgd(model), epochs=6, val_loader=val, progress=False)
    assert len(history) == 6 and len(history.batches["loss"]) == 6 * len(train)
    assert history["accuracy"][-1] > 0.9 and history["val_accuracy"][-1] > 0.9  # chance: 0.25
    assert history["loss"][-1] < history["loss"][0] / 3
    assert history["lr"] == [0.1] * 6
    model.train()
    loss, acc = evaluate(model, val)
    assert model.training  # evaluate switches to eval and back
    assert (loss, acc) == (history["val_loss"][-1], history["val_accuracy"][-1])


def test_evaluate_matches_numpy_reference():
    _, val = loaders()
    model = mlp()
    loss, acc = evaluate(model, val)
    w = weights(model)
    h = np.maximum(val.x @ w["0.weight"].T + w["0.bias"], 0) @ w["3.weight"].T + w["3.bias"]
    logp = h - h.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    assert loss == pytest.approx(-logp[np.arange(len(val.y)), val.y].mean(), rel=1e-5)
    assert acc == np.mean(h.argmax(1) == val.y)


# ----- resuming -----
def run(tmp_path, epochs, resume_epochs=None, model_seed=0):
    """fit for `epochs` epochs; with resume_epochs, stop after that many and resume in a fresh
    model/optimiser/scheduler/loader (built from other seeds: the checkpoint must supply all)."""
    train, val = loaders()
    model = mlp(model_seed)
    opt = sgd(model)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * len(train))
    stopper = EarlyStopping("val_loss", patience=100)
    path = str(tmp_path / "ckpt.npz")
    kwargs = dict(val_loader=val, scheduler=sched, scheduler_step="batch", progress=False,
                  checkpoint_path=path)
    if resume_epochs is None:
        history = fit(model, train, opt, epochs=epochs, callbacks=[stopper], **kwargs)
        return model, opt, history, stopper
    fit(model, train, opt, epochs=resume_epochs, callbacks=[stopper], **kwargs)
    train2, val2 = loaders()
    train2.generator = np.random.default_rng(99)
    tl.manual_seed(77)
    model2 = mlp(model_seed + 1)
    opt2 = sgd(model2, lr=0.5)
    sched2 = optim.lr_scheduler.CosineAnnealingLR(opt2, T_max=epochs * len(train))
    stopper2 = EarlyStopping("val_loss", patience=100)
    history = fit(model2, train2, opt2, epochs=epochs, callbacks=[stopper2], val_loader=val2,
                  scheduler=sched2, scheduler_step="batch", progress=False, checkpoint_path=path,
                  resume_from=path)
    return model2, opt2, history, stopper2


def _same_tree(a, b):
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)
        for k in a:
            _same_tree(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            _same_tree(u, v)
    elif isinstance(a, (tl.Tensor, np.ndarray)):
        np.testing.assert_array_equal(np.asarray(a.numpy() if isinstance(a, tl.Tensor) else a),
                                      b.numpy() if isinstance(b, tl.Tensor) else b)
    else:
        assert a == b


def test_resumed_run_is_bit_identical(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    m1, o1, h1, s1 = run(tmp_path / "a", 4)
    after1 = tl.random.generator().bit_generator.state
    m2, o2, h2, s2 = run(tmp_path / "b", 4, resume_epochs=2)
    after2 = tl.random.generator().bit_generator.state
    for k, v in weights(m1).items():
        np.testing.assert_array_equal(v, weights(m2)[k], err_msg=k)
    _same_tree(o1.state_dict(), o2.state_dict())
    assert o1.state_dict()["state"]  # momentum buffers exist, so the comparison means something
    assert h1.state_dict() == h2.state_dict()
    assert s1.best == s2.best and s1.best_epoch == s2.best_epoch
    assert after1 == after2
    # The final checkpoints agree too (epoch count, scheduler, loader generator).
    c1, c2 = load_checkpoint(tmp_path / "a" / "ckpt.npz"), load_checkpoint(
        tmp_path / "b" / "ckpt.npz")
    _same_tree(c1, c2)
    assert c1["epochs_done"] == 4 and "train_loader" in c1["rng"]


# ----- early stopping -----
def test_early_stopping_restores_best_weights():
    # Validation labels are the training labels shifted by one class: the better the model
    # fits, the worse the validation loss, so the best epoch is early and the run stops.
    train, val = loaders(val_shift=1)
    model = mlp()
    snapshots = []
    keep = LambdaCallback(on_epoch_end=lambda t, e, logs: snapshots.append(weights(t.model)))
    stopper = EarlyStopping("val_loss", patience=2)
    history = fit(model, train, sgd(model), epochs=30, val_loader=val, progress=False,
                  callbacks=[keep, stopper])
    best = int(np.argmin(history["val_loss"]))
    assert stopper.best_epoch == best and stopper.best == min(history["val_loss"])
    assert stopper.stopped_epoch == best + 2 == len(history) - 1 < 29
    final = weights(model)
    for k, v in snapshots[best].items():
        np.testing.assert_array_equal(final[k], v, err_msg=k)
    assert any(not np.array_equal(final[k], snapshots[-1][k]) for k in final)


def test_early_stopping_mode_and_no_restore():
    assert EarlyStopping("val_loss").mode == "min"
    assert EarlyStopping("val_accuracy").mode == "max"
    assert EarlyStopping("loss", mode="max").mode == "max"
    train, _ = loaders()
    model = mlp()
    stopper = EarlyStopping("accuracy", patience=0, min_delta=1.0, restore_best_weights=False)
    history = fit(model, train, sgd(model), epochs=5, callbacks=[stopper], progress=False)
    # patience 0 and an improvement no accuracy can make: stop after the second epoch
    assert len(history) == 2 and stopper.best_epoch == 0 and stopper.best_weights is None


# ----- checkpoints -----
def test_checkpoint_round_trip(tmp_path):
    state = {"t": tl.Tensor(np.arange(6, dtype=np.float64).reshape(2, 3)),
             "by_index": {0: {"buf": tl.ones(2), "step": 3}, 7: None},
             "tuple": (0.9, 0.999), "nan": float("nan"), "big": 2 ** 100,
             "arr": np.array([1, 2], dtype=np.int64), "nested": [[1.5, "x"], {"a": True}],
             "third": 1 / 3}
    path = save_checkpoint(tmp_path / "s.npz", state)
    back = load_checkpoint(path)
    assert back["t"].dtype == np.float64 and back["t"].tolist() == state["t"].tolist()
    assert list(back["by_index"]) == [0, 7] and back["by_index"][0]["step"] == 3
    assert back["by_index"][0]["buf"].tolist() == [1.0, 1.0]
    assert back["tuple"] == (0.9, 0.999) and np.isnan(back["nan"]) and back["big"] == 2 ** 100
    assert back["arr"].dtype == np.int64 and back["third"] == 1 / 3
    assert back["nested"] == [[1.5, "x"], {"a": True}]
    assert "t" in np.load(path).files  # arrays are visible entries of the .npz


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, {"epoch": 1, "w": tl.ones(3)})

    def fail_half_way(fileobj, arrays):
        fileobj.write(b"PK\x03\x04 partial garbage")
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(C, "_write_npz", fail_half_way)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"epoch": 2, "w": tl.zeros(3)})
    back = load_checkpoint(path)
    assert back["epoch"] == 1 and back["w"].tolist() == [1.0, 1.0, 1.0]
    assert os.listdir(tmp_path) == ["ckpt.npz"]  # the temporary file is gone


def test_fit_checkpoint_failure_keeps_last_good_one(tmp_path, monkeypatch):
    train, _ = loaders()
    model = mlp()
    path = tmp_path / "ckpt.npz"
    calls = []

    def fail_second(fileobj, arrays):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        np.savez(fileobj, **arrays)

    monkeypatch.setattr(C, "_write_npz", fail_second)
    with pytest.raises(OSError):
        fit(model, train, sgd(model), epochs=3, checkpoint_path=str(path), progress=False)
    assert load_checkpoint(path)["epochs_done"] == 1


# ----- callbacks -----
class Recorder(Callback):
    def __init__(self, name, events):
        self.name, self.events = name, events

    def on_fit_start(self, trainer):
        self.events.append((self.name, "fit_start"))

    def on_epoch_start(self, trainer, epoch):
        self.events.append((self.name, "epoch_start", epoch))

    def on_batch_end(self, trainer, batch, logs):
        assert set(logs) == {"loss", "lr"}
        self.events.append((self.name, "batch_end", trainer.epoch, batch))

    def on_epoch_end(self, trainer, epoch, logs):
        assert set(logs) == {"loss", "accuracy", "lr", "val_loss", "val_accuracy"}
        assert len(trainer.history) == epoch + 1  # the history already has this epoch
        self.events.append((self.name, "epoch_end", epoch))

    def on_fit_end(self, trainer):
        self.events.append((self.name, "fit_end"))


def test_callbacks_fire_in_order():
    train, val = loaders(n_train=64)
    model = mlp()
    events = []
    fit(model, train, sgd(model), epochs=2, val_loader=val, progress=False,
        callbacks=[Recorder("a", events), Recorder("b", events)])
    expected = [("fit_start",)]
    for e in range(2):
        expected.append(("epoch_start", e))
        expected += [("batch_end", e, b) for b in range(len(train))]
        expected.append(("epoch_end", e))
    expected.append(("fit_end",))
    assert events == [(n,) + ev for ev in expected for n in "ab"]


def test_epoch_scheduler_steps_once_per_epoch():
    train, _ = loaders(n_train=64)
    model = mlp()
    opt = sgd(model)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    history = fit(model, train, opt, epochs=3, scheduler=sched, scheduler_step="epoch",
                  progress=False)
    expected = [0.05 * (1 + np.cos(np.pi * t / 4)) for t in range(3)]
    np.testing.assert_allclose(history["lr"], expected, rtol=1e-12)
    assert history.batches["lr"][:len(train)] == [0.1] * len(train)


# ----- curves -----
def test_curves_are_written(tmp_path):
    train, val = loaders(n_train=64)
    model = mlp()
    history = fit(model, train, sgd(model), epochs=2, val_loader=val, progress=False)
    paths = save_curves(history, tmp_path / "out", prefix="run_")
    assert [os.path.basename(p) for p in paths] == ["run_loss.png", "run_accuracy.png"]
    for p in paths:
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        assert os.path.getsize(p) > 5000


def test_moving_average_matches_reference():
    v = np.random.default_rng(0).standard_normal(20)
    np.testing.assert_allclose(moving_average(v, 4), [v[i:i + 4].mean() for i in range(17)])
    with pytest.raises(ValueError, match="window"):
        moving_average(v, 21)


# ----- errors -----
def test_errors(tmp_path):
    train, _ = loaders(n_train=64)
    model = mlp()
    opt = sgd(model)
    with pytest.raises(ValueError, match="unknown monitor 'val_acc'"):
        EarlyStopping("val_acc")
    with pytest.raises(ValueError, match="mode must be"):
        EarlyStopping("loss", mode="best")
    with pytest.raises(ValueError, match=r"scheduler_step must be 'batch' or 'epoch' \(or "
                                         r"None: ask the scheduler\), got 'iter'"):
        fit(model, train, opt, scheduler_step="iter")
    with pytest.raises(ValueError, match="needs a val_loader"):
        fit(model, train, opt, callbacks=[EarlyStopping("val_loss")], progress=False)
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        fit(model, train, opt, epochs=0)
    with pytest.raises(TypeError, match="Callback instances"):
        fit(model, train, opt, callbacks=[print])
    with pytest.raises(TypeError, match=r"\(inputs, targets\) pairs"):
        fit(model, [tl.ones(2, FEATURES)], opt, progress=False)
    with pytest.raises(ValueError, match="no batches"):
        fit(model, [], opt, progress=False)
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        fit(model, train, opt, resume_from=str(tmp_path / "missing.npz"))
    np.savez(tmp_path / "plain.npz", a=np.ones(2))
    with pytest.raises(ValueError, match="not a tinygrad_lite checkpoint"):
        load_checkpoint(tmp_path / "plain.npz")
    with pytest.raises(TypeError, match="cannot store a set at 'x'"):
        save_checkpoint(tmp_path / "s.npz", {"x": {1, 2}})
    trainer = Trainer(model, opt, checkpoint_path=str(tmp_path / "c.npz"), progress=False)
    trainer.fit(train, 1)
    trainer.fit(train, 2)  # a second fit() continues to 2 epochs in total
    assert len(trainer.history) == 2
    fit(model, train, opt, epochs=1, progress=False)  # now the model differs from c.npz
    before = weights(model)
    with pytest.raises(ValueError, match="pass the same callbacks"):
        fit(model, train, opt, epochs=3, callbacks=[EarlyStopping("loss")],
            resume_from=str(tmp_path / "c.npz"), progress=False)
    for k, v in weights(model).items():  # a refused checkpoint changes nothing
        np.testing.assert_array_equal(v, before[k])


def test_reduce_lr_on_plateau_gets_the_validation_loss():
    train, val = loaders(n_train=64, val_shift=1)  # val loss rises: the lr is cut
    model = mlp()
    opt = sgd(model)
    sched = optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    with pytest.raises(ValueError, match="scheduler_step='epoch'"):
        fit(model, train, opt, scheduler=sched, scheduler_step="batch")
    history = fit(model, train, opt, epochs=3, val_loader=val, scheduler=sched,
                  progress=False)  # per epoch without being told
    assert sched.best == history["val_loss"][0] < min(history["val_loss"][1:])
    assert history["lr"] == [0.1, 0.1, 0.05]


def test_fit_on_cuda_moves_batches_and_resumes_there(tmp_path):
    # Host batches go to the model's device; a checkpoint's tensors come back on it.
    train = Batches(*blobs(12, 1), 12, seed=5)  # one batch: the simulator is slow
    tl.manual_seed(0)
    model = nn.Sequential(nn.Linear(FEATURES, 4), nn.ReLU(), nn.Linear(4, CLASSES)).to("cuda")
    opt = sgd(model)
    path = str(tmp_path / "c.npz")
    fit(model, train, opt, epochs=1, progress=False, checkpoint_path=path)
    history = fit(model, train, opt, epochs=2, progress=False, resume_from=path)
    assert len(history) == 2 and all(p.device == "cuda" for p in model.parameters())
    assert all(s["momentum_buffer"].device == "cuda" for s in opt.state.values())
    loss, acc = evaluate(model, train)
    assert np.isfinite(loss) and 0 <= acc <= 1


def test_probability_targets_count_their_largest_class():
    # Mixup yields class probabilities; accuracy compares against the target's argmax.
    _, val = loaders()
    model = mlp()
    soft = Batches(val.x, np.eye(CLASSES, dtype=np.float32)[val.y], 32, shuffle=False)
    loss, acc = evaluate(model, val)
    soft_loss, soft_acc = evaluate(model, soft)
    assert soft_acc == acc and soft_loss == pytest.approx(loss, rel=1e-6)


# ----- issue 22: schedulers per epoch by default -----
def _torch_lrs(make_scheduler, epochs, batches, per_batch):
    """(per-epoch lrs, per-iteration lrs) of torch's own scheduler driven the given way."""
    import torch
    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([w], lr=0.1, momentum=0.9)
    sched = make_scheduler(torch.optim, opt)
    per_epoch, per_iteration = [], []
    for _ in range(epochs):
        per_epoch.append(opt.param_groups[0]["lr"])
        for _ in range(batches):
            per_iteration.append(opt.param_groups[0]["lr"])
            opt.step()
            if per_batch:
                sched.step()
        if not per_batch:
            sched.step()
    return per_epoch, per_iteration


def test_step_lr_is_stepped_per_epoch_by_default_as_in_torch():
    # StepLR(step_size=2) means two epochs, as in every PyTorch recipe; stepped per batch it
    # reached lr 1e-13 by the third epoch of 8 batches.
    train = Batches(*blobs(256, 1), 32, seed=5)
    assert len(train) == 8
    model = mlp()
    opt = sgd(model)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    history = fit(model, train, opt, epochs=3, scheduler=sched, progress=False)
    per_epoch, per_iteration = _torch_lrs(
        lambda o, opt: o.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1), 3, 8, False)
    np.testing.assert_allclose(history["lr"], per_epoch, rtol=1e-12)
    np.testing.assert_allclose(history.batches["lr"], per_iteration, rtol=1e-12)
    assert history["lr"][-1] == pytest.approx(0.01, rel=1e-12)


def test_a_scheduler_that_counts_iterations_is_stepped_per_batch_by_default():
    train = Batches(*blobs(256, 1), 32, seed=5)
    model = mlp()
    opt = sgd(model)
    assert optim.lr_scheduler.OneCycleLR.step_per == "batch"
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=3, steps_per_epoch=8)
    history = fit(model, train, opt, epochs=3, scheduler=sched, progress=False)
    _, per_iteration = _torch_lrs(
        lambda o, opt: o.lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=3, steps_per_epoch=8),
        3, 8, True)
    np.testing.assert_allclose(history.batches["lr"], per_iteration, rtol=1e-12)
    # Told explicitly, fit steps as told, whatever the scheduler declares.
    model = mlp()
    opt = sgd(model)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    history = fit(model, train, opt, epochs=1, scheduler=sched, scheduler_step="batch",
                  progress=False)
    assert history.batches["lr"] == pytest.approx([0.1, 0.1, 0.01, 0.01, 1e-3, 1e-3, 1e-4, 1e-4],
                                                  rel=1e-12)


def test_a_scheduler_declaring_a_bad_step_per_is_refused():
    model = mlp()
    opt = sgd(model)

    class Odd(optim.lr_scheduler.StepLR):
        step_per = "iteration"

    with pytest.raises(ValueError, match=r"Odd.step_per must be 'batch' or 'epoch', got "
                                         r"'iteration'"):
        fit(model, loaders()[0], opt, scheduler=Odd(opt, step_size=1), progress=False)


def test_resuming_with_another_scheduler_stepping_is_refused(tmp_path):
    train, _ = loaders(n_train=64)
    model = mlp()
    opt = sgd(model)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2)
    path = str(tmp_path / "c.npz")
    fit(model, train, opt, scheduler=sched, progress=False, checkpoint_path=path)
    before = weights(model)
    with pytest.raises(ValueError, match="stepped its scheduler per epoch, this run per batch; "
                                         "pass scheduler_step='epoch'"):
        fit(model, train, opt, epochs=2, scheduler=sched, scheduler_step="batch",
            progress=False, resume_from=path)
    for k, v in weights(model).items():
        np.testing.assert_array_equal(v, before[k])


# ----- issue 22: callbacks start afresh in every fit, resume restores them -----
def test_a_reused_early_stopping_starts_afresh_in_a_second_fit():
    train, _ = loaders()
    stopper = EarlyStopping("accuracy", patience=1, min_delta=1.0, restore_best_weights=False)
    for _ in range(2):  # an improvement no accuracy can make: stop after the second epoch
        model = mlp()
        history = fit(model, train, sgd(model), epochs=5, callbacks=[stopper], progress=False)
        assert len(history) == 2 and stopper.best_epoch == 0 and stopper.stopped_epoch == 1


def test_a_reused_early_stopping_in_a_continued_trainer_starts_afresh():
    train, _ = loaders()
    model = mlp()
    stopper = EarlyStopping("accuracy", patience=1, min_delta=1.0, restore_best_weights=False)
    trainer = Trainer(model, sgd(model), callbacks=[stopper], progress=False)
    assert len(trainer.fit(train, 5)) == 2
    assert len(trainer.fit(train, 5)) == 4  # two more epochs, not one
    assert stopper.best_epoch == 2 and stopper.stopped_epoch == 3


def test_resume_restores_early_stopping_mid_patience(tmp_path):
    # Validation labels disagree with training (shifted): the best epoch is early and the run
    # stops `patience` epochs later. Interrupted after 2 epochs (the stopper is waiting) and
    # resumed with a fresh stopper, the run must stop where the uninterrupted one does and
    # restore the same best weights.
    def run_(epochs, resume=False):
        train, val = loaders(val_shift=1)
        model = mlp(3 if resume else 0)
        stopper = EarlyStopping("val_loss", patience=3)
        history = fit(model, train, sgd(model), epochs=epochs, val_loader=val,
                      callbacks=[stopper], progress=False, checkpoint_path=path,
                      resume_from=path if resume else None)
        return model, history, stopper

    path = str(tmp_path / "whole.npz")
    m1, h1, s1 = run_(30)
    path = str(tmp_path / "part.npz")
    _, h_part, s_part = run_(2)
    assert s_part.wait > 0 and len(h_part) == 2  # interrupted while waiting
    m2, h2, s2 = run_(30, resume=True)
    assert len(h1) == len(h2) < 30
    assert (s1.best, s1.best_epoch, s1.stopped_epoch) == (s2.best, s2.best_epoch,
                                                          s2.stopped_epoch)
    for k, v in weights(m1).items():
        np.testing.assert_array_equal(v, weights(m2)[k], err_msg=k)


# ----- issue 22: any loss; accuracy only for class targets -----
def regression_loaders(n_train=256, n_val=64, batch=32):
    rng = np.random.default_rng(0)
    w, b = np.array([[1.5], [-2.0], [0.5]]), 0.3

    def make(n):
        x = rng.standard_normal((n, 3))
        return (x.astype(np.float32),
                (x @ w + b + 0.01 * rng.standard_normal((n, 1))).astype(np.float32))

    return Batches(*make(n_train), batch, seed=5), Batches(*make(n_val), batch, shuffle=False)


def test_a_regression_with_mse_trains_and_reports_its_loss_only(tmp_path):
    train, val = regression_loaders()
    tl.manual_seed(0)
    model = nn.Linear(3, 1)
    history = fit(model, train, optim.SGD(model.parameters(), lr=0.1), loss_fn=F.mse_loss,
                  epochs=8, val_loader=val, progress=False)
    assert list(history.epochs) == ["loss", "val_loss", "lr"]
    assert "accuracy" not in history and "val_accuracy" not in history
    with pytest.raises(KeyError, match="no metric 'accuracy' .*class labels or class "
                                       "probabilities"):
        history["accuracy"]
    assert history["loss"][0] > 1.0 and history["val_loss"][-1] < 1e-3  # noise: 1e-4
    loss, accuracy = evaluate(model, val, loss_fn=F.mse_loss)
    assert accuracy is None and loss == history["val_loss"][-1]
    w = weights(model)
    reference = np.mean((val.x @ w["weight"].T + w["bias"] - val.y) ** 2)
    assert loss == pytest.approx(reference, rel=1e-5)
    paths = save_curves(history, tmp_path)
    assert [os.path.basename(p) for p in paths] == ["loss.png"]


def test_accuracy_needs_labels_or_distributions():
    # Two regression outputs whose float targets have the output's shape but are not
    # distributions over dim 1: no accuracy. Label-shaped int targets and one-hot rows: yes.
    _, val = loaders()
    model = mlp()
    two = Batches(val.x, np.stack([val.y, -val.y], 1).astype(np.float32), 32, shuffle=False)
    model2 = nn.Sequential(nn.Linear(FEATURES, 2))
    assert evaluate(model2, two, loss_fn=F.mse_loss)[1] is None
    assert evaluate(model, val)[1] is not None
    wrong_shape = Batches(val.x, val.y[:, None], 32, shuffle=False)  # (N, 1) ints
    assert evaluate(model, wrong_shape, loss_fn=lambda out, y: out.sum())[1] is None


# ----- issue 22: a NaN/Inf loss stops the run; detect_anomaly -----
def test_a_diverging_lr_stops_with_a_clear_error_before_the_step(tmp_path):
    train, _ = regression_loaders()
    train.x = train.x * 3  # curvature 2 * 9: lr 1 multiplies the error by about 17 a step
    tl.manual_seed(0)
    model = nn.Linear(3, 1)
    snapshots, losses = [], []
    keep = LambdaCallback(on_batch_end=lambda t, b, logs: (snapshots.append(weights(t.model)),
                                                           losses.append(logs["loss"])))
    path = str(tmp_path / "ckpt.npz")
    with pytest.raises(NonFiniteLossError) as info:
        fit(model, train, optim.SGD(model.parameters(), lr=1.0), loss_fn=F.mse_loss,
            epochs=50, callbacks=[keep], progress=False, checkpoint_path=path)
    err = info.value
    assert isinstance(err, FloatingPointError)
    assert not np.isfinite(err.loss) and err.epoch >= 1  # checkpoint written before it
    msg = str(err)
    assert f"at epoch {err.epoch + 1}/50, batch {err.batch + 1}/8" in msg
    last = len(snapshots)
    assert err.last_finite_loss == losses[-1]
    assert f"the last finite loss was {err.last_finite_loss!r}" in msg
    assert np.isfinite(err.last_finite_loss) and err.last_finite_loss > 1e10
    assert f"the last good checkpoint is {path!r} ({err.epoch} epochs done)" in msg
    assert err.checkpoint == path and load_checkpoint(path)["epochs_done"] == err.epoch
    assert last == err.epoch * 8 + err.batch  # every finite batch ran, the bad one did not
    for k, v in weights(model).items():  # no optimizer step after the non-finite loss
        np.testing.assert_array_equal(v, snapshots[-1][k], err_msg=k)


class NaNAt:
    """A loader of regression batches whose targets hold a NaN at (epoch, batch)."""

    def __init__(self, loader, epoch, batch):
        self.loader, self.at, self.epoch = loader, (epoch, batch), -1

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        self.epoch += 1
        for i, (x, y) in enumerate(self.loader):
            if (self.epoch, i) == self.at:
                y = y.numpy().copy()
                y[0, 0] = np.nan
                y = tl.Tensor(y)
            yield x, y


def test_nan_in_the_data_stops_the_run_and_names_the_last_checkpoint(tmp_path):
    train, _ = regression_loaders()
    tl.manual_seed(0)
    model = nn.Linear(3, 1)
    path = str(tmp_path / "ckpt.npz")
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    with pytest.raises(NonFiniteLossError) as info:
        fit(model, NaNAt(train, 1, 2), opt, loss_fn=F.mse_loss, epochs=5, progress=False,
            checkpoint_path=path)
    err = info.value
    assert (err.epoch, err.batch, err.checkpoint) == (1, 2, path) and np.isnan(err.loss)
    assert "the loss is nan at epoch 2/5, batch 3/8" in str(err)
    assert all(np.isfinite(v).all() for v in weights(model).values())
    assert all(np.isfinite(s["momentum_buffer"].numpy()).all() for s in opt.state.values())
    # Without a checkpoint the message says so; a NaN at the first batch has no finite loss.
    model = nn.Linear(3, 1)
    with pytest.raises(NonFiniteLossError, match="no batch of this run had a finite loss.*no "
                                                 "checkpoint was written"):
        fit(model, NaNAt(train, 0, 0), optim.SGD(model.parameters(), lr=0.05),
            loss_fn=F.mse_loss, progress=False)


class SqrtOfZero(nn.Module):
    """A linear model plus sqrt(p) * 0 with p = 0: a finite loss whose gradient for p is
    0 * inf = NaN, the kind of fault only anomaly detection locates."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)
        self.p = nn.Parameter(tl.zeros(1))

    def forward(self, x):
        return self.linear(x) + self.p.sqrt() * 0.0


def test_detect_anomaly_runs_each_step_under_autograd_anomaly_mode():
    train, _ = regression_loaders()
    tl.manual_seed(0)
    with pytest.raises(RuntimeError, match="detect_anomaly") as info:
        model = SqrtOfZero()
        fit(model, train, optim.SGD(model.parameters(), lr=0.05), loss_fn=F.mse_loss,
            progress=False, detect_anomaly=True)
    assert not isinstance(info.value, NonFiniteLossError)
    # Without it the NaN gradient reaches p through the step and the next loss is NaN.
    model = SqrtOfZero()
    with pytest.raises(NonFiniteLossError, match="batch 2/8"):
        fit(model, train, optim.SGD(model.parameters(), lr=0.05), loss_fn=F.mse_loss,
            progress=False)


def test_detect_anomaly_covers_forward_and_backward_of_every_batch(monkeypatch):
    import tinygrad_lite.autograd as A
    active, entered = [False], []

    class Recording:
        def __enter__(self):
            active[0] = True
            entered.append(1)

        def __exit__(self, *exc):
            active[0] = False

    monkeypatch.setattr(A, "detect_anomaly", Recording, raising=False)
    seen = []

    def loss_fn(out, y):
        seen.append(active[0])
        return F.cross_entropy(out, y)

    train, _ = loaders(n_train=64)
    model = mlp()
    fit(model, train, sgd(model), loss_fn=loss_fn, epochs=2, progress=False,
        detect_anomaly=True)
    assert len(entered) == 2 * len(train) and seen == [True] * (2 * len(train))
    seen.clear()
    fit(model, train, sgd(model), loss_fn=loss_fn, epochs=1, progress=False)
    assert seen == [False] * len(train)


# ----- issue 22: damaged or foreign checkpoints -----
def _good_checkpoint(tmp_path):
    path = tmp_path / "good.npz"
    save_checkpoint(path, {"epoch": 1, "w": tl.Tensor(np.arange(4096, dtype=np.float32))})
    return path, path.read_bytes()


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:len(b) // 2], "is truncated or corrupt"),
    (lambda b: b[:-10], "is truncated or corrupt"),
    # a flipped byte inside the array's data: the zip member's CRC no longer matches
    (lambda b: b[:2000] + bytes([b[2000] ^ 0xFF]) + b[2001:], "is truncated or corrupt"),
    (lambda b: b"", "is empty"),
    (lambda b: b"not a zip file at all", r"is not an \.npz \(zip\) file"),
])
def test_a_damaged_checkpoint_is_refused_naming_the_file(tmp_path, damage, message):
    _, data = _good_checkpoint(tmp_path)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(damage(data))
    with pytest.raises(ValueError, match=f"load_checkpoint: '{bad}' {message}") as info:
        load_checkpoint(bad)
    assert "allow_pickle" not in str(info.value)


def test_an_npz_that_is_not_a_checkpoint_is_refused(tmp_path):
    plain = tmp_path / "random.npz"
    np.savez(plain, x=np.random.default_rng(0).standard_normal(3), y=np.arange(2))
    with pytest.raises(ValueError, match=r"not a tinygrad_lite checkpoint \(it has no "
                                         r"'__meta__' entry; its entries are \['x', 'y'\]\)"):
        load_checkpoint(plain)
    objects = tmp_path / "objects.npz"
    np.savez(objects, x=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(ValueError, match="not a tinygrad_lite checkpoint"):
        load_checkpoint(objects)
    # an object array next to a checkpoint's own entry: named, and NumPy's advice to
    # unpickle is not passed on
    sneaky = tmp_path / "sneaky.npz"
    meta = '{"format": "tinygrad_lite.checkpoint", "version": 1, "state": {}}'
    np.savez(sneaky, __meta__=np.array(meta), x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=f"'{sneaky}' has an object array .* in entry 'x'") \
            as info:
        load_checkpoint(sneaky)
    assert "allow_pickle" not in str(info.value)
    broken = tmp_path / "broken.npz"
    np.savez(broken, __meta__=np.array("{not json"))
    with pytest.raises(ValueError, match=f"'{broken}' has a '__meta__' entry that is not"):
        load_checkpoint(broken)


def _snapshot(model, opt, sched):
    return weights(model), opt.state_dict(), sched.state_dict()


def _assert_unchanged(before, model, opt, sched):
    w, o, s = before
    for k, v in weights(model).items():
        np.testing.assert_array_equal(v, w[k], err_msg=k)
    _same_tree(o, opt.state_dict())
    assert sched.state_dict() == s


def test_resuming_another_models_checkpoint_names_the_differences_and_changes_nothing(
        tmp_path):
    train, _ = loaders(n_train=64)
    model = mlp()
    opt = sgd(model)
    path = str(tmp_path / "c.npz")
    fit(model, train, opt, scheduler=optim.lr_scheduler.StepLR(opt, 1), progress=False,
        checkpoint_path=path)

    # The same first layer, another classifier (3 classes): old code copied layer 0 and then
    # refused layer 3, leaving a model half from the checkpoint.
    tl.manual_seed(1)
    other = nn.Sequential(nn.Linear(FEATURES, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    other_opt = sgd(other)
    other_sched = optim.lr_scheduler.StepLR(other_opt, 1)
    x, y = blobs(64, 1)
    fit(other, Batches(x, y % 3, 32), other_opt, scheduler=other_sched, progress=False)
    before = _snapshot(other, other_opt, other_sched)
    rng_before = tl.random.generator().bit_generator.state
    with pytest.raises(ValueError, match=r"holds another model's weights: size mismatch for "
                                         r"'3.weight': copying a param with shape \(4, 16\) "
                                         r".*shape in current model is \(3, 16\); size "
                                         r"mismatch for '3.bias'.*; nothing was loaded"):
        fit(other, Batches(x, y % 3, 32), other_opt, epochs=2, scheduler=other_sched,
            progress=False, resume_from=path)
    _assert_unchanged(before, other, other_opt, other_sched)
    assert tl.random.generator().bit_generator.state == rng_before

    # Another architecture: the keys that differ are listed.
    tl.manual_seed(2)
    deeper = nn.Sequential(nn.Linear(FEATURES, 16), nn.ReLU(), nn.Dropout(0.2),
                           nn.Linear(16, CLASSES), nn.ReLU(), nn.Linear(CLASSES, CLASSES))
    deeper_opt = sgd(deeper)
    deeper_sched = optim.lr_scheduler.StepLR(deeper_opt, 1)
    before = _snapshot(deeper, deeper_opt, deeper_sched)
    with pytest.raises(ValueError, match=r"Missing key\(s\) in state_dict: '5.weight', '5.bias'"):
        fit(deeper, train, deeper_opt, epochs=2, scheduler=deeper_sched, progress=False,
            resume_from=path)
    _assert_unchanged(before, deeper, deeper_opt, deeper_sched)

    # The same model with another optimiser: refused before the weights are touched.
    tl.manual_seed(3)
    same = mlp(3)
    adam = optim.Adam(same.parameters(), lr=1e-3)
    adam_sched = optim.lr_scheduler.StepLR(adam, 1)
    before = _snapshot(same, adam, adam_sched)
    with pytest.raises(ValueError, match="saved with a SGD optimiser, this run has a Adam"):
        fit(same, train, adam, epochs=2, scheduler=adam_sched, progress=False,
            resume_from=path)
    _assert_unchanged(before, same, adam, adam_sched)

    # A checkpoint that fit did not write.
    save_checkpoint(tmp_path / "other.npz", {"model": same.state_dict()})
    with pytest.raises(ValueError, match=r"is not a checkpoint that fit wrote \(it lacks "
                                         r"\['optimizer', 'scheduler'"):
        fit(same, train, adam, scheduler=adam_sched, progress=False,
            resume_from=str(tmp_path / "other.npz"))
    _assert_unchanged(before, same, adam, adam_sched)


# ----- issue 22: the writer leaves the process umask alone -----
def test_checkpoint_mode_is_what_open_gives_and_umask_is_never_set(tmp_path, monkeypatch):
    old = os.umask(0o027)  # the test's own setting, restored below
    try:
        def no_umask(*args):
            raise AssertionError("os.umask was called: it sets the mask for every thread")

        monkeypatch.setattr(os, "umask", no_umask)
        path = save_checkpoint(tmp_path / "c.npz", {"w": tl.ones(2)})
        with open(tmp_path / "reference", "w"):
            pass
        mode = os.stat(path).st_mode & 0o777
        assert mode == os.stat(tmp_path / "reference").st_mode & 0o777 == 0o640
        assert load_checkpoint(path)["w"].tolist() == [1.0, 1.0]
        assert sorted(os.listdir(tmp_path)) == ["c.npz", "reference"]
    finally:
        monkeypatch.undo()
        os.umask(old)
