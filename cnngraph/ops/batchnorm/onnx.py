"""ONNX form of `batchnorm`: BatchNormalization in inference mode. ONNX's momentum weighs the
running value (PyTorch's and cnngraph's weighs the batch's): 1 - momentum."""
from __future__ import annotations


def export(node, inputs, graph):
    a = node.attrs
    return graph.add("BatchNormalization", inputs + [
        graph.param(node, key) for key in ("weight", "bias", "running_mean", "running_var")],
        node.name, epsilon=float(a.eps), momentum=1 - float(a.momentum))


def import_batchnorm(g):
    """BatchNormalization in inference mode, statistics and affine map constant."""
    values = [g.const(i) for i in range(1, 5)]
    if any(v is None for v in values) or g.attr("training_mode", 0):
        g.fail("cnngraph imports inference-mode BatchNormalization with constant inputs")
    weight, bias, mean, var = values
    args = {}
    eps, momentum = g.number(g.attr("epsilon", 1e-5)), g.number(1 - g.attr("momentum", 0.9))
    if eps != 1e-5:
        args["eps"] = eps
    if momentum != 0.1:
        args["momentum"] = momentum
    g.layer("batchnorm", args, [g.tensor(0)], {"weight": weight, "bias": bias},
            {"running_mean": mean, "running_var": var})


IMPORTS = {"BatchNormalization": import_batchnorm}
