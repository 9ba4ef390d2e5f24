"""demos/optimizers.py: the trajectories it draws, checked against what each rule must do on
its surfaces (derived here from the update equations, not read off the plot), and its two
pictures (real PNGs).

Bowl f = 0.05 x^2 + y^2 (curvatures 0.1 and 2); saddle f = x^2 - y^2 + y^4 / 4 (minima at
x = 0, y = +-sqrt(2)), started just off the ridge at y = 0.001."""
import math

import numpy as np
import pytest

from helpers import load_demo

STEPS = 60


@pytest.fixture(scope="module")
def demo():
    return load_demo("optimizers")


@pytest.fixture(scope="module")
def paths(demo):
    """{(surface, rule): path} for every surface and rule, STEPS steps."""
    return {(s, r): demo.trajectory(r, surface, STEPS) for s, surface in demo.SURFACES.items()
            for r in demo.RULES}


def _f(surface, p):
    a, b = np.array(surface["a"]), np.array(surface["b"])
    return (a * p * p + b * p ** 4).sum(axis=-1)


BOWL, SADDLE = "ill-conditioned quadratic", "saddle point"


def test_every_trajectory_starts_at_the_start_and_stays_finite(demo, paths):
    for (s, rule), path in paths.items():
        assert path.shape == (STEPS + 1, 2), (s, rule)  # no rule diverged (the demo stops)
        assert np.all(np.isfinite(path)), (s, rule)
        np.testing.assert_array_equal(path[0], demo.SURFACES[s]["start"])


def test_sgd_on_the_bowl_is_the_exact_linear_recursion(demo, paths):
    # x <- x - lr * 0.1 x, y <- y - lr * 2 y with lr 0.9: factors 0.91 and -0.8, so SGD
    # zigzags across the steep direction (y flips sign every step) while x shrinks slowly
    path = paths[BOWL, "SGD"]
    t = np.arange(STEPS + 1)
    np.testing.assert_allclose(path[:, 0], -9.0 * 0.91 ** t, rtol=1e-12)
    np.testing.assert_allclose(path[:, 1], 1.5 * (-0.8) ** t, rtol=1e-12)


def test_the_bowl_is_descended_by_every_rule_and_solved_by_lbfgs(demo, paths):
    surface = demo.SURFACES[BOWL]
    start = _f(surface, np.array(surface["start"]))
    for rule in demo.RULES:
        losses = _f(surface, paths[BOWL, rule])
        assert losses[-1] < 0.1 * start, rule
    for rule in ("SGD", "Momentum", "Nesterov", "AdaGrad", "Adam"):
        assert _f(surface, paths[BOWL, rule][-1]) < 3e-3 * start, rule
    # a 2-D quadratic: after two curvature pairs L-BFGS's model is exact
    assert np.abs(paths[BOWL, "L-BFGS"][-1]).max() < 1e-4


def test_adaptive_rules_do_not_zigzag_and_adam_steps_lr_in_each_coordinate(paths):
    for rule in ("AdaGrad", "RMSprop"):  # per-coordinate scaling: no overshoot across y = 0
        y = paths[BOWL, rule][:, 1]
        # (down at 1e-21 RMSprop's eps dominates and it dithers around 0: not an overshoot)
        assert np.all(y[np.abs(y) > 1e-9] > 0) and y[20] < 0.1, rule
    # Adam's first step is lr * sign(g) in every coordinate (m / sqrt(v) = g / |g| after bias
    # correction), although the two gradients differ by 0.9 / 3.0
    step = paths[BOWL, "Adam"][1] - paths[BOWL, "Adam"][0]
    np.testing.assert_allclose(step, [0.3, -0.3], rtol=1e-6)
    # AdaGrad's first step likewise: lr * g / sqrt(g^2) = lr * sign(g)
    step = paths[BOWL, "AdaGrad"][1] - paths[BOWL, "AdaGrad"][0]
    np.testing.assert_allclose(step, [1.0, -1.0], rtol=1e-6)


def test_the_saddle_holds_sgd_and_releases_the_adaptive_rules(paths):
    # near the ridge y <- y + lr * 2y (lr 0.05): y grows by 1.1 per step, so SGD is still near
    # the ridge after 20 steps and has not reached the valley after 60
    y = paths[SADDLE, "SGD"][:21, 1]
    np.testing.assert_allclose(y, 0.001 * 1.1 ** np.arange(21), rtol=1e-3)
    assert np.abs(paths[SADDLE, "SGD"][:, 1]).max() < 0.5

    def escape(rule):
        away = np.flatnonzero(np.abs(paths[SADDLE, rule][:, 1]) > 0.5)
        return away[0] if away.size else None

    # dividing the tiny y-gradient by its own size makes the first steps full-size
    for rule, within in (("AdaGrad", 5), ("RMSprop", 5), ("L-BFGS", 5), ("Adam", 15)):
        assert escape(rule) is not None and escape(rule) <= within, (rule, escape(rule))
    # and they settle in the valley: x = 0, |y| = sqrt(2)
    for rule in ("AdaGrad", "RMSprop", "L-BFGS"):
        end = paths[SADDLE, rule][-1]
        np.testing.assert_allclose(abs(end[1]), math.sqrt(2), rtol=1e-5)
        assert abs(end[0]) < 2e-3, rule


def test_the_demo_writes_both_pictures(demo, tmp_path):
    demo.main(["--out", str(tmp_path), "--steps", "10"])
    for name in ("optimizer_trajectories.png", "lr_schedules.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (tmp_path / name).stat().st_size > 10_000
