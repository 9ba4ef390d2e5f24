"""L-BFGS: the cubic interpolation by hand, the first step and the secant (Newton) step on a
1-D quadratic, a 100-dimensional ill-conditioned quadratic solved in few iterations with the
strong-Wolfe line search, Rosenbrock, the same path on cpu and cuda, and the errors."""
import numpy as np
import pytest

import tinygrad_lite as tl
from helpers import device_param
from tinygrad_lite import nn, optim
from tinygrad_lite.optim.lbfgs import cubic_interpolate, strong_wolfe


def _quadratic(A, b, x, opt):
    """closure for 0.5 x'Ax - b'x; A and b as tensors."""
    def closure():
        opt.zero_grad()
        loss = 0.5 * (x * (A @ x)).sum() - (b * x).sum()
        loss.backward()
        return loss
    return closure


def test_cubic_interpolate_by_hand():
    # (x - 1)^2 through x = 0 and x = 3: the cubic is the parabola itself, minimum at 1
    assert cubic_interpolate(0.0, 1.0, -2.0, 3.0, 4.0, 4.0) == pytest.approx(1.0)
    assert cubic_interpolate(3.0, 4.0, 4.0, 0.0, 1.0, -2.0) == pytest.approx(1.0)
    # clamped to the bounds
    assert cubic_interpolate(0.0, 1.0, -2.0, 3.0, 4.0, 4.0, bounds=(2.0, 5.0)) == 2.0
    # x^3 - 3x has its minimum at 1: through x = 0 and x = 2
    assert cubic_interpolate(0.0, 0.0, -3.0, 2.0, 2.0, 9.0) == pytest.approx(1.0)


def test_strong_wolfe_finds_the_minimum_of_a_parabola_along_d():
    # f(x + t d) with f = (x - 3)^2 from x = 0, d = 1: any accepted t meets both conditions
    def evaluate(t):
        return (t - 3.0) ** 2, np.array([2 * (t - 3.0)])
    d, g = np.array([1.0]), np.array([-6.0])
    f_new, g_new, t, evals = strong_wolfe(evaluate, 1.0, d, 9.0, g, -6.0)
    assert f_new <= 9.0 + 1e-4 * t * -6.0 and abs(g_new.dot(d)) <= 0.9 * 6.0
    assert f_new == pytest.approx((t - 3.0) ** 2) and evals >= 1


def test_first_step_and_the_secant_step_on_a_1d_quadratic():
    # f = 2 x^2 from x = 1: g = 4, first step t = min(1, 1/|g|_1) * lr = 0.25 along -g -> 0.
    x = nn.Parameter(tl.tensor([1.0], dtype=tl.float64))
    opt = optim.LBFGS([x], lr=0.5, max_iter=1)
    A, b = tl.tensor([[4.0]]), tl.tensor([0.0])
    opt.step(_quadratic(A, b, x, opt))
    assert x.numpy()[0] == pytest.approx(1 - 0.5 * 0.25 * 4)  # 0.5
    # the next iteration has one (s, y) pair: H = s / y = 1 / 4 exactly, a Newton step
    opt.param_groups[0]["lr"] = 1.0
    opt.step(_quadratic(A, b, x, opt))
    assert abs(x.numpy()[0]) < 1e-12


def test_solves_a_100_dimensional_quadratic_in_few_iterations():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((100, 100)))
    A = Q @ np.diag(np.logspace(0, 1, 100)) @ Q.T  # condition number 10
    b = rng.standard_normal(100)
    x = nn.Parameter(tl.zeros(100, dtype=tl.float64))
    # the default tolerance_change stops once the loss changes by < 1e-9 (x within ~1e-5)
    opt = optim.LBFGS([x], max_iter=30, history_size=20, line_search_fn="strong_wolfe",
                      tolerance_grad=1e-10, tolerance_change=1e-15)
    opt.step(_quadratic(tl.tensor(A), tl.tensor(b), x, opt))
    # gradient descent with the best fixed step contracts by 9/11 a step: 2e-3 after 30
    assert opt.state[x]["n_iter"] <= 30 and opt.state[x]["func_evals"] <= 40
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(A, b), atol=1e-6)


def test_rosenbrock_with_strong_wolfe():
    xy = nn.Parameter(tl.tensor([-1.5, 2.0], dtype=tl.float64))
    opt = optim.LBFGS([xy], max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        x, y = xy[0], xy[1]
        loss = (1 - x) ** 2 + 100 * (y - x * x) ** 2
        loss.backward()
        return loss

    first = opt.step(closure)
    assert first.item() == pytest.approx(2.5 ** 2 + 100 * (2.0 - 2.25) ** 2)
    np.testing.assert_allclose(xy.numpy(), [1.0, 1.0], atol=1e-5)


def test_stops_at_once_at_a_minimum_and_returns_the_first_loss():
    x = nn.Parameter(tl.tensor([0.0, 0.0], dtype=tl.float64))
    opt = optim.LBFGS([x])
    loss = opt.step(_quadratic(tl.tensor(np.eye(2)), tl.tensor([0.0, 0.0]), x, opt))
    assert loss.item() == 0.0 and x.version == 0 and opt.state[x]["func_evals"] == 1


@device_param
def test_same_path_on_both_devices(device):
    A = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.1], [0.0, 0.1, 0.5]])
    b = np.array([1.0, 0.0, -1.0])
    x = nn.Parameter(tl.tensor([1.0, 1.0, 1.0], dtype=tl.float64, device=device))
    opt = optim.LBFGS([x], max_iter=12, line_search_fn="strong_wolfe")
    opt.step(_quadratic(tl.tensor(A, device=device), tl.tensor(b, device=device), x, opt))
    on_cpu = nn.Parameter(tl.tensor([1.0, 1.0, 1.0], dtype=tl.float64))
    ref = optim.LBFGS([on_cpu], max_iter=12, line_search_fn="strong_wolfe")
    ref.step(_quadratic(tl.tensor(A), tl.tensor(b), on_cpu, ref))
    np.testing.assert_allclose(x.numpy(), on_cpu.numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(A, b), atol=1e-6)


def test_errors():
    x = nn.Parameter(tl.tensor([1.0]))
    with pytest.raises(RuntimeError, match="LBFGS.step: a closure"):
        optim.LBFGS([x]).step()
    with pytest.raises(ValueError, match="per-parameter options"):
        optim.LBFGS([{"params": [x]}, {"params": [nn.Parameter(tl.tensor([1.0]))]}])
    with pytest.raises(ValueError, match="line_search_fn must be None or 'strong_wolfe'"):
        optim.LBFGS([x], line_search_fn="armijo")
    with pytest.raises(ValueError, match="history_size"):
        optim.LBFGS([x], history_size=0)


def test_state_dict_round_trip_resumes_identically():
    A = tl.tensor([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])
    b = tl.tensor([1.0, 1.0, 0.0])
    x = nn.Parameter(tl.tensor([2.0, -1.0, 1.0], dtype=tl.float64))
    opt = optim.LBFGS([x], max_iter=2)
    opt.step(_quadratic(A, b, x, opt))
    saved, at = opt.state_dict(), x.numpy().copy()
    opt.step(_quadratic(A, b, x, opt))  # the history it keeps must not leak into `saved`
    y = nn.Parameter(tl.tensor(at, dtype=tl.float64))
    resumed = optim.LBFGS([y], max_iter=2)
    resumed.load_state_dict(saved)
    resumed.step(_quadratic(A, b, y, resumed))
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    # max_eval defaults to max_iter * 5 // 4 = 2 evaluations: one iteration per step here
    assert saved["state"][0]["n_iter"] == 1
    assert resumed.state[y]["n_iter"] == opt.state[x]["n_iter"] == 2
