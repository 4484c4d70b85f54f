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


def _pool(op):
    def rule(g):
        kernel = list(g.attr("kernel_shape"))
        if len(kernel) != 2 or any(d != 1 for d in g.attr("dilations", [1, 1])):
            g.fail("cnngraph imports 2-D pooling without dilation")
        if len(g.node.output) > 1 and g.node.output[1]:
            g.fail("cnngraph's max pooling does not return indices")
        stride = g.attr("strides", [1, 1])
        args = {"kernel": g.compact(kernel), "stride": g.compact(stride)}
        padding = g.padding(kernel, stride, [1, 1])
        if padding != 0:
            args["padding"] = padding
        if g.attr("ceil_mode", 0):
            args["ceil_mode"] = True
        if op == "avgpool" and padding != 0:
            args["count_include_pad"] = bool(g.attr("count_include_pad", 0))
        g.layer(op, args, [g.tensor(0)])
    return rule


def _reduce(op):
    """ReduceMean/ReduceMax over H and W: global pooling (flattened without keepdims)."""
    def rule(g):
        axes = g.const(1) if g.has_input(1) else g.attr("axes")
        rank = len(g.shape())
        if axes is None or rank != 4 or sorted(int(a) % 4 for a in axes) != [2, 3]:
            g.fail("cnngraph imports a reduction over H and W of a (N, C, H, W) map only")
        layer = g.layer(op, {}, [g.tensor(0)], output=None if not g.attr("keepdims", 1) else 0)
        if not g.attr("keepdims", 1):
            g.layer("flatten", {}, [layer.name])
    return rule


IMPORTS = {"MaxPool": _pool("maxpool"), "AveragePool": _pool("avgpool"),
           "GlobalMaxPool": lambda g: g.layer("global_maxpool", {}, [g.tensor(0)]),
           "GlobalAveragePool": lambda g: g.layer("global_avgpool", {}, [g.tensor(0)]),
           "ReduceMean": _reduce("global_avgpool"), "ReduceMax": _reduce("global_maxpool")}
