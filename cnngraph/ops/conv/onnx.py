"""ONNX form of `conv`: Conv, pads as [top, left, bottom, right]; and a Conv read back."""
from __future__ import annotations


def export(node, inputs, graph):
    a = node.attrs
    top, bottom, left, right = a.padding
    weights = [graph.param(node, "weight")] + ([graph.param(node, "bias")]
                                               if graph.has_param(node, "bias") else [])
    return graph.add("Conv", inputs + weights, node.name, kernel_shape=list(a.kernel),
                     strides=list(a.stride), pads=[top, left, bottom, right],
                     dilations=list(a.dilation), group=a.groups)


def import_conv(g):
    """Conv of a constant 4-D weight (a 2-D convolution)."""
    weight, bias = g.const(1), g.const(2)
    if weight is None or weight.ndim != 4:
        g.fail("cnngraph imports 2-D convolutions with a constant weight")
    kernel = list(weight.shape[2:])
    stride, dilation = g.attr("strides", [1, 1]), g.attr("dilations", [1, 1])
    args = {"out": int(weight.shape[0]), "kernel": g.compact(kernel)}
    for key, value, default in (("stride", g.compact(stride), 1),
                                ("padding", g.padding(kernel, stride, dilation), 0),
                                ("dilation", g.compact(dilation), 1),
                                ("groups", g.attr("group", 1), 1)):
        if value != default:
            args[key] = value
    if bias is None:
        args["bias"] = False
    g.layer("conv", args, [g.tensor(0)],
            {"weight": weight, **({"bias": bias} if bias is not None else {})})


IMPORTS = {"Conv": import_conv}
