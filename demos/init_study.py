"""Activation statistics per layer for each weight initialisation: the lectures' experiment.

A 6-layer, 4096-wide network without biases (x -> W x -> nonlinearity, six times) sees one
batch of N(0, 1) inputs; tinygrad_lite.train.stats.activation_stats measures the output of
every nonlinearity. Ten settings, each without and with a BatchNorm1d after every linear layer
(before the nonlinearity, in training mode so it uses the batch's statistics):

  tanh, W ~ N(0, 0.01^2)       each layer multiplies the std by about 0.01 sqrt(4096) = 0.64:
                               the activations collapse towards 0 layer by layer (and with
                               them the gradients)
  tanh, W ~ N(0, 0.05^2)       a factor of 3.2 per layer: tanh saturates at +-1 (local
                               gradient 0)
  tanh, Xavier std 1/sqrt(Din) well-scaled in every layer
  ReLU, Xavier                 ReLU zeroes half of each layer's input, so the variance halves
                               per layer: the activations shrink towards 0
  ReLU, Kaiming sqrt(2/Din)    the factor 2 makes up for it: well-scaled

With batch norm every setting is well-scaled: it rescales each layer's pre-activations to
mean 0, variance 1, whatever the weights' scale.

Writes init_study.png (rows: settings, columns: layers; one histogram per layer) into --out
and prints the std of every layer's activations.

    python demos/init_study.py [--width 4096] [--samples 500] [--out demos/out]
"""
import argparse
import math
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
from tinygrad_lite.train.stats import activation_stats

DEPTH = 6
# Fixed histogram edges, the same for every layer of a nonlinearity, so that collapse (all
# mass in the bins next to 0) and saturation (mass in the end bins) show at a glance. Tanh
# fills [-1, 1]; a ReLU's output stays below 8 here (its pre-activations have std at most
# about 1.5, and 8 is over 5 of those: values beyond are counted in the last bin).
EDGES = {"tanh": np.linspace(-1.0, 1.0, 51), "relu": np.linspace(0.0, 8.0, 81)}
LABEL = 32  # width of a table row's label

# (nonlinearity, init name, std of W as a function of Din)
INITS = [
    ("tanh", "N(0, 0.01^2)", lambda d: 0.01),
    ("tanh", "N(0, 0.05^2)", lambda d: 0.05),
    ("tanh", "Xavier 1/sqrt(Din)", lambda d: 1 / math.sqrt(d)),
    ("relu", "Xavier 1/sqrt(Din)", lambda d: 1 / math.sqrt(d)),
    ("relu", "Kaiming sqrt(2/Din)", lambda d: math.sqrt(2 / d)),
]
SETTINGS = [(act, init, std, bn) for bn in (False, True) for act, init, std in INITS]


def label(act, init, bn):
    return f"{act} {init}" + (" + BN" if bn else "")


def network(width, act, std, batchnorm):
    """DEPTH x (Linear without bias, [BatchNorm1d], tanh or ReLU), weights N(0, std^2)."""
    layers = []
    for _ in range(DEPTH):
        linear = nn.Linear(width, width, bias=False)
        nn.init.normal_(linear.weight, 0.0, std)
        layers.append(linear)
        if batchnorm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.Tanh() if act == "tanh" else nn.ReLU())
    return nn.Sequential(*layers)


def study(width, samples):
    """{setting label: activation_stats rows of the six nonlinearities}. Every setting has the
    same inputs and the same random weights up to their scale (the seed is reset), so the rows
    differ only by the init's scale and the nonlinearity."""
    x = tl.Tensor(np.random.default_rng(0).standard_normal((samples, width)), dtype=tl.float32)
    results = {}
    for act, init, std, bn in SETTINGS:
        tl.manual_seed(0)
        model = network(width, act, std(width), bn)  # in training mode: BN uses batch stats
        results[label(act, init, bn)] = activation_stats(model, x, modules=(nn.Tanh, nn.ReLU),
                                                         bins=EDGES[act])
        del model  # 6 x width^2 floats: free before the next one is built
    return results


def table(results, key, title, fmt="{:>9.3g}"):
    """A printable table: one row per setting, one column per layer."""
    lines = [title, f"{'setting':<{LABEL}}" + "".join(f"{f'layer {i + 1}':>9}"
                                                       for i in range(DEPTH))]
    for name, rows in results.items():
        values = [r[key] for r in rows]
        if all(v is None for v in values):
            continue
        lines.append(f"{name:<{LABEL}}" + "".join(fmt.format(v) for v in values))
    return "\n".join(lines)


def draw(results, path):
    """One histogram per layer per setting over the fixed EDGES. A ReLU's zeros (half its
    outputs) would dwarf the rest, so their bin is clipped and their share is written in the
    panel."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(2.6 * DEPTH, 1.7 * len(results)), dpi=80)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(results), DEPTH, squeeze=False)
    for r, (name, rows) in enumerate(results.items()):
        relu = rows[0]["module"] == "ReLU"
        for c, row in enumerate(rows):
            ax, counts, edges = axes[r][c], row["counts"], row["edges"]
            density = counts / (counts.sum() * np.diff(edges))
            ax.stairs(density, edges, fill=True, color="tab:red" if relu else "tab:blue")
            ax.set_xlim(edges[0] - 0.02 * (edges[-1] - edges[0]),
                        edges[-1] + 0.02 * (edges[-1] - edges[0]))
            if relu and len(density) > 1:
                ax.set_ylim(0, 1.15 * max(density[1:].max(), 1e-12))
            note = f"std {row['std']:.3g}"
            if relu:
                note += f"\n{row['frac_zero']:.0%} zero"
            elif row["frac_saturated"] is not None:
                note += f"\n{row['frac_saturated']:.0%} sat."
            ax.text(0.97, 0.95, note, transform=ax.transAxes, ha="right", va="top",
                    fontsize=7, bbox=dict(facecolor="white", alpha=0.8, edgecolor="none"))
            ax.set_yticks([])
            ax.set_xticks([edges[0], (edges[0] + edges[-1]) / 2, edges[-1]])  # few: fast to draw
            ax.tick_params(labelsize=7)
            if r == 0:
                ax.set_title(f"layer {c + 1}", fontsize=9)
            if c == 0:
                ax.set_ylabel(name.replace(" + BN", "\n+ BN"), fontsize=7, rotation=0,
                              ha="right", va="center")
    fig.suptitle(f"Activations of each layer ({DEPTH} layers), one row per initialisation",
                 fontsize=11)
    fig.subplots_adjust(left=0.1, right=0.99, bottom=0.03, top=0.95, wspace=0.08, hspace=0.35)
    fig.savefig(path)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=4096, help="units per layer (Din)")
    parser.add_argument("--samples", type=int, default=500, help="batch size")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "out"),
                        help="output directory (default: demos/out)")
    args = parser.parse_args(argv)
    if args.width < 1:
        parser.error(f"--width must be positive, got {args.width}")
    if args.samples < 2:
        parser.error(f"--samples must be at least 2 (batch norm needs a batch), got "
                     f"{args.samples}")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SystemExit("init_study: drawing needs matplotlib "
                         "(pip install 'tinygrad_lite[plots]')")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results = study(args.width, args.samples)
    measured = time.perf_counter() - start
    path = out / "init_study.png"
    draw(results, path)
    print(table(results, "std", f"std of each layer's activations ({args.samples} samples, "
                                f"width {args.width})"))
    print()
    print(table(results, "frac_saturated", "fraction saturated (|y| > 0.99, tanh only)",
                fmt="{:>9.3f}"))
    print(f"\nwrote {path}; {measured:.1f} s to build and measure "
          f"{len(SETTINGS)} networks, {time.perf_counter() - start:.1f} s in all")
    return results


if __name__ == "__main__":
    main()
