"""ONNX form of `slice`: Slice of the channels (axis 1)."""
from __future__ import annotations


def export(node, inputs, graph):
    start, stop = node.attrs.bounds(node.in_shapes[0][0])
    return graph.add("Slice", inputs + [graph.constant(f"{node.name}/starts", [start]),
                                        graph.constant(f"{node.name}/ends", [stop]),
                                        graph.constant(f"{node.name}/axes", [1])], node.name)


def _channels(g, axis):
    rank = len(g.shape())
    if axis % rank != 1:
        g.fail("cnngraph slices along the channels (axis 1) only")
    return g.shape()[1]


def import_slice(g):
    """Slice of a channel range, step 1 (starts, ends, axes as inputs from opset 10, as
    attributes before)."""
    if g.has_input(1):
        starts, ends = g.const(1), g.const(2)
        axes = g.const(3) if g.has_input(3) else [0]
        steps = g.const(4) if g.has_input(4) else [1]
    else:
        starts, ends = g.attr("starts"), g.attr("ends")
        axes, steps = g.attr("axes", list(range(len(starts)))), [1]
    if any(v is None for v in (starts, ends, axes, steps)) or len(starts) != 1 or \
            int(steps[0]) != 1:
        g.fail("cnngraph imports a Slice of one axis with constant bounds and step 1")
    channels = _channels(g, int(axes[0]))
    start, stop = (max(min(int(v) + (channels if int(v) < 0 else 0), channels), 0)
                   for v in (starts[0], ends[0]))
    g.layer("slice", {"start": start, "stop": stop} if stop != channels else {"start": start},
            [g.tensor(0)])


def import_split(g):
    """Split along the channels: one slice layer per output."""
    channels = _channels(g, g.attr("axis", 0))
    sizes = g.const(1) if g.has_input(1) else g.attr("split")
    if sizes is None:
        parts = len(g.node.output)
        sizes = [channels // parts] * parts
    start = 0
    for output, size in enumerate(int(s) for s in sizes):
        args = {"start": start, "stop": start + size} if start + size != channels else \
            {"start": start}
        g.layer("slice", args, [g.tensor(0)], output=output)
        start += size


IMPORTS = {"Slice": import_slice, "Split": import_split}
