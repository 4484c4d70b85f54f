"""ONNX form of `softmax`: Softmax over the channels (axis 1; opset 13's one-axis form)."""
from __future__ import annotations


def export(node, inputs, graph):
    return graph.add("Softmax", inputs, node.name, axis=1)
