"""Sanity checks before training (train/sanity.py): every check passes on correct models and
fails, with the number that shows why, on a model broken in the way it is meant to catch;
nothing the user owns (parameters, buffers, gradients, modes, random generators) changes.

Data: 3 well-separated Gaussian blobs in 8 dimensions, 32 samples in 2 batches of 16."""
import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import data, nn, random
from tinygrad_lite.autograd import Function
from tinygrad_lite.nn import functional as F
from tinygrad_lite.train.sanity import check_gradients, sanity_check

CLASSES, FEATURES, SAMPLES, BATCH = 3, 8, 32, 16
CHECKS = ["initial loss", "weight decay", "baseline", "overfit", "batch independence",
          "gradients"]


def blobs(seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((CLASSES, FEATURES)) * 2.0
    y = rng.integers(0, CLASSES, SAMPLES)
    x = centres[y] + rng.standard_normal((SAMPLES, FEATURES))
    return x.astype(np.float32), y.astype(np.int64)


def batches(x, y):
    return [(tl.Tensor(x[i:i + BATCH]), tl.Tensor(y[i:i + BATCH]))
            for i in range(0, len(x), BATCH)]


def mlp(seed=0):
    tl.manual_seed(seed)
    return nn.Sequential(nn.Linear(FEATURES, 16), nn.ReLU(), nn.Linear(16, CLASSES))


def bn_dropout(seed=0):
    tl.manual_seed(seed)
    return nn.Sequential(nn.Linear(FEATURES, 16), nn.BatchNorm1d(16), nn.ReLU(),
                         nn.Dropout(0.2), nn.Linear(16, CLASSES))


# ----- deliberately broken layers -----
class SubtractBatchMean(nn.Module):
    """Centres each feature over the batch in every mode: sample i's output depends on the
    other samples (a batch norm that forgot its eval mode)."""

    def forward(self, x):
        return x - x.mean(axis=0, keepdims=True)


class TransposeReshape(nn.Module):
    """The reshape bug: (N, D) -> (D, N) -> back to (N, D) by reshape, not transpose."""

    def forward(self, x):
        return x.T.contiguous().reshape(x.shape)


class IgnoreInput(nn.Module):
    def forward(self, x):
        return x * 0.0


class ScaleWithWrongBackward(Function):
    """x * w (w per feature) whose backward is off by a factor 2: for w, or for x."""

    def forward(self, x, w, wrong):
        self.x, self.w, self.wrong = x, w, wrong
        return x * w

    def backward(self, g):
        grad_x = g * self.w * (2.0 if self.wrong == "input" else 1.0)
        grad_w = (g * self.x).sum(axis=0) * (2.0 if self.wrong == "weight" else 1.0)
        return grad_x, grad_w


class Scale(nn.Module):
    def __init__(self, features, wrong):
        super().__init__()
        self.scale = nn.Parameter(tl.uniform(features, low=0.5, high=1.5))
        self.wrong = wrong

    def forward(self, x):
        return ScaleWithWrongBackward.apply(x, self.scale, wrong=self.wrong)


def with_first(layer, seed=0):
    """`layer` followed by a correct Linear-ReLU-Linear."""
    tl.manual_seed(seed)
    return nn.Sequential(layer, nn.Linear(FEATURES, 16), nn.ReLU(), nn.Linear(16, CLASSES))


# ----- "nothing changed", bit for bit -----
def snapshot(model, loader_generator=None):
    tensors = {f"param {n}": p for n, p in model.named_parameters()}
    tensors.update({f"buffer {n}": b for n, b in model.named_buffers()})
    tensors.update({f"grad {n}": p.grad for n, p in model.named_parameters()
                    if p.grad is not None})
    state = {name: (t.dtype, t.shape, t.numpy().tobytes()) for name, t in tensors.items()}
    state["modes"] = [(n, m.training) for n, m in model.named_modules()]
    state["tl rng"] = repr(random.generator().bit_generator.state)
    state["numpy rng"] = repr(np.random.get_state())
    if loader_generator is not None:
        state["loader rng"] = repr(loader_generator.bit_generator.state)
    return state


def assert_unchanged(before, after):
    assert before.keys() == after.keys()
    changed = [k for k in before if before[k] != after[k]]
    assert not changed, f"changed by the sanity check: {changed}"


def with_gradients(model, x, y):
    """Give the model .grad values (a user may check mid-run), which must survive."""
    F.cross_entropy(model(tl.Tensor(x[:4])), tl.Tensor(y[:4])).backward()
    return model


# ----- check_gradients -----
@pytest.mark.parametrize("make", [mlp, bn_dropout])
@pytest.mark.parametrize("training", [True, False])
def test_check_gradients_agree_on_correct_models(make, training):
    x, y = blobs()
    model = with_gradients(make(), x, y)
    before = snapshot(model)
    result = check_gradients(model, tl.Tensor(x[:4]), tl.Tensor(y[:4]), max_entries=None,
                             training=training)
    assert_unchanged(before, snapshot(model))
    names = [n for n, _ in model.named_parameters()] + ["input"]
    assert list(result.errors) == names
    assert all(e < 1e-6 for e in result.errors.values()), result
    assert result and result.passed and result.failed() == []
    assert result.entries["0.weight"] == 16 * FEATURES and result.entries["input"] == 4 * FEATURES


@pytest.mark.parametrize("wrong, flagged", [("weight", ["0.scale"]), ("input", ["input"])])
def test_check_gradients_flag_a_wrong_backward(wrong, flagged):
    x, y = blobs()
    model = with_first(Scale(FEATURES, wrong))
    result = check_gradients(model, tl.Tensor(x[:4]), tl.Tensor(y[:4]), max_entries=None)
    assert not result and result.failed() == flagged
    assert result.worst[0] == flagged[0] and result.errors[flagged[0]] > 0.1
    correct = [e for n, e in result.errors.items() if n not in flagged]
    assert max(correct) < 1e-6, result
    assert f"'{flagged[0]}'" in repr(result) and "passed=False" in repr(result)


def test_check_gradients_check_a_seeded_subset_of_big_tensors():
    x, y = blobs()
    model = mlp()
    first = check_gradients(model, tl.Tensor(x[:2]), tl.Tensor(y[:2]), max_entries=5)
    again = check_gradients(model, tl.Tensor(x[:2]), tl.Tensor(y[:2]), max_entries=5)
    assert first.entries == {"0.weight": 5, "0.bias": 5, "2.weight": 5, "2.bias": 3,
                             "input": 5}
    assert first.errors == again.errors and first.passed


def test_check_gradients_reject_bad_arguments():
    x, y = blobs()
    with pytest.raises(ValueError, match="check_gradients: max_entries must be a positive int"):
        check_gradients(mlp(), tl.Tensor(x[:2]), tl.Tensor(y[:2]), max_entries=0)
    with pytest.raises(ValueError, match="check_gradients: eps must be positive, got 0"):
        check_gradients(mlp(), tl.Tensor(x[:2]), tl.Tensor(y[:2]), eps=0)


# ----- sanity_check on correct models -----
@pytest.mark.parametrize("make, mode", [(mlp, "train"), (bn_dropout, "eval")])
def test_a_correct_model_passes_every_check_and_is_left_as_it_was(make, mode, capsys):
    x, y = blobs()
    model = with_gradients(make(), x, y)
    model.train(mode == "train")
    np.random.seed(7)
    before = snapshot(model)
    report = sanity_check(model, batches(x, y), num_classes=CLASSES)
    assert_unchanged(before, snapshot(model))
    assert [c.name for c in report.checks] == CHECKS
    assert report.passed and report and report.failed() == []
    assert all(c.passed is True for c in report.checks), str(report)
    initial = report["initial loss"]
    assert abs(initial.measured - np.log(CLASSES)) < 0.25 * np.log(CLASSES)
    assert report["weight decay"].measured > initial.measured
    assert report["overfit"].measured == 1.0
    assert report["batch independence"].measured == 0.0
    assert report["gradients"].measured < 1e-6
    printed = capsys.readouterr().out.splitlines()
    assert printed == [str(c) for c in report.checks]
    assert all(line.startswith("[PASS] ") for line in printed)
    assert printed[0].startswith(f"[PASS] initial loss {initial.measured:.4f} vs log(3) = "
                                 f"{np.log(3):.4f}")


def test_the_weight_decay_term_is_half_wd_times_the_squared_weights():
    x, y = blobs()
    model = mlp()
    report = sanity_check(model, batches(x, y), weight_decay=0.5, verbose=False)
    squares = sum(float((p.numpy().astype(np.float64) ** 2).sum())
                  for p in model.parameters() if p.ndim == 2)
    assert report["weight decay"].measured - report["initial loss"].measured == \
        pytest.approx(0.25 * squares, rel=1e-5)


def test_a_data_loader_and_its_generator_are_left_as_they_were(capsys):
    x, y = blobs()
    model = mlp()
    loader = data.DataLoader(data.TensorDataset(x, y), batch_size=BATCH, shuffle=True,
                             generator=np.random.default_rng(3))
    before = snapshot(model, loader.generator)
    report = sanity_check(model, loader, verbose=False)
    assert_unchanged(before, snapshot(model, loader.generator))
    assert report.passed, str(report)
    assert capsys.readouterr().out == ""


def test_a_regression_skips_the_class_checks():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((SAMPLES, FEATURES)).astype(np.float32)
    y = (x @ rng.standard_normal((FEATURES, 1))).astype(np.float32)
    tl.manual_seed(0)
    model = nn.Sequential(nn.Linear(FEATURES, 16), nn.ReLU(), nn.Linear(16, 1))
    report = sanity_check(model, batches(x, y), F.mse_loss, verbose=False)
    skipped = [c.name for c in report.checks if c.passed is None]
    assert skipped == ["initial loss", "overfit"]
    assert report.passed and str(report).splitlines()[0].startswith("[SKIP] initial loss")


# ----- sanity_check on broken models -----
@pytest.mark.parametrize("layer", [SubtractBatchMean, TransposeReshape])
def test_a_layer_that_mixes_the_batch_fails_batch_independence(layer):
    x, y = blobs()
    report = sanity_check(with_first(layer()), batches(x, y), verbose=False)
    check = report["batch independence"]
    assert check.passed is False and check.measured > 0
    assert not report.passed and check in report.failed()
    assert str(check).startswith("[FAIL] batch independence")


def test_huge_final_weights_fail_the_initial_loss():
    x, y = blobs()
    model = mlp()
    with tl.no_grad():
        model[2].weight.mul_(100.0)
    report = sanity_check(model, batches(x, y), verbose=False)
    check = report["initial loss"]
    assert check.passed is False and check.measured > 3 * np.log(CLASSES)
    assert "initialisation" in check.message


def test_a_model_that_ignores_its_input_fails_the_baseline():
    x, y = blobs()
    report = sanity_check(with_first(IgnoreInput()), batches(x, y), verbose=False)
    check = report["baseline"]
    assert check.passed is False
    assert report["overfit"].passed is False and report["overfit"].measured < 1.0
    assert "does not learn from its input" in check.message


def test_a_wrong_backward_fails_the_gradient_check():
    x, y = blobs()
    report = sanity_check(with_first(Scale(FEATURES, "weight")), batches(x, y), verbose=False)
    check = report["gradients"]
    assert check.passed is False and check.measured > 0.1
    assert "wrong: 0.scale" in check.message
    assert [c.name for c in report.failed()] == ["gradients"]


def test_sanity_check_rejects_bad_arguments():
    x, y = blobs()
    with pytest.raises(ValueError, match="sanity_check: batches must be a positive int, got 0"):
        sanity_check(mlp(), batches(x, y), batches=0)
    with pytest.raises(ValueError, match="sanity_check: the loader yielded no batches"):
        sanity_check(mlp(), [])
