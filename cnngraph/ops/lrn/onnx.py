"""ONNX form of `lrn`. An odd size is ONNX's LRN (alpha divided by the size, as PyTorch's).
An even size is not: ONNX centres its window the other way (one more channel after than
before; PyTorch and cnngraph, one more before) and onnxruntime refuses it. So an even size is
written out as PyTorch computes it: x / (k + alpha · mean of x² over the window)^beta, the mean
an AveragePool over the channels of the squares."""
from __future__ import annotations


def export(node, inputs, graph):
    a = node.attrs
    alpha, beta, k = float(a.alpha), float(a.beta), float(a.k)
    if a.size % 2 == 1:
        return graph.add("LRN", inputs, node.name, size=a.size, alpha=alpha, beta=beta, bias=k)
    name, (x,) = node.name, inputs
    squares = graph.add("Mul", [x, x], f"{name}/squares")
    stacked = graph.add("Unsqueeze", [squares, graph.constant(f"{name}/axes", [1])],
                        f"{name}/stacked")
    rank = len(node.in_shapes[0])
    mean = graph.add("AveragePool", [stacked], f"{name}/mean", kernel_shape=[a.size] + [1] * (
        rank - 1), pads=[a.size // 2] + [0] * (rank - 1) + [(a.size - 1) // 2] + [0] * (rank - 1),
        count_include_pad=1)
    window = graph.add("Squeeze", [mean, graph.constant(f"{name}/axes", [1])], f"{name}/window")
    scaled = graph.add("Mul", [window, graph.scalar(f"{name}/alpha", alpha)], f"{name}/scaled")
    base = graph.add("Add", [scaled, graph.scalar(f"{name}/k", k)], f"{name}/base")
    divisor = graph.add("Pow", [base, graph.scalar(f"{name}/beta", beta)], f"{name}/divisor")
    return graph.add("Div", [x, divisor], name)


def import_lrn(g):
    size = g.attr("size")
    if size % 2 == 0:
        g.fail("ONNX centres an even LRN window one channel later than cnngraph (and PyTorch)")
    args = {"size": size, "alpha": g.number(g.attr("alpha", 1e-4)),
            "beta": g.number(g.attr("beta", 0.75)), "k": g.number(g.attr("bias", 1.0))}
    g.layer("lrn", args, [g.tensor(0)])


IMPORTS = {"LRN": import_lrn}
