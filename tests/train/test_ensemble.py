"""train.ensemble: Ensemble averages the members' softmax probabilities (its forward gives their
log, which nll_loss, cross_entropy and train.evaluate take), and SnapshotEnsemble saves one
snapshot per warm-restart cycle during fit and builds the ensemble of the last k."""
import os

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import data, nn, optim
from tinygrad_lite.nn import functional as F
from tinygrad_lite.train import LambdaCallback, evaluate, fit, load_checkpoint
from tinygrad_lite.train.ensemble import Ensemble, SnapshotEnsemble


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _net(seed):
    tl.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).double()


X = np.random.default_rng(0).normal(size=(10, 4)) * 3
Y = np.random.default_rng(1).integers(0, 3, 10)


def test_an_ensemble_of_one_model_twice_is_that_models_softmax():
    model = _net(0)
    x = tl.Tensor(X, dtype=tl.float64)
    ref = softmax(model(x).numpy())
    ensemble = Ensemble([model, model])
    np.testing.assert_allclose(ensemble.probs(x).numpy(), ref, rtol=1e-12)
    np.testing.assert_allclose(np.exp(ensemble(x).numpy()), ref, rtol=1e-12)
    np.testing.assert_allclose(Ensemble([model], log=False)(x).numpy(), ref, rtol=1e-12)


def test_an_ensemble_of_two_models_is_the_mean_of_their_softmaxes():
    a, b = _net(1), _net(2)
    x = tl.Tensor(X, dtype=tl.float64)
    ref = (softmax(a(x).numpy()) + softmax(b(x).numpy())) / 2
    assert not np.allclose(softmax(a(x).numpy()), ref, atol=1e-3)  # the members differ
    ensemble = Ensemble([a, b])
    np.testing.assert_allclose(ensemble.probs(x).numpy(), ref, rtol=1e-12)
    np.testing.assert_allclose(ensemble(x).numpy(), np.log(ref), rtol=1e-12)
    np.testing.assert_allclose(ensemble.log_probs(x).numpy(), np.log(ref), rtol=1e-12)
    # stable where a member is very sure: log-probabilities of -1e3 do not underflow to -inf
    with tl.no_grad():
        a[2].bias.copy_(tl.Tensor(np.array([2e3, 0.0, 0.0]), dtype=tl.float64))
    out = Ensemble([a, a])(x).numpy()
    assert np.isfinite(out).all() and out.min() < -500
    # the members are sub-modules: eval() and parameters() reach them
    ensemble.eval()
    assert not a.training and not b[2].training
    assert len(list(ensemble.parameters())) == 8


@pytest.mark.parametrize("loss_fn", [F.nll_loss, F.cross_entropy], ids=["nll", "ce"])
def test_evaluate_reports_the_ensembles_loss_and_accuracy(loss_fn):
    a, b, c = _net(3), _net(4), _net(5)
    x = tl.Tensor(X, dtype=tl.float64)
    p = np.mean([softmax(m(x).numpy()) for m in (a, b, c)], axis=0)
    loader = data.DataLoader(data.TensorDataset(X, Y), batch_size=4)
    loss, accuracy = evaluate(Ensemble([a, b, c]), loader, loss_fn=loss_fn)
    np.testing.assert_allclose(loss, -np.log(p[np.arange(10), Y]).mean(), rtol=1e-10)
    assert accuracy == np.mean(p.argmax(axis=1) == Y)


def test_ensemble_refuses_what_it_cannot_average():
    with pytest.raises(TypeError, match="Ensemble: expected a non-empty list of Modules"):
        Ensemble([])
    with pytest.raises(TypeError, match="Ensemble: expected a non-empty list of Modules"):
        Ensemble([lambda x: x])
    wide = nn.Linear(4, 5).double()
    with pytest.raises(ValueError, match=r"members must give outputs of one shape .*"
                                         r"\[\(10, 3\), \(10, 5\)\]"):
        Ensemble([_net(0), wide])(tl.Tensor(X, dtype=tl.float64))


def _fit_with_snapshots(tmp_path, epochs, callback, scheduler_args=dict(T_0=2)):
    """A short fit under warm restarts; returns the model and its weights after each epoch."""
    model = _net(6)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, **scheduler_args)
    loader = data.DataLoader(data.TensorDataset(X, Y), batch_size=5, shuffle=True)
    weights = {}
    record = LambdaCallback(on_epoch_end=lambda trainer, epoch, logs: weights.__setitem__(
        epoch + 1, {k: v.numpy().copy() for k, v in trainer.model.state_dict().items()}))
    fit(model, loader, opt, epochs=epochs, scheduler=sched, callbacks=[callback, record],
        progress=False, checkpoint_path=str(tmp_path / "run.npz"))  # its state saves too
    return model, weights


def test_snapshot_ensemble_saves_one_snapshot_per_cycle_and_ensembles_the_last_k(tmp_path):
    snapshots = SnapshotEnsemble(tmp_path / "snaps", k=2)  # cycles from the scheduler: 2 epochs
    model, weights = _fit_with_snapshots(tmp_path, 7, snapshots)
    assert [os.path.basename(p) for p in snapshots.snapshots] == [
        "snapshot_epoch0002.npz", "snapshot_epoch0004.npz", "snapshot_epoch0006.npz"]
    assert sorted(os.listdir(tmp_path / "snaps")) == [os.path.basename(p)
                                                      for p in snapshots.snapshots]
    for path, epoch in zip(snapshots.snapshots, (2, 4, 6)):
        saved = load_checkpoint(path)
        assert saved["epoch"] == epoch
        for key, value in saved["model"].items():
            np.testing.assert_array_equal(value.numpy(), weights[epoch][key])
    ensemble = snapshots.ensemble(model)  # k=2: epochs 4 and 6
    assert len(ensemble.members) == 2
    for member, epoch in zip(ensemble.members, (4, 6)):
        assert member is not model and not member.training
        for key, value in member.state_dict().items():
            np.testing.assert_array_equal(value.numpy(), weights[epoch][key])
    # a factory builds the members too; k given to the call wins over the callback's
    members = snapshots.ensemble(lambda: _net(9), k=3).members
    assert len(members) == 3
    np.testing.assert_array_equal(members[0][0].weight.numpy(), weights[2]["0.weight"])
    with pytest.raises(ValueError, match="asked for the last 4 snapshots, 3 were saved"):
        snapshots.ensemble(model, k=4)


def test_cycles_that_grow_and_cycles_given_in_epochs(tmp_path):
    growing = SnapshotEnsemble(tmp_path / "grow")
    _fit_with_snapshots(tmp_path, 7, growing, dict(T_0=1, T_mult=2))  # cycles of 1, 2, 4
    assert [os.path.basename(p)[-8:-4] for p in growing.snapshots] == ["0001", "0003", "0007"]
    assert growing.cycle_ends(20) == [1, 3, 7, 15]
    fixed = SnapshotEnsemble(tmp_path / "fixed", cycle=3)
    _fit_with_snapshots(tmp_path, 7, fixed)
    assert [os.path.basename(p)[-8:-4] for p in fixed.snapshots] == ["0003", "0006"]


def test_snapshot_ensemble_needs_to_know_the_cycle(tmp_path):
    model = _net(0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    loader = data.DataLoader(data.TensorDataset(X, Y), batch_size=5)
    with pytest.raises(ValueError, match="must be a CosineAnnealingWarmRestarts, got NoneType"):
        fit(model, loader, opt, callbacks=[SnapshotEnsemble(tmp_path)], progress=False)
    sched = optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=4)
    with pytest.raises(ValueError, match="stepped per batch, so its T_0 counts batches"):
        fit(model, loader, opt, scheduler=sched, scheduler_step="batch",
            callbacks=[SnapshotEnsemble(tmp_path)], progress=False)
    with pytest.raises(ValueError, match="SnapshotEnsemble: cycle must be a positive int"):
        SnapshotEnsemble(tmp_path, cycle=0)
    with pytest.raises(ValueError, match="no snapshot was saved"):
        SnapshotEnsemble(tmp_path, cycle=2).ensemble(model)
