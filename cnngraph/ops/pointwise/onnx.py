"""ONNX forms of the activations. Each is one ONNX op where the opset has it (Gelu from 20,
HardSwish from 14); else the composition of ops its definition is (silu as x·Sigmoid(x), as
PyTorch exports it)."""
from __future__ import annotations

import math

import numpy as np

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


def _simple(op, **attributes):
    """A rule making layer `op`, with args from the node's attributes (name -> (arg, default))."""
    def rule(g):
        args = {arg: g.number(g.attr(name, default))
                for name, (arg, default) in attributes.items()
                if g.number(g.attr(name, default)) != default}
        g.layer(op, args, [g.tensor(0)])
    return rule


def import_clip(g):
    """Clip to [0, 6] is relu6 and to [0, inf) relu (bounds as inputs from opset 11, as
    attributes before)."""
    low = g.const(1) if g.has_input(1) else g.attr("min", -math.inf)
    high = g.const(2) if g.has_input(2) else g.attr("max", math.inf)
    if low is None or high is None or np.size(low) != 1 or np.size(high) != 1:
        g.fail("cnngraph imports Clip with constant scalar bounds")
    low, high = float(np.ravel(low)[0]), float(np.ravel(high)[0])
    if low == 0 and high in (6, math.inf):
        return g.layer("relu6" if high == 6 else "relu", {}, [g.tensor(0)])
    g.fail(f"cnngraph has relu6 (Clip to [0, 6]) and relu, not Clip to [{low:g}, {high:g}]")


def import_hardsigmoid(g):
    """HardSigmoid(alpha, beta) is cnngraph's (PyTorch's) for alpha 1/6 and beta 1/2 only."""
    if abs(g.attr("alpha", 0.2) - 1 / 6) > 1e-6 or abs(g.attr("beta", 0.5) - 0.5) > 1e-6:
        g.fail("cnngraph's hardsigmoid is max(0, min(1, x/6 + 1/2)): alpha 1/6, beta 0.5")
    g.layer("hardsigmoid", {}, [g.tensor(0)])


def import_gelu(g):
    approximate = g.attr("approximate", "none")
    g.layer("gelu", {} if approximate == "none" else {"approximate": approximate},
            [g.tensor(0)])


IMPORTS = {"Relu": _simple("relu"), "Sigmoid": _simple("sigmoid"), "Tanh": _simple("tanh"),
           "LeakyRelu": _simple("leaky_relu", alpha=("slope", 0.01)),
           "Elu": _simple("elu", alpha=("alpha", 1.0)), "HardSwish": _simple("hardswish"),
           "HardSigmoid": import_hardsigmoid, "Gelu": import_gelu, "Clip": import_clip,
           "Identity": lambda g: g.alias(g.tensor(0))}
