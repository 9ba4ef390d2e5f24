"""Pictures of computation graphs: `draw_graph` turns the graph of ops behind a tensor into a
`graphviz.Digraph`; `trace_modules` records which Module made which op (for grouping and
collapsing); `capture_grads` records the gradient norm that reaches every op during a
backward; `save` writes `.dot` and, with Graphviz or the matplotlib fallback, `.svg`/`.png`.

    from tinygrad_lite import viz
    with viz.trace_modules(model) as trace:
        loss = F.cross_entropy(model(x), labels)
    graph = viz.draw_graph(loss, params=model, modules=trace, show_grads=True)
    viz.save(graph, "mlp_graph")        # mlp_graph.dot, and .svg/.png where it can render

`python tools/graph.py` does the same for the demo models from the command line."""
from .draw import draw_graph
from .graph import GradCapture, ModuleTrace, capture_grads, grad_colour, trace_modules
from .render import dot_program, parse_dot, render_matplotlib, save

__all__ = ["draw_graph", "trace_modules", "capture_grads", "grad_colour", "save",
           "render_matplotlib", "parse_dot", "dot_program", "ModuleTrace", "GradCapture"]
