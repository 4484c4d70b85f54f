"""ONNX form of `adaptive_avgpool`. ONNX has no adaptive pooling. Where the output divides the
input, the windows are a plain AveragePool's. Else, as each window is a product of a range of
rows and a range of columns, the mean over it is the mean over its columns of the means over
its rows: per axis, one ReduceMean of each output position's range (a Slice), concatenated."""
from __future__ import annotations

from . import bounds


def export(node, inputs, graph):
    _, height, width = node.in_shapes[0]
    out = node.attrs.out
    if height % out[0] == 0 and width % out[1] == 0:
        kernel = [height // out[0], width // out[1]]
        return graph.add("AveragePool", inputs, node.name, kernel_shape=kernel, strides=kernel)
    tensor = inputs[0]
    axes = [(axis, size, count) for axis, size, count in ((2, height, out[0]), (3, width, out[1]))
            if size != count]
    for axis, size, count in axes:
        means = []
        for i in range(count):
            start, stop = bounds(i, size, count)
            part = f"{node.name}/axis{axis}_{i}"
            window = graph.add("Slice", [tensor, graph.constant(f"{part}/starts", [start]),
                                         graph.constant(f"{part}/ends", [stop]),
                                         graph.constant(f"{part}/axes", [axis])], f"{part}/rows")
            means.append(_mean(graph, window, axis, part))
        last = axis == axes[-1][0]
        tensor = graph.add("Concat", means, node.name if last else f"{node.name}/axis{axis}",
                           axis=axis)
    return tensor


def _mean(graph, tensor, axis, name):
    """ReduceMean over one axis, kept: its axes an attribute before opset 18, an input after."""
    if graph.opset < 18:
        return graph.add("ReduceMean", [tensor], name, axes=[axis], keepdims=1)
    return graph.add("ReduceMean", [tensor, graph.constant(f"{name}/axes", [axis])], name,
                     keepdims=1)
