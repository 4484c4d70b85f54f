"""ONNX form of `mul`: Mul, whose broadcasting takes a (N, C, 1, 1) gate as it is."""
from __future__ import annotations


def export(node, inputs, graph):
    return graph.add("Mul", inputs, node.name)


def import_mul(g):
    """Mul by a constant is a per-channel scale; x · Sigmoid(x) is silu (as PyTorch exports
    it); a map times a (C, 1, 1) gate or a map of its shape is `mul`."""
    constants = [g.const(0), g.const(1)]
    if any(c is not None for c in constants):
        data = 0 if constants[1] is not None else 1
        return g.affine(data, scale=constants[1 - data])
    for gate, data in ((1, 0), (0, 1)):
        sigmoid = g.producer(gate)
        if sigmoid is not None and sigmoid.op == "sigmoid" and \
                sigmoid.inputs == [g.tensor(data)] and g.only_consumer(g.node.input[gate]):
            sigmoid.op = "silu"
            return g.alias(sigmoid.name)
    g.layer("mul", {}, [g.tensor(0), g.tensor(1)])


def import_div(g):
    scale = g.const(1)
    if scale is None or g.const(0) is not None:
        g.fail("cnngraph imports Div of a feature map by a constant only")
    g.affine(0, scale=1 / scale)


IMPORTS = {"Mul": import_mul, "Div": import_div}
