"""ONNX form of `batchnorm`: BatchNormalization in inference mode. ONNX's momentum weighs the
running value (PyTorch's and cnngraph's weighs the batch's): 1 - momentum."""
from __future__ import annotations


def export(node, inputs, graph):
    a = node.attrs
    return graph.add("BatchNormalization", inputs + [
        graph.param(node, key) for key in ("weight", "bias", "running_mean", "running_var")],
        node.name, epsilon=float(a.eps), momentum=1 - float(a.momentum))
