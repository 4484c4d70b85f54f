"""ONNX form of `zero_pad`: Pad with zeros, pads as [begin of each axis, end of each axis]."""
from __future__ import annotations


def export(node, inputs, graph):
    top, bottom, left, right = node.attrs.padding
    pads = graph.constant(f"{node.name}/pads", [0, 0, top, left, 0, 0, bottom, right])
    return graph.add("Pad", inputs + [pads], node.name, mode="constant")
