"""ONNX form of `concat`: Concat along the channels (axis 1)."""
from __future__ import annotations


def export(node, inputs, graph):
    return graph.add("Concat", inputs, node.name, axis=1)


def import_concat(g):
    if g.attr("axis") % len(g.shape()) != 1:
        g.fail("cnngraph concatenates along the channels (axis 1) only")
    g.layer("concat", {}, [g.tensor(i) for i in range(len(g.node.input))])


IMPORTS = {"Concat": import_concat}
