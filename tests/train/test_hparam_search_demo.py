"""demos/hparam_search.py end to end on a tiny configuration (a few trials of one epoch on 160
images of the bundled sample): a coarse search, then a finer one inside the range the best
coarse trials span, each printing its table and writing its plot and CSV. The default run's
output is in the README."""
import csv

import numpy as np
import pytest

from helpers import load_demo


@pytest.fixture(scope="module")
def demo():
    return load_demo("hparam_search")


def test_options_are_checked(demo):
    assert demo.parse_args([]).executor == "none"
    for bad in (["--trials", "1"], ["--epochs", "0"], ["--subset", "100", "--batch-size", "64"],
                ["--executor", "cloud"]):
        with pytest.raises(SystemExit):
            demo.parse_args(bad)


def test_a_tiny_coarse_to_fine_search(demo, tmp_path, capsys):
    argv = ["--trials", "2", "--subset", "80", "--epochs", "1", "--width", "4",
            "--batch-size", "32", "--out", str(tmp_path)]
    assert demo.main(argv) == 0
    printed = capsys.readouterr().out
    assert "coarse: 2 trials of 1 epochs" in printed and "fine: 2 trials of 2 epochs" in printed
    assert "64 training and 16 validation images" in printed  # a fifth held out
    for stage, count, budget in (("coarse", 2, "1"), ("fine", 2, "2")):
        assert (tmp_path / f"hparam_{stage}.png").stat().st_size > 1000
        with open(tmp_path / f"hparam_{stage}.csv") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == count and {r["budget"] for r in rows} == {budget}
        if stage == "coarse":
            coarse = rows
    # the fine search ran inside the coarse range, around the two best coarse trials: their
    # span (in log) widened twice about its middle, at least a tenth of the old range wide
    best = [r for r in coarse if r["status"] == "ok"][:2]
    for name, (lo, hi) in (("lr", (1e-4, 1.0)), ("weight_decay", (1e-6, 1e-2))):
        a, b = sorted(np.log([float(r[name]) for r in best]))
        half = max(b - a, 0.05 * np.log(hi / lo))
        low, high = max(lo, np.exp((a + b) / 2 - half)), min(hi, np.exp((a + b) / 2 + half))
        with open(tmp_path / "hparam_fine.csv") as f:
            for row in csv.DictReader(f):
                assert low <= float(row[name]) <= high, (name, row[name], low, high)
