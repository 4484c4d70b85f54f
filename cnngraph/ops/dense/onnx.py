"""ONNX form of `dense`: Gemm with the weight as stored, (out, in), so transB=1."""
from __future__ import annotations

import numpy as np


def export(node, inputs, graph):
    weights = [graph.param(node, "weight")] + ([graph.param(node, "bias")]
                                               if graph.has_param(node, "bias") else [])
    return graph.add("Gemm", inputs + weights, node.name, transB=1)


def _input_vector(g):
    """The layer input 0 is, flattened first where it is a map (an old export's Gemm on
    (N, C, 1, 1))."""
    source = g.tensor(0)
    if len(g.shape()) > 2:
        source = g.layer("flatten", {}, [source], output=None).name
    return source


def import_gemm(g):
    """Gemm(A, B, C) = alpha·A·op(B) + beta·C with constant B and C: a dense layer."""
    weight, bias = g.const(1), g.const(2)
    if weight is None or g.attr("transA", 0):
        g.fail("cnngraph imports Gemm with a constant B and transA = 0")
    weight = (weight if g.attr("transB", 0) else weight.T) * g.attr("alpha", 1.0)
    out = int(weight.shape[0])
    params = {"weight": weight}
    if bias is not None:
        params["bias"] = np.broadcast_to(bias * g.attr("beta", 1.0), (1, out)).reshape(out)
    g.layer("dense", {"out": out} if bias is not None else {"out": out, "bias": False},
            [_input_vector(g)], params)


def import_matmul(g):
    """MatMul by a constant (in, out) matrix: a dense layer without a bias (an Add after it
    gives it one)."""
    weight = g.const(1)
    if weight is None or weight.ndim != 2 or len(g.shape()) != 2:
        g.fail("cnngraph imports MatMul of a (batch, features) input by a constant matrix")
    g.layer("dense", {"out": int(weight.shape[1]), "bias": False}, [_input_vector(g)],
            {"weight": weight.T})


IMPORTS = {"Gemm": import_gemm, "MatMul": import_matmul}
