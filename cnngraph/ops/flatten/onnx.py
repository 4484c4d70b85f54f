"""ONNX form of `flatten`: Flatten from axis 1 (the batch axis kept)."""
from __future__ import annotations


def export(node, inputs, graph):
    return graph.add("Flatten", inputs, node.name, axis=1)
