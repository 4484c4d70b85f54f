"""ONNX form of the pooling ops: MaxPool and AveragePool (pads as [top, left, bottom, right],
ceil_mode, count_include_pad), GlobalMaxPool and GlobalAveragePool."""
from __future__ import annotations


def _window(a):
    top, bottom, left, right = a.padding
    return {"kernel_shape": list(a.kernel), "strides": list(a.stride),
            "pads": [top, left, bottom, right], "ceil_mode": int(a.ceil_mode)}


def export(node, inputs, graph):
    a = node.attrs
    if node.op == "maxpool":
        return graph.add("MaxPool", inputs, node.name, **_window(a))
    if node.op == "avgpool":
        return graph.add("AveragePool", inputs, node.name, **_window(a),
                         count_include_pad=int(a.count_include_pad))
    return graph.add({"global_maxpool": "GlobalMaxPool",
                      "global_avgpool": "GlobalAveragePool"}[node.op], inputs, node.name)
