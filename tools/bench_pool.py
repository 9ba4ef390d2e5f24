"""Max-pool 2x2 (stride 2) timings on the CIFAR-10 demo's activation shapes: forward, and
forward + backward, of F.max_pool2d on NCHW-shaped float32 tensors over NHWC memory (as the
conv returns them) and, for comparison, over NCHW memory; next to plain NumPy doing the same
math on the same memory (a reshape-max forward, and an argmax-mask backward).

Each timing is the median of --repeat runs after a warm-up call (so Numba compilation, or
loading its cache, is excluded). No assertions: timings are information, not tests.

    python tools/bench_pool.py [--repeat 7]
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np

try:
    import tinygrad_lite as tl
except ImportError:  # run from a checkout without `pip install -e .`: use the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import tinygrad_lite as tl
from tinygrad_lite.nn import functional as F

SHAPES = [(128, 32, 32, 32), (128, 64, 16, 16)]


def median_time(fn, repeat, min_time=0.02):
    fn()
    t0 = time.perf_counter()
    fn()
    n = max(1, int(min_time / max(time.perf_counter() - t0, 1e-9)))
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t0) / n)
    return statistics.median(samples)


def numpy_max_pool(x_nhwc, g_nhwc):
    """2x2/2 max pooling of an NHWC array and its backward, the NumPy way: windows as a
    reshape, the gradient to every element equal to its window's max (ties are rare in random
    data, so this matches the first-argmax rule here)."""
    N, H, W, C = x_nhwc.shape
    win = x_nhwc.reshape(N, H // 2, 2, W // 2, 2, C)
    out = win.max(axis=(2, 4))
    if g_nhwc is None:
        return out
    mask = win == out[:, :, None, :, None, :]
    return (mask * g_nhwc[:, :, None, :, None, :]).reshape(N, H, W, C)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"numba threads: {numba.get_num_threads()}; times in ms, median of {args.repeat}")
    print(f"{'input (N, C, H, W)':<22}{'memory':<8}{'fwd':>9}{'fwd+bwd':>10}"
          f"{'numpy fwd':>11}{'numpy f+b':>11}")
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        N, C, H, W = shape
        x_nhwc = rng.standard_normal((N, H, W, C), dtype=np.float32)
        g_nhwc = rng.standard_normal((N, H // 2, W // 2, C), dtype=np.float32)
        for memory in ("NHWC", "NCHW"):
            if memory == "NHWC":
                x = tl.Tensor(x_nhwc).permute(0, 3, 1, 2).detach().requires_grad_()
                g = tl.Tensor(g_nhwc).permute(0, 3, 1, 2)
                x_np, g_np = x_nhwc, g_nhwc
            else:
                x_np = np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))
                g_np = np.ascontiguousarray(g_nhwc.transpose(0, 3, 1, 2))
                x = tl.Tensor(x_np, requires_grad=True)
                g = tl.Tensor(g_np)
                # NumPy's reshape trick wants the pooled dims together: NCHW as (N*C, H, W, 1)
                x_np, g_np = x_np.reshape(N * C, H, W, 1), g_np.reshape(N * C, H // 2, W // 2, 1)

            def forward():
                with tl.no_grad():
                    F.max_pool2d(x, 2)

            def forward_backward():
                # the op's own backward on the output gradient: the walk to a leaf would add
                # the copy autograd makes of every leaf's first gradient (any op pays it, and
                # a pool's input inside a network is no leaf)
                out = F.max_pool2d(x, 2)
                out.grad_fn.backward(g.array)

            times = [median_time(forward, args.repeat),
                     median_time(forward_backward, args.repeat),
                     median_time(lambda: numpy_max_pool(x_np, None), args.repeat),
                     median_time(lambda: numpy_max_pool(x_np, g_np), args.repeat)]
            print(f"{str(shape):<22}{memory:<8}" + "".join(
                f"{1e3 * t:>{w}.2f}" for t, w in zip(times, (9, 10, 11, 11))))


if __name__ == "__main__":
    main()
