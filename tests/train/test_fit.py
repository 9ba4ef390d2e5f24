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
from tinygrad_lite.train import (Callback, EarlyStopping, LambdaCallback, Trainer, evaluate,
                                 fit, load_checkpoint, moving_average, save_checkpoint,
                                 save_curves)
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
    kwargs = dict(val_loader=val, scheduler=sched, progress=False, checkpoint_path=path)
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
                  scheduler=sched2, progress=False, checkpoint_path=path, resume_from=path)
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
    with pytest.raises(ValueError, match="scheduler_step must be 'batch' or 'epoch', got 'iter'"):
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
        fit(model, train, opt, scheduler=sched)
    history = fit(model, train, opt, epochs=3, val_loader=val, scheduler=sched,
                  scheduler_step="epoch", progress=False)
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
