"""demos/transfer_learning.py end to end on a tiny configuration of the bundled sample (320
pretraining images, 10 labelled images per new class, width 4): the three methods' test
accuracies are printed with the lectures' advice, the pretrained model is saved and reused by
a second run (which then gives the same results), and a saved model pretrained under other
options is refused. The default run's numbers are in the demo's README entry."""
import pytest

from helpers import load_demo

TINY = ["--pretrain-subset", "320", "--pretrain-epochs", "1", "--epochs", "2",
        "--per-class", "10", "--test-subset", "100", "--width", "4", "--hidden", "8",
        "--no-progress", "--workers", "0"]


@pytest.fixture(scope="module")
def demo():
    return load_demo("transfer_learning")


def test_three_methods_are_compared_and_the_pretrained_model_is_reused(demo, tmp_path,
                                                                        capsys):
    first = demo.main(TINY + ["--out", str(tmp_path)])
    text = capsys.readouterr().out
    saved = tmp_path / demo.PRETRAINED
    assert "pretraining on classes 0-4: 320 images, 1 epochs" in text
    assert saved.stat().st_size > 1000
    assert "40 labelled training images, 10 held out for validation, 100 test images" in text
    table = text.split("test accuracy on classes 5-9 (100 images; chance 0.2), from 10 "
                       "labelled images per class:\n")[1].splitlines()[:3]
    for line, label in zip(table, ("(a) from scratch", "(b) frozen features + linear head",
                                   "(c) fine-tuning at lr/10")):
        assert line.split()[:-1] == label.split()
        assert float(line.split()[-1]) == pytest.approx(first[label[1]][0], abs=5e-5)
    assert all(0 <= first[k][0] <= 1 for k in "abc")
    assert "The lectures' advice" in text and "linear classifier on the top layer" in text
    assert "Frozen params: 5,268" in text  # the summary of (b): all but the 8 x 5 + 5 head

    before = saved.read_bytes()
    second = demo.main(TINY + ["--out", str(tmp_path)])
    text = capsys.readouterr().out
    assert "pretrained model reused from" in text and "pretraining on" not in text
    assert saved.read_bytes() == before
    assert second == first  # each method starts from the same seed, pretrained now or reused


def test_a_model_pretrained_under_other_options_is_refused(demo, tmp_path):
    demo.main(TINY + ["--out", str(tmp_path)])
    before = (tmp_path / demo.PRETRAINED).read_bytes()
    with pytest.raises(ValueError, match=r"pretrained with other options: width 4 \(now 6\)"):
        demo.main(TINY + ["--out", str(tmp_path), "--width", "6"])
    assert (tmp_path / demo.PRETRAINED).read_bytes() == before


def test_options_are_checked(demo):
    for bad in (["--per-class", "0"], ["--val-fraction", "1"], ["--pretrain-epochs", "0"]):
        with pytest.raises(SystemExit):
            demo.parse_args(bad)
