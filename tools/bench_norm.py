"""Time BatchNorm2d (+ fused ReLU) on the CPU at the CIFAR-10 demo's shapes: forward, and
forward + backward, float32, NCHW-shaped tensors over NHWC memory (the layout the engine keeps
for conv activations), in ms per call, median of --repeat runs after a warm-up call (which
compiles or loads the Numba kernels, and is reported on its own). A plain NumPy forward of the
same math is timed as a yardstick. No assertions: timings are information.

    python tools/bench_norm.py [--repeat 7] [--device cpu]
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

try:
    import tinygrad_lite as tl
except ImportError:  # run from a checkout without `pip install -e .`: use the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import tinygrad_lite as tl
from tinygrad_lite import nn

SHAPES = [(128, 32, 32, 32), (128, 64, 16, 16)]


def timed(fn, repeat):
    """(first call seconds, median seconds of `repeat` further calls)."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return first, statistics.median(runs)


def numpy_forward(x, relu):
    """The same forward in plain NumPy (per-channel stats over N, H, W of the NHWC array)."""
    m = x.mean((0, 1, 2))
    v = x.var((0, 1, 2))
    y = (x - m) / np.sqrt(v + 1e-5)
    return np.maximum(y, 0) if relu else y


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'shape (N, C, H, W)':<22}{'op':<12}{'first ms':>10}{'fwd ms':>10}"
          f"{'fwd+bwd ms':>12}{'numpy fwd ms':>14}")
    for shape in SHAPES:
        N, C, H, W = shape
        nhwc = rng.standard_normal((N, H, W, C)).astype(np.float32)
        for relu in (False, True):
            bn = nn.BatchNorm2d(C, activation="relu" if relu else None).to(args.device)
            base = tl.tensor(nhwc, device=args.device, requires_grad=True)
            grad = tl.tensor(np.ones((N, C, H, W), np.float32), device=args.device)

            def forward():
                with tl.no_grad():
                    return bn(base.permute(0, 3, 1, 2))  # NCHW shape over NHWC memory

            def forward_backward():
                base.grad = None
                bn(base.permute(0, 3, 1, 2)).backward(grad)
            first, fwd = timed(forward, args.repeat)
            _, both = timed(forward_backward, args.repeat)
            _, ref = timed(lambda: numpy_forward(nhwc, relu), max(1, args.repeat // 2))
            print(f"{str(shape):<22}{'BN+ReLU' if relu else 'BN':<12}{first * 1e3:>10.1f}"
                  f"{fwd * 1e3:>10.2f}{both * 1e3:>12.2f}{ref * 1e3:>14.2f}")


if __name__ == "__main__":
    main()
