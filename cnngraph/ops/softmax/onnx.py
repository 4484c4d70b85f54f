"""ONNX form of `softmax`: Softmax over the channels (axis 1; opset 13's one-axis form)."""
from __future__ import annotations


def export(node, inputs, graph):
    return graph.add("Softmax", inputs, node.name, axis=1)


def import_softmax(g):
    rank = len(g.shape())
    if g.attr("axis", 1 if g.opset < 13 else -1) % rank != 1:
        g.fail("cnngraph's softmax runs over the channels (axis 1)")
    g.layer("softmax", {}, [g.tensor(0)])


IMPORTS = {"Softmax": import_softmax}
