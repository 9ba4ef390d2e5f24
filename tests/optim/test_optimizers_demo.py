"""demos/optimizers.py writes its two pictures (real PNGs), and each rule's trajectory starts at
the start and stays finite."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

DEMO = Path(__file__).resolve().parents[2] / "demos" / "optimizers.py"


@pytest.fixture(scope="module")
def demo():
    spec = importlib.util.spec_from_file_location("optimizers_demo", DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
