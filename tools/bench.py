"""Training steps of tinygrad_lite against PyTorch on the CPU: issue 23's yardstick.

    python tools/bench.py [--rounds 5] [--steps 10] [--threads N] [--quick] [--profile DIR]
                          [--models cnn,mlp] [--batch N] [--no-torch] [--no-memory]
                          [--no-first-step]

Two workloads, one model definition built in both engines, our initial weights copied into
torch's, the same random batch and labels every step:
  cnn  batch 128, 3x32x32: [conv3x3-32 BN ReLU] x2, max-pool, [conv3x3-64 BN ReLU] x2,
       max-pool, 4096-256-10 head; cross-entropy; SGD (lr 0.01, momentum 0.9, Nesterov, wd 5e-4)
  mlp  batch 256: 3072-512-512-10, BatchNorm1d and ReLU after the hidden layers; Adam (1e-3)
Ours fuses each BN with its ReLU (activation="relu", as the demo does; the same math) and
takes the cnn input as an NCHW view over NHWC memory, as its DataLoader yields it. PyTorch
runs the cnn both contiguous and channels_last; the ratio is against its faster layout.

Printed: images/s per engine (median and range over rounds that alternate the engines in this
process), the ratio ours / torch, the first-step losses (the models match), peak memory, a
per-layer-type breakdown of one of our steps (forward and backward separately), the per-op
overhead pair, and the cnn's cold and warm first step. Both engines use the same thread count
(tl threads.set_num_threads and torch.set_num_threads). Timings are information, not tests.

Peak memory is measured in a fresh subprocess per engine and model (tracemalloc sees neither
Numba's nor torch's allocations). "Training peak": the resident-set high-water mark (VmHWM)
over the timed steps minus the resident set before the first step, when the libraries, the
model and the batch were loaded: what gradients, optimiser state, saved activations and the
allocators' caches add. One warm-up step runs first and the high-water mark is reset after it
(Linux's /proc/self/clear_refs), so compiling (or loading) our kernels is not counted; the
process peak, which counts it, is printed beside. Without /proc it falls back to getrusage's
maxrss (first step included). The first-step times come
from a subprocess with an empty NUMBA_CACHE_DIR (cold: every kernel compiles) and a second one
on the same directory (warm: kernels load from the cache).
"""
import time

_T_START = time.perf_counter()  # the first-step worker reports the import time from here

import argparse  # noqa: E402
import cProfile  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import pstats  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ops import bench as median_times, dispatch_loop, tl  # noqa: E402
from tinygrad_lite import nn as tl_nn, optim as tl_optim, threads  # noqa: E402
from tinygrad_lite.autograd import graph_order  # noqa: E402
from tinygrad_lite.nn import functional as tl_F  # noqa: E402
from tinygrad_lite.viz import trace_modules  # noqa: E402

WORKLOADS = {
    "cnn": dict(batch=128, shape=(32, 32, 3), optim=("SGD", dict(
        lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)), layers=[
        ("conv", 3, 32), ("bn2d_relu", 32), ("conv", 32, 32), ("bn2d_relu", 32), ("pool",),
        ("conv", 32, 64), ("bn2d_relu", 64), ("conv", 64, 64), ("bn2d_relu", 64), ("pool",),
        ("flatten",), ("linear", 64 * 8 * 8, 256), ("relu",), ("linear", 256, 10)]),
    "mlp": dict(batch=256, shape=(3072,), optim=("Adam", dict(lr=1e-3)), layers=[
        ("linear", 3072, 512), ("bn1d_relu", 512), ("linear", 512, 512), ("bn1d_relu", 512),
        ("linear", 512, 10)]),
}
OURS = "tinygrad_lite"


def build_model(nn, spec, fuse_bn_relu):
    """The workload's layers in either engine's nn (the two share PyTorch's names)."""
    out = []
    for kind, *a in spec:
        if kind == "conv":
            out.append(nn.Conv2d(a[0], a[1], 3, padding=1, bias=False))
        elif kind in ("bn2d_relu", "bn1d_relu"):
            bn = nn.BatchNorm2d if kind == "bn2d_relu" else nn.BatchNorm1d
            out += [bn(a[0], activation="relu")] if fuse_bn_relu else [bn(a[0]), nn.ReLU()]
        elif kind == "pool":
            out.append(nn.MaxPool2d(2))
        elif kind == "flatten":
            out.append(nn.Flatten())
        elif kind == "linear":
            out.append(nn.Linear(a[0], a[1]))
        elif kind == "relu":
            out.append(nn.ReLU())
    return nn.Sequential(*out)


def copy_weights(torch, ours, theirs):
    """Our initial parameters and running statistics into torch's model, layer by layer."""
    names = ("weight", "bias", "running_mean", "running_var")
    with_state = [[m for m in model if getattr(m, "weight", None) is not None]
                  for model in (ours, theirs)]
    assert len(with_state[0]) == len(with_state[1]), "the two models differ"
    with torch.no_grad():
        for mo, mt in zip(*with_state):
            for name in names:
                if getattr(mo, name, None) is not None:
                    getattr(mt, name).copy_(torch.from_numpy(getattr(mo, name).numpy()))


def make_step(model, opt, x, y, cross_entropy):
    """One training step; the same code drives both engines (they share PyTorch's API)."""
    def step():
        opt.zero_grad(set_to_none=True)
        loss = cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def batch_data(name, batch):
    w = WORKLOADS[name]
    rng = np.random.default_rng(0)
    return (rng.standard_normal((batch, *w["shape"]), dtype=np.float32),
            rng.integers(0, 10, batch).astype(np.int64))


def build_engine(name, engine, batch, torch=None):
    """(step, model, optimiser, x, y) for engine OURS, "torch (contiguous)" or "torch
    (channels_last)", freshly initialised from tl.manual_seed(0)."""
    w, (x, y) = WORKLOADS[name], batch_data(name, batch)
    tl.manual_seed(0)
    ours = build_model(tl_nn, w["layers"], fuse_bn_relu=True)
    opt_name, opt_kw = w["optim"]
    if engine == OURS:
        tx = tl.Tensor(x)
        tx = tx.permute(0, 3, 1, 2) if x.ndim == 4 else tx  # NCHW over NHWC memory
        opt = getattr(tl_optim, opt_name)(ours.parameters(), **opt_kw)
        return make_step(ours, opt, tx, tl.Tensor(y), tl_F.cross_entropy), ours, opt, tx, y
    model = build_model(torch.nn, w["layers"], fuse_bn_relu=False)
    copy_weights(torch, ours, model)
    tx = torch.from_numpy(x)
    if x.ndim == 4:
        tx = tx.permute(0, 3, 1, 2).contiguous()
        if "channels_last" in engine:
            model = model.to(memory_format=torch.channels_last)
            tx = tx.contiguous(memory_format=torch.channels_last)
    opt = getattr(torch.optim, opt_name)(model.parameters(), **opt_kw)
    return (make_step(model, opt, tx, torch.from_numpy(y), torch.nn.functional.cross_entropy),
            model, opt, tx, y)


def engines_for(name, torch):
    if torch is None:
        return [OURS]
    return [OURS, "torch (contiguous)", "torch (channels_last)"] if name == "cnn" else \
        [OURS, "torch"]


def run_rounds(steps_by_engine, rounds, steps, batch):
    """images/s of each engine per round; the order flips every round so that drift in the
    machine's load does not favour one side."""
    out = {e: [] for e in steps_by_engine}
    order = list(steps_by_engine)
    for r in range(rounds):
        for e in (order if r % 2 == 0 else order[::-1]):
            step = steps_by_engine[e]
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            out[e].append(batch * steps / (time.perf_counter() - t0))
    return out


# ----- where one of our steps goes -----
def layer_type(module):
    name = type(module).__name__
    if "Conv" in name:
        return "conv"
    if "Norm" in name:
        return "bn+relu" if getattr(module, "activation", None) == "relu" else "bn"
    if "Pool" in name:
        return "pool"
    return {"ReLU": "relu", "Linear": "linear", "Flatten": "flatten"}.get(name, name.lower())


def _timed(fn, key, times):
    def run(*args):
        t0 = time.perf_counter()
        result = fn(*args)
        times[key] += time.perf_counter() - t0
        return result
    return run


def step_breakdown(model, opt, x, y):
    """Seconds per (phase, layer type) of one training step: forward timed by module hooks
    on the leaf modules, backward by timing each Function's backward and charging it to the
    module whose forward made it (viz.trace_modules; outside any module: the loss), the rest
    of backward (the graph walk, summing and accumulating gradients) on its own row."""
    times, starts, handles = defaultdict(float), {}, []
    t_step = time.perf_counter()
    _timed(opt.zero_grad, ("optimizer", "optimizer"), times)()
    with trace_modules(model) as trace:  # its hooks wrap ours: they are not timed
        for m in model.modules():
            if not list(m.children()):
                handles.append(m.register_forward_pre_hook(
                    lambda mod, args: starts.__setitem__(id(mod), time.perf_counter())))
                handles.append(m.register_forward_hook(
                    lambda mod, args, out, kind=layer_type(m): times.__setitem__(
                        ("forward", kind), times[("forward", kind)] + time.perf_counter() -
                        starts.pop(id(mod))), prepend=True))
        out = model(x)
        for h in handles:
            h.remove()
    loss = _timed(tl_F.cross_entropy, ("forward", "loss"), times)(out, y)
    kinds = {path: layer_type(m) for path, m in model.named_modules()}
    for fn in graph_order(loss):  # on the instance: release() drops it after backward
        owner = trace.owner(fn)
        fn.backward = _timed(fn.backward, ("backward", "loss" if owner is None else
                                           kinds[owner]), times)
    t0 = time.perf_counter()
    loss.backward()
    whole = time.perf_counter() - t0
    times[("backward", "graph walk + grads")] = whole - sum(
        v for (phase, _), v in times.items() if phase == "backward")
    _timed(opt.step, ("optimizer", "optimizer"), times)()
    times[("step", "step")] = time.perf_counter() - t_step
    return times


def breakdown_table(name, samples):
    n = len(samples)
    mean = {k: sum(s.get(k, 0.0) for s in samples) / n for s in samples for k in s}
    step = mean.pop(("step", "step"))
    order = ["conv", "bn+relu", "bn", "relu", "pool", "flatten", "linear", "loss",
             "graph walk + grads", "optimizer"]
    kinds = sorted({k for _, k in mean}, key=lambda k: order.index(k) if k in order else 99)
    lines = [f"\n{name}: where one of our training steps goes (mean of {n} step(s), ms; "
             "forward by module hooks, backward by Function, charged to the module that made "
             "it)", f"  {'layer type':<20}{'forward':>9}{'backward':>10}{'total':>9}{'share':>8}"]
    for k in kinds:
        fw, bw = mean.get(("forward", k), 0.0), mean.get(("backward", k), 0.0)
        total = fw + bw + mean.get(("optimizer", k), 0.0)
        lines.append(f"  {k:<20}{fw * 1e3:>9.1f}{bw * 1e3:>10.1f}{total * 1e3:>9.1f}"
                     f"{total / step:>8.1%}")
    lines.append(f"  {'step (with hooks)':<20}{'':>19}{step * 1e3:>9.1f}")
    return lines, {f"{p}/{k}": v for (p, k), v in mean.items()} | {"step": step}


# ----- subprocess workers: memory and first step -----
def rss_kb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def memory_worker(args, torch):
    step = build_engine(args.model, args.engine, args.batch, torch)[0]
    if os.access("/proc/self/clear_refs", os.W_OK):
        base = rss_kb("VmRSS")
        step()  # compiles or loads our kernels; creates gradients and optimiser state
        gc.collect()
        before = rss_kb("VmHWM")  # this process's own peak (maxrss may be the parent's)
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        method = "RSS high-water of the timed steps (reset by clear_refs after a warm-up step)"
        peak = lambda: rss_kb("VmHWM")  # noqa: E731
    else:  # getrusage's maxrss: KiB on Linux, bytes on macOS; it may be the parent's peak
        scale = 1 if sys.platform != "darwin" else 1024
        peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale  # noqa: E731
        base, method = peak(), "getrusage maxrss growth, first step included"
        before = base
    for _ in range(args.steps):
        step()
    print(json.dumps({"base_mb": base / 1024, "step_peak_mb": (peak() - base) / 1024,
                      "process_peak_mb": max(before, peak()) / 1024, "method": method}))


def first_step_worker(args, torch):
    imported = time.perf_counter() - _T_START
    step = build_engine(args.model, OURS, args.batch)[0]
    t0 = time.perf_counter()
    step()
    t1 = time.perf_counter()
    step()
    print(json.dumps({"import_s": imported, "first_step_s": t1 - t0,
                      "second_step_s": time.perf_counter() - t1}))


def run_worker(kind, args, extra=(), env=None, timeout=None):
    cmd = [sys.executable, __file__, "--worker", kind, "--threads", str(args.threads),
           "--steps", str(args.mem_steps), *extra]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"bench worker {' '.join(cmd[2:])} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), time.perf_counter() - t0


# ----- the report -----
def import_torch(args):
    if args.no_torch:
        return None
    try:
        import torch
    except ImportError:
        print("torch is not importable: tinygrad_lite alone (`make bench INSTALL_TORCH=1` or "
              "`pip install torch` to compare)")
        return None
    torch.set_num_threads(args.threads)
    return torch


def report_workload(name, args, torch, out, lines):
    batch = args.batch or WORKLOADS[name]["batch"]
    engines = engines_for(name, torch)
    built = {e: build_engine(name, e, batch, torch) for e in engines}
    print(f"\n{name}: training step, batch {batch}, {args.threads} thread(s), "
          f"{args.rounds} round(s) x {args.steps} step(s), engines alternating")
    first = {}
    for e, (step, *_) in built.items():
        t0 = time.perf_counter()
        first[e] = (float(step().item()), time.perf_counter() - t0)
        step()  # a second warm-up: allocators and caches settle
    print("  first step in this process: " + ", ".join(
        f"{e} {s:.2f} s (loss {loss:.5f})" for e, (loss, s) in first.items()))
    rates = run_rounds({e: b[0] for e, b in built.items()}, args.rounds, args.steps, batch)
    med = {e: statistics.median(r) for e, r in rates.items()}
    print(f"  {'engine':<24}{'img/s':>10}{'min':>10}{'max':>10}{'ms/step':>10}")
    for e, r in rates.items():
        print(f"  {e:<24}{med[e]:>10.1f}{min(r):>10.1f}{max(r):>10.1f}"
              f"{batch / med[e] * 1e3:>10.1f}")
    result = {"batch": batch, "img_per_s": rates, "first_step": first}
    if torch is not None:
        best = max((e for e in rates if e != OURS), key=med.get)
        per_round = [o / t for o, t in zip(rates[OURS], rates[best])]
        result |= {"torch_best": best, "ratio": med[OURS] / med[best]}
        print(f"  ratio {OURS} / {best}" + (" (torch's faster layout here)" if name == "cnn"
                                            else "") + ": "
              f"{med[OURS] / med[best]:.2f}  (per round {min(per_round):.2f}-"
              f"{max(per_round):.2f})")
    _, model, opt, x, y = built[OURS]
    samples = [step_breakdown(model, opt, x, tl.Tensor(y)) for _ in range(args.breakdown)]
    table, result["breakdown_s"] = breakdown_table(name, samples)
    print("\n".join(table))
    lines += table
    if args.profile:
        profile_steps(name, built[OURS][0], args)
    if not args.no_memory:
        mem_engines = [OURS] + ([result["torch_best"]] if torch is not None else [])
        result["memory"] = {e: run_worker("memory", args, ["--model", name, "--engine", e,
                                                           "--batch", str(batch)])[0]
                            for e in mem_engines}
        m0 = next(iter(result["memory"].values()))
        print(f"  peak memory (fresh subprocess each; {m0['method']}):")
        for e, m in result["memory"].items():
            print(f"    {e:<24} training peak {m['step_peak_mb']:>7.1f} MB above the "
                  f"{m['base_mb']:.0f} MB of libraries, model and batch; process peak "
                  f"{m['process_peak_mb']:.0f} MB")
    out[name] = result


def profile_steps(name, step, args):
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(args.steps):
        step()
    prof.disable()
    path = Path(args.profile) / f"{name}.prof"
    prof.dump_stats(path)
    with open(path.with_suffix(".prof.txt"), "w") as f:
        f.write(f"cProfile of {args.steps} {name} step(s) of {OURS}\n")
        for key in ("tottime", "cumulative"):
            pstats.Stats(prof, stream=f).sort_stats(key).print_stats(40)


def report_overhead(args, torch, out):
    loops, repeat = (200, 3) if args.quick else (1000, 7)
    fns = [dispatch_loop(False, loops), dispatch_loop(True, loops)]
    if torch is not None:
        for grad in (False, True):
            a, b = (torch.arange(1, 5, dtype=torch.float32, requires_grad=grad)
                    for _ in range(2))
            fns.append(lambda a=a, b=b: [a * b for _ in range(loops)])
    us = [t / loops * 1e6 for t in median_times(fns, repeat)]
    print(f"\nper-op overhead: a * b on 4 float32 elements, forward, median of {repeat}")
    print(f"  {'':<22}{OURS:>15}{'torch':>10}{'ratio':>8}")
    for i, label in enumerate(("requires_grad=False", "requires_grad=True")):
        theirs = f"{us[2 + i]:>7.2f} us{us[i] / us[2 + i]:>7.1f}x" if torch else ""
        print(f"  {label:<22}{us[i]:>12.2f} us{theirs}")
    out["overhead_us"] = us


def report_first_step(args, out):
    cache = tempfile.mkdtemp(prefix="tl-bench-numba-cache-")
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    try:
        runs = {k: run_worker("first-step", args, ["--model", "cnn", "--batch", str(
            args.batch or WORKLOADS["cnn"]["batch"])], env=env, timeout=1800)
            for k in ("cold", "warm")}
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    print("\ncnn first training step in a fresh process: cold (an empty temporary "
          "NUMBA_CACHE_DIR), then warm (the same directory, as the cold run left it)")
    for k, (r, wall) in runs.items():
        print(f"  {k:<5} first step {r['first_step_s']:>7.2f} s   (import {r['import_s']:.2f} "
              f"s, second step {r['second_step_s']:.2f} s, process wall {wall:.1f} s)")
    out["first_step"] = {k: r for k, (r, _) in runs.items()}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5, help="rounds alternating the engines")
    p.add_argument("--steps", type=int, default=10, help="timed steps per engine per round")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for both engines (default: the physical cores)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: 2 rounds of 2 steps, 1 breakdown step")
    p.add_argument("--profile", metavar="DIR", help="write breakdown.txt, results.json and "
                   "a cProfile per workload (NAME.prof, NAME.prof.txt) to DIR")
    p.add_argument("--models", default="cnn,mlp", help="comma-separated: cnn, mlp")
    p.add_argument("--batch", type=int, default=None, help="override both workloads' batch")
    p.add_argument("--no-torch", action="store_true", help="do not compare with torch")
    p.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    p.add_argument("--no-first-step", action="store_true", help="skip the cold/warm runs")
    p.add_argument("--worker", choices=("memory", "first-step"), help=argparse.SUPPRESS)
    p.add_argument("--model", default="cnn", help=argparse.SUPPRESS)
    p.add_argument("--engine", default=OURS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.steps = 2, 2
    args.breakdown = 1 if args.quick else 3
    args.mem_steps = args.steps if args.worker else min(args.steps, 3)
    args.threads = args.threads or threads.get_num_threads()
    return args


def main(argv=None):
    args = parse_args(argv)
    threads.set_num_threads(args.threads)
    if args.worker:
        torch = None
        if args.engine != OURS:
            import torch
            torch.set_num_threads(args.threads)
        return (memory_worker if args.worker == "memory" else first_step_worker)(args, torch)
    torch = import_torch(args)
    info = threads.thread_info()
    print(f"{os.cpu_count()} CPUs, {info['physical_cores']} physical cores; {args.threads} "
          f"thread(s) each: Numba {info['numba']} ({info['numba_layer']} layer), BLAS "
          f"{info['blas']}" + (f", torch {torch.get_num_threads()} ({torch.__version__})"
                               if torch else "") + f"; numpy {np.__version__}")
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    out, lines = {"threads": args.threads}, []
    for name in args.models.split(","):
        report_workload(name.strip(), args, torch, out, lines)
    report_overhead(args, torch, out)
    if not args.no_first_step:
        report_first_step(args, out)
    if args.profile:
        Path(args.profile, "breakdown.txt").write_text("\n".join(lines) + "\n")
        Path(args.profile, "results.json").write_text(json.dumps(out, indent=1))
        print(f"\nwrote {args.profile}/breakdown.txt, results.json and the cProfiles")
    return out


if __name__ == "__main__":
    main()
