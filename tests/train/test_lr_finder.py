"""train.lr_find, the learning-rate range test: its suggestion lies below the learning rate
where gradient descent is known to diverge and within a decade of the best one, the schedule
and the smoothing are as documented, everything it touches is restored bit for bit (a run
continued after it ends where one without it does), NaN losses end it without being recorded,
bad arguments are refused by name, and the plot is written.

The known problem: linear regression with an MSE loss and full-batch gradient descent. Its
loss is a quadratic with Hessian H = 2 X^T X / n (bias column included); gradient descent
with lr converges iff lr < 2 / L, L the largest eigenvalue of H, and lr = 1 / L is the best
single rate along that direction. The features are centred and whitened, then scaled by s,
so that H = diag(2 s^2, ..., 2 s^2, 2) and L = 2 max(s^2, 1)."""
import math

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import nn, optim
from tinygrad_lite.nn import functional as F
from tinygrad_lite.train.lr_finder import (MINIMUM_OVER_10, STEEPEST, LRFinderResult,
                                           lr_find)

FEATURES, N = 4, 16


def regression(scale, seed=0):
    """(x, y, L): centred, whitened features times `scale` (x^T x / n = scale^2 I) and exact
    linear targets; L is the largest eigenvalue of the MSE loss's Hessian."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, FEATURES))
    x -= x.mean(axis=0)  # a centred x decouples the bias (its Hessian entry is 2)
    values, vectors = np.linalg.eigh(x.T @ x / N)
    x = scale * x @ vectors @ np.diag(values ** -0.5) @ vectors.T
    y = x @ rng.standard_normal((FEATURES, 1)) + 0.5
    hessian = 2 * np.hstack([x, np.ones((N, 1))]).T @ np.hstack([x, np.ones((N, 1))]) / N
    return x.astype(np.float32), y.astype(np.float32), np.linalg.eigvalsh(hessian).max()


@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_the_suggestion_is_below_divergence_and_within_a_decade_of_the_best_lr(scale):
    x, y, L = regression(scale)
    assert math.isclose(L, 2 * max(scale ** 2, 1), rel_tol=1e-9)
    tl.manual_seed(0)
    model = nn.Linear(FEATURES, 1)
    full_batch = [(tl.Tensor(x), tl.Tensor(y))]
    result = lr_find(model, full_batch, optim.SGD(model.parameters(), lr=0.1),
                     loss_fn=F.mse_loss, start_lr=1e-6, end_lr=1e3)
    diverges, best = 2 / L, 1 / L
    assert result.stop_reason == "diverged" and result.lrs[-1] > diverges  # not stopped early
    assert result.method == STEEPEST
    assert best / 10 <= result.suggestion < diverges


def test_the_schedule_is_exponential_and_the_smoothing_a_bias_corrected_average():
    x, y, _ = regression(1.0)
    tl.manual_seed(0)
    model = nn.Linear(FEATURES, 1)
    result = lr_find(model, [(tl.Tensor(x), tl.Tensor(y))], optim.SGD(model.parameters()),
                     loss_fn=F.mse_loss, start_lr=1e-4, end_lr=1e-2, num_iter=9, beta=0.9)
    assert result.stop_reason == "num_iter" and len(result.lrs) == 9
    np.testing.assert_allclose(result.lrs, 1e-4 * 10 ** (np.arange(9) / 4), rtol=1e-12)
    average, expected = 0.0, []
    for i, loss in enumerate(result.losses):
        average = 0.9 * average + 0.1 * loss
        expected.append(average / (1 - 0.9 ** (i + 1)))
    np.testing.assert_allclose(result.smoothed_losses, expected, rtol=1e-12)
    assert result.smoothed_losses[0] == result.losses[0]  # the correction: no pull towards 0


def test_every_parameter_group_gets_the_scheduled_lr_and_its_own_back():
    tl.manual_seed(0)
    model = nn.Sequential(nn.Linear(FEATURES, 3), nn.Linear(3, 1))
    opt = optim.SGD([{"params": model[0].parameters(), "lr": 0.05},
                     {"params": model[1].parameters()}], lr=0.2)
    seen = []

    def loss_fn(output, target):
        seen.append([g["lr"] for g in opt.param_groups])
        return F.mse_loss(output, target)

    x, y, _ = regression(1.0)
    result = lr_find(model, [(tl.Tensor(x), tl.Tensor(y))], opt, loss_fn=loss_fn,
                     start_lr=1e-5, end_lr=1e-3, num_iter=5)
    assert seen == [[lr, lr] for lr in result.lrs]
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.2]


# ----- nothing changes -----
CLASSES = 3


class ShuffledBatches:
    """A loader with its own generator (as DataLoader(generator=...) has), which lr_find
    advances and must put back."""

    def __init__(self, seed=0, n=24, batch=8):
        rng = np.random.default_rng(seed)
        self.x = rng.standard_normal((n, FEATURES)).astype(np.float32)
        self.y = rng.integers(0, CLASSES, n).astype(np.int64)
        self.batch, self.generator = batch, np.random.default_rng(seed + 1)

    def __iter__(self):
        order = self.generator.permutation(len(self.x))
        for i in range(0, len(order), self.batch):
            idx = order[i:i + self.batch]
            yield tl.Tensor(self.x[idx]), tl.Tensor(self.y[idx])


def net():
    """Dropout (draws from the package's generator) and batch norm (running buffers)."""
    return nn.Sequential(nn.Linear(FEATURES, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.3),
                         nn.Linear(8, CLASSES))


def trained(rule):
    """A model, optimiser and loader after a few steps: the optimiser has state."""
    tl.manual_seed(0)
    np.random.seed(0)
    model, loader = net(), ShuffledBatches()
    opt = (optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
           if rule == "sgd" else optim.Adam(model.parameters(), lr=1e-2))
    steps(model, opt, loader, 3)
    return model, opt, loader


def steps(model, opt, loader, n):
    model.train()
    done = 0
    while done < n:
        for x, y in loader:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            done += 1
            if done == n:
                return


def everything(model, opt, loader):
    """A copy of every state lr_find may touch, as NumPy values and plain data."""
    state = opt.state_dict()
    return {
        "tensors": {k: v.numpy().copy() for k, v in list(model.named_parameters())
                    + list(model.named_buffers())},
        "grads": {k: None if p.grad is None else p.grad.numpy().copy()
                  for k, p in model.named_parameters()},
        "modes": [m.training for m in model.modules()],
        "optimizer": {i: {k: v.numpy().copy() if hasattr(v, "numpy") else v
                          for k, v in s.items()} for i, s in state["state"].items()},
        "groups": [{k: v for k, v in g.items()} for g in state["param_groups"]],
        "rng": (tl.random.generator().bit_generator.state, loader.generator.bit_generator.state,
                np.random.get_state()[1].copy(), np.random.get_state()[2]),
    }


def assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            assert a[key].dtype == b[key].dtype and np.array_equal(a[key], b[key]), key
        elif isinstance(a[key], dict):
            assert_same(a[key], b[key])
        elif isinstance(a[key], (list, tuple)):
            assert len(a[key]) == len(b[key])
            for x, y in zip(a[key], b[key]):
                assert_same({"v": x}, {"v": y}) if not isinstance(x, dict) else assert_same(x, y)
        else:
            assert a[key] == b[key], key


@pytest.mark.parametrize("rule", ["sgd", "adam"])
def test_everything_is_restored_bit_for_bit(rule):
    model, opt, loader = trained(rule)
    x, y = next(iter(ShuffledBatches(seed=7)))
    F.cross_entropy(model(x), y).backward()  # a pending gradient, which must survive too
    model[1].eval()  # mixed modes, restored per module
    grads = [p.grad for p in model.parameters()]
    before = everything(model, opt, loader)
    assert before["optimizer"] and any(g is not None for g in before["grads"].values())

    def loss_fn(output, target):  # also advances NumPy's global generator
        np.random.standard_normal(3)
        return F.cross_entropy(output, target)

    result = lr_find(model, loader, opt, loss_fn=loss_fn, num_iter=20, start_lr=1e-4,
                     end_lr=10.0)
    assert len(result.lrs) >= 5
    assert_same(everything(model, opt, loader), before)
    assert all(p.grad is g for p, g in zip(model.parameters(), grads))  # the same objects


@pytest.mark.parametrize("rule", ["sgd", "adam"])
def test_training_after_lr_find_continues_as_if_it_never_ran(rule):
    model, opt, loader = trained(rule)
    lr_find(model, loader, opt, num_iter=10, start_lr=1e-3, end_lr=1.0)
    steps(model, opt, loader, 4)
    twin, twin_opt, twin_loader = trained(rule)
    steps(twin, twin_opt, twin_loader, 4)
    assert_same(everything(model, opt, loader), everything(twin, twin_opt, twin_loader))


def test_a_data_loaders_generators_are_restored_and_its_workers_stopped():
    import threading
    from tinygrad_lite.data import DataLoader, RandomHorizontalFlip, TensorDataset
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 4, 4, 3)).astype(np.uint8)
    labels = rng.integers(0, CLASSES, 8).astype(np.int64)
    flip = RandomHorizontalFlip(generator=np.random.default_rng(2))
    loader = DataLoader(TensorDataset(images, labels, layout="NHWC"), batch_size=4,
                        shuffle=True, transform=flip, num_workers=1,
                        generator=np.random.default_rng(1))
    tl.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, CLASSES))
    states = [g.bit_generator.state for g in (loader.generator, flip.generator,
                                              tl.random.generator())]
    threads = threading.active_count()
    result = lr_find(model, loader, optim.SGD(model.parameters()), num_iter=5, end_lr=1e-3)
    assert len(result.lrs) == 5  # two batches per pass: the loader was cycled mid-epoch
    assert [g.bit_generator.state for g in (loader.generator, flip.generator,
                                            tl.random.generator())] == states
    assert threading.active_count() == threads


# ----- stopping -----
def counting_loss(nan_from):
    """An MSE that becomes NaN from call `nan_from` (1-based) on; returns (loss_fn, calls)."""
    calls = []

    def loss_fn(output, target):
        calls.append(1)
        loss = F.mse_loss(output, target)
        return loss * math.nan if len(calls) >= nan_from else loss

    return loss_fn, calls


def test_a_nan_loss_ends_the_test_unrecorded_and_unstepped():
    x, y, _ = regression(1.0)
    tl.manual_seed(0)
    model = nn.Linear(FEATURES, 1)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    before = everything(model, opt, ShuffledBatches())
    loss_fn, calls = counting_loss(nan_from=8)
    result = lr_find(model, [(tl.Tensor(x), tl.Tensor(y))], opt, loss_fn=loss_fn,
                     start_lr=1e-5, end_lr=1e-1, num_iter=50)
    assert len(calls) == 8 and result.stop_reason == "non-finite loss"
    assert len(result.lrs) == len(result.losses) == len(result.smoothed_losses) == 7
    assert np.isfinite(result.losses).all() and np.isfinite(result.smoothed_losses).all()
    assert result.method == MINIMUM_OVER_10 or result.method == STEEPEST
    assert_same(everything(model, opt, ShuffledBatches()), before)


def test_a_nan_at_the_first_iteration_is_an_error_and_changes_nothing():
    x, y, _ = regression(1.0)
    tl.manual_seed(0)
    model = nn.Linear(FEATURES, 1)
    opt = optim.SGD(model.parameters(), lr=0.1)
    before = everything(model, opt, ShuffledBatches())
    with pytest.raises(ValueError, match="lr_find: the loss was nan at the first iteration"):
        lr_find(model, [(tl.Tensor(x), tl.Tensor(y))], opt, loss_fn=counting_loss(1)[0])
    assert_same(everything(model, opt, ShuffledBatches()), before)


def test_the_loader_is_cycled_when_it_runs_out():
    x, y, _ = regression(1.0)
    batches = [(tl.Tensor(x[:8]), tl.Tensor(y[:8])), (tl.Tensor(x[8:]), tl.Tensor(y[8:]))]
    seen = []

    def loss_fn(output, target):
        seen.append(output.shape[0] and float(target.numpy()[0, 0]))
        return F.mse_loss(output, target)

    tl.manual_seed(0)
    model = nn.Linear(FEATURES, 1)
    result = lr_find(model, batches, optim.SGD(model.parameters()), loss_fn=loss_fn,
                     start_lr=1e-6, end_lr=1e-5, num_iter=7)
    assert len(result.lrs) == 7 and result.stop_reason == "num_iter"
    assert seen == [float(y[0, 0]), float(y[8, 0])] * 3 + [float(y[0, 0])]


def test_an_empty_loader_is_an_error():
    tl.manual_seed(0)
    model = nn.Linear(FEATURES, 1)
    with pytest.raises(ValueError, match="lr_find: the loader yielded no batches"):
        lr_find(model, [], optim.SGD(model.parameters()))


# ----- the suggestion's rules, on given curves -----
def test_the_steepest_descent_before_the_minimum_is_suggested():
    lrs = list(np.logspace(-5, 0, 41))
    # falls fastest at lr 1e-3 (a logistic step in log10(lr)), bottoms out, explodes
    log_lr = np.log10(lrs)
    curve = list(1 + 2 / (1 + np.exp(4 * (log_lr + 3)))
                 + np.where(log_lr > -1, 50 * (log_lr + 1) ** 2, 0))
    result = LRFinderResult(lrs, curve, curve, "diverged", 0.98)
    assert result.method == STEEPEST and math.isclose(result.suggestion, 1e-3, rel_tol=1e-9)


def test_the_noisy_start_of_the_average_is_not_read():
    lrs = list(np.logspace(-7, 1, 100))
    log_lr = np.log10(lrs)
    # the first averages of a few mini-batches settle quickly (steeper per decade than the
    # real drop, centred at lr 1e-2, is)
    settling = 0.2 * np.exp(-np.arange(100) / 2)
    curve = list(1 + settling + 0.6 / (1 + np.exp(3 * (log_lr + 2))) - 0.6)
    result = LRFinderResult(lrs, curve, curve, "num_iter", 0.98)
    assert result.method == STEEPEST and 10 ** -2.2 < result.suggestion < 10 ** -1.8


def test_a_short_or_never_falling_curve_falls_back_to_a_tenth_of_the_minimum():
    short = LRFinderResult([1e-3, 1e-2, 1e-1], [1.0, 0.8, 5.0], [1.0, 0.9, 2.0], "diverged", 0.98)
    assert short.method == MINIMUM_OVER_10 and math.isclose(short.suggestion, 1e-3)
    rising = LRFinderResult(list(np.logspace(-4, -1, 8)), [1.0] * 8, list(1 + np.arange(8.0)),
                            "diverged", 0.98)
    assert rising.method == MINIMUM_OVER_10 and math.isclose(rising.suggestion, 1e-5)
    assert "minimum of the smoothed loss / 10" in repr(rising)


# ----- arguments and the plot -----
@pytest.mark.parametrize("kwargs, match", [
    (dict(start_lr=0.0), "start_lr must be a finite number > 0"),
    (dict(end_lr=math.inf), "end_lr must be a finite number > 0"),
    (dict(start_lr=1.0, end_lr=0.1), "start_lr must be below end_lr"),
    (dict(num_iter=1), "num_iter must be an int >= 2"),
    (dict(num_iter=10.0), "num_iter must be an int >= 2"),
    (dict(beta=1.0), "beta .* must be in \\[0, 1\\)"),
    (dict(diverge_factor=1.0), "diverge_factor must be a number > 1"),
])
def test_bad_arguments_are_refused_by_name(kwargs, match):
    tl.manual_seed(0)
    model = nn.Linear(FEATURES, 1)
    with pytest.raises(ValueError, match=match):
        lr_find(model, [], optim.SGD(model.parameters()), **kwargs)


def test_plot_writes_a_png_with_the_suggestion(tmp_path):
    from matplotlib.image import imread
    x, y, _ = regression(1.0)
    tl.manual_seed(0)
    model = nn.Linear(FEATURES, 1)
    result = lr_find(model, [(tl.Tensor(x), tl.Tensor(y))], optim.SGD(model.parameters()),
                     loss_fn=F.mse_loss, start_lr=1e-6, end_lr=1e3)
    path = result.plot(tmp_path / "lr_find.png")
    assert path == tmp_path / "lr_find.png" and imread(path).shape[2] in (3, 4)
