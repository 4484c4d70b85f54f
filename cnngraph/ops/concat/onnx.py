"""ONNX form of `concat`: Concat along the channels (axis 1)."""
from __future__ import annotations


def export(node, inputs, graph):
    return graph.add("Concat", inputs, node.name, axis=1)
