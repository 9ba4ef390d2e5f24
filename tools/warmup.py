"""Compile the demo's kernels into Numba's on-disk cache, on every core at once: `make` runs this
once after installing, so that `make demo`'s first training step loads its kernels instead of
compiling them (about half a minute on one core of a 2-core machine).

    python tools/warmup.py [--jobs N] [--quiet]

Numba compiles on one core, holding the GIL, so one process compiles one kernel at a time.
Here two kinds of process share the work, each writing the ordinary cache (per source file,
under __pycache__, or NUMBA_CACHE_DIR):
  demo   the demo itself, one training step and one evaluation on a subset (the exact kernel
         set, dtypes and sizes of `make demo`), compiling in the order the step needs them;
  ahead  the kernels the demo needs last, compiled first: the batch-norm backward, then the
         classifier head's forward, loss, backward and SGD step at the demo's shapes, so the
         demo process finds them cached when it gets there instead of compiling them.
A kernel both processes reach compiles twice (harmless: the cache keeps one). A failure here
never fails the install: the demo compiles what is missing.
"""
import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demos" / "train_cifar10.py"


def _demo_module():
    spec = importlib.util.spec_from_file_location("train_cifar10_demo", DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_demo():
    """One epoch of one training batch, then the test-set evaluation, with the demo's options."""
    demo = _demo_module()
    batch = demo.RECIPES["quick"]["batch_size"]
    with tempfile.TemporaryDirectory(prefix="tl-warmup-") as out:
        demo.main(["--epochs", "1", "--subset", str(batch), "--out", out, "--no-progress",
                   "--target", "-1"])


def run_ahead():
    """The kernels the demo's first step reaches last, at the demo's shapes and layouts."""
    import numpy as np
    import tinygrad_lite as tl
    from tinygrad_lite import optim
    from tinygrad_lite.kernels import cpu as k
    from tinygrad_lite.nn import functional as F

    demo = _demo_module()
    r = demo.RECIPES["quick"]
    n, w = r["batch_size"], r["width"]
    rng = np.random.default_rng(0)
    # batch-norm + ReLU backward over an NCHW view of NHWC memory (what conv returns)
    for c, s in ((w, 32), (2 * w, 16)):
        x = rng.standard_normal((n, s, s, c), dtype=np.float32).transpose(0, 3, 1, 2)
        g = rng.standard_normal((n, s, s, c), dtype=np.float32).transpose(0, 3, 1, 2)
        mean, _, rstd = k.norm_stats(x, False, 1, 1e-5)
        k.norm_backward(x, g, mean, rstd, np.ones(c, np.float32), np.zeros(c, np.float32),
                        False, 1, True, True)
    # the classifier head: flatten of the pooled NHWC activations, linear, ReLU, dropout,
    # linear, cross-entropy, backward, SGD; then in eval mode
    model = demo.convnet(w, r["hidden"], r["dropout"])
    head = model[[type(m).__name__ for m in model].index("Flatten"):]
    feats = tl.Tensor(rng.standard_normal((n, 8, 8, 2 * w), dtype=np.float32)).permute(
        0, 3, 1, 2)
    labels = tl.Tensor(rng.integers(0, 10, n))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                    weight_decay=5e-4)
    for _ in range(2):  # the second step: momentum buffers exist
        opt.zero_grad()
        F.cross_entropy(head(feats), labels).backward()
        for p in model.parameters():  # every parameter's size class, as the demo steps them
            if p.grad is None:
                p.grad = tl.zeros_like(p)
        opt.step()
    head.eval()
    with tl.no_grad():
        head(feats).argmax(1)


JOBS = {"demo": run_demo, "ahead": run_ahead}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                   help="processes at once (default: 2, or 1 on a 1-CPU machine)")
    p.add_argument("--quiet", action="store_true", help="no output from the demo run")
    p.add_argument("--job", choices=sorted(JOBS), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.job:
        JOBS[args.job]()
        return 0
    t0 = time.perf_counter()
    out = subprocess.DEVNULL if args.quiet else None
    names = ["ahead", "demo"] if args.jobs > 1 else ["demo"]
    procs = [subprocess.Popen([sys.executable, __file__, "--job", name], stdout=out,
                              stderr=subprocess.STDOUT if args.quiet else None)
             for name in names]
    codes = [proc.wait() for proc in procs]
    status = ", ".join(f"{n} {'ok' if c == 0 else f'exit {c}'}" for n, c in zip(names, codes))
    print(f"warm-up: compiled the demo's kernels in {time.perf_counter() - t0:.0f} s ({status})")
    return 0  # the demo compiles whatever is missing: never fail the install


if __name__ == "__main__":
    sys.exit(main())
