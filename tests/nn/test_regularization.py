"""nn.utils gradient clipping and penalties (nn/regularization.py): clip_grad_norm_ for norms
2, 1, 3 and inf against NumPy (cpu and cuda, one gradient over several blocks), clipping only
above max_norm, clip_grad_value_, the L1 / L2 / elastic-net penalties against NumPy with
gradient checks, L1 driving a weight to zero with a plain optimiser, and the errors."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite as tl
from helpers import assert_gradcheck, device_param, shapes, values
from tinygrad_lite import nn, optim
from tinygrad_lite.nn import utils


def _params_with_grads(grads, device):
    params = []
    for g in grads:
        p = nn.Parameter(tl.zeros(*g.shape, dtype=tl.float64, device=device))
        p.grad = tl.tensor(g, dtype=tl.float64, device=device)
        params.append(p)
    return params


def np_norm(grads, p):
    flat = np.concatenate([g.reshape(-1) for g in grads])
    return np.abs(flat).max() if p == math.inf else (np.abs(flat) ** p).sum() ** (1 / p)


@device_param
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_clip_grad_norm(device, norm_type):
    rng = np.random.default_rng(int(norm_type) if norm_type != math.inf else 9)
    grads = [rng.standard_normal((3, 100)), rng.standard_normal(5)]  # 300: two CUDA blocks
    params = _params_with_grads(grads, device)
    total = np_norm(grads, norm_type)
    versions = [p.grad.version for p in params]
    result = utils.clip_grad_norm_(params, max_norm=0.5, norm_type=norm_type)
    assert str(result.device) == device and result.shape == ()
    assert result.item() == pytest.approx(total, rel=1e-12)
    for p, g in zip(params, grads):
        np.testing.assert_allclose(p.grad.numpy(), g * 0.5 / (total + 1e-6), rtol=1e-12)
    assert [p.grad.version for p in params] == [v + 1 for v in versions]
    assert np_norm([p.grad.numpy() for p in params], norm_type) == pytest.approx(0.5, rel=1e-5)


def test_clip_grad_norm_leaves_small_gradients_and_skips_gradless():
    grads = [np.array([0.3, 0.4])]
    params = _params_with_grads(grads, "cpu") + [nn.Parameter(tl.zeros(2))]
    assert utils.clip_grad_norm_(params, max_norm=1.0).item() == pytest.approx(0.5)
    np.testing.assert_array_equal(params[0].grad.numpy(), grads[0])
    assert utils.clip_grad_norm_([nn.Parameter(tl.zeros(2))], 1.0).item() == 0.0
    one = _params_with_grads([np.array([3.0, 4.0])], "cpu")[0]
    assert utils.clip_grad_norm_(one, 1.0).item() == pytest.approx(5.0)  # a single tensor


def test_clip_grad_norm_nonfinite():
    params = _params_with_grads([np.array([1.0, np.inf])], "cpu")
    with pytest.raises(RuntimeError, match="total norm of order 2.0 of the gradients is inf"):
        utils.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    assert math.isinf(utils.clip_grad_norm_(params, 1.0).item())


@device_param
def test_clip_grad_value(device):
    grads = [np.array([-3.0, -0.5, 0.2, 7.0])]
    params = _params_with_grads(grads, device)
    utils.clip_grad_value_(params, 1.0)
    np.testing.assert_array_equal(params[0].grad.numpy(), [-1.0, -0.5, 0.2, 1.0])


def _check_penalties(a, b, l1, l2, device):
    ta, tb = (tl.tensor(x, dtype=tl.float64, device=device) for x in (a, b))
    expect_l1 = np.abs(a).sum() + np.abs(b).sum()
    expect_l2 = (a * a).sum() + (b * b).sum()
    assert utils.l1_penalty([ta, tb], l1).item() == pytest.approx(l1 * expect_l1)
    assert utils.l2_penalty([ta, tb], l2).item() == pytest.approx(l2 * expect_l2)
    assert utils.elastic_net_penalty([ta, tb], l1, l2).item() == pytest.approx(
        l1 * expect_l1 + l2 * expect_l2)
    # the elastic net's gradient covers both terms (l1 and l2 weights nonzero)
    assert_gradcheck(lambda x, y: utils.elastic_net_penalty([x, y], l1, l2), [a, b], device)


@given(data=st.data())
def test_penalties_match_numpy_and_gradcheck_cpu(data):
    a = data.draw(values(data.draw(shapes("cpu", min_dims=1))))
    b = data.draw(values(data.draw(shapes("cpu", min_dims=1))))
    # keep |w| away from 0, where |w| has its kink and centred differences straddle it
    a, b = np.where(np.abs(a) < 0.05, 0.5, a), np.where(np.abs(b) < 0.05, -0.5, b)
    l1, l2 = data.draw(st.sampled_from([0.3, 1.0])), data.draw(st.sampled_from([0.5, 2.0]))
    _check_penalties(a, b, l1, l2, "cpu")
    assert_gradcheck(lambda x, y: utils.l1_penalty((x, y), 0.7), [a, b], "cpu")
    assert_gradcheck(lambda x: utils.l2_penalty(x, 0.7), [a], "cpu")


def test_penalties_match_numpy_and_gradcheck_cuda():
    # one tiny case: every gradcheck evaluation runs its kernels on the simulator
    _check_penalties(np.array([0.5, -1.5]), np.array([[-0.25]]), 0.3, 2.0, "cuda")


def test_l1_penalty_with_a_plain_optimiser_drives_an_unused_weight_to_zero():
    # loss = (w0 - 1)^2 + 0.5 |w|_1: w1 has no data term, so the L1 term takes it to 0 (then
    # it hops around 0 by lr * 0.5), and w0 settles at 1 - 0.25
    w = nn.Parameter(tl.tensor([0.0, 0.8]))
    opt = optim.SGD([w], lr=0.01)
    for _ in range(300):
        opt.zero_grad()
        loss = (w[0] - 1.0) ** 2 + optim.l1_penalty([w], 0.5)
        loss.backward()
        opt.step()
    assert abs(w.numpy()[1]) < 0.01 and w.numpy()[0] == pytest.approx(0.75, abs=0.01)


def test_errors():
    params = _params_with_grads([np.ones(2)], "cpu")
    with pytest.raises(ValueError, match="norm_type must be > 0"):
        utils.clip_grad_norm_(params, 1.0, norm_type=0)
    with pytest.raises(ValueError, match="max_norm must be >= 0"):
        utils.clip_grad_norm_(params, -1.0)
    with pytest.raises(ValueError, match="clip_value must be >= 0"):
        utils.clip_grad_value_(params, -1.0)
    with pytest.raises(TypeError, match="clip_grad_norm_: expected a Tensor or an iterable"):
        utils.clip_grad_norm_(3, 1.0)
    with pytest.raises(TypeError, match="l1_penalty: expected Tensors, got a ndarray"):
        utils.l1_penalty([np.ones(2)])
    with pytest.raises(ValueError, match="elastic_net_penalty: got no parameters"):
        utils.elastic_net_penalty([])
