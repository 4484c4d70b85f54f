"""ONNX form of `conv`: Conv, pads as [top, left, bottom, right]."""
from __future__ import annotations


def export(node, inputs, graph):
    a = node.attrs
    top, bottom, left, right = a.padding
    weights = [graph.param(node, "weight")] + ([graph.param(node, "bias")]
                                               if graph.has_param(node, "bias") else [])
    return graph.add("Conv", inputs + weights, node.name, kernel_shape=list(a.kernel),
                     strides=list(a.stride), pads=[top, left, bottom, right],
                     dilations=list(a.dilation), group=a.groups)
