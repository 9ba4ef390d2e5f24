"""Transfer learning on CIFAR-10: pretrain the CIFAR-10 demo's convnet on classes 0-4 (airplane,
automobile, bird, cat, deer), then learn classes 5-9 (dog, frog, horse, ship, truck) from a
small labelled set (100 images per class by default) three ways, and compare their test
accuracies:

    (a) from scratch: a fresh convnet trained on the small set only;
    (b) frozen features: the pretrained convnet with every layer frozen (train.freeze) up to a
        new final Linear, the only layer that trains (the frozen layers stay in eval mode, so
        batch norm keeps its pretrained statistics too);
    (c) fine-tuning: the pretrained convnet with a new final Linear, everything training, the
        pretrained layers at a tenth of the head's learning rate (parameter groups).

Each method keeps the epoch with the best accuracy on a validation split held out of the small
set (data.random_split, seeded), and is evaluated once on the test images of classes 5-9. The
lectures' advice (SPEC "Transfer learning") is printed with the result: classes 5-9 are other
objects in the same kind of photographs, a similar data set, and 100 images per class is
little data.

    python demos/transfer_learning.py                    # on the bundled sample (or the full
                                                         # set via $TINYGRAD_LITE_DATA)
    python demos/transfer_learning.py --data-root /data  # /data/cifar-10-batches-py
    python demos/transfer_learning.py --pretrain-epochs 2 --epochs 5 --pretrain-subset 1000

The pretrained model goes to --out/transfer_pretrained.npz (a checkpoint: weights, the input
normalisation and the options it was trained with) and is reused by later runs with the same
pretraining options; other options are refused with a message (delete the file or pick
another --out).
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

DEMOS = Path(__file__).resolve().parent
try:
    import tinygrad_lite as tl
except ImportError:  # run from a checkout without `pip install -e .`: use the repo root
    sys.path.insert(0, str(DEMOS.parent))
    import tinygrad_lite as tl
if str(DEMOS) not in sys.path:  # the CIFAR-10 demo's convnet, whoever loaded this file
    sys.path.insert(0, str(DEMOS))

from tinygrad_lite import data, nn, optim  # noqa: E402
from tinygrad_lite.nn.summary import summary  # noqa: E402
from tinygrad_lite.train import (EarlyStopping, LambdaCallback, evaluate, fit,  # noqa: E402
                                 load_checkpoint, save_checkpoint)
from tinygrad_lite.train.transfer import freeze  # noqa: E402
from train_cifar10 import augmentation, channel_stats, convnet, held_out  # noqa: E402

OLD_CLASSES, NEW_CLASSES = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)
PRETRAINED = "transfer_pretrained.npz"
# Pretraining sees about this many images unless --pretrain-epochs says otherwise: 2 epochs of
# the full data set's 25,000 images of classes 0-4, 16 of the bundled sample's 2,500 (a few
# minutes on 2 CPU cores).
PRETRAIN_IMAGES = 40_000
# The options that decide what the pretrained model is; a saved one is reused only under the
# same ones.
PRETRAIN_OPTIONS = ("data", "pretrain_subset", "pretrain_epochs", "width", "hidden", "dropout",
                    "batch_size", "pretrain_lr", "weight_decay", "seed")

# The lectures' matrix: what to do with a pretrained network, by how similar the new data set
# is to the one it was trained on and how much labelled data there is.
ADVICE = """The lectures' advice (pretrained convnet, new data set):
                   very similar data set                 very different data set
  very little data linear classifier on the top layer    trouble: try linear classifiers
                   (b)                                   from different stages
  quite a lot      fine-tune a few layers (c)            fine-tune a larger number of layers
  of data"""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default=None,
                   help="the folder that holds cifar-10-batches-py/ (or that folder itself). "
                        "Default: $TINYGRAD_LITE_DATA, else ~/.cache/tinygrad_lite, and when "
                        "that has no data set the sample bundled with tinygrad_lite")
    p.add_argument("--out", default=str(DEMOS / "out"),
                   help=f"where the pretrained model ({PRETRAINED}) is saved and looked for "
                        f"(default demos/out/)")
    p.add_argument("--per-class", type=int, default=100,
                   help="labelled training images per new class (classes 5-9), validation "
                        "split included")
    p.add_argument("--val-fraction", type=float, default=0.2,
                   help="share of the small labelled set held out to pick each method's epoch")
    p.add_argument("--pretrain-subset", type=int,
                   help="pretrain on only the first N training images of classes 0-4")
    p.add_argument("--test-subset", type=int,
                   help="evaluate on only the first N test images of classes 5-9")
    p.add_argument("--pretrain-epochs", type=int,
                   help=f"default: enough for about {PRETRAIN_IMAGES:,} images (2 epochs of the "
                        f"full data's 25,000, 16 of the bundled sample's 2,500)")
    p.add_argument("--epochs", type=int, default=20, help="epochs of each transfer method")
    p.add_argument("--width", type=int, default=16, help="channels of the first conv block")
    p.add_argument("--hidden", type=int, default=128, help="units of the hidden linear layer")
    p.add_argument("--dropout", type=float, default=0.25)
    p.add_argument("--batch-size", type=int, default=64, help="pretraining batch size")
    p.add_argument("--transfer-batch-size", type=int, default=32,
                   help="batch size on the small set")
    p.add_argument("--pretrain-lr", type=float, default=0.1,
                   help="peak lr of the pretraining's one-cycle schedule")
    p.add_argument("--lr", type=float, default=0.05,
                   help="lr of the transfer methods (cosine decay); fine-tuning gives the "
                        "pretrained layers a tenth of it")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--workers", type=int, default=1, help="data-loading threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    for key in ("per_class", "epochs", "width", "hidden", "batch_size", "transfer_batch_size"):
        if getattr(args, key) < 1:
            p.error(f"--{key.replace('_', '-')} must be positive, got {getattr(args, key)}")
    for key in ("pretrain_subset", "test_subset", "pretrain_epochs"):
        if getattr(args, key) is not None and getattr(args, key) < 1:
            p.error(f"--{key.replace('_', '-')} must be positive, got {getattr(args, key)}")
    if not 0 < args.val_fraction < 1:
        p.error(f"--val-fraction must be in (0, 1), got {args.val_fraction}")
    if not 0 <= args.dropout < 1:
        p.error(f"--dropout must be in [0, 1), got {args.dropout}")
    return args


def pick_classes(dataset, classes, per_class=None, first=None):
    """The images of `classes` (all, the first `per_class` of each, or the first `first`) as
    a dataset whose labels are renumbered 0, 1, ... in the order of `classes`."""
    targets = np.asarray(dataset.targets)
    if per_class is not None:
        chosen = [np.flatnonzero(targets == c)[:per_class] for c in classes]
        if min(map(len, chosen)) < per_class:
            raise ValueError(f"--per-class {per_class}: the training split has only "
                             f"{min(map(len, chosen))} images of some class in {classes}")
        index = np.sort(np.concatenate(chosen))
    else:
        index = np.flatnonzero(np.isin(targets, classes))[:first]
    labels = np.searchsorted(np.asarray(classes), targets[index])
    return data.TensorDataset(dataset.data[index], labels, layout="NHWC")


def new_head(in_features, classes):
    """A final Linear as convnet makes one: N(0, 0.01^2) weights, so every class starts
    equally likely (initial loss log(classes))."""
    head = nn.Linear(in_features, classes)
    nn.init.normal_(head.weight, std=0.01)
    nn.init.zeros_(head.bias)
    return head


def pretrain(args, train_set, test_set, path):
    """The convnet trained on classes 0-4, from `path` when it holds one trained under the
    same options, else trained now and saved there. Returns (model, normalize)."""
    options = {k: getattr(args, k) for k in PRETRAIN_OPTIONS}
    model = convnet(args.width, args.hidden, args.dropout, classes=len(OLD_CLASSES))
    if path.exists():
        saved = load_checkpoint(path)
        differ = [f"{k} {saved['options'].get(k)!r} (now {v!r})" for k, v in options.items()
                  if saved["options"].get(k) != v]
        if differ:
            raise ValueError(f"{path} holds a model pretrained with other options: "
                             f"{', '.join(differ)}; delete it or choose another --out")
        model.load_state_dict(saved["model"])
        print(f"pretrained model reused from {path} (test accuracy on classes 0-4 "
              f"{saved['test_accuracy']:.4f})")
        return model, data.Normalize(saved["mean"], saved["std"])

    # Per-channel statistics of the pretraining images, kept with the model: the input
    # pipeline is part of what transfers.
    mean, std = channel_stats(train_set)
    normalize = data.Normalize(mean, std)
    augment = data.Compose(augmentation() + [normalize])
    loader = data.DataLoader(train_set, args.batch_size, shuffle=True, drop_last=True,
                             transform=augment, num_workers=args.workers)
    steps = len(loader) * args.pretrain_epochs
    if steps < 5:  # the warm-up (a quarter of the steps) must last more than one step
        raise ValueError(f"pretraining takes {steps} batches of {args.batch_size}; its one-cycle "
                         f"schedule needs at least 5 (raise --pretrain-subset or "
                         f"--pretrain-epochs)")
    opt = optim.SGD(model.parameters(), lr=args.pretrain_lr, momentum=0.9, nesterov=True,
                    weight_decay=args.weight_decay)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=args.pretrain_lr,
                                          epochs=args.pretrain_epochs,
                                          steps_per_epoch=len(loader), pct_start=0.25)
    print(f"pretraining on classes 0-4: {len(train_set)} images, {args.pretrain_epochs} epochs")
    start = time.perf_counter()
    fit(model, loader, opt, epochs=args.pretrain_epochs, scheduler=sched,
        progress=not args.no_progress)
    _, accuracy = evaluate(model, data.DataLoader(test_set, 256, transform=normalize,
                                                  num_workers=args.workers))
    print(f"pretrained in {time.perf_counter() - start:.1f} s: test accuracy on classes 0-4 "
          f"{accuracy:.4f} (chance 0.2)")
    save_checkpoint(path, {"model": model.state_dict(), "options": options, "mean": mean,
                           "std": std, "test_accuracy": accuracy})
    return model, normalize


def from_pretrained(model, pretrained):
    """`model` with the pretrained weights and a new final Linear for the new classes."""
    model.load_state_dict(pretrained.state_dict())
    model.add_module(str(len(model) - 1), new_head(model[-1].in_features, len(NEW_CLASSES)))
    return model


def train_method(name, args, model, param_groups, train_loader, val_loader, test_loader,
                 callbacks=()):
    """Train on the small set, keep the best epoch by validation accuracy, evaluate the test
    set once. Returns (test accuracy, best epoch, its validation accuracy)."""
    opt = optim.SGD(param_groups, lr=args.lr, momentum=0.9, nesterov=True,
                    weight_decay=args.weight_decay)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    # patience = epochs: never stops early, only keeps (and restores) the best epoch's weights
    best = EarlyStopping("val_accuracy", patience=args.epochs, restore_best_weights=True)
    start = time.perf_counter()
    history = fit(model, train_loader, opt, epochs=args.epochs, val_loader=val_loader,
                  scheduler=sched, callbacks=[*callbacks, best], progress=not args.no_progress)
    epoch = int(np.argmax(history["val_accuracy"]))
    _, accuracy = evaluate(model, test_loader)
    print(f"  {name}: test accuracy {accuracy:.4f} (best epoch {epoch + 1}, validation "
          f"accuracy {history['val_accuracy'][epoch]:.4f}; {time.perf_counter() - start:.1f} s)")
    return accuracy, epoch, history["val_accuracy"][epoch]


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tl.manual_seed(args.seed)
    start = time.perf_counter()

    train_full = data.CIFAR10(args.data_root, train=True, sample="auto")
    test_full = data.CIFAR10(args.data_root, train=False, sample="auto")
    args.data = "bundled sample" if train_full.is_sample else str(train_full.data_dir)
    old_train = pick_classes(train_full, OLD_CLASSES, first=args.pretrain_subset)
    old_test = pick_classes(test_full, OLD_CLASSES)
    small = pick_classes(train_full, NEW_CLASSES, per_class=args.per_class)
    new_test = pick_classes(test_full, NEW_CLASSES, first=args.test_subset)
    if args.pretrain_epochs is None:
        args.pretrain_epochs = max(1, round(PRETRAIN_IMAGES / len(old_train)))

    pretrained, normalize = pretrain(args, old_train, old_test, out / PRETRAINED)

    n_val = max(1, round(len(small) * args.val_fraction))
    train_set, val_set = held_out(small, n_val, args.seed)
    augment = data.Compose(augmentation() + [normalize])
    train_loader = data.DataLoader(train_set, args.transfer_batch_size, shuffle=True,
                                   drop_last=len(train_set) > args.transfer_batch_size,
                                   transform=augment, num_workers=args.workers)
    val_loader = data.DataLoader(val_set, 256, transform=normalize)
    test_loader = data.DataLoader(new_test, 256, transform=normalize, num_workers=args.workers)
    print(f"classes 5-9: {len(train_set)} labelled training images, {len(val_set)} held out "
          f"for validation, {len(new_test)} test images; {args.epochs} epochs per method")

    def fresh():
        # Each method starts from the same generator state (its initial weights, then its
        # batches), whether the pretrained model was trained in this run or reused.
        tl.manual_seed(args.seed + 1)
        return convnet(args.width, args.hidden, args.dropout, classes=len(NEW_CLASSES))

    results = {}
    model = fresh()
    results["a"] = train_method("(a) from scratch", args, model, model.parameters(),
                                train_loader, val_loader, test_loader)

    model = from_pretrained(fresh(), pretrained)
    features = model[:-1]  # a Sequential of the same modules: the pretrained layers
    freeze(model, upto=str(len(model) - 2))  # all but the new head ("13" of "0".."14")
    print(summary(model, (1, 3, 32, 32)))
    # Frozen layers in eval mode after fit's model.train(): batch norm keeps its pretrained
    # running statistics and dropout is off, so the features are exactly the pretrained ones.
    keep_frozen = LambdaCallback(on_epoch_start=lambda trainer, epoch: features.eval())
    results["b"] = train_method("(b) frozen features, new linear head", args, model,
                                [p for p in model.parameters() if p.requires_grad],
                                train_loader, val_loader, test_loader, [keep_frozen])

    model = from_pretrained(fresh(), pretrained)
    groups = [{"params": list(model[:-1].parameters()), "lr": args.lr / 10},
              {"params": list(model[-1].parameters())}]
    results["c"] = train_method("(c) fine-tune all, pretrained layers at lr/10", args, model,
                                groups, train_loader, val_loader, test_loader)

    print(f"\ntest accuracy on classes 5-9 ({len(new_test)} images; chance 0.2), from "
          f"{args.per_class} labelled images per class:")
    for key, label in (("a", "(a) from scratch"), ("b", "(b) frozen features + linear head"),
                       ("c", "(c) fine-tuning at lr/10")):
        print(f"  {label:36s} {results[key][0]:.4f}")
    best = max(results, key=lambda k: results[k][0])
    gain = max(results["b"][0], results["c"][0]) - results["a"][0]
    print(f"\n{ADVICE}\n")
    print(f"Here classes 5-9 are new objects in the same kind of 32x32 photographs (a similar "
          f"data set) with little labelled data: the top-left cell. Starting from the "
          f"pretrained network {'beat' if gain > 0 else 'did not beat'} training from scratch "
          f"(the better of (b) and (c) by {gain * 100:+.1f} points), and ({best}) did best"
          + {"a": ".", "b": ", as the cell advises.",
             "c": ": gentle fine-tuning (lr/10) could adapt the features to the new "
                  "classes. The cells are rules of thumb; a validation split decides between "
                  "them."}[best])
    print("With much more labelled data the advice moves down a row: fine-tune more layers "
          "(c); for a very different data set, more of them.")
    print(f"total {time.perf_counter() - start:.1f} s")
    return results


if __name__ == "__main__":
    main()
