"""Forward+backward time of tinygrad_lite ops against plain NumPy doing the same math.

Both sides run in this process on the same inputs, so the ratio says what the engine costs
over hand-written NumPy (graph recording, dispatch, Numba kernels vs NumPy's loops). Each
timing is the median of --repeat runs, taken after a warm-up call so that Numba compilation
(or loading its on-disk cache) is excluded; that first call is reported in its own column.
No assertions: timings are information, not tests.

The layer rows (conv, batch norm + ReLU, max-pool at the CIFAR-10 demo's shapes) compare
with PyTorch instead, when `torch` is importable, with its thread count set to Numba's and its
tensors in channels_last memory (its fastest CPU layout, and the one this engine keeps).

    python tools/bench_ops.py [--repeat 7] [--quick] [--no-layers]
"""
import argparse
import os
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

DISPATCH_TARGET_US = 10.0
F32 = np.float32


def bench(fns, repeat, min_time=0.005):
    """Median seconds per call of each fn. One call warms up; each repeat then loops enough
    calls to last ~min_time (one small call is too close to the clock's resolution). The fns
    take turns within every repeat, so a burst of load elsewhere skews both, not the ratio."""
    inner = []
    for fn in fns:
        fn()
        t0 = time.perf_counter()
        fn()
        inner.append(max(1, int(min_time / max(time.perf_counter() - t0, 1e-9))))
    samples = [[] for _ in fns]
    for _ in range(repeat):
        for fn, n, out in zip(fns, inner, samples):
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            out.append((time.perf_counter() - t0) / n)
    return [statistics.median(s) for s in samples]


def leaves(*arrays):
    return [tl.Tensor(a, requires_grad=True) for a in arrays]


def step(out, grad, params):
    """Backward from a fixed output gradient (no extra sum op to skew the comparison); clear
    .grad afterwards so that repeats do not time gradient accumulation."""
    out.backward(gradient=grad)
    for p in params:
        p.grad = None


def case_elementwise(rng, n):
    a, b, c = (rng.standard_normal((n, n), dtype=F32) for _ in range(3))
    g = np.ones((n, n), F32)
    ta, tb, tc = leaves(a, b, c)
    tg = tl.Tensor(g)

    def tiny():
        step((ta * tb + tc).exp(), tg, (ta, tb, tc))

    def ref():  # forward, then the chain rule by hand: d exp = exp, d(a*b) = (b, a)
        out = np.exp(a * b + c)
        gu = g * out
        return gu * b, gu * a, gu
    return tiny, ref


def case_reduce(rng, n, op):
    x = rng.standard_normal((n, n), dtype=F32)
    g = np.ones(n, F32)
    (tx,), tg = leaves(x), tl.Tensor(g)
    axis = 1 if op == "sum" else 0

    def tiny():
        step(getattr(tx, op)(axis=axis), tg, (tx,))

    def ref():
        if op == "sum":  # the gradient of a sum is the output gradient broadcast back
            x.sum(axis=1)
            return np.broadcast_to(g[:, None], x.shape).copy()
        m = x.max(axis=0, keepdims=True)  # the library's tie rule: split among the maxima
        eq = x == m
        return eq * (g / eq.sum(axis=0, keepdims=True))
    return tiny, ref


def case_matmul(rng, m, k, n):
    a, b = rng.standard_normal((m, k), dtype=F32), rng.standard_normal((k, n), dtype=F32)
    g = np.ones((m, n), F32)
    ta, tb = leaves(a, b)
    tg = tl.Tensor(g)

    def tiny():
        step(ta @ tb, tg, (ta, tb))

    def ref():  # the same 3 GEMMs: C = A B, dA = G B^T, dB = A^T G
        a @ b
        return g @ b.T, a.T @ g
    return tiny, ref


def layer_cases(rng, batch):
    """(name, tinygrad_lite fn, torch builder) per layer row: forward + backward at the
    CIFAR-10 demo's shapes, NCHW tensors over NHWC memory on both sides."""
    from tinygrad_lite.nn import functional as F

    def nhwc(n, c, h, w):
        return rng.standard_normal((n, h, w, c), dtype=F32)

    def ours(x_nhwc, make_out, params):
        leaf = tl.Tensor(x_nhwc, requires_grad=True)
        tensors = [tl.Tensor(a, requires_grad=True) for a in params]

        def run():  # the permute is part of the graph, so it is recorded on every run
            out = make_out(leaf.permute(0, 3, 1, 2), *tensors)
            out.backward(gradient=tl.ones_like(out))
            for t in (leaf, *tensors):
                t.grad = None
        return run

    def theirs(torch, x_nhwc, make_out, params):
        x = torch.from_numpy(x_nhwc).permute(0, 3, 1, 2).requires_grad_()
        tensors = [torch.from_numpy(a).requires_grad_() for a in params]

        def run():
            out = make_out(x, *tensors)
            out.backward(torch.ones_like(out))
            x.grad = None
            for t in tensors:
                t.grad = None
        return run

    cases = []
    for c, hw in ((32, 32), (64, 16)):
        x = nhwc(batch, c, hw, hw)
        w = (rng.standard_normal((c, c, 3, 3), dtype=F32) * 0.1).astype(F32)
        b = np.zeros(c, F32)
        cases.append((f"conv3x3 {c}->{c} {hw}x{hw} b{batch}",
                      ours(x, lambda x, w, b: F.conv2d(x, w, b, padding=1), (w, b)),
                      lambda torch, x=x, w=w, b=b: theirs(
                          torch, x, lambda x, w, b: torch.nn.functional.conv2d(
                              x, w, b, padding=1), (w, b))))
        gamma, beta = np.ones(c, F32), np.zeros(c, F32)

        def bn_relu(x, g, b, c=c):  # fresh running statistics on every call
            return F.batch_norm(x, tl.zeros(c), tl.ones(c), g, b, training=True,
                                activation="relu")

        def torch_bn_relu(torch, x=x, c=c, gamma=gamma, beta=beta):
            return theirs(torch, x, lambda x, g, b: torch.relu(torch.nn.functional.batch_norm(
                x, torch.zeros(c), torch.ones(c), g, b, training=True)), (gamma, beta))
        cases.append((f"batchnorm+relu {c}ch {hw}x{hw}", ours(x, bn_relu, (gamma, beta)),
                      torch_bn_relu))
        cases.append((f"maxpool2x2 {c}ch {hw}x{hw}",
                      ours(x, lambda x: F.max_pool2d(x, 2), ()),
                      lambda torch, x=x: theirs(
                          torch, x, lambda x: torch.nn.functional.max_pool2d(x, 2), ())))
    return cases


def layer_rows(rng, repeat, quick):
    batch = 16 if quick else 128
    try:
        import torch
        torch.set_num_threads(numba.get_num_threads())
        print(f"\nlayers, forward+backward, float32, cpu, batch {batch}; torch "
              f"{torch.__version__} with {torch.get_num_threads()} threads, channels_last")
    except ImportError:
        torch = None
        print(f"\nlayers, forward+backward, float32, cpu, batch {batch} (torch not importable: "
              "no reference column; `pip install torch` to compare)")
    print(f"{'layer':<32}{'first call':>12}{'tinygrad_lite':>15}{'torch':>12}{'ratio':>8}")
    for name, run, make_ref in layer_cases(rng, batch):
        t0 = time.perf_counter()
        run()
        first = time.perf_counter() - t0
        if torch is None:
            (t_run,) = bench((run,), repeat)
            print(f"{name:<32}{first * 1e3:>9.1f} ms{t_run * 1e3:>12.2f} ms")
            continue
        t_run, t_ref = bench((run, make_ref(torch)), repeat)
        print(f"{name:<32}{first * 1e3:>9.1f} ms{t_run * 1e3:>12.2f} ms"
              f"{t_ref * 1e3:>9.2f} ms{t_run / t_ref:>7.1f}x")


def dispatch_loop(requires_grad, loops):
    """`a * b` on 4 elements, loops times: pure per-op overhead, the math is negligible."""
    a, b = (tl.Tensor(np.arange(1, 5, dtype=F32), requires_grad=requires_grad) for _ in range(2))
    return lambda: [a * b for _ in range(loops)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per row (median)")
    parser.add_argument("--quick", action="store_true",
                        help="3 repeats and no large sizes: a smoke run")
    parser.add_argument("--no-layers", action="store_true",
                        help="skip the conv / batch norm / pooling rows")
    args = parser.parse_args()
    repeat = 3 if args.quick else args.repeat
    rng = np.random.default_rng(0)

    print(f"cores: {os.cpu_count()}  numba threads: {numba.get_num_threads()}  "
          f"threading layer: {numba.config.THREADING_LAYER}  numpy {np.__version__}  "
          f"numba {numba.__version__}  repeat: {repeat}")
    t0 = time.perf_counter()
    tl.get_device("cpu").backend  # import the CPU kernel modules: not part of any first call
    print(f"cpu backend import: {(time.perf_counter() - t0) * 1e3:.1f} ms")

    sizes = (64,) if args.quick else (64, 1024)
    gemms = ((64, 64, 64),) if args.quick else ((64, 64, 64), (1024, 512, 256))
    rows = [(f"exp(a*b + c) {n}x{n}", case_elementwise(rng, n)) for n in sizes]
    rows += [(f"{op}(axis={int(op == 'sum')}) {n}x{n}", case_reduce(rng, n, op))
             for n in sizes for op in ("sum", "max")]
    rows += [(f"matmul {m}x{k} @ {k}x{n}", case_matmul(rng, m, k, n)) for m, k, n in gemms]

    print("\nforward+backward, float32, cpu (first call = compile or cache load, untimed "
          "in the median; later rows reuse kernels loaded by earlier ones)")
    print(f"{'op':<28}{'first call':>12}{'tinygrad_lite':>15}{'numpy':>12}{'ratio':>8}")
    for name, (tiny, ref) in rows:
        t0 = time.perf_counter()
        tiny()  # the very first call: Numba compiles, or loads its on-disk cache
        first = time.perf_counter() - t0
        t_tiny, t_ref = bench((tiny, ref), repeat)
        print(f"{name:<28}{first * 1e3:>9.1f} ms{t_tiny * 1e6:>12.1f} us"
              f"{t_ref * 1e6:>9.1f} us{t_tiny / t_ref:>7.1f}x")

    loops = 200 if args.quick else 1000
    a, b = np.arange(1, 5, dtype=F32), np.arange(1, 5, dtype=F32)
    no_grad_us, grad_us, np_us = (t / loops * 1e6 for t in bench(
        (dispatch_loop(False, loops), dispatch_loop(True, loops),
         lambda: [a * b for _ in range(loops)]), repeat))
    print("\ndispatch overhead per op (a * b, 4 float32 elements, forward only):")
    for name, us in (("tinygrad_lite, requires_grad=False", no_grad_us),
                     ("tinygrad_lite, requires_grad=True", grad_us)):
        verdict = "meets" if us < DISPATCH_TARGET_US else "MISSES"
        print(f"  {name:<36}{us:>7.2f} us/op  ({verdict} the < {DISPATCH_TARGET_US:.0f} us "
              f"target, {us / np_us:.1f}x numpy)")
    print(f"  {'numpy':<36}{np_us:>7.2f} us/op")

    if not args.no_layers:
        layer_rows(rng, repeat, args.quick)


if __name__ == "__main__":
    main()
