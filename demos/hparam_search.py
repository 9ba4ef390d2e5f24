"""Search the learning rate and weight decay of a small convnet on CIFAR-10, coarse to fine, as
the lectures' recipe does: a coarse random search over wide log ranges in short runs, then a
finer one inside the range the best coarse trials span (SearchResult.refine), trained longer.

Each trial trains the convnet of demos/train_cifar10.py (narrow) with SGD (Nesterov momentum
0.9, a constant learning rate) on a subset of the training images and reports its accuracy on
a validation split held out of that subset (data.random_split, seeded): the test set is never
looked at while choosing. A learning rate too high makes the loss explode: fit stops such a
run, and the search records the trial as failed and goes on.

    python demos/hparam_search.py                        # a few minutes on 2 CPU cores
    python demos/hparam_search.py --executor process     # trials in 2 local processes
    python demos/hparam_search.py --executor dask --workers 2   # on a Dask LocalCluster
    python demos/hparam_search.py --trials 20 --subset 5000 --epochs 3 --out /tmp/search

Outputs in --out (default demos/out/): hparam_coarse.png and hparam_fine.png (each
parameter against the validation accuracy, and lr against weight decay coloured by it),
hparam_coarse.csv and hparam_fine.csv (every trial, best first).
"""
import argparse
import contextlib
import functools
import sys
import time
import warnings
from pathlib import Path

import numpy as np

try:
    import tinygrad_lite as tl
except ImportError:  # run from a checkout without `pip install -e .`: use the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import tinygrad_lite as tl

# The demo's convnet; demos/ is on the path when this script runs, and when a test loads it.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_cifar10 import convnet, held_out  # noqa: E402

from tinygrad_lite import data, optim  # noqa: E402
from tinygrad_lite.train import fit  # noqa: E402
from tinygrad_lite.train.search import LogUniform, search  # noqa: E402

# Wide log ranges for the coarse search: the lectures' 1e-1 .. 1e-4 for the learning rate and
# beyond, so that both failure modes (no progress, explosion) show in the table.
COARSE_SPACE = {"lr": LogUniform(1e-4, 1.0), "weight_decay": LogUniform(1e-6, 1e-2)}
VALIDATION_FRACTION = 0.2


@functools.lru_cache(maxsize=2)
def splits(subset, sample, data_seed):
    """The training and validation parts of the first `subset` training images; loaded once
    per process (trials in worker processes load their own)."""
    images = data.CIFAR10(train=True, sample=sample)
    subset = min(subset, len(images))
    n_val = max(1, int(round(VALIDATION_FRACTION * subset)))
    return held_out(data.Subset(images, np.arange(subset)), n_val, data_seed)


def objective(config, budget, seed, subset, sample, data_seed, width, batch_size,
              threads=None):
    """One trial: train for `budget` epochs with config's lr and weight decay; the metrics
    of the last epoch. Module level, so that worker processes can run it (the other
    arguments are bound with functools.partial)."""
    if threads is not None:  # several trials share the cores: one thread budget each
        tl.set_num_threads(threads)
    tl.manual_seed(seed)  # init, shuffles: the trial's own seed, the same on any executor
    train_set, val_set = splits(subset, sample, data_seed)
    normalize = data.Normalize(data.CIFAR10_MEAN, data.CIFAR10_STD)
    train_loader = data.DataLoader(train_set, batch_size, shuffle=True, drop_last=True,
                                   transform=normalize)
    val_loader = data.DataLoader(val_set, 256, transform=normalize)
    model = convnet(width, hidden=4 * width, dropout=0.0)
    opt = optim.SGD(model.parameters(), lr=config["lr"], momentum=0.9, nesterov=True,
                    weight_decay=config["weight_decay"])
    history = fit(model, train_loader, opt, epochs=budget, val_loader=val_loader,
                  progress=False)
    return {name: history[name][-1] for name in ("val_accuracy", "val_loss", "accuracy",
                                                 "loss")}


@contextlib.contextmanager
def executor_for(kind, workers):
    """None (trials one after another here), a local process pool, or a Dask LocalCluster's
    Client (search makes its executor pure=False); closed on exit."""
    if kind == "none":
        yield None
    elif kind == "process":
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(workers) as pool:
            yield pool
    else:
        import logging

        from distributed import Client, LocalCluster
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
                Client(cluster) as client:
            yield client


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--executor", choices=("none", "process", "dask"), default="none",
                   help="where trials run: here one after another, in local processes, or "
                        "on a Dask LocalCluster of worker processes")
    p.add_argument("--workers", type=int, default=2, help="processes for process and dask")
    p.add_argument("--trials", type=int, default=8,
                   help="trials of the coarse search (the fine one runs half as many)")
    p.add_argument("--subset", type=int, default=1000,
                   help="training images used (a fifth of them held out for validation)")
    p.add_argument("--epochs", type=int, default=2,
                   help="epochs per coarse trial (fine trials train twice as long)")
    p.add_argument("--width", type=int, default=8, help="channels of the first conv block")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0,
                   help="decides the configs, the trials' seeds and the validation split")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "out"),
                   help="output directory for the plots and tables (default demos/out/)")
    args = p.parse_args(argv)
    for key in ("workers", "trials", "epochs", "width", "batch_size"):
        if getattr(args, key) < 1:
            p.error(f"--{key.replace('_', '-')} must be positive, got {getattr(args, key)}")
    if args.trials < 2:
        p.error(f"--trials must be at least 2 (refining needs the best few), got {args.trials}")
    if args.subset < 2 * args.batch_size:
        p.error(f"--subset must be at least twice --batch-size ({2 * args.batch_size}), got "
                f"{args.subset}")
    return args


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # Decide here whether the full set or the shipped sample is used (and say so once);
    # the trials, in whichever process, load the same.
    sample = data.CIFAR10(train=True, sample="auto").is_sample
    train_set, val_set = splits(args.subset, sample, args.seed)
    threads = None if args.executor == "none" else max(1, tl.get_num_threads() // args.workers)
    run = functools.partial(objective, subset=args.subset, sample=sample, data_seed=args.seed,
                            width=args.width, batch_size=args.batch_size, threads=threads)
    print(f"CIFAR-10 {'sample' if sample else 'full set'}: {len(train_set)} training and "
          f"{len(val_set)} validation images; convnet width {args.width}, SGD Nesterov, "
          f"trials on {args.executor}" +
          (f" ({args.workers} workers)" if args.executor != "none" else ""))

    results = {}
    stages = (("coarse", args.trials, args.epochs, args.seed),
              ("fine", max(2, args.trials // 2), 2 * args.epochs, args.seed + 1))
    with executor_for(args.executor, args.workers) as executor:
        space = COARSE_SPACE
        for stage, n_trials, epochs, seed in stages:
            start = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:  # printed with the table
                warnings.simplefilter("always")
                result = search(run, space, n_trials=n_trials, max_budget=epochs, seed=seed,
                                metric="val_accuracy", executor=executor)
            elapsed = time.perf_counter() - start
            ranges = ", ".join(f"{name} {dist.lo:.3g}..{dist.hi:.3g}"
                               for name, dist in space.items())
            print(f"\n{stage}: {n_trials} trials of {epochs} epochs, {ranges} (log-uniform), "
                  f"{elapsed:.1f} s")
            print(result.table())
            for w in caught:
                print(f"note: {w.message}")
            result.plot(out / f"hparam_{stage}.png")
            result.to_csv(out / f"hparam_{stage}.csv")
            results[stage] = result
            if not result.ok_trials:
                print(f"{stage}: every trial failed; nothing to refine")
                return 1
            space = result.refine(factor=2.0)
    best = results["fine"].best
    print(f"\nbest: lr {best.config['lr']:.3g}, weight decay {best.config['weight_decay']:.3g}:"
          f" validation accuracy {best.value:.4f} after {best.budget} epochs (coarse best "
          f"{results['coarse'].best.value:.4f} after {results['coarse'].best.budget})")
    saved = [str(out / f"hparam_{stage}.{ext}") for stage in results for ext in ("png", "csv")]
    print(f"saved {', '.join(saved)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
