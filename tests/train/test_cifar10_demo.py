"""demos/train_cifar10.py end to end on a tiny configuration (64 images, width 4, one epoch):
the options parse, the recipe's model has the issue's shape, and a run writes its curves and a
checkpoint that resumes. Accuracy is the demo's own check (`make demo`), not this test's."""
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


def test_options_are_checked(demo):
    with pytest.raises(SystemExit):
        demo.parse_args(["--epochs", "0"])
    with pytest.raises(SystemExit):
        demo.parse_args(["--subset", "10", "--batch-size", "64"])


def test_tiny_run_writes_curves_and_a_resumable_checkpoint(demo, tmp_path):
    argv = ["--subset", "64", "--epochs", "1", "--width", "4", "--hidden", "8",
            "--batch-size", "32", "--out", str(tmp_path), "--no-progress", "--workers", "0"]
    assert demo.main(argv) in (0, 1)  # 1: too few images to beat 25%, which is fine here
    for name in ("cifar10_loss.png", "cifar10_accuracy.png", "cifar10_checkpoint.npz"):
        assert (tmp_path / name).stat().st_size > 1000
    path = tmp_path / "cifar10_checkpoint.npz"
    state = load_checkpoint(path)
    assert state["epochs_done"] == 1 and len(state["history"]["batches"]["loss"]) == 2
    assert np.isfinite(state["history"]["epochs"]["val_loss"][0])
    # Resuming a finished run loads everything (model, optimiser, one-cycle schedule, RNG
    # states) into a fresh setup and trains no further.
    assert demo.main(argv + ["--resume", str(path)]) in (0, 1)


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
