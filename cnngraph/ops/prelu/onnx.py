"""ONNX form of `prelu`: PRelu. ONNX broadcasts the slope from the last axis, so a per-channel
slope of a (C, H, W) map is unsqueezed to (C, 1, 1) first (the initializer keeps its shape)."""
from __future__ import annotations


def export(node, inputs, graph):
    slope = graph.param(node, "weight")
    rank = len(node.in_shapes[0])
    if node.params["weight"][0] > 1 and rank > 1:
        slope = graph.add("Unsqueeze", [slope, graph.constant(
            f"{node.name}/slope_axes", list(range(1, rank)))], f"{node.name}/slope")
    return graph.add("PRelu", inputs + [slope], node.name)


def import_prelu(g):
    """PRelu with a constant slope, one per channel or one for all."""
    slope = g.const(1)
    channels = g.shape()[1]
    if slope is None or slope.size not in (1, channels):
        g.fail("cnngraph imports PRelu with a constant slope per channel or shared")
    g.layer("prelu", {"shared": True} if slope.size == 1 and channels != 1 else {},
            [g.tensor(0)], {"weight": slope.reshape(-1)})


IMPORTS = {"PRelu": import_prelu}
