"""Check tinygrad_lite against PyTorch (CPU, float64) where both implement the same thing: every
optimiser rule with its switches, every schedule, L-BFGS, pooling, normalisation, convolution,
and a small convnet trained for a few SGD steps. Prints the largest difference per check and
exits 1 if one exceeds its tolerance. Needs `pip install torch`; never part of `make test`.

    python tools/check_against_torch.py
"""
import sys
from pathlib import Path

import numpy as np

try:
    import tinygrad_lite as tl
except ImportError:  # run from a checkout without `pip install -e .`: use the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import tinygrad_lite as tl
from tinygrad_lite import nn, optim  # noqa: E402
from tinygrad_lite.nn import functional as F  # noqa: E402
from tinygrad_lite.optim import lr_scheduler as S  # noqa: E402

torch = None
F64 = tl.float64
failures = []


def report(name, diff, tol=1e-12):
    ok = diff <= tol
    if not ok:
        failures.append(name)
    print(f"{'ok  ' if ok else 'FAIL'} {name:<60} max |diff| {diff:.1e}")


def t64(a, grad=False):
    return tl.Tensor(a, dtype=F64, requires_grad=grad)


def check_optimisers(rng):
    w0, grads = rng.standard_normal(50), [rng.standard_normal(50) for _ in range(6)]
    for name, kw in [("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2)),
                     ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=1e-2)),
                     ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1,
                                      initial_accumulator_value=0.2)),
                     ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True,
                                      weight_decay=0.1)),
                     ("Adam", dict(lr=0.01, betas=(0.8, 0.9), amsgrad=True, weight_decay=0.1)),
                     ("AdamW", dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1))]:
        p = nn.Parameter(t64(w0))
        opt = getattr(optim, name)([p], **kw)
        tp = torch.tensor(w0, requires_grad=True)
        topt = getattr(torch.optim, name)([tp], **kw)
        for g in grads:
            p.grad = t64(g)
            opt.step()
            tp.grad = torch.tensor(g)
            topt.step()
        report(f"optim.{name}({', '.join(kw)})", np.abs(p.numpy() - tp.detach().numpy()).max())


def check_schedules():
    cases = {
        "StepLR": lambda M, o: M.StepLR(o, 7, 0.5),
        "MultiStepLR": lambda M, o: M.MultiStepLR(o, [3, 10], 0.3),
        "ExponentialLR": lambda M, o: M.ExponentialLR(o, 0.9),
        "CosineAnnealingLR": lambda M, o: M.CosineAnnealingLR(o, 12, 0.001),
        "CosineAnnealingWarmRestarts": lambda M, o: M.CosineAnnealingWarmRestarts(o, 5, 2, 1e-3),
        "LinearLR": lambda M, o: M.LinearLR(o, 0.1, 1.0, 8),
        "OneCycleLR": lambda M, o: M.OneCycleLR(o, 0.5, total_steps=31),
        "SequentialLR(LinearLR, CosineAnnealingLR)": lambda M, o: M.SequentialLR(
            o, [M.LinearLR(o, 0.01, total_iters=5), M.CosineAnnealingLR(o, 20)], [5]),
        "LambdaLR": lambda M, o: M.LambdaLR(o, lambda e: 1 / (1 + e)),
    }
    for name, make in cases.items():
        lrs = []
        for module, opt in ((S, optim.SGD([nn.Parameter(tl.zeros(1))], lr=0.1, momentum=0.9)),
                            (torch.optim.lr_scheduler, torch.optim.SGD(
                                [torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9))):
            sched, values = make(module, opt), []
            for _ in range(30):
                values.append(sched.get_last_lr()[0])
                opt.step()
                sched.step()
            lrs.append(np.array(values))
        report(f"lr_scheduler.{name}, 30 steps", np.abs(lrs[0] - lrs[1]).max())


def check_lbfgs():
    for search in (None, "strong_wolfe"):
        paths = []
        for lib in ("tl", "torch"):
            if lib == "tl":
                p = nn.Parameter(t64(np.array([-1.5, 2.0])))
                opt = optim.LBFGS([p], lr=1 if search else 0.1, history_size=10,
                                  line_search_fn=search)
            else:
                p = torch.tensor([-1.5, 2.0], dtype=torch.float64, requires_grad=True)
                opt = torch.optim.LBFGS([p], lr=1 if search else 0.1, history_size=10,
                                        line_search_fn=search)

            def closure(p=p, opt=opt):
                opt.zero_grad()
                loss = (1 - p[0]) ** 2 + 100 * (p[1] - p[0] * p[0]) ** 2  # Rosenbrock
                loss.backward()
                return loss
            path = []
            for _ in range(3):
                opt.step(closure)
                path.append(p.detach().numpy().copy())
            paths.append(np.array(path))
        report(f"optim.LBFGS(line_search_fn={search}) on Rosenbrock", np.abs(
            paths[0] - paths[1]).max(), 1e-9)


def compare(name, ours, theirs, x, params=(), tol=1e-12, nhwc=False):
    """Forward and every gradient of ours(x, *params) against theirs on the same values."""
    rng = np.random.default_rng(len(name))
    a = t64(x, True)
    inp = a.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2) if nhwc else a
    ps = [t64(p, True) for p in params]
    out = ours(inp, *ps)
    g = rng.standard_normal(out.shape)
    out.backward(t64(g))
    ta = torch.tensor(x, requires_grad=True)
    tps = [torch.tensor(p, requires_grad=True) for p in params]
    tout = theirs(ta, *tps)
    tout.backward(torch.tensor(g))
    diffs = [np.abs(out.numpy() - tout.detach().numpy()).max(),
             np.abs(a.grad.numpy() - ta.grad.numpy()).max()]
    diffs += [np.abs(p.grad.numpy() - q.grad.numpy()).max() for p, q in zip(ps, tps)]
    report(name + (" (NHWC memory)" if nhwc else ""), max(diffs), tol)


def check_layers(rng):
    TF = torch.nn.functional
    x = rng.standard_normal((2, 4, 11, 9))
    for nhwc in (False, True):
        compare("max_pool2d(3, 2, 1, dilation 2, ceil_mode)", lambda x: F.max_pool2d(
            x, 3, 2, 1, 2, True), lambda x: TF.max_pool2d(x, 3, 2, 1, 2, True), x, nhwc=nhwc)
        compare("avg_pool2d(3, 2, 1, ceil_mode, no pad count)", lambda x: F.avg_pool2d(
            x, 3, 2, 1, True, False), lambda x: TF.avg_pool2d(x, 3, 2, 1, True, False), x,
            nhwc=nhwc)
        compare("adaptive_avg_pool2d((4, 5))", lambda x: F.adaptive_avg_pool2d(x, (4, 5)),
                lambda x: TF.adaptive_avg_pool2d(x, (4, 5)), x, nhwc=nhwc)
        u = rng.random((2, 4, 2))
        compare("fractional_max_pool2d(2, (5, 4))", lambda x: F.fractional_max_pool2d(
            x, 2, output_size=(5, 4), _random_samples=t64(u)),
            lambda x: TF.fractional_max_pool2d(x, 2, output_size=(5, 4),
                                               _random_samples=torch.tensor(u)), x, nhwc=nhwc)
        rm, rv = rng.standard_normal(4), rng.random(4) + 0.5
        compare("batch_norm, training", lambda x, w, b: F.batch_norm(
            x, t64(rm), t64(rv), w, b, True), lambda x, w, b: TF.batch_norm(
            x, torch.tensor(rm), torch.tensor(rv), w, b, True), x, (rng.random(4), rng.random(4)),
            1e-11, nhwc)
        compare("batch_norm + relu (fused), training", lambda x, w, b: F.batch_norm(
            x, None, None, w, b, True, activation="relu"), lambda x, w, b: TF.relu(
            TF.batch_norm(x, None, None, w, b, True)), x, (rng.random(4), rng.random(4)),
            1e-11, nhwc)
        compare("batch_norm, eval", lambda x, w, b: F.batch_norm(x, t64(rm), t64(rv), w, b),
                lambda x, w, b: TF.batch_norm(x, torch.tensor(rm), torch.tensor(rv), w, b),
                x, (rng.random(4), rng.random(4)), 1e-11, nhwc)
        compare("group_norm(2 groups)", lambda x, w, b: F.group_norm(x, 2, w, b),
                lambda x, w, b: TF.group_norm(x, 2, w, b), x, (rng.random(4), rng.random(4)),
                1e-11, nhwc)
        compare("instance_norm", F.instance_norm, TF.instance_norm, x, (), 1e-11, nhwc)
        compare("layer_norm((11, 9))", lambda x, w, b: F.layer_norm(x, (11, 9), w, b),
                lambda x, w, b: TF.layer_norm(x, (11, 9), w, b), x,
                (rng.random((11, 9)), rng.random((11, 9))), 1e-11, nhwc)
        for (O, k, s, p, d, g) in [(6, 3, 2, 1, 2, 2), (8, (3, 2), (1, 2), (2, 0), 1, 4),
                                   (8, 5, 1, "same", 1, 4)]:
            kk = (k, k) if isinstance(k, int) else k
            compare(f"conv2d(k={k}, stride={s}, padding={p}, dilation={d}, groups={g})",
                    lambda x, w, b, s=s, p=p, d=d, g=g: F.conv2d(x, w, b, s, p, d, g),
                    lambda x, w, b, s=s, p=p, d=d, g=g: TF.conv2d(x, w, b, s, p, d, g), x,
                    (rng.standard_normal((O, 4 // g) + kk), rng.standard_normal(O)), 1e-11,
                    nhwc)


def check_training(rng):
    """A conv-BN-ReLU-pool net from the same weights, 8 steps of SGD with Nesterov momentum
    and weight decay on one batch: the losses, then the eval-mode outputs (running
    statistics), must agree."""
    def layers(lib, **f64):
        return [lib.Conv2d(3, 8, 3, padding=1, bias=False, **f64), lib.BatchNorm2d(8, **f64),
                lib.ReLU(), lib.MaxPool2d(2), lib.Conv2d(8, 16, 3, padding=1, **f64),
                lib.BatchNorm2d(16, **f64), lib.ReLU(), lib.MaxPool2d(2), lib.Flatten(),
                lib.Linear(256, 10, **f64)]
    ours = nn.Sequential(*layers(nn, dtype=F64))
    theirs = torch.nn.Sequential(*layers(torch.nn, dtype=torch.float64))
    ours.load_state_dict({k: t64(v.numpy()) if v.dtype == torch.float64 else tl.Tensor(v.numpy())
                          for k, v in theirs.state_dict().items()})
    x, y = rng.standard_normal((32, 3, 16, 16)), rng.integers(0, 10, 32)
    settings = dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    opt, topt = optim.SGD(ours.parameters(), **settings), torch.optim.SGD(
        theirs.parameters(), **settings)
    losses = []
    for _ in range(8):
        loss = F.cross_entropy(ours(t64(x)), tl.Tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        tloss = torch.nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
        topt.zero_grad()
        tloss.backward()
        topt.step()
        losses.append(abs(loss.item() - tloss.item()))
    report("convnet: 8 SGD steps, losses", max(losses), 1e-10)
    ours.eval()
    theirs.eval()
    report("convnet: eval outputs after training", np.abs(
        ours(t64(x)).numpy() - theirs(torch.tensor(x)).detach().numpy()).max(), 1e-10)


def main():
    global torch
    try:
        import torch
    except ImportError:
        sys.exit("check_against_torch.py needs PyTorch: pip install torch")
    rng = np.random.default_rng(0)
    print(f"tinygrad_lite against torch {torch.__version__}, float64 on the CPU")
    check_optimisers(rng)
    check_schedules()
    check_lbfgs()
    check_layers(rng)
    check_training(rng)
    print(f"{len(failures)} of the checks failed" if failures else "every check agrees")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
