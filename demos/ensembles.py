"""Ensembles along one training run on CIFAR-10: the lectures' "model ensembles (average the
predicted probabilities), snapshot ensembles along one run" and test-time augmentation.

One run of the convnet of demos/train_cifar10.py with SGDR warm restarts (a cosine from --lr to
0 over every --cycle epochs, stepped per batch, then a jump back up; Loshchilov and Hutter,
2017). At the end of each cycle, where the lr is lowest, train.SnapshotEnsemble saves the
weights. Then, on the test set, once per row:

    single model         the weights at the end of the run (= the last snapshot)
    snapshot ensemble    the softmax probabilities of the last k snapshots averaged (Huang et
                         al., 2017)
    SWA                  the last j snapshots' *weights* averaged (optim.swa_utils
                         AveragedModel; Izmailov et al., 2018), batch-norm statistics
                         recomputed with one pass over the training data (update_bn)
    ... + TTA            each of them with its probabilities averaged over test-time views
                         (train.tta): the image and its mirror image, or those and the 8
                         corner crops of the image padded by 2 pixels

k, j and the TTA views are chosen on a validation split of the training images
(data.random_split, --seed); the test set decides nothing. The table gives each row's test
accuracy and the seconds its test evaluation took (TTA multiplies it by the number of views,
an ensemble by its members).

Data: the full CIFAR-10 from --data-root, else $TINYGRAD_LITE_DATA, else ~/.cache/tinygrad_lite
or /work/shared/data when they hold cifar-10-batches-py/, else the 5,000 + 1,000-image sample
bundled with tinygrad_lite (--sample forces it). The default run (10,000 training images of
which 1,000 validate, 6 epochs in 3 cycles, the 10,000 test images) takes about 10 minutes on
2 CPU cores.

    python demos/ensembles.py
    python demos/ensembles.py --subset 50000 --epochs 30 --cycle 6 --width 32 --hidden 256
    python demos/ensembles.py --sample --subset 1000 --epochs 2 --cycle 1   # a quick look

Writes --out/ensembles.md (the table) and the snapshots in --out/snapshots/.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

try:
    import tinygrad_lite as tl
except ImportError:  # run from a checkout without `pip install -e .`: use the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import tinygrad_lite as tl

from tinygrad_lite import data, optim  # noqa: E402
from tinygrad_lite.optim.swa_utils import AveragedModel, update_bn  # noqa: E402
from tinygrad_lite.train import evaluate, fit  # noqa: E402
from tinygrad_lite.train import tta as T  # noqa: E402
from tinygrad_lite.train.ensemble import SnapshotEnsemble  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_cifar10 import augmentation, channel_stats, convnet, held_out  # noqa: E402

SHARED_DATA = Path("/work/shared/data")  # where this project's machines keep CIFAR-10


def tta_candidates():
    """The test-time view sets the validation split chooses from."""
    flips = [T.identity, T.hflip]
    corners = [v for v in T.crops10(pad=2) if not v.name.startswith("centre")]
    return {"flip": flips, "flip+corners": flips + corners}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", default=None,
                   help="the folder that holds cifar-10-batches-py/ (default: "
                        "$TINYGRAD_LITE_DATA, ~/.cache/tinygrad_lite or /work/shared/data, "
                        "else the bundled sample)")
    p.add_argument("--sample", action="store_true",
                   help="use the 5,000 + 1,000-image sample bundled with tinygrad_lite")
    p.add_argument("--subset", type=int, default=10000,
                   help="use the first N training images, validation split included (default "
                        "10000; 0: all)")
    p.add_argument("--test-subset", type=int, default=0,
                   help="use only the first N test images (default 0: all)")
    p.add_argument("--val", type=float, default=0.1,
                   help="fraction of the training images held out for validation")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--cycle", type=int, default=2, help="epochs per warm-restart cycle")
    p.add_argument("--width", type=int, default=16, help="channels of the first conv block")
    p.add_argument("--hidden", type=int, default=128, help="units of the hidden linear layer")
    p.add_argument("--dropout", type=float, default=0.25)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05, help="lr at the start of every cycle")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--workers", type=int, default=1, help="data-loading threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "out" / "ensembles"),
                   help="output directory (default demos/out/ensembles/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    for key in ("epochs", "cycle", "width", "hidden", "batch_size"):
        if getattr(args, key) < 1:
            p.error(f"--{key.replace('_', '-')} must be positive, got {getattr(args, key)}")
    if args.epochs < 2 * args.cycle:
        p.error(f"--epochs ({args.epochs}) must hold at least two cycles of --cycle "
                f"{args.cycle} epochs: an ensemble needs two snapshots")
    if not 0 < args.val < 1:
        p.error(f"--val must be a fraction in (0, 1), got {args.val}")
    return args


def find_root(args):
    """The CIFAR-10 root to read, or None for CIFAR10's own default (which reads
    $TINYGRAD_LITE_DATA, then ~/.cache/tinygrad_lite, then falls back to the sample)."""
    if args.data_root or os.environ.get("TINYGRAD_LITE_DATA"):
        return args.data_root
    default = data.data_root()
    if not (default / "cifar-10-batches-py").is_dir() and \
            (SHARED_DATA / "cifar-10-batches-py").is_dir():
        return str(SHARED_DATA)
    return None


def load_data(args):
    """(train split, validation split, test set, normalisation)."""
    kw = dict(sample=True) if args.sample else dict(root=find_root(args), sample="auto")
    train_set = data.CIFAR10(train=True, **kw)
    test_set = data.CIFAR10(train=False, **kw)
    if args.subset and args.subset < len(train_set):
        train_set = data.Subset(train_set, np.arange(args.subset))
    if args.test_subset and args.test_subset < len(test_set):
        test_set = data.Subset(test_set, np.arange(args.test_subset))
    n_val = max(1, round(args.val * len(train_set)))
    train_split, val_split = held_out(train_set, n_val, args.seed)
    # statistics of the training split only, used for every split
    return train_split, val_split, test_set, data.Normalize(*channel_stats(train_split))


def probabilities(model, loader):
    """(softmax probabilities, labels) of `model` over `loader`, in eval mode."""
    probs, labels = [], []
    for x, y in loader:
        probs.append(T.tta_predict(model, x, views=[T.identity]).numpy())
        labels.append(y.numpy())
    return np.concatenate(probs), np.concatenate(labels)


def choose_k(members, val_loader):
    """The number of last snapshots whose averaged probabilities are most accurate on the
    validation split (the fewest at a tie: fewer members cost less)."""
    probs = [probabilities(m, val_loader) for m in members]
    labels = probs[0][1]
    scores = {k: np.mean(np.mean([p for p, _ in probs[-k:]], axis=0).argmax(1) == labels)
              for k in range(1, len(members) + 1)}
    return max(scores, key=lambda k: (scores[k], -k)), scores


def choose_swa(model, members, train_loader, val_loader):
    """The SWA model (weights of the last j snapshots averaged, BN statistics recomputed)
    with the best validation accuracy, j >= 2; returns (j, model, scores, BN-update
    seconds of the chosen one)."""
    best, scores = None, {}
    for j in range(2, len(members) + 1):
        swa = AveragedModel(model)
        for member in members[-j:]:
            swa.update_parameters(member)
        start = time.perf_counter()
        update_bn(train_loader, swa)
        bn_seconds = time.perf_counter() - start
        scores[j] = evaluate(swa, val_loader)[1]
        if best is None or scores[j] > scores[best[0]]:
            best = (j, swa, bn_seconds)
    return best[0], best[1], scores, best[2]


def format_table(rows):
    lines = ["| method | test accuracy | test time (s) | notes |", "|---|---:|---:|---|"]
    lines += [f"| {r['method']} | {r['accuracy']:.4f} | {r['seconds']:.1f} | {r['notes']} |"
              for r in rows]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    tl.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start_all = time.perf_counter()
    train_split, val_split, test_set, normalize = load_data(args)
    augment = data.Compose(augmentation() + [normalize])
    train_loader = data.DataLoader(train_split, args.batch_size, shuffle=True, drop_last=True,
                                   transform=augment, num_workers=args.workers)

    def plain(dataset):
        return data.DataLoader(dataset, 500, transform=normalize, num_workers=args.workers)
    val_loader, test_loader = plain(val_split), plain(test_set)
    print(f"CIFAR-10: {len(train_split)} training, {len(val_split)} validation and "
          f"{len(test_set)} test images; {args.epochs} epochs in cycles of {args.cycle}")

    model = convnet(args.width, args.hidden, args.dropout)
    opt = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                    weight_decay=args.weight_decay)
    # SGDR stepped per batch, so the cosine is smooth within a cycle: T_0 counts batches.
    # The snapshots' cycle is given in epochs.
    sched = optim.lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=args.cycle * len(train_loader))
    snapshots = SnapshotEnsemble(out / "snapshots", cycle=args.cycle)
    start = time.perf_counter()
    fit(model, train_loader, opt, epochs=args.epochs, val_loader=val_loader, scheduler=sched,
        scheduler_step="batch", callbacks=[snapshots], progress=not args.no_progress)
    train_seconds = time.perf_counter() - start
    members = list(snapshots.ensemble(model).members)
    print(f"trained in {train_seconds:.0f} s; {len(members)} snapshots")

    # Every choice on the validation split.
    k, k_scores = choose_k(members, val_loader)
    j, swa, j_scores, bn_seconds = choose_swa(model, members, train_loader, val_loader)
    tta_scores = {name: T.evaluate_tta(model, val_loader, views)
                  for name, views in tta_candidates().items()}
    tta_name = max(tta_scores, key=lambda n: (tta_scores[n].tta, -len(tta_scores[n].per_view)))
    views = tta_candidates()[tta_name]
    print("validation accuracy of the snapshot ensemble of the last k: " + ", ".join(
        f"k={n} {a:.4f}" for n, a in k_scores.items()) + f" -> k={k}")
    print("validation accuracy of SWA over the last j: " + ", ".join(
        f"j={n} {a:.4f}" for n, a in j_scores.items()) + f" -> j={j}")
    print(f"test-time augmentation on validation (single model):\n"
          f"{tta_scores['flip+corners']}\n-> views {tta_name!r}")

    # The test set, once per row.
    ensemble = snapshots.ensemble(model, k=k)
    rows = []
    for name, row_model, notes in (
            ("single model", model, "end of the run"),
            ("snapshot ensemble", ensemble, f"last {k} of {len(members)} snapshots"),
            ("SWA", swa, f"last {j} snapshots averaged; BN update {bn_seconds:.1f} s")):
        for with_tta in (False, True):
            t0 = time.perf_counter()
            if with_tta:
                accuracy = T.evaluate_tta(row_model, test_loader, views).tta
            else:
                accuracy = evaluate(row_model, test_loader)[1]
            rows.append(dict(method=name + (" + TTA" if with_tta else ""), accuracy=accuracy,
                             seconds=time.perf_counter() - t0,
                             notes=notes + (f"; {len(views)} views ({tta_name})"
                                            if with_tta else "")))
    table = format_table(rows)
    total = time.perf_counter() - start_all
    report = (f"{table}\n\n{len(train_split)} training / {len(val_split)} validation / "
              f"{len(test_set)} test images, {args.epochs} epochs in cycles of {args.cycle}, "
              f"training {train_seconds:.0f} s, whole run {total:.0f} s\n")
    print(report)
    (out / "ensembles.md").write_text(report)
    return dict(rows=rows, k=k, j=j, views=tta_name, snapshots=list(snapshots.snapshots),
                train_seconds=train_seconds, seconds=total)


if __name__ == "__main__":
    main()
