"""demos/ensembles.py end to end on a tiny configuration of the bundled sample (300 training
images of which 30 validate, two one-epoch cycles, 100 test images, a 4-channel net): the run
saves one snapshot per cycle, makes its choices on the validation split, and reports the six
rows of its table. The default run's figures are in the demo's docstring and the README."""
import numpy as np
import pytest

from helpers import load_demo

TINY = ["--sample", "--subset", "300", "--test-subset", "100", "--epochs", "2", "--cycle", "1",
        "--width", "4", "--hidden", "8", "--batch-size", "50", "--no-progress", "--workers",
        "0"]


def test_tiny_run_reports_every_row(tmp_path):
    demo = load_demo("ensembles")
    result = demo.main(TINY + ["--out", str(tmp_path)])
    assert [r["method"] for r in result["rows"]] == [
        "single model", "single model + TTA", "snapshot ensemble", "snapshot ensemble + TTA",
        "SWA", "SWA + TTA"]
    assert [p.rsplit("_", 1)[1] for p in result["snapshots"]] == ["epoch0001.npz",
                                                                 "epoch0002.npz"]
    assert result["k"] in (1, 2) and result["j"] == 2
    assert result["views"] in demo.tta_candidates()
    for row in result["rows"]:
        # accuracies of 100 test images: multiples of 1/100
        assert 0 <= row["accuracy"] <= 1 and np.isclose(row["accuracy"] * 100,
                                                        round(row["accuracy"] * 100))
    if result["k"] == 1:  # the last snapshot is the model at the end of the run
        assert result["rows"][2]["accuracy"] == result["rows"][0]["accuracy"]
    table = (tmp_path / "ensembles.md").read_text()
    assert table.count("\n| ") == 6 and "| snapshot ensemble + TTA |" in table


def test_options_are_checked():
    demo = load_demo("ensembles")
    with pytest.raises(SystemExit):
        demo.parse_args(["--epochs", "3", "--cycle", "2"])  # one cycle: nothing to ensemble
    with pytest.raises(SystemExit):
        demo.parse_args(["--val", "1.5"])
