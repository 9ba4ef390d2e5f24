"""Make tinygrad_lite/data/cifar10_sample.npz, the class-balanced CIFAR-10 sample shipped with
the package so that demos run with no data and no network (data.CIFAR10(sample="auto")).

    python tools/make_cifar_sample.py [--root DIR] [--train-per-class 500] [--test-per-class 100]

DIR holds cifar-10-batches-py/ (default: $TINYGRAD_LITE_DATA, else ~/.cache/tinygrad_lite).
The images of each class are a seeded random choice from the full split, stored in class-
interleaved random order as uint8 NHWC arrays: train_images (N, 32, 32, 3), train_labels (N,),
test_images, test_labels (np.savez_compressed).
"""
import argparse
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from tinygrad_lite.data.cifar import CIFAR10, SAMPLE_PATH  # noqa: E402


def balanced(labels, per_class, rng):
    """Indices of `per_class` random samples of every class, shuffled together."""
    picks = []
    for c in range(10):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise SystemExit(f"class {c} has only {len(members)} images, {per_class} asked")
        picks.append(rng.choice(members, per_class, replace=False))
    return rng.permutation(np.concatenate(picks))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=None)
    ap.add_argument("--train-per-class", type=int, default=500)
    ap.add_argument("--test-per-class", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(SAMPLE_PATH))
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    arrays = {}
    for split, per_class in (("train", args.train_per_class), ("test", args.test_per_class)):
        ds = CIFAR10(args.root, train=split == "train")
        idx = balanced(ds.targets, per_class, rng)
        arrays[f"{split}_images"] = ds.data[idx]
        arrays[f"{split}_labels"] = ds.targets[idx].astype(np.uint8)  # int64 on load
    np.savez_compressed(args.out, **arrays)
    size = pathlib.Path(args.out).stat().st_size
    print(f"wrote {args.out}: {size / 1e6:.1f} MB, "
          + ", ".join(f"{k} {v.shape}" for k, v in arrays.items()))


if __name__ == "__main__":
    main()
