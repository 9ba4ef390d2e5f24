"""demos/train_cifar10.py end to end on a tiny configuration (512 training images and 64 held
out for validation, width 8, two epochs):
the options parse, the recipe's model has the issue's shape, a run beats a target well above
chance and writes its curves and a checkpoint, and a run stopped after one epoch and resumed
with --resume ends bit for bit where the uninterrupted run does. The default run's accuracy is
`make demo`'s own check."""
import numpy as np
import pytest

import tinygrad_lite as tl
from helpers import load_demo
from tinygrad_lite.train import load_checkpoint

@pytest.fixture(scope="module")
def demo():
    return load_demo("train_cifar10")


def test_full_recipe_model_has_the_issue_shape(demo):
    args = demo.parse_args(["--recipe", "full"])
    assert (args.width, args.hidden, args.dropout, args.epochs, args.batch_size, args.lr) == (
        32, 256, 0.5, 12, 128, 0.05)
    model = demo.convnet(args.width, args.hidden, args.dropout)
    linear = [m for m in model.modules() if isinstance(m, tl.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(4096, 256), (256, 10)]
    assert sum(isinstance(m, tl.nn.BatchNorm2d) for m in model.modules()) == 4
    model.eval()
    assert model(tl.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_best_recipe_adds_swa_and_tta_to_the_full_recipes_net(demo):
    best, full = demo.parse_args(["--recipe", "best"]), demo.parse_args(["--recipe", "full"])
    assert (best.swa_epochs, best.tta, full.swa_epochs, full.tta) == (3, True, 0, False)
    assert (best.width, best.hidden, best.val_split) == (full.width, full.hidden, 5000)
    assert demo.parse_args(["--recipe", "best", "--no-tta", "--swa-epochs", "0"]).tta is False


def test_options_are_checked(demo):
    with pytest.raises(SystemExit):
        demo.parse_args(["--epochs", "0"])
    with pytest.raises(SystemExit):
        demo.parse_args(["--subset", "10", "--batch-size", "64"])


def _same(a, b, where="state"):
    """a and b are the same tree, arrays and Tensors equal bit for bit."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for k in a:
            _same(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b)):
            _same(u, v, f"{where}/{i}")
    elif isinstance(a, (tl.Tensor, np.ndarray)):
        np.testing.assert_array_equal(a.numpy() if isinstance(a, tl.Tensor) else a,
                                      b.numpy() if isinstance(b, tl.Tensor) else b,
                                      err_msg=where)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, where


# 512 training images, two epochs: the test accuracy (1,000 images) ends near 18%; 15% is more than five
# standard deviations of a chance classifier's accuracy (10% +- 0.95%) away from chance.
TINY = ["--subset", "576", "--val-split", "64", "--epochs", "2", "--width", "8", "--hidden", "32",
        "--batch-size", "64", "--no-progress", "--workers", "0", "--target", "0.15"]


def test_tiny_run_learns_and_resumes_bit_for_bit(demo, tmp_path, monkeypatch):
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert demo.main(TINY + ["--out", str(whole)]) == 0  # beat the target
    for name in ("cifar10_loss.png", "cifar10_accuracy.png", "cifar10_checkpoint.npz"):
        assert (whole / name).stat().st_size > 1000
    state = load_checkpoint(whole / "cifar10_checkpoint.npz")
    assert state["epochs_done"] == 2 and len(state["history"]["batches"]["loss"]) == 2 * 8
    assert len(state["history"]["epochs"]["val_accuracy"]) == 2  # on the 64 held-out images
    assert state["scheduler_step"] == "batch"  # the one-cycle schedule counts batches

    # Interrupted: the same run stopped after its first epoch (fit told to do one epoch; the
    # schedule and everything else were built for two), then resumed by a fresh process-like
    # main() with --resume.
    real_fit = demo.fit
    monkeypatch.setattr(demo, "fit", lambda *a, **k: real_fit(*a, **{**k, "epochs": 1}))
    demo.main(TINY + ["--out", str(part)])
    monkeypatch.setattr(demo, "fit", real_fit)
    assert load_checkpoint(part / "cifar10_checkpoint.npz")["epochs_done"] == 1
    tl.manual_seed(123)  # the checkpoint, not the seed, must decide what follows
    assert demo.main(TINY + ["--out", str(part), "--resume",
                             str(part / "cifar10_checkpoint.npz")]) == 0
    _same(state, load_checkpoint(part / "cifar10_checkpoint.npz"))


def test_resume_under_other_options_is_refused(demo, tmp_path):
    argv = ["--subset", "64", "--epochs", "1", "--width", "4", "--hidden", "8",
            "--batch-size", "32", "--val-split", "0", "--out", str(tmp_path), "--no-progress",
            "--workers", "0",
            "--no-augment", "--target", "0"]
    assert demo.main(argv) == 0
    path = tmp_path / "cifar10_checkpoint.npz"
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"--epochs 1 \(now 2\).*--batch-size 32 \(now 16\)"):
        demo.main(argv[:2] + ["--epochs", "2"] + argv[4:] + ["--batch-size", "16",
                                                            "--resume", str(path)])
    assert path.read_bytes() == before


def test_data_root_help_names_the_folder(demo, capsys):
    with pytest.raises(SystemExit):
        demo.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "the folder that holds cifar-10-batches-py/" in text and "or that folder itself" in text


def test_a_short_run_on_a_small_cifar_subset_learns(demo):
    """The demo's convnet (narrow), 256 real CIFAR-10 images from the bundled sample, a few
    epochs of Adam: the training accuracy ends far above chance (10%) and the loss falls well
    below its starting value of about log(10)."""
    from tinygrad_lite import data, optim
    from tinygrad_lite.train import evaluate, fit
    tl.manual_seed(0)
    images = data.CIFAR10(train=True, sample=True)
    subset = data.Subset(images, np.arange(256))
    normalize = data.Normalize(data.CIFAR10_MEAN, data.CIFAR10_STD)
    loader = data.DataLoader(subset, 64, shuffle=True, transform=normalize)
    model = demo.convnet(width=8, hidden=32, dropout=0.0)
    history = fit(model, loader, optim.Adam(model.parameters(), lr=3e-3), epochs=12,
                  progress=False)
    loss, accuracy = evaluate(model, data.DataLoader(subset, 128, transform=normalize))
    assert history["loss"][0] > 1.9  # about log(10) = 2.3 at the start
    assert loss < 1.2 and accuracy > 0.6, (loss, accuracy)


def test_validation_is_held_out_of_the_training_set(demo, monkeypatch):
    """--val-split N: fit validates on N training images drawn with --seed (the same for the
    same seed, disjoint from what it trains on), never on the test set, which main evaluates
    once at the end."""
    seen = {}

    def spy_fit(model, train_loader, opt, val_loader=None, **kw):
        seen["train"], seen["val"] = train_loader.dataset, val_loader.dataset
        raise KeyboardInterrupt  # enough: the split is what this test is about

    monkeypatch.setattr(demo, "fit", spy_fit)
    argv = ["--subset", "300", "--val-split", "100", "--batch-size", "32", "--no-progress",
            "--workers", "0", "--width", "4", "--hidden", "8"]
    with pytest.raises(KeyboardInterrupt):
        demo.main(argv)
    train, val = seen["train"], seen["val"]
    assert len(train) == 200 and len(val) == 100
    held_out = set(val.indices.tolist())
    assert held_out.isdisjoint(train.indices.tolist()) and max(held_out) < 300
    assert val.dataset.dataset.train  # drawn from (the subset of) the training images
    with pytest.raises(KeyboardInterrupt):
        demo.main(argv)
    assert set(seen["val"].indices.tolist()) == held_out  # the seed decides
    with pytest.raises(SystemExit):
        demo.parse_args(["--val-split", "-1"])


def test_swa_and_flip_tta_are_kept_only_when_validation_says_so(demo, tmp_path, capsys):
    """--swa-epochs and --tta (the best recipe's additions): the final weights and the SWA
    average, each with and without flip TTA, are scored on the validation split; the best of
    the four is what the test set sees, and the average is in the checkpoint for a resume."""
    assert demo.main(TINY + ["--swa-epochs", "2", "--tta", "--target", "0",
                             "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    scores = {}
    for line in text.splitlines():
        if line.strip().startswith("validation accuracy of "):
            name, score = line.strip()[len("validation accuracy of "):].rsplit(": ", 1)
            scores[name] = float(score)
    assert set(scores) == {"final weights", "final weights + flip TTA",
                           "SWA of the last 2 epochs", "SWA of the last 2 epochs + flip TTA"}
    best = max(scores.values())
    chosen = next(name for name, s in scores.items() if s == best)  # the first of equals
    assert f"({chosen}; target > 0.0)" in text
    state = load_checkpoint(tmp_path / "cifar10_checkpoint.npz")
    averaged = [c["state"]["averaged"] for c in state["callbacks"]
                if c["type"] == "AverageLastEpochs"]
    assert len(averaged) == 1 and averaged[0]["n_averaged"].item() == 2
