"""draw_graph: the nodes and edges of graph.py's walk, grouped by module, capped and coloured,
written as a graphviz.Digraph."""
import math

from ..autograd import graph_order
from ..tensor import Tensor
from .graph import (_FILL, _SHAPE, GRAD_HIGH, GRAD_LOW, GradCapture, _meta_line, _norm,
                    _param_names, grad_colour, inputs_of)


class _Node:
    __slots__ = ("kind", "lines", "owner", "norm")

    def __init__(self, kind, lines, owner=None, norm=None):
        self.kind, self.lines, self.owner, self.norm = kind, lines, owner, norm


def draw_graph(output, params=None, *, modules=None, depth=None, show_grads=False, grads=None,
               grad_range=(GRAD_LOW, GRAD_HIGH), max_nodes=200, show_constants=False,
               rankdir="TB"):
    """The graph of ops behind `output` as a graphviz.Digraph, in data-flow order.

    One box per op (its name, and shape, dtype and device of each output) and one ellipse per
    leaf (its name in `params`, a Module or a dict name -> tensor, else "tensor"; shape;
    requires_grad). A tensor used twice is one node with two edges; a shared subgraph is drawn
    once. Inputs that need no gradient are left out (`show_constants=True` draws each as a
    "const" node). The output's node has a thick border.

    modules: a `trace_modules(model)` record of the forward: each module's ops are drawn inside
        a box named after it; with `depth=d` every module d levels down (d=1: the model's
        children, d=0: the whole model) becomes one node (outputs, op and parameter counts).
    show_grads: fill each node by the norm of its gradient (`grad_colour` over `grad_range`:
        blue vanishing .. red exploding) and print it. If no leaf has a `.grad` yet, this call
        runs `output.backward(retain_graph=True)` itself with `capture_grads` hooks (so the
        leaves' .grad are filled as by any backward). If grads exist already, only leaves
        are coloured unless `grads` is the `capture_grads(output)` made before that backward.
        A graph can be drawn after backward() freed its saved values (its structure stays);
        show_grads then colours the leaves by the .grad that backward left.
    max_nodes: above it, the nodes farthest from the output become one summary node.

        >>> with viz.trace_modules(model) as trace:
        ...     loss = F.cross_entropy(model(x), y)
        >>> viz.draw_graph(loss, model, modules=trace, show_grads=True).source  # doctest: +SKIP
    """
    try:
        import graphviz
    except ImportError as e:
        raise ImportError("draw_graph needs the graphviz Python package: pip install "
                          "graphviz (or the project's `graphs` extra)") from e
    if not isinstance(output, Tensor):
        raise TypeError(f"draw_graph: expected a Tensor, got {type(output).__name__}")
    if not output.requires_grad:
        raise ValueError("draw_graph: this tensor records no graph (requires_grad=False); make "
                         "its inputs or parameters require grad and compute it outside no_grad()")
    if depth is not None and (modules is None or not isinstance(depth, int) or depth < 0):
        raise ValueError(f"draw_graph: depth={depth!r} needs an int >= 0 and "
                         "modules=trace_modules(model) recorded during the forward")
    if not isinstance(max_nodes, int) or max_nodes < 2:
        raise ValueError(f"draw_graph: max_nodes must be an int >= 2, got {max_nodes!r}")
    names, order = _param_names(params), graph_order(output)
    leaves = [e[1] for fn in order for e in inputs_of(fn) if e is not None and e[0] == "leaf"]
    if show_grads and grads is None and all(t.grad is None for t in leaves + [output]):
        if any(fn.released for fn in order):
            raise RuntimeError("draw_graph: show_grads=True found no .grad to colour by, and "
                               "an earlier backward() freed what this graph needs to run "
                               "another; draw before backward, or call backward("
                               "retain_graph=True)")
        if output.size != 1:
            raise ValueError(f"draw_graph: show_grads=True runs backward itself, which needs a "
                             f"scalar output, got shape {output.shape}; run "
                             "backward(gradient, retain_graph=True) under capture_grads first")
        with GradCapture(output) as grads:
            output.backward(retain_graph=True)

    nodes, edges, root, metas = _collect(output, order, names, modules, show_grads, grads,
                                         show_constants)
    nodes, edges, root = _collapse(nodes, edges, (root, output._output_index), metas, modules,
                                   depth, grads)
    nodes, edges = _cap(nodes, edges, root, max_nodes)
    return _emit(graphviz, nodes, edges, root, modules, show_grads, grad_range, rankdir)


def _collect(output, order, names, modules, show_grads, grads, show_constants):
    """Every op and leaf as a _Node (inputs before the ops that read them) and every edge as
    (source key, target key, output index of the source)."""
    nodes, edges, metas = {}, [], {}

    def leaf(t):
        key = ("l", id(t))
        if key not in nodes:
            name = names.get(id(t))
            owner = name.rpartition(".")[0] if modules is not None and name else None
            norm = _norm(t.grad.numpy()) if show_grads and t.grad is not None else None
            nodes[key] = _Node("param" if name else "leaf", [
                name or "tensor", _meta_line(t.shape, t.dtype, t.device), "requires_grad=True"],
                owner, norm)
        return key

    for fn in order:
        key = ("f", id(fn))
        for edge in inputs_of(fn):
            if edge is None:
                if show_constants:
                    const = ("c", len(nodes))
                    nodes[const] = _Node("const", ["const"])
                    edges.append((const, key, 0))
                continue
            edges.append((leaf(edge[1]), key, 0) if edge[0] == "leaf" else
                         (("f", id(edge[1])), key, edge[2]))
        metas[key] = (fn, fn.output_meta)
        nodes[key] = _Node("op", [fn.name()] + [_meta_line(*m) for m in fn.output_meta],
                           modules.owner(fn) if modules is not None else None,
                           grads.norm(fn) if show_grads and grads is not None else None)
    root = ("f", id(output._ctx)) if output._ctx is not None else leaf(output)
    return nodes, edges, root, metas


def _collapse(nodes, edges, root, metas, modules, depth, grads):
    """Merge the nodes of each module `depth` levels down into one node. root: (key, index of
    the drawn output among its op's outputs)."""
    root, root_index = root
    if depth is None:
        return nodes, edges, root
    rep = {}
    for key, node in nodes.items():
        owner = node.owner if node.owner in modules.types else None
        parts = owner.split(".") if owner else []
        rep[key] = ("g", ".".join(parts[:depth])) if owner is not None and \
            len(parts) >= depth else key
    exits, members = {}, {}
    for s, d, i in edges + [(root, None, root_index)]:
        if rep[s][0] == "g" and (d is None or rep[d] != rep[s]) and s in metas:
            exits.setdefault(rep[s], {})[(s, i)] = None
    merged = {}
    for key, node in nodes.items():
        g = rep[key]
        if g[0] != "g":
            merged[key] = node
            continue
        members.setdefault(g, []).append(node)
        if g in merged:
            continue
        path = g[1]
        merged[g] = _Node("group", [f"{path}: {modules.types[path]}" if path else
                                    modules.types[path]], path.rpartition(".")[0] or
                          (None if path == "" else ""))
    for g, group in members.items():
        outs = list(exits.get(g, ()))
        shapes = list(dict.fromkeys(_meta_line(*metas[s][1][i]) for s, i in outs))
        n_ops = sum(n.kind == "op" for n in group)
        n_params = sum(n.kind == "param" for n in group)
        merged[g].lines += shapes[:3] + (["..."] if len(shapes) > 3 else []) + [
            f"{n_ops} op{'s' * (n_ops != 1)}, {n_params} param{'s' * (n_params != 1)}"]
        if grads is not None:
            found = [grads.norms.get((id(metas[s][0]), i)) for s, i in outs]
            found = [n for n in found if n is not None]
            merged[g].norm = math.sqrt(sum(n * n for n in found)) if found else None
    new_edges, seen = [], set()
    for s, d, i in edges:
        rs, rd = rep[s], rep[d]
        if rs == rd:
            continue
        if rs[0] == "g" or rd[0] == "g":
            if (rs, rd) in seen:
                continue
            seen.add((rs, rd))
            i = 0  # a module's outputs are listed in its label
        new_edges.append((rs, rd, i))
    return merged, new_edges, rep[root]


def _cap(nodes, edges, root, max_nodes):
    """Keep the max_nodes - 1 nodes nearest the output; the rest become one summary node."""
    if len(nodes) <= max_nodes:
        return nodes, edges
    inputs = {}
    for s, d, _ in edges:
        inputs.setdefault(d, []).append(s)
    keep, frontier = {root: None}, [root]
    while frontier and len(keep) < max_nodes - 1:  # breadth first, backwards from the output
        nxt = []
        for key in frontier:
            for s in inputs.get(key, ()):
                if s not in keep and len(keep) < max_nodes - 1:
                    keep[s] = None
                    nxt.append(s)
        frontier = nxt
    dropped = [n for k, n in nodes.items() if k not in keep]
    n_ops = sum(n.kind in ("op", "group") for n in dropped)
    summary = _Node("summary", [f"... {n_ops} more ops and {len(dropped) - n_ops} leaves",
                                f"(max_nodes={max_nodes})"])
    kept = {("s",): summary}
    kept.update((k, n) for k, n in nodes.items() if k in keep)
    new_edges, seen = [], set()
    for s, d, i in edges:
        if d not in keep:
            continue
        if s not in keep:
            s, i = ("s",), 0
            if (s, d) in seen:
                continue
            seen.add((s, d))
        new_edges.append((s, d, i))
    return kept, new_edges


def _emit(graphviz, nodes, edges, root, modules, show_grads, grad_range, rankdir):
    g = graphviz.Digraph("G", graph_attr={"rankdir": rankdir, "fontname": "Helvetica",
                                               "fontsize": "10", "nodesep": "0.25"},
                         node_attr={"fontname": "Helvetica", "fontsize": "10"},
                         edge_attr={"arrowsize": "0.7"})
    ids = {key: f"n{i}" for i, key in enumerate(nodes)}
    multi = {key for key, n in nodes.items() if n.kind == "op" and len(n.lines) > 2}
    clusters = {}  # module path -> [node keys]; None for nodes outside every module
    for key, node in nodes.items():
        owner = node.owner if modules is not None and node.owner in modules.types else None
        clusters.setdefault(owner, []).append(key)

    def attrs(key, node):
        lines = list(node.lines)
        fill = _FILL[node.kind]
        if show_grads and node.kind not in ("summary", "const"):
            if node.norm is None:
                lines.append("|grad| n/a")
                fill = "#ffffff"
            else:
                lines.append(f"|grad| {node.norm:.2e}")
                fill = grad_colour(node.norm, *grad_range)
        a = {"label": "\\n".join(lines), "shape": _SHAPE[node.kind], "style": "filled",
             "fillcolor": fill}
        if node.kind == "op":
            a["style"] = "filled,rounded"
        if key == root:
            a["penwidth"] = "2.5"
        return a

    boxes = _with_ancestors(clusters) - {None}

    def place(container, path):  # this module's nodes, then its sub-modules' boxes
        for key in clusters.get(path, ()):
            container.node(ids[key], **attrs(key, nodes[key]))
        for child in sorted(p for p in boxes if _parent(p) == path):
            with container.subgraph(name=f"cluster_{child or 'model'}".replace(".", "_")) as c:
                c.attr(label=f"{child}: {modules.types[child]}" if child else
                       modules.types[child], style="dashed,rounded", color="#888888",
                       fontcolor="#555555")
                place(c, child)

    place(g, None)
    for s, d, i in edges:
        g.edge(ids[s], ids[d], **({"label": str(i)} if s in multi else {}))
    if show_grads:
        lo, hi = grad_range
        g.attr(label=f"fill by |grad|: blue <= {lo:.0e} vanishing, red >= {hi:.0e} "
               "exploding, magenta inf/NaN", labelloc="b", fontsize="10")
    return g


def _parent(path):
    return None if path == "" else path.rpartition(".")[0]


def _with_ancestors(clusters):
    paths = set()
    for p in clusters:
        while p is not None and p not in paths:
            paths.add(p)
            p = _parent(p)
    return paths
