"""demos/optimizers.py writes its two pictures (real PNGs), and each rule's trajectory starts at
the start and stays finite."""
import numpy as np
import pytest

from helpers import load_demo


@pytest.fixture(scope="module")
def demo():
    return load_demo("optimizers")


def test_the_demo_writes_both_pictures(demo, tmp_path):
    demo.main(["--out", str(tmp_path), "--steps", "10"])
    for name in ("optimizer_trajectories.png", "lr_schedules.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (tmp_path / name).stat().st_size > 10_000


def test_trajectories_start_at_the_start_and_have_one_point_per_step(demo):
    name, surface = next(iter(demo.SURFACES.items()))
    for rule in demo.RULES:
        path = demo.trajectory(rule, surface, 15)
        assert path.shape[1] == 2 and np.all(np.isfinite(path)), rule
        np.testing.assert_allclose(path[0], surface["start"])
