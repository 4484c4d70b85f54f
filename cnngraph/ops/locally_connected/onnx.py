"""ONNX form of `locally_connected`. ONNX has no unshared convolution, so it is written as what
it is: the patches (a Conv whose kernel is a constant one-hot, one output channel per
(channel, row, column) of the window: the columns of im2col), each position's patch times its
own weights (Einsum against the weight, reshaped to (oh, ow, out, C·kh·kw)), plus the bias."""
from __future__ import annotations

import numpy as np


def export(node, inputs, graph):
    a = node.attrs
    channels = node.in_shapes[0][0]
    size = channels * a.kernel[0] * a.kernel[1]
    top, bottom, left, right = a.padding
    one_hot = graph.constant(f"{node.name}/patch_kernel",
                             np.eye(size).reshape(size, channels, *a.kernel), graph.dtype)
    patches = graph.add("Conv", inputs + [one_hot], f"{node.name}/patches",
                        kernel_shape=list(a.kernel), strides=list(a.stride),
                        pads=[top, left, bottom, right])
    oh, ow, out = node.params["weight"][:3]
    weight = graph.add("Reshape", [graph.param(node, "weight"), graph.constant(
        f"{node.name}/weight_shape", [oh, ow, out, size])], f"{node.name}/weight_rows")
    has_bias = graph.has_param(node, "bias")
    product = graph.add("Einsum", [patches, weight],
                        f"{node.name}/product" if has_bias else node.name,
                        equation="nkhw,hwok->nohw")
    if not has_bias:
        return product
    return graph.add("Add", [product, graph.param(node, "bias")], node.name)
