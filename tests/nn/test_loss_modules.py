"""Loss modules: each is the function it wraps with the options it holds; weights are buffers
that move with .to() and live in state_dict(); bad options raise naming the module; a model
trained with CrossEntropyLoss learns."""
import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import nn
from tinygrad_lite.nn import loss as NL
from tinygrad_lite.ops import loss as L

rng = np.random.default_rng(0)
X = rng.standard_normal((4, 3))
Y = np.array([0, 2, 1, 2])
T = rng.standard_normal((4, 3))
W = np.array([0.5, 1.0, 2.0])


def f64(a, device="cpu"):
    return tl.tensor(a, dtype=tl.float64, device=device)


CASES = [  # (module, function, positional inputs (float arrays are float64))
    (lambda: NL.CrossEntropyLoss(weight=f64(W), ignore_index=1, reduction="sum",
                                 label_smoothing=0.2),
     lambda x, y: L.cross_entropy(x, y, f64(W), 1, "sum", 0.2), (X, Y)),
    (lambda: NL.CrossEntropyLoss(), lambda x, t: L.cross_entropy(x, t), (X, np.abs(T) / 3)),
    (lambda: NL.NLLLoss(weight=f64(W), reduction="none"),
     lambda x, y: L.nll_loss(x, y, f64(W), reduction="none"), (X, Y)),
    (lambda: NL.MSELoss(reduction="sum"), lambda x, t: L.mse_loss(x, t, "sum"), (X, T)),
    (lambda: NL.L1Loss(), lambda x, t: L.l1_loss(x, t), (X, T)),
    (lambda: NL.SmoothL1Loss(beta=0.5, reduction="none"),
     lambda x, t: L.smooth_l1_loss(x, t, "none", 0.5), (X, T)),
    (lambda: NL.HuberLoss(delta=0.5), lambda x, t: L.huber_loss(x, t, delta=0.5), (X, T)),
    (lambda: NL.BCEWithLogitsLoss(weight=f64(W), pos_weight=f64(W[::-1].copy())),
     lambda x, t: L.binary_cross_entropy_with_logits(x, t, f64(W),
                                                     pos_weight=f64(W[::-1].copy())),
     (X, np.abs(T) / 3)),
    (lambda: NL.MultiMarginLoss(p=2, margin=0.5, weight=f64(W), reduction="sum"),
     lambda x, y: L.multi_margin_loss(x, y, 2, 0.5, f64(W), "sum"), (X, Y)),
]


def inputs(arrays, device="cpu"):
    return [f64(a, device) if a.dtype.kind == "f" else tl.tensor(a, device=device)
            for a in arrays]


@pytest.mark.parametrize("i", range(len(CASES)))
def test_module_is_its_function(i):
    make, fn, arrays = CASES[i]
    module = make()
    assert isinstance(module, nn.Module)
    x, t = inputs(arrays)
    x.requires_grad_()
    out = module(x, t)
    np.testing.assert_array_equal(out.numpy(), fn(x, t).numpy())
    out.sum().backward()
    assert x.grad is not None and np.all(np.isfinite(x.grad.numpy()))


def test_weights_are_buffers_that_move_and_save():
    criterion = NL.CrossEntropyLoss(weight=f64(W))
    assert list(criterion.parameters()) == []
    assert set(criterion.state_dict()) == {"weight"}
    assert set(NL.BCEWithLogitsLoss(pos_weight=f64(W)).state_dict()) == {"pos_weight"}
    assert NL.MSELoss().state_dict() == {} and NL.CrossEntropyLoss().weight is None
    criterion.to("cuda")
    assert criterion.weight.device == tl.get_device("cuda")
    x, y = inputs((X[:2, :2].copy(), np.array([1, 0])), "cuda")
    criterion = NL.CrossEntropyLoss(weight=f64(W[:2].copy())).cuda()
    np.testing.assert_allclose(criterion(x, y).item(), L.cross_entropy(
        f64(X[:2, :2]), tl.tensor([1, 0]), weight=f64(W[:2].copy())).item(), rtol=1e-12)


@pytest.mark.parametrize("cls", [NL.CrossEntropyLoss, NL.NLLLoss, NL.MSELoss, NL.L1Loss,
                                 NL.SmoothL1Loss, NL.HuberLoss, NL.BCEWithLogitsLoss,
                                 NL.MultiMarginLoss])
def test_bad_reduction_names_the_module(cls):
    with pytest.raises(ValueError, match=f"{cls.__name__}: reduction must be one of 'mean', "
                                         "'sum' or 'none', got 'avg'"):
        cls(reduction="avg")
    assert repr(cls(reduction="sum")) == f"{cls.__name__}(reduction='sum')"


def test_module_errors_name_the_loss():
    with pytest.raises(ValueError, match="MultiMarginLoss: only p = 1 and p = 2"):
        NL.MultiMarginLoss(p=3)
    with pytest.raises(IndexError, match="cross_entropy: target label 3 is out of range for "
                                         "3 classes"):
        NL.CrossEntropyLoss()(f64(X), tl.tensor([0, 1, 3, 2]))


def test_a_linear_classifier_learns_with_cross_entropy_loss():
    tl.manual_seed(0)
    data = np.random.default_rng(1)
    x = data.standard_normal((60, 2))
    y = (x[:, 0] + 2 * x[:, 1] > 0).astype(np.int64) + (x[:, 0] > 1)
    model = nn.Linear(2, 3).to(dtype=tl.float64)
    criterion = NL.CrossEntropyLoss(label_smoothing=0.05)
    xt, yt = tl.tensor(x, dtype=tl.float64), tl.tensor(y)
    losses = []
    for _ in range(30):
        loss = criterion(model(xt), yt)
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        with tl.no_grad():
            for p in model.parameters():
                p -= 0.5 * p.grad
    assert losses[-1] < 0.6 * losses[0]
