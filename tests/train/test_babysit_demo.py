"""demos/babysit.py on a tiny configuration (256 sample images, 64 held out, width 4, one
epoch): the five steps run in the lectures' order, the sanity checks pass on the demo's
convnet, the fit runs at the lr range test's suggestion, and every picture is written. The
default run's numbers are in the README."""
import re

import pytest

from helpers import load_demo

PNG = b"\x89PNG\r\n\x1a\n"
PICTURES = ["babysit_lr_find.png", "babysit_activations.png", "babysit_update_ratio.png",
            "babysit_loss.png", "babysit_accuracy.png"]


@pytest.fixture(scope="module")
def demo():
    return load_demo("babysit")


def test_tiny_run_goes_through_the_five_steps(demo, tmp_path, capsys):
    argv = ["--subset", "256", "--val-split", "64", "--epochs", "1", "--width", "4",
            "--hidden", "16", "--batch-size", "32", "--lr-find-iters", "20",
            "--out", str(tmp_path)]
    assert demo.main(argv) == 0
    out = capsys.readouterr().out
    steps = [out.index(f"{k}. ") for k in range(1, 6)]
    assert steps == sorted(steps)
    assert "Total params:" in out and "[FAIL]" not in out and out.count("[PASS]") >= 5
    suggestion = re.search(r"LRFinderResult\(suggestion=([0-9.e+-]+)", out).group(1)
    assert f"at lr {float(suggestion):.3g} " in out  # the fit used the range test's lr
    assert "update/weight ratio at the last step: 0.weight" in out
    # dead units are counted after each BN+ReLU and the hidden ReLU: 4, 4, 8, 8 and 16 units
    units = [int(n) for n in re.findall(r"\d+ of +(\d+) channels never fired", out)]
    assert units == [4, 4, 8, 8, 16]
    for name in PICTURES:
        assert (tmp_path / name).read_bytes()[:8] == PNG, name


def test_options_are_checked(demo):
    with pytest.raises(SystemExit):
        demo.parse_args(["--subset", "100", "--val-split", "90"])
