"""train.freeze / unfreeze: which parameters a name selects, the errors, and that frozen
parameters stay bit for bit what they were through training with every optimiser's momentum and
weight decay, while the rest trains; unfreezing trains them again; summary reports them."""
from collections import OrderedDict

import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import data, nn, optim
from tinygrad_lite.nn.summary import summary
from tinygrad_lite.train import fit
from tinygrad_lite.train.transfer import freeze, unfreeze


def net():
    """features (a conv block with batch norm, pooled to a vector) then a linear head."""
    features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return nn.Sequential(OrderedDict(features=features, hidden=nn.Linear(4, 6),
                                     act=nn.ReLU(), head=nn.Linear(6, 3)))


def snapshot(model):
    return {name: p.numpy().copy() for name, p in model.named_parameters()}


def loader(n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3, 4, 4)).astype(np.float32)
    y = rng.integers(0, 3, n)
    return data.DataLoader(data.TensorDataset(x, y), batch_size=8, shuffle=True)


FEATURES = ["features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias"]


def test_freeze_selects_the_modules_up_to_the_name_with_its_submodules():
    model = net()
    assert freeze(model, "features") == FEATURES
    assert [n for n, p in model.named_parameters() if not p.requires_grad] == FEATURES
    assert unfreeze(model, "features") == FEATURES
    assert all(p.requires_grad for p in model.parameters())
    # a name inside a container, and one after it (everything before it comes along)
    assert freeze(model, "features.0") == FEATURES[:2]
    assert unfreeze(model) == [n for n, _ in model.named_parameters()]
    assert freeze(model, "hidden") == FEATURES + ["hidden.weight", "hidden.bias"]
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["head.weight",
                                                                           "head.bias"]
    unfreeze(model)
    assert freeze(model) == [n for n, _ in model.named_parameters()]
    assert not any(p.requires_grad for p in model.parameters())


def test_sequential_layers_are_named_by_index():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 3), nn.Linear(3, 1))
    assert freeze(model, "2") == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert model[3].weight.requires_grad and not model[2].weight.requires_grad


def test_unknown_names_are_refused_with_the_valid_ones_and_nothing_changes():
    model = net()
    with pytest.raises(ValueError, match=r"freeze: Sequential has no submodule named "
                                         r"'feature'.*'features', 'features.0'.*'head'"):
        freeze(model, "feature")
    with pytest.raises(ValueError, match="unfreeze: .*no submodule named 'x'"):
        unfreeze(model, "x")
    with pytest.raises(TypeError, match="freeze: upto must be a submodule's name.*int 3"):
        freeze(nn.Sequential(nn.Linear(2, 2)), 3)
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("make_optimizer", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
    lambda ps: optim.AdamW(ps, lr=0.05, weight_decay=0.5),
    lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.9, weight_decay=0.1, centered=True),
    lambda ps: optim.Adagrad(ps, lr=0.1, weight_decay=0.1),
], ids=["sgd", "adamw", "rmsprop", "adagrad"])
def test_frozen_parameters_stay_bit_identical_through_training(make_optimizer):
    tl.manual_seed(0)
    model = net()
    opt = make_optimizer(model.parameters())  # the frozen ones are in the optimiser too
    fit(model, loader(), opt, epochs=1, progress=False)  # momentum and moments now exist
    frozen = freeze(model, "hidden")
    assert all(p in opt.state for p in model.parameters())
    # stale gradients from the last step are still there: a frozen parameter with a gradient
    # must be skipped as well
    assert all(p.grad is not None for p in model.parameters())
    before = snapshot(model)
    opt.step()
    fit(model, loader(seed=1), opt, epochs=3, progress=False)
    after = snapshot(model)
    for name in frozen:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    for name in ("head.weight", "head.bias"):
        assert not np.array_equal(after[name], before[name]), name

    assert unfreeze(model, "hidden") == frozen
    fit(model, loader(seed=2), opt, epochs=1, progress=False)
    trained = snapshot(model)
    for name in frozen:
        assert not np.array_equal(trained[name], after[name]), name


def test_lbfgs_leaves_frozen_parameters_alone():
    tl.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    x, y = tl.randn(16, 3), tl.randn(16, 1)
    frozen = freeze(model, "0")
    before = snapshot(model)
    opt = optim.LBFGS(model.parameters(), lr=0.5, max_iter=5)

    def closure():
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        return loss

    opt.step(closure)
    after = snapshot(model)
    for name in frozen:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    assert not np.array_equal(after["2.weight"], before["2.weight"])


def test_summary_reports_the_frozen_layers():
    model = net()
    freeze(model, "features")
    s = summary(model, (2, 3, 4, 4))
    status = {r.name: r.trainable for r in s.rows}
    assert status["features"] == status["features.0"] == status["features.1"] == "frozen"
    assert status["hidden"] == status["head"] == "trainable" and status[""] == "partial"
    assert s.frozen_params == sum(p.size for p in model.features.parameters()) == 112 + 8
    assert s.trainable_params == 30 + 21
    assert "Frozen params: 120" in str(s)
