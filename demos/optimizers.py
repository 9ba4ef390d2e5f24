"""Optimiser trajectories and learning-rate schedules: the lecture's pictures, drawn with
tinygrad_lite.optim.

1. SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam and L-BFGS from one start on two 2-D
   surfaces, one path per rule over the loss contours:
   - an ill-conditioned bowl f = (0.1 x^2 + 2 y^2) / 2 (curvatures 20x apart): SGD zigzags
     across the steep direction and crawls along the shallow one; momentum builds speed along
     the valley; the adaptive rules rescale each coordinate; L-BFGS learns the curvature;
   - a saddle f = x^2 - y^2 + y^4 / 4 started just off the ridge (y = 0.001): plain SGD waits
     for the tiny y-gradient to grow, the adaptive rules divide it by its own size and leave
     at once.
2. Every schedule in optim.lr_scheduler over 100 epochs on one plot.

Writes optimizer_trajectories.png and lr_schedules.png; runs in a few seconds.

    python demos/optimizers.py [--out demos/out] [--steps 60]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

try:
    import tinygrad_lite as tl
except ImportError:  # run from a checkout without `pip install -e .`: use the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import tinygrad_lite as tl
from tinygrad_lite import nn, optim
from tinygrad_lite.optim import lr_scheduler as S

# Each surface is sum(a * p^2 + b * p^4) over the two coordinates p = (x, y), so the loss is
# three element-wise ops and a sum: f(x, y) = a0 x^2 + a1 y^2 + b1 y^4.
SURFACES = {
    "ill-conditioned quadratic": dict(a=(0.05, 1.0), b=(0.0, 0.0), start=(-9.0, 1.5),
                                      box=(-10, 2, -2, 2)),
    "saddle point": dict(a=(1.0, -1.0), b=(0.0, 0.25), start=(-1.5, 0.001),
                         box=(-2, 1, -2, 2)),
}

# name -> (optimiser class, hyperparameters on the bowl, on the saddle), chosen so that each
# rule's character shows: SGD's lr on the bowl is near the stability limit of the steep
# direction (lr * curvature 2 = 1.8), so it zigzags; on the saddle every rule gets a small lr
# so that escaping depends on the rule, not on a big step.
RULES = {
    "SGD": (optim.SGD, dict(lr=0.9), dict(lr=0.05)),
    "Momentum": (optim.SGD, dict(lr=0.08, momentum=0.9), dict(lr=0.05, momentum=0.9)),
    "Nesterov": (optim.SGD, dict(lr=0.08, momentum=0.9, nesterov=True),
                 dict(lr=0.05, momentum=0.9, nesterov=True)),
    "AdaGrad": (optim.Adagrad, dict(lr=1.0), dict(lr=0.3)),
    "RMSprop": (optim.RMSprop, dict(lr=0.1, alpha=0.9), dict(lr=0.05, alpha=0.9)),
    "Adam": (optim.Adam, dict(lr=0.3), dict(lr=0.05)),
    "L-BFGS": (optim.LBFGS, dict(lr=1.0, max_iter=1, line_search_fn="strong_wolfe"),
               dict(lr=1.0, max_iter=1, line_search_fn="strong_wolfe")),
}


def loss_fn(p, a, b):
    return (a * p * p + b * p * p * p * p).sum()


def trajectory(rule, surface, steps):
    """The path of one rule on one surface: the start and the point after every step."""
    cls, on_bowl, on_saddle = RULES[rule]
    kw = on_saddle if surface["b"][1] else on_bowl
    a, b = tl.tensor(surface["a"], dtype=tl.float64), tl.tensor(surface["b"], dtype=tl.float64)
    p = nn.Parameter(tl.tensor(surface["start"], dtype=tl.float64))
    opt = cls([p], **kw)

    def closure():
        opt.zero_grad()
        loss = loss_fn(p, a, b)
        loss.backward()
        return loss

    path = [p.numpy().copy()]
    for _ in range(steps):
        opt.step(closure)
        path.append(p.numpy().copy())
        if not np.all(np.isfinite(path[-1])) or np.abs(path[-1]).max() > 1e3:
            break  # diverged (L-BFGS on the saddle can run downhill for ever): stop drawing
    return np.array(path)


def draw_trajectories(plt, out, steps):
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5))
    colours = plt.cm.tab10(np.arange(len(RULES)))
    for ax, (title, surface) in zip(axes, SURFACES.items()):
        x0, x1, y0, y1 = surface["box"]
        X, Y = np.meshgrid(np.linspace(x0, x1, 300), np.linspace(y0, y1, 300))
        (a0, a1), (b0, b1) = surface["a"], surface["b"]
        Z = a0 * X ** 2 + b0 * X ** 4 + a1 * Y ** 2 + b1 * Y ** 4
        ax.contour(X, Y, Z, levels=30, cmap="Greys", linewidths=0.6)
        for colour, rule in zip(colours, RULES):
            path = trajectory(rule, surface, steps)
            ax.plot(path[:, 0], path[:, 1], "-o", color=colour, markersize=2.5, linewidth=1.2,
                    label=rule)
        ax.plot(*surface["start"], "k*", markersize=12)
        ax.set(xlim=(x0, x1), ylim=(y0, y1), title=f"{title}, {steps} steps", xlabel="x",
               ylabel="y")
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "optimizer_trajectories.png", dpi=110)
    plt.close(fig)


def schedules():
    """name -> a function making that scheduler for an optimiser (lr 0.1)."""
    return {
        "StepLR(20, 0.5)": lambda o: S.StepLR(o, step_size=20, gamma=0.5),
        "MultiStepLR([30, 60, 90])": lambda o: S.MultiStepLR(o, [30, 60, 90]),
        "ExponentialLR(0.96)": lambda o: S.ExponentialLR(o, 0.96),
        "CosineAnnealingLR(100)": lambda o: S.CosineAnnealingLR(o, T_max=100),
        "SGDR(T_0=10, T_mult=2)": lambda o: S.CosineAnnealingWarmRestarts(o, 10, T_mult=2),
        "LinearLR decay": lambda o: S.LinearLR(o, 1.0, 0.01, total_iters=100),
        "OneCycleLR(max 0.1)": lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=100),
        "InverseSqrtLR": lambda o: S.InverseSqrtLR(o),
        "warm-up 10 + cosine": lambda o: S.SequentialLR(o, [
            S.LinearLR(o, 0.01, total_iters=10), S.CosineAnnealingLR(o, T_max=90)], [10]),
        "LambdaLR (1 - t/100)^2": lambda o: S.LambdaLR(o, lambda t: (1 - t / 100) ** 2),
        "ReduceLROnPlateau": lambda o: S.ReduceLROnPlateau(o, factor=0.5, patience=5),
    }


def draw_schedules(plt, out, epochs=100):
    fig, ax = plt.subplots(figsize=(10, 5.5))
    ax.set_prop_cycle(color=plt.cm.tab20(np.arange(0, 20, 2) % 20).tolist() + ["black"])
    for name, make in schedules().items():
        opt = optim.SGD([nn.Parameter(tl.zeros(1))], lr=0.1, momentum=0.9)
        sched = make(opt)
        lrs = []
        for epoch in range(epochs):
            lrs.append(opt.param_groups[0]["lr"])
            if isinstance(sched, S.ReduceLROnPlateau):
                sched.step(1.0 / (1 + min(epoch, 20)))  # a validation loss that stops falling
            else:
                sched.step()
        ax.plot(range(epochs), lrs, label=name, linewidth=1.5)
    ax.set(yscale="log", xlabel="epoch", ylabel="learning rate",
           title="optim.lr_scheduler: every schedule from lr 0.1")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "lr_schedules.png", dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "out"),
                        help="output directory (default: demos/out)")
    parser.add_argument("--steps", type=int, default=60, help="steps per trajectory")
    args = parser.parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    draw_trajectories(plt, out, args.steps)
    draw_schedules(plt, out)
    print(f"wrote {out / 'optimizer_trajectories.png'} and {out / 'lr_schedules.png'} "
          f"in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
