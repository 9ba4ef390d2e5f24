"""Noise modules (nn/dropout.py): Dropout, Dropout2d, DropConnect, StochasticDepth follow
self.training (train()/eval(), through containers too), match their functional forms, and read
as in PyTorch; DropConnect is a Linear whose weight mask is fresh each forward and whose weight
gradient flows only through kept entries."""
import numpy as np
import pytest

import tinygrad_lite as tl
from tinygrad_lite import nn
from tinygrad_lite.nn import dropout as ND
from tinygrad_lite.nn import functional as F
from tinygrad_lite.nn.layers import Linear, Sequential
from tinygrad_lite.ops import dropout as D

F64 = tl.float64


def _x(*shape, seed=0, requires_grad=False):
    rng = np.random.default_rng(seed)
    return tl.tensor(rng.standard_normal(shape), dtype=F64, requires_grad=requires_grad)


def _mask(shape, p, seed):
    """The mask * scale that a dropout layer draws right after manual_seed(seed)."""
    tl.manual_seed(seed)
    return D.dropout(tl.ones(*shape, dtype=F64), p).numpy()


def test_reprs():
    assert repr(ND.Dropout()) == "Dropout(p=0.5)"
    assert repr(ND.Dropout(0.2)) == "Dropout(p=0.2)"
    assert repr(ND.Dropout2d()) == "Dropout2d(p=0.5)"
    assert repr(ND.DropConnect(4, 3)) == (
        "DropConnect(in_features=4, out_features=3, bias=True, p=0.5)")
    assert repr(ND.DropConnect(4, 3, p=0.1, bias=False)) == (
        "DropConnect(in_features=4, out_features=3, bias=False, p=0.1)")
    assert repr(ND.StochasticDepth(0.2, "row")) == "StochasticDepth(p=0.2, mode=row)"


@pytest.mark.parametrize("module, fn", [
    (ND.Dropout(0.3), lambda x: D.dropout(x, 0.3)),
    (ND.Dropout2d(0.4), lambda x: D.dropout2d(x, 0.4)),
    (ND.StochasticDepth(0.5, "row"), lambda x: D.stochastic_depth(x, 0.5, "row")),
    (ND.StochasticDepth(0.5, "batch"), lambda x: D.stochastic_depth(x, 0.5, "batch"))])
def test_modules_match_their_functions_and_are_identity_in_eval(module, fn):
    x = _x(4, 3, 2, 2)
    assert module.training and list(module.parameters()) == []
    tl.manual_seed(1)
    y = module(x)
    tl.manual_seed(1)
    np.testing.assert_array_equal(y.numpy(), fn(x).numpy())
    assert module.eval()(x) is x
    assert module.train()(x) is not x


def test_p_zero_modules_are_identity_in_training():
    x = _x(2, 3, 2, 2)
    assert ND.Dropout(0.0)(x) is x and ND.Dropout2d(0)(x) is x
    assert ND.StochasticDepth(0.0, "row")(x) is x


def test_train_eval_switch_through_sequential():
    tl.manual_seed(0)
    model = Sequential(Linear(6, 8, dtype=F64), nn.ReLU(), ND.Dropout(0.5),
                       ND.DropConnect(8, 3, p=0.5, dtype=F64))
    x = _x(5, 6)
    first, second = model(x).numpy(), model(x).numpy()
    assert not np.array_equal(first, second)  # fresh masks each forward in training
    model.eval()
    assert not model[2].training and not model[3].training
    plain = F.linear(F.relu(F.linear(x, model[0].weight, model[0].bias)), model[3].weight,
                     model[3].bias).numpy()
    np.testing.assert_array_equal(model(x).numpy(), plain)
    np.testing.assert_array_equal(model(x).numpy(), plain)  # deterministic in eval
    model.train()
    assert model[2].training and model[3].training
    assert not np.array_equal(model(x).numpy(), plain)


def test_residual_block_with_stochastic_depth():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.branch = Linear(4, 4, dtype=F64)
            self.drop = ND.StochasticDepth(0.5, "row")

        def forward(self, h):
            return h + self.drop(self.branch(h))

    tl.manual_seed(2)
    block = Block()
    h = _x(32, 4)
    tl.manual_seed(3)
    out = block(h).numpy()
    branch = block.branch(h).numpy()
    skipped = np.isclose(out, h.numpy(), rtol=0, atol=0).all(axis=1)
    np.testing.assert_allclose(out[~skipped], h.numpy()[~skipped] + 2 * branch[~skipped],
                               rtol=1e-12)
    assert 0 < skipped.sum() < 32  # per sample
    block.eval()
    np.testing.assert_allclose(block(h).numpy(), h.numpy() + branch, rtol=1e-15)


# ----- DropConnect -----

def test_drop_connect_is_a_linear_with_its_parameters():
    m = ND.DropConnect(4, 3, p=0.25, dtype=F64)
    assert isinstance(m, Linear) and m.p == 0.25
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    assert m.weight.shape == (3, 4) and m.bias.shape == (3,)
    assert [n for n, _ in ND.DropConnect(4, 3, bias=False).named_parameters()] == ["weight"]
    bound = 1 / np.sqrt(4)  # Linear's initialisation
    assert np.abs(m.weight.numpy()).max() <= bound and np.abs(m.bias.numpy()).max() <= bound


def test_drop_connect_in_eval_equals_linear():
    m = ND.DropConnect(5, 3, dtype=F64).eval()
    x = _x(4, 5)
    np.testing.assert_array_equal(m(x).numpy(), F.linear(x, m.weight, m.bias).numpy())
    x3 = _x(2, 4, 5)  # leading batch dims, as Linear
    np.testing.assert_array_equal(m(x3).numpy(), F.linear(x3, m.weight, m.bias).numpy())


def test_drop_connect_mask_is_fresh_each_forward_and_gradient_follows_it():
    p = 0.5
    m = ND.DropConnect(6, 4, p=p, dtype=F64)
    x = _x(3, 6, seed=1, requires_grad=True)
    seen = []
    m.register_forward_hook(lambda mod, inputs, out: seen.append(out.numpy()))
    masks = []
    for seed in (10, 11):
        m.zero_grad()
        x.grad = None
        tl.manual_seed(seed)
        y = m(x)
        y.sum().backward()
        mask = _mask((4, 6), p, seed)  # what that forward drew
        masks.append(mask)
        w = m.weight.numpy()
        np.testing.assert_allclose(seen[-1], x.numpy() @ (w * mask).T + m.bias.numpy(),
                                   rtol=1e-12)
        # d sum(y) / dW[o, i] = mask[o, i] * sum_n x[n, i]: zero exactly where dropped
        expected = mask * x.numpy().sum(axis=0)[None, :]
        np.testing.assert_allclose(m.weight.grad.numpy(), expected, rtol=1e-12)
        assert (m.weight.grad.numpy()[mask == 0] == 0).all()
        np.testing.assert_allclose(m.bias.grad.numpy(), np.full(4, 3.0))  # bias never dropped
        np.testing.assert_allclose(x.grad.numpy(), (w * mask).sum(axis=0)[None, :].repeat(3, 0),
                                   rtol=1e-12)
    assert not np.array_equal(masks[0], masks[1])
    assert 0 < (masks[0] == 0).sum() < masks[0].size


def test_drop_connect_on_cuda_matches_cpu():
    m = ND.DropConnect(3, 2, dtype=F64)
    x = _x(2, 3)
    tl.manual_seed(4)
    on_cpu = m(x).numpy()
    m.to("cuda")
    tl.manual_seed(4)
    on_cuda = m(x.to("cuda"))
    assert on_cuda.device == "cuda"
    np.testing.assert_allclose(on_cuda.numpy(), on_cpu, rtol=1e-12)


def test_drop_connect_checks_its_input():
    m = ND.DropConnect(4, 3)
    with pytest.raises(ValueError, match=r"^DropConnect: expected input with last dimension 4"):
        m(tl.zeros(2, 5))
    with pytest.raises(ValueError, match=r"^DropConnect: expected input"):
        m(tl.tensor(1.0))


# ----- errors -----

@pytest.mark.parametrize("p", [-0.5, 1.01, float("nan"), "half"])
def test_bad_p_raises_naming_the_module(p):
    for name, make in [("Dropout", lambda: ND.Dropout(p)), ("Dropout2d", lambda: ND.Dropout2d(p)),
                       ("DropConnect", lambda: ND.DropConnect(2, 2, p=p)),
                       ("StochasticDepth", lambda: ND.StochasticDepth(p, "row"))]:
        with pytest.raises(ValueError, match=rf"^{name}: .*\[0, 1\]"):
            make()


def test_stochastic_depth_rejects_a_bad_mode():
    with pytest.raises(ValueError, match=r"^StochasticDepth: mode must be 'row' or 'batch'"):
        ND.StochasticDepth(0.5, "sample")


def test_dropout2d_module_checks_the_shape():
    with pytest.raises(ValueError, match=r"^dropout2d: "):
        ND.Dropout2d()(tl.zeros(2, 3))
