"""ONNX forms of the activations. Each is one ONNX op where the opset has it (Gelu from 20,
HardSwish from 14); else the composition of ops its definition is (silu as x·Sigmoid(x), as
PyTorch exports it)."""
from __future__ import annotations

import math

SINGLE = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "identity": "Identity"}


def export(node, inputs, graph):
    (x,), name, op = inputs, node.name, node.op
    if op in SINGLE:
        return graph.add(SINGLE[op], [x], name)
    if op == "leaky_relu":
        return graph.add("LeakyRelu", [x], name, alpha=float(node.attrs.slope))
    if op == "elu":
        return graph.add("Elu", [x], name, alpha=float(node.attrs.alpha))
    if op == "relu6":
        return graph.add("Clip", [x, graph.scalar(f"{name}/min", 0), graph.scalar(
            f"{name}/max", 6)], name)
    if op == "hardsigmoid":
        return graph.add("HardSigmoid", [x], name, alpha=1 / 6, beta=0.5)
    if op == "hardswish":
        if graph.opset >= 14:
            return graph.add("HardSwish", [x], name)
        gate = graph.add("HardSigmoid", [x], f"{name}/gate", alpha=1 / 6, beta=0.5)
        return graph.add("Mul", [x, gate], name)
    if op in ("silu", "swish"):
        return graph.add("Mul", [x, graph.add("Sigmoid", [x], f"{name}/sigmoid")], name)
    if op == "gelu":
        return _gelu(node.attrs.approximate, x, name, graph)
    raise AssertionError(f"no ONNX form written for activation {op}")


def _gelu(approximate, x, name, graph):
    """x·Φ(x) (erf form) or its tanh approximation, as PyTorch defines them."""
    if graph.opset >= 20:
        return graph.add("Gelu", [x], name, approximate=approximate)
    if approximate == "none":
        cdf = graph.add("Erf", [graph.add("Div", [x, graph.scalar(f"{name}/sqrt2", math.sqrt(2))],
                                          f"{name}/scaled")], f"{name}/erf")
    else:
        square = graph.add("Mul", [x, x], f"{name}/square")
        cube = graph.add("Mul", [square, x], f"{name}/cube")
        inner = graph.add("Add", [x, graph.add("Mul", [cube, graph.scalar(
            f"{name}/cubic", 0.044715)], f"{name}/cubic_term")], f"{name}/inner")
        cdf = graph.add("Tanh", [graph.add("Mul", [inner, graph.scalar(
            f"{name}/sqrt_2_over_pi", math.sqrt(2 / math.pi))], f"{name}/scaled")],
            f"{name}/tanh")
    one_plus = graph.add("Add", [cdf, graph.scalar(f"{name}/one", 1)], f"{name}/one_plus")
    half_x = graph.add("Mul", [x, graph.scalar(f"{name}/half", 0.5)], f"{name}/half_x")
    return graph.add("Mul", [half_x, one_plus], name)
