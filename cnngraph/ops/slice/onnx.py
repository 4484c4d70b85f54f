"""ONNX form of `slice`: Slice of the channels (axis 1)."""
from __future__ import annotations


def export(node, inputs, graph):
    start, stop = node.attrs.bounds(node.in_shapes[0][0])
    return graph.add("Slice", inputs + [graph.constant(f"{node.name}/starts", [start]),
                                        graph.constant(f"{node.name}/ends", [stop]),
                                        graph.constant(f"{node.name}/axes", [1])], node.name)
