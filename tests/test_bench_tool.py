"""tools/bench.py: the two workloads are the same model in both engines, the per-layer-type
breakdown covers every layer and leaves nothing behind, and the tool runs end to end. No
timings are asserted: they are information, not tests."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_lite as tl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools import bench  # noqa: E402


@pytest.mark.parametrize("name, engine", [("cnn", "torch (contiguous)"),
                                          ("cnn", "torch (channels_last)"), ("mlp", "torch")])
def test_the_torch_model_is_ours(name, engine):
    """Same initial weights, data and update rule: the same losses over two steps."""
    torch = pytest.importorskip("torch")
    ours = bench.build_engine(name, bench.OURS, 8)[0]
    theirs = bench.build_engine(name, engine, 8, torch)[0]
    for _ in range(2):
        assert float(ours().item()) == pytest.approx(float(theirs().item()), rel=1e-4)


def test_models_have_the_issue_shapes():
    cnn = bench.build_engine("cnn", bench.OURS, 2)[1]
    assert [m.in_features for m in cnn if type(m).__name__ == "Linear"] == [4096, 256]
    assert sum(type(m).__name__ == "Conv2d" for m in cnn) == 4
    assert sum(type(m).__name__ == "MaxPool2d" for m in cnn) == 2
    mlp = bench.build_engine("mlp", bench.OURS, 2)[1]
    assert [(m.in_features, m.out_features) for m in mlp if type(m).__name__ == "Linear"] == \
        [(3072, 512), (512, 512), (512, 10)]


def test_breakdown_covers_every_layer_type_and_removes_its_hooks():
    step, model, opt, x, y = bench.build_engine("cnn", bench.OURS, 4)
    step()
    times = bench.step_breakdown(model, opt, x, tl.Tensor(y))
    forward = {k for phase, k in times if phase == "forward"}
    backward = {k for phase, k in times if phase == "backward"}
    assert forward == {"conv", "bn+relu", "pool", "flatten", "linear", "relu", "loss"}
    assert {"conv", "bn+relu", "pool", "linear", "relu", "loss",
            "graph walk + grads"} <= backward
    assert ("optimizer", "optimizer") in times and ("step", "step") in times
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    lines, flat = bench.breakdown_table("cnn", [times])
    assert any(line.split()[:1] == ["conv"] for line in lines) and "step" in flat
    # the timing wrappers lived on the Functions of that step only: training goes on as before
    before = [p.numpy().copy() for p in model.parameters()]
    step()
    assert any(not np.array_equal(b, p.numpy()) for b, p in zip(before, model.parameters()))


def test_layer_types():
    nn = tl.nn
    assert [bench.layer_type(m) for m in (
        nn.Conv2d(1, 1, 3), nn.BatchNorm2d(2), nn.BatchNorm1d(2, activation="relu"),
        nn.MaxPool2d(2), nn.ReLU(), nn.Linear(2, 2), nn.Flatten())] == \
        ["conv", "bn", "bn+relu", "pool", "relu", "linear", "flatten"]


def run_tool(*args):
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "bench.py"), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_tool_runs_end_to_end_and_writes_its_profile(tmp_path):
    try:
        import torch  # noqa: F401
        extra = []
    except ImportError:
        extra = ["--no-torch"]
    out = run_tool("--quick", "--models", "mlp", "--batch", "8", "--no-first-step",
                   "--threads", "1", "--profile", str(tmp_path), *extra)
    for expected in ("img/s", "where one of our training steps goes", "training peak",
                     "per-op overhead", "requires_grad=True"):
        assert expected in out
    if not extra:
        assert "ratio tinygrad_lite / torch" in out
    for name in ("breakdown.txt", "results.json", "mlp.prof", "mlp.prof.txt"):
        assert (tmp_path / name).stat().st_size > 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["threads"] == 1 and "linear" in (tmp_path / "breakdown.txt").read_text()


def test_first_step_worker_reports_its_times():
    out = run_tool("--worker", "first-step", "--model", "mlp", "--batch", "8", "--threads", "1")
    times = json.loads(out.strip().splitlines()[-1])
    assert set(times) == {"import_s", "first_step_s", "second_step_s"}
    assert all(v > 0 for v in times.values())
