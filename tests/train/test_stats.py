"""train/stats.py: activation statistics (against NumPy on the same weights), gradient
statistics (against a hand-computed gradient), the promise to leave the model as it was (modes,
hooks, .grad, buffers, random state, no graph, also after an exception), the ActivationStats
and UpdateRatio callbacks inside fit (a run with them ends bit for bit where one without them
does), and dead_units. Tiny models and data: the file runs in a few seconds once the kernels
are compiled."""
import gc
import warnings
import weakref

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import nn, optim
from tinygrad_lite.nn import functional as F
from tinygrad_lite.train import (LambdaCallback, fit, load_checkpoint, save_checkpoint)
from tinygrad_lite.train.callbacks import History
from tinygrad_lite.train.stats import (ActivationStats, UpdateRatio, activation_stats,
                                       dead_units, update_ratios)

PNG = b"\x89PNG\r\n\x1a\n"


def set_params(model, seed, scale=1.0):
    """Every parameter from N(0, scale^2), by NumPy: the expected values below use the same."""
    rng = np.random.default_rng(seed)
    with tl.no_grad():
        for p in model.parameters():
            p.copy_(tl.Tensor(rng.standard_normal(p.shape) * scale, dtype=p.dtype))


def arr(t):
    return t.numpy().astype(np.float64)


# ----- activation_stats: the numbers -----
def three_layer():
    """Linear -> Tanh -> Linear -> ReLU -> Linear -> Sigmoid, weights large enough (std 2)
    that some tanh and sigmoid outputs saturate and some ReLU outputs are 0."""
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4), nn.ReLU(),
                          nn.Linear(4, 2), nn.Sigmoid())
    set_params(model, 1, scale=2.0)
    return model


def expected_activations(model, x):
    """Each module's output computed by NumPy (float64) from the parameters' arrays."""
    outs, h = [], x.astype(np.float64)
    for layer in model:
        if isinstance(layer, nn.Linear):
            h = h @ arr(layer.weight).T + arr(layer.bias)
        elif isinstance(layer, nn.Tanh):
            h = np.tanh(h)
        elif isinstance(layer, nn.ReLU):
            h = np.maximum(h, 0.0)
        else:
            h = 1 / (1 + np.exp(-h))
        outs.append(h)
    return outs


def test_stats_equal_numpys_on_the_same_weights():
    model = three_layer()
    x = np.random.default_rng(2).standard_normal((30, 3)).astype(np.float32)
    rows = activation_stats(model, x, bins=7)
    assert [r["name"] for r in rows] == [str(i) for i in range(6)]  # every leaf, in order
    assert [r["module"] for r in rows] == ["Linear", "Tanh", "Linear", "ReLU", "Linear",
                                           "Sigmoid"]
    for row, want in zip(rows, expected_activations(model, x)):
        assert row["shape"] == want.shape
        # float32 forward vs float64 NumPy: agreement to float32 rounding
        np.testing.assert_allclose(row["mean"], want.mean(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(row["std"], want.std(), rtol=1e-5, atol=1e-6)
        assert row["frac_zero"] == np.mean(want == 0)
        assert row["frac_nonfinite"] == 0.0
        # the histogram spans min..max (negatives included) and counts every element once
        assert len(row["edges"]) == 8 and len(row["counts"]) == 7
        np.testing.assert_allclose([row["edges"][0], row["edges"][-1]],
                                   [want.min(), want.max()], rtol=1e-5, atol=1e-6)
        assert row["counts"].sum() == want.size
        np.testing.assert_array_equal(row["counts"], np.histogram(want, 7)[0])
        assert row["grad"] is None  # no backward pass was asked for
    tanh, relu, sig = expected_activations(model, x)[1::2]
    assert rows[1]["frac_saturated"] == np.mean(np.abs(tanh) > 0.99) > 0
    assert rows[3]["frac_zero"] == np.mean(relu == 0) > 0
    assert rows[5]["frac_saturated"] == np.mean((sig < 0.01) | (sig > 0.99)) > 0
    assert rows[0]["edges"][0] < 0  # a Linear's output has negatives: they are in the range
    for i in (0, 2, 3, 4):  # Linear and ReLU outputs cannot saturate
        assert rows[i]["frac_saturated"] is None


def test_module_selection_and_fixed_edges():
    model = three_layer()
    x = np.random.default_rng(3).standard_normal((20, 3)).astype(np.float32)
    by_type = activation_stats(model, x, modules=(nn.Tanh, nn.Sigmoid))
    assert [r["name"] for r in by_type] == ["1", "5"]
    by_name = activation_stats(model, x, modules=["3", model[0]])
    assert [r["name"] for r in by_name] == ["0", "3"]  # forward order, not the order given
    edges = np.linspace(-0.5, 0.5, 5)  # narrower than the data: the rest goes to the ends
    row = activation_stats(model, x, modules="0", bins=edges)[0]
    want = expected_activations(model, x)[0]
    np.testing.assert_array_equal(row["edges"], edges)
    np.testing.assert_array_equal(row["counts"],
                                  np.histogram(np.clip(want, -0.5, 0.5), edges)[0])
    assert row["counts"].sum() == want.size
    with pytest.raises(ValueError, match="activation_stats: the model has no module named"):
        activation_stats(model, x, modules=["7"])
    with pytest.raises(ValueError, match="activation_stats: bins"):
        activation_stats(model, x, bins=[1.0, 0.0])
    with pytest.raises(ValueError, match="pass both y and loss_fn"):
        activation_stats(model, x, y=np.zeros((20, 2), np.float32))


def test_gradient_stats_equal_a_hand_computed_gradient():
    """Linear(3, 4) -> ReLU -> Linear(4, 2) with MSE: d loss / d output of each module by
    hand, in NumPy."""
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    set_params(model, 4)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((10, 3)).astype(np.float32)
    y = rng.standard_normal((10, 2)).astype(np.float32)
    rows = activation_stats(model, x, y=y, loss_fn=F.mse_loss, bins=6)
    w1, b1, w2, b2 = (arr(p) for p in model.parameters())
    pre = x.astype(np.float64) @ w1.T + b1
    out = np.maximum(pre, 0) @ w2.T + b2
    g_out = 2 * (out - y) / out.size       # mean over every element
    g_relu = g_out @ w2                    # d loss / d ReLU output
    g_pre = g_relu * (pre > 0)             # through the ReLU (gradient 0 at 0)
    for row, g in zip(rows, (g_pre, g_relu, g_out)):
        stats = row["grad"]
        np.testing.assert_allclose(stats["mean"], g.mean(), rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(stats["std"], g.std(), rtol=1e-4, atol=1e-7)
        assert stats["frac_zero"] == np.mean(g == 0)
        assert stats["counts"].sum() == g.size
        np.testing.assert_allclose([stats["edges"][0], stats["edges"][-1]],
                                   [g.min(), g.max()], rtol=1e-4, atol=1e-7)
    assert rows[0]["grad"]["frac_zero"] == np.mean(pre <= 0) > 0  # dead inputs: no gradient


# ----- activation_stats: leaving the model as it was -----
class Boom(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom")


def snapshot(model):
    """What activation_stats must not change: modes, hook tables, .grad objects and values,
    buffers, random states."""
    return {
        "modes": [m.training for m in model.modules()],
        "hooks": [(list(m._forward_hooks), list(m._forward_pre_hooks)) for m in model.modules()],
        "grads": [(p.grad, None if p.grad is None else p.grad.numpy().copy())
                  for p in model.parameters()],
        "buffers": [b.numpy().copy() for b in model.buffers()],
        "rng": (tl.random.generator().bit_generator.state, np.random.get_state()[1].copy()),
    }


def assert_unchanged(model, before):
    after = snapshot(model)
    assert after["modes"] == before["modes"]
    assert after["hooks"] == before["hooks"]
    for (g0, v0), (g1, _) in zip(before["grads"], after["grads"]):
        assert g1 is g0  # the same object (or None) ...
        if g0 is not None:
            np.testing.assert_array_equal(g1.numpy(), v0)  # ... with the same values
    for b0, b1 in zip(before["buffers"], after["buffers"]):
        np.testing.assert_array_equal(b0, b1)
    assert after["rng"][0] == before["rng"][0]
    np.testing.assert_array_equal(after["rng"][1], before["rng"][1])


def bn_dropout_model(outputs=2):
    tl.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(6, outputs))


def test_model_is_left_as_it_was_and_no_graph_survives():
    model = bn_dropout_model()
    model[3].eval()  # a mixed mode: only dropout in eval
    x = np.random.default_rng(6).standard_normal((8, 3)).astype(np.float32)
    y = np.random.default_rng(7).standard_normal((8, 2)).astype(np.float32)
    F.mse_loss(model(tl.Tensor(x)), tl.Tensor(y)).backward()  # some .grad to keep
    model[4].bias.grad = None                                 # and one None
    user_hook = model[2].register_forward_hook(lambda m, a, o: None)
    np.random.seed(11)
    before = snapshot(model)
    xt = tl.Tensor(x, requires_grad=True)

    seen = []  # a weak reference to a graph node made during the measurement
    probe = model[4].register_forward_hook(lambda m, a, o: seen.append(weakref.ref(o.grad_fn)))
    before["hooks"] = snapshot(model)["hooks"]
    rows = activation_stats(model, xt, y=y, loss_fn=F.mse_loss)
    probe.remove()
    before["hooks"] = snapshot(model)["hooks"]  # only the user's hook is left
    gc.collect()
    assert seen and seen[0]() is None  # the graph died with the call
    assert all(r["grad"] is not None for r in rows)
    assert xt.grad is None  # the caller's x is not differentiated
    assert_unchanged(model, before)
    # the same checks have teeth: a plain training-mode forward moves the BN statistics
    model(tl.Tensor(x))
    assert not np.array_equal(model[1].running_mean.numpy(), before["buffers"][0])
    user_hook.remove()


@pytest.mark.parametrize("where", ["forward", "loss"])
def test_model_is_restored_after_an_exception(where):
    model = bn_dropout_model()
    if where == "forward":
        model.add_module("5", Boom())
    x = np.random.default_rng(6).standard_normal((8, 3)).astype(np.float32)
    y = np.zeros((8, 2), np.float32)
    F.mse_loss(model[:5](tl.Tensor(x)) if where == "forward" else model(tl.Tensor(x)),
               tl.Tensor(y)).backward()
    model.eval()
    model[1].train()

    def bad_loss(out, target):
        raise ValueError("bad loss")

    before = snapshot(model)
    with pytest.raises((RuntimeError, ValueError), match="boom|bad loss"):
        activation_stats(model, x, y=y, loss_fn=F.mse_loss if where == "forward" else bad_loss)
    assert_unchanged(model, before)


# ----- ActivationStats in fit -----
class Batches:
    def __init__(self, x, y, batch_size, seed=0):
        self.x, self.y, self.batch_size = x, y, batch_size
        self.generator = np.random.default_rng(seed)

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __iter__(self):
        order = self.generator.permutation(len(self.x))
        for i in range(0, len(order), self.batch_size):
            yield tl.Tensor(self.x[order[i:i + self.batch_size]]), \
                tl.Tensor(self.y[order[i:i + self.batch_size]])


def regression_data(n=48, seed=8):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3)).astype(np.float32)
    return x, (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype(np.float32)


def run(callbacks, epochs=2, lr=0.05, **kw):
    model = bn_dropout_model(outputs=1)
    x, y = regression_data()
    history = fit(model, Batches(x, y, 16), optim.SGD(model.parameters(), lr=lr, momentum=0.9),
                  loss_fn=F.mse_loss, epochs=epochs, callbacks=callbacks, progress=False, **kw)
    return model, history


def test_activation_stats_callback_records_and_plots(tmp_path):
    x, y = regression_data(12, seed=9)
    stats = ActivationStats((x, y), bins=10)
    model, history = run([stats])
    assert [m["iteration"] for m in stats.measurements] == [0, 3, 6]  # start + per epoch
    assert [m["epochs_done"] for m in stats.measurements] == [0, 1, 2]
    assert stats.layers() == ["0", "1", "2", "3", "4"]
    for m in stats.measurements:
        for row in m["rows"]:
            assert row["counts"].sum() == row["shape"][0] * row["shape"][1]
            assert row["grad"] is not None and row["grad"]["counts"].shape == (10,)
    # fixed bins: one set of edges per layer, the ReLU's starting at 0
    assert stats.edges["output:2"][0] == 0.0 and len(stats.edges["output:2"]) == 11
    it, std = stats.series("1", "std")
    np.testing.assert_array_equal(it, [0, 3, 6])
    # measured in training mode: before any step (gamma 1, beta 0) the BN output is the
    # batch normalised by its own statistics (eval mode would use running ones, 0 and 1)
    assert abs(stats.series("1", "mean")[1][0]) < 1e-6 and abs(std[0] - 1) < 1e-3
    # the state a checkpoint carries round-trips
    path = save_checkpoint(tmp_path / "s.npz", {"stats": stats.state_dict()})
    again = ActivationStats((x, y))
    again.load_state_dict(load_checkpoint(path)["stats"])
    assert again.layers() == stats.layers()
    np.testing.assert_array_equal(again.series("2", "counts")[1], stats.series("2", "counts")[1])
    np.testing.assert_array_equal(again.series("4", "mean", grad=True)[1],
                                  stats.series("4", "mean", grad=True)[1])
    for grad in (False, True):
        out = stats.plot(tmp_path / f"stats_{grad}.png", grad=grad)
        assert open(out, "rb").read(8) == PNG


def test_activation_stats_every_k_iterations():
    x, _ = regression_data(8, seed=9)
    stats = ActivationStats(x, every=2, modules=nn.ReLU)
    run([stats])  # 3 batches an epoch, 6 in all
    assert [m["iteration"] for m in stats.measurements] == [0, 2, 4, 6]
    assert all(r["grad"] is None for m in stats.measurements for r in m["rows"])
    with pytest.raises(ValueError, match="no gradient statistics"):
        stats.plot("unused.png", grad=True)
    with pytest.raises(ValueError, match="ActivationStats: every"):
        ActivationStats(x, every=0)


def test_measuring_does_not_disturb_training():
    """Dropout draws from the generator and training-mode BN updates its running statistics:
    a run with the callbacks ends bit for bit where one without them does."""
    x, y = regression_data(12, seed=9)
    np.random.seed(3)
    plain, h_plain = run([])
    rng_plain = (tl.random.generator().bit_generator.state, np.random.get_state()[1].copy())
    np.random.seed(3)
    watched, h_watched = run([ActivationStats((x, y), every=1), UpdateRatio()])
    assert tl.random.generator().bit_generator.state == rng_plain[0]
    np.testing.assert_array_equal(np.random.get_state()[1], rng_plain[1])
    assert h_watched.batches["loss"] == h_plain.batches["loss"]
    for (k, a), (_, b) in zip(plain.state_dict().items(), watched.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)  # BN buffers too


# ----- dead_units -----
def test_dead_units_finds_a_unit_killed_on_purpose():
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3), nn.ReLU())
    set_params(model, 10)
    bias = arr(model[0].bias)
    bias[2] = -1e3  # never positive: dead
    with tl.no_grad():
        model[0].bias.copy_(tl.Tensor(bias, dtype=tl.float32))
        model[2].bias.fill_(10.0)  # always positive: alive
    rng = np.random.default_rng(12)
    data = [(rng.standard_normal((5, 4)).astype(np.float32), None) for _ in range(4)]
    pre = np.concatenate([d[0] for d in data]) @ arr(model[0].weight).T + arr(model[0].bias)
    assert (pre > 0).any(axis=0).sum() == 5  # the data make the other five units fire
    model.train()
    rows = dead_units(model, data)
    assert rows == [{"name": "1", "units": 6, "dead": 1, "fraction": 1 / 6},
                    {"name": "3", "units": 3, "dead": 0, "fraction": 0.0}]
    assert all(m.training for m in model.modules())
    assert all(not m._forward_hooks for m in model.modules())


def test_dead_units_per_channel_of_a_fused_bn_relu_and_max_batches():
    tl.manual_seed(13)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3, activation="relu"))
    with tl.no_grad():  # channel 1 dead in eval mode (running statistics 0 and 1)
        model[1].bias.copy_(tl.tensor([0.0, -1e3, 0.0]))
    seen = []

    def loader():
        for i in range(5):
            seen.append(i)
            yield tl.randn(2, 2, 4, 4)

    before = [b.numpy().copy() for b in model.buffers()]
    rows = dead_units(model, loader(), max_batches=2)
    assert rows == [{"name": "1", "units": 3, "dead": 1, "fraction": 1 / 3}]
    assert len(seen) <= 3  # stopped after two batches
    for b0, b1 in zip(before, model.buffers()):
        np.testing.assert_array_equal(b0, b1.numpy())
    with pytest.raises(ValueError, match="dead_units: the model has no ReLU"):
        dead_units(nn.Sequential(nn.Linear(2, 2)), [np.zeros((1, 2), np.float32)])


# ----- UpdateRatio -----
def test_update_ratio_is_lr_grad_norm_over_weight_norm_for_sgd(tmp_path):
    """Plain SGD moves W by -lr g: the ratio is lr ||g|| / ||W before||, with W before = W
    after + lr g (float64 model, so the difference loses no digits)."""
    lr = 0.05
    expected = {}

    def by_hand(trainer, batch, logs):
        for name, p in trainer.model.named_parameters():
            g, after = p.grad.numpy(), p.numpy()
            expected.setdefault(name, []).append(
                lr * np.linalg.norm(g) / np.linalg.norm(after + lr * g))

    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    set_params(model, 14)
    x, y = regression_data(24)
    recorder = UpdateRatio()
    history = fit(model, Batches(x.astype(np.float64), y.astype(np.float64), 8),
                  optim.SGD(model.parameters(), lr=lr), loss_fn=F.mse_loss, epochs=2,
                  callbacks=[LambdaCallback(on_batch_end=by_hand), recorder], progress=False)
    ratios = update_ratios(history)
    assert sorted(ratios) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    for name, r in ratios.items():
        assert len(r) == 6
        np.testing.assert_allclose(r, expected[name], rtol=1e-9)
    # a plain list in the History: its state_dict (and so a checkpoint) carries it
    again = History()
    again.load_state_dict(load_checkpoint(save_checkpoint(tmp_path / "h.npz",
                                                          {"h": history.state_dict()}))["h"])
    for name, r in update_ratios(again).items():
        np.testing.assert_array_equal(r, ratios[name])
    assert open(recorder.plot(tmp_path / "ratio.png"), "rb").read(8) == PNG


def test_both_callbacks_continue_across_a_resume(tmp_path):
    """A run stopped after one epoch and resumed from its checkpoint records what the whole
    run records: the update ratios (in the History) and the measurements (the callback's
    state), without a second measurement at the resumed start."""
    x, y = regression_data(12, seed=9)
    ckpt = tmp_path / "c.npz"
    stats_whole = ActivationStats((x, y), bins=8)
    _, whole = run([UpdateRatio(), stats_whole], epochs=2)
    run([UpdateRatio(), ActivationStats((x, y), bins=8)], epochs=1, checkpoint_path=str(ckpt))
    stats_resumed = ActivationStats((x, y), bins=8)
    _, resumed = run([UpdateRatio(), stats_resumed], epochs=2, resume_from=str(ckpt))
    assert update_ratios(resumed).keys() == update_ratios(whole).keys()
    for name, r in update_ratios(whole).items():
        np.testing.assert_array_equal(update_ratios(resumed)[name], r)
    assert [m["iteration"] for m in stats_resumed.measurements] == [0, 3, 6]
    for key in ("std", "counts"):
        np.testing.assert_array_equal(stats_resumed.series("2", key)[1],
                                      stats_whole.series("2", key)[1])


@pytest.mark.parametrize("lr, warns", [(1e-9, "too low"), (3.0, "too high"), (2e-3, None)])
def test_update_ratio_warns_far_outside_the_healthy_band(lr, warns):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, history = run([UpdateRatio(window=3)], epochs=1, lr=lr)
    ours = [str(w.message) for w in caught if "UpdateRatio" in str(w.message)]
    # weights are judged (biases and BN parameters are not): the medians of their first 3
    medians = {k: np.median(v[:3]) for k, v in update_ratios(history).items()
               if k in ("0.weight", "4.weight")}
    if warns is None:
        assert ours == [] and all(1e-5 <= m <= 1e-1 for m in medians.values()), medians
    else:
        assert ours and all(warns in m for m in ours)
        assert len(ours) == len(set(ours)) <= len(medians)  # at most once per parameter
        assert any(not 1e-5 <= m <= 1e-1 for m in medians.values())
