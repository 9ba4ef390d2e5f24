"""Where a cold start's time goes: the Numba compilations of one training step of tools/bench.py's
`cnn` (or `mlp`), each timed through Numba's compile events, in a process whose cache is empty.

    python tools/compile_profile.py [--model cnn] [--top 15]

Run it in a fresh process with an empty cache for the cold figure, e.g.
    NUMBA_CACHE_DIR=$(mktemp -d) python tools/compile_profile.py
(with a warm cache, kernels load instead of compiling and little is listed). Prints the
first step's time, the compilations' total by kernel module, and the slowest kernels.
Nested compilations (a helper compiled inside a kernel's compilation) count in their caller."""
import argparse
import collections
import sys
import time
from pathlib import Path

from numba.core import event

sys.path.insert(0, str(Path(__file__).resolve().parent))


class CompileTimes(event.Listener):
    """Seconds per top-level compilation, keyed by the compiled function's module.name."""

    def __init__(self):
        self.seconds, self.count, self._open = collections.Counter(), collections.Counter(), []

    def on_start(self, ev):
        self._open.append(time.perf_counter())

    def on_end(self, ev):
        elapsed = time.perf_counter() - self._open.pop()
        if not self._open:  # a nested compilation is part of its caller's time
            fn = ev.data["dispatcher"].py_func
            name = f"{fn.__module__}.{fn.__name__}"
            self.seconds[name] += elapsed
            self.count[name] += 1

    def by_module(self):
        out = collections.Counter()
        for name, seconds in self.seconds.items():
            out[name.rsplit(".", 1)[0]] += seconds
        return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["cnn", "mlp"], default="cnn")
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args(argv)
    times = CompileTimes()
    event.register("numba:compile", times)
    try:
        import bench
        start = time.perf_counter()
        step = bench.build_engine(args.model, bench.OURS, bench.WORKLOADS[args.model]["batch"])[0]
        step()
        total = time.perf_counter() - start
    finally:
        event.unregister("numba:compile", times)
    compiled = sum(times.seconds.values())
    print(f"{args.model}: first step {total:.1f} s; {sum(times.count.values())} compilations "
          f"took {compiled:.1f} s")
    for module, seconds in times.by_module().most_common():
        print(f"  {seconds:6.1f} s  {module}")
    print(f"the {args.top} slowest:")
    for name, seconds in times.seconds.most_common(args.top):
        print(f"  {seconds:6.2f} s  x{times.count[name]}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
