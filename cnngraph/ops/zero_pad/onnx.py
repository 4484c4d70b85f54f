"""ONNX form of `zero_pad`: Pad with zeros, pads as [begin of each axis, end of each axis]."""
from __future__ import annotations


def export(node, inputs, graph):
    top, bottom, left, right = node.attrs.padding
    pads = graph.constant(f"{node.name}/pads", [0, 0, top, left, 0, 0, bottom, right])
    return graph.add("Pad", inputs + [pads], node.name, mode="constant")


def import_pad(g):
    """Pad with zeros along H and W (pads an input from opset 11, an attribute before)."""
    pads = g.const(1) if g.has_input(1) else g.attr("pads")
    value = g.const(2) if g.has_input(2) else g.attr("value", 0.0)
    if g.has_input(3) or pads is None or len(pads) != 8 or g.attr("mode", "constant") != \
            "constant" or value is None or float(value) != 0:
        g.fail("cnngraph imports zero padding of the four axes of a (N, C, H, W) map")
    pads = [int(p) for p in pads]
    if pads[0] or pads[1] or pads[4] or pads[5] or min(pads) < 0:
        g.fail("cnngraph pads H and W only, by a size >= 0")
    top, left, bottom, right = pads[2], pads[3], pads[6], pads[7]
    g.layer("zero_pad", {"padding": [top, bottom, left, right]}, [g.tensor(0)])


IMPORTS = {"Pad": import_pad}
