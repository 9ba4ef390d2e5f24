"""Babysitting the CIFAR-10 demo's convnet with the lectures' tools, in the order the lectures
use them (SPEC.md, "Choosing hyperparameters"):

1. nn.summary: what the network is (shapes, parameters, multiply-adds);
2. train.sanity_check: initial loss against log 10, weight decay, zeroed-input baseline,
   overfitting two batches, batch independence, gradients against finite differences;
3. train.lr_find: the learning-rate range test, and its suggestion;
4. a short fit at that lr, watched by train.ActivationStats (per-layer activation and
   gradient statistics, the "colorful dimension" picture) and train.UpdateRatio (update /
   weight norms, about 1e-3 is healthy), with diagnose=True naming what the curves show;
5. train.dead_units: ReLU channels that never fired on the validation images.

Runs on the sample bundled with the package (or the full set with --data-root /
$TINYGRAD_LITE_DATA) in a couple of minutes on 2 cores; pictures go to --out:
babysit_lr_find.png, babysit_activations.png, babysit_update_ratio.png, babysit_loss.png,
babysit_accuracy.png.

    python demos/babysit.py [--subset 2000] [--epochs 4] [--out demos/out]

Exits with status 1, before training, when a sanity check fails.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

try:
    import tinygrad_lite as tl
except ImportError:  # run from a checkout without `pip install -e .`: use the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import tinygrad_lite as tl

from tinygrad_lite import data, nn, optim, train  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_cifar10 import augmentation, channel_stats, convnet, held_out  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default=None, help="as for train_cifar10.py")
    p.add_argument("--subset", type=int, default=2000, help="training images used")
    p.add_argument("--val-split", type=int, default=500,
                   help="of which held out for validation (the curves and dead units)")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr-find-iters", type=int, default=60)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "out"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not 0 < args.val_split < args.subset - args.batch_size:
        p.error(f"--val-split must leave at least one batch of --subset, got {args.val_split}")
    return args


def main(argv=None):
    args = parse_args(argv)
    tl.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    images = data.CIFAR10(args.data_root, train=True, sample="auto")
    images = data.Subset(images, np.arange(min(args.subset, len(images))))
    train_set, val_set = held_out(images, args.val_split, args.seed)
    normalize = data.Normalize(*channel_stats(train_set))
    augment = data.Compose(augmentation() + [normalize])
    loader = data.DataLoader(train_set, args.batch_size, shuffle=True, drop_last=True,
                             transform=augment)
    val_loader = data.DataLoader(val_set, 250, transform=normalize)
    model = convnet(args.width, args.hidden, dropout=0.25)

    print("1. nn.summary\n" + str(nn.summary(model, (args.batch_size, 3, 32, 32))))

    print("\n2. train.sanity_check")
    report = train.sanity_check(model, loader, overfit_steps=150)
    if not report.passed:  # the lectures' rule: never train a network that fails these
        print(f"stopping: {len(report.failed())} sanity check(s) failed; fix them first")
        return 1

    print("\n3. train.lr_find")
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    found = train.lr_find(model, loader, opt, num_iter=args.lr_find_iters)
    found.plot(out / "babysit_lr_find.png")
    print(found)
    for group in opt.param_groups:
        group["lr"] = found.suggestion

    print(f"\n4. fit for {args.epochs} epochs at lr {found.suggestion:.3g} (cosine decay), "
          "watched by ActivationStats and UpdateRatio, diagnose=True")
    watch_x, watch_y = next(iter(val_loader))
    stats = train.ActivationStats((watch_x, watch_y), every=max(1, len(loader) // 4))
    ratios = train.UpdateRatio()
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    history = train.fit(model, loader, opt, epochs=args.epochs, val_loader=val_loader,
                        scheduler=sched, callbacks=[stats, ratios], progress=False,
                        diagnose=True)
    stats.plot(out / "babysit_activations.png")
    ratios.plot(out / "babysit_update_ratio.png", history)
    train.save_curves(history, out, prefix="babysit_")
    last = {name: values[-1] for name, values in train.update_ratios(history).items()
            if name.endswith("weight")}
    print("update/weight ratio at the last step: " + ", ".join(
        f"{name} {value:.1e}" for name, value in last.items()))

    print("\n5. train.dead_units on the validation images")
    for row in train.dead_units(model, val_loader):
        print(f"  {row['name']:<6} {row['dead']:>3} of {row['units']:>3} channels never fired "
              f"({row['fraction']:.0%})")
    print(f"\npictures in {out}: babysit_lr_find.png, babysit_activations.png, "
          "babysit_update_ratio.png, babysit_loss.png, babysit_accuracy.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
