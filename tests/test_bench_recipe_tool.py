"""tools/bench_recipe.py: torch's twin of the demo's network is the same function with the
same initial weights, and the tool runs both engines end to end on a few sample images. No
timings are asserted: they are information, not tests."""
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_lite as tl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools import bench_recipe  # noqa: E402


def test_the_torch_twin_computes_what_ours_does():
    torch = pytest.importorskip("torch")
    tl.manual_seed(0)
    ours = bench_recipe.load_demo().convnet(8, 32, 0.5)
    twin = bench_recipe.torch_twin(torch, ours)
    x = np.random.default_rng(0).standard_normal((4, 32, 32, 3), dtype=np.float32)
    ours.eval(), twin.eval()
    expected = ours(tl.Tensor(x).permute(0, 3, 1, 2)).numpy()
    with torch.no_grad():
        got = twin(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()  # channels_last view
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_the_tool_runs_both_engines(capsys):
    pytest.importorskip("torch")
    assert bench_recipe.main(["--subset", "384", "--val-split", "64", "--epochs", "1",
                              "--batch-size", "64"]) == 0
    out = capsys.readouterr().out
    assert out.count("test accuracy") == 2 and "training time tinygrad_lite / torch" in out


def test_engines_are_checked():
    with pytest.raises(SystemExit):
        bench_recipe.parse_args(["--engines", "jax"])
