"""ONNX form of `dense`: Gemm with the weight as stored, (out, in), so transB=1."""
from __future__ import annotations


def export(node, inputs, graph):
    weights = [graph.param(node, "weight")] + ([graph.param(node, "bias")]
                                               if graph.has_param(node, "bias") else [])
    return graph.add("Gemm", inputs + weights, node.name, transB=1)
