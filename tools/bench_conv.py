"""Time F.conv2d on the CPU for the CIFAR-10 demo's layers: forward, and forward + backward
(weight and bias gradients, and the input's except for the first layer, whose input is the
images), in milliseconds per call, float32.

    python tools/bench_conv.py [--batch 128] [--repeat 5] [--cols-mb 32] [--nchw]

Inputs are NCHW views over NHWC memory (what the previous conv hands on) unless --nchw, which
gives C-contiguous NCHW inputs (one transposing copy per call). The first call of each shape
is a warm-up (Numba compile or cache load) and is not timed."""
import argparse
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import tinygrad_lite as tl  # noqa: E402
from tinygrad_lite.kernels.cpu import conv as K  # noqa: E402
from tinygrad_lite.nn import functional as F  # noqa: E402

# (in_channels, out_channels, side): 3x3 convs, padding 1, as in the demo's network
SHAPES = [(3, 32, 32), (32, 32, 32), (32, 64, 16), (64, 64, 16)]


def best_ms(fn, repeat):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cols-mb", type=int, default=K.COLS_BYTES >> 20,
                        help="im2col chunk limit in MiB (kernels/cpu/conv.py COLS_BYTES)")
    parser.add_argument("--nchw", action="store_true", help="C-contiguous NCHW inputs")
    args = parser.parse_args()
    K.COLS_BYTES = args.cols_mb << 20
    rng = np.random.default_rng(0)
    print(f"batch {args.batch}, float32, 3x3 padding 1, cols chunk {args.cols_mb} MiB, "
          f"{'NCHW' if args.nchw else 'NHWC'} input memory; best of {args.repeat}")
    print(f"{'layer':>22} {'forward ms':>11} {'fwd+bwd ms':>11} {'GFLOP/s fwd':>12}")
    for cin, cout, side in SHAPES:
        data = rng.standard_normal((args.batch, side, side, cin), dtype=np.float32)
        x = tl.Tensor(np.ascontiguousarray(data.transpose(0, 3, 1, 2))) if args.nchw else \
            tl.Tensor(data).permute(0, 3, 1, 2)
        # as in the demo, the images (3 channels) need no gradient; later activations do
        x.requires_grad_(cin != 3)
        w = tl.Tensor(rng.standard_normal((cout, cin, 3, 3), dtype=np.float32) * 0.1,
                      requires_grad=True)
        b = tl.Tensor(np.zeros(cout, np.float32), requires_grad=True)
        gout = tl.Tensor(rng.standard_normal((args.batch, side, side, cout),
                                             dtype=np.float32)).permute(0, 3, 1, 2)

        def forward():
            with tl.no_grad():
                F.conv2d(x, w, b, padding=1)

        def both():
            F.conv2d(x, w, b, padding=1).backward(gout)
            x.grad = w.grad = b.grad = None

        fwd, total = best_ms(forward, args.repeat), best_ms(both, args.repeat)
        flops = 2 * args.batch * side * side * cout * cin * 9
        name = f"{cin}->{cout} @ {side}x{side}"
        print(f"{name:>22} {fwd:11.2f} {total:11.2f} {flops / fwd / 1e6:12.1f}")


if __name__ == "__main__":
    main()
