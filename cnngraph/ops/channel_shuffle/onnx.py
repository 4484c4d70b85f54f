"""ONNX form of `channel_shuffle`: Reshape to (N, groups, C / groups, ...), Transpose the two
group axes, Reshape back: the pattern PyTorch's exporter writes, which importers recognise."""
from __future__ import annotations


def export(node, inputs, graph):
    channels, *rest = node.in_shapes[0]
    groups = node.attrs.groups
    split = graph.add("Reshape", inputs + [graph.constant(
        f"{node.name}/grouped_shape", [0, groups, channels // groups, *rest])],
        f"{node.name}/grouped")
    swapped = graph.add("Transpose", [split], f"{node.name}/transposed",
                        perm=[0, 2, 1, *range(3, 3 + len(rest))])
    return graph.add("Reshape", [swapped, graph.constant(f"{node.name}/shape",
                                                          [0, channels, *rest])], node.name)


def reshape_in_shuffle(g, before, after) -> bool:
    """Whether this Reshape is part of a channel shuffle, then read: (N, C, ...) to (N, g,
    C / g, ...) starts one; the Reshape back to (N, C, ...) after the Transpose ends it."""
    from ...interchange.onnx_import import Pending
    name, pending = g.node.input[0], g.pending.get(g.node.input[0])
    if pending is not None and pending.kind == "transposed" and \
            tuple(after[1:]) == tuple(g.shape(pending.source)[1:]):
        g.layer("channel_shuffle", {"groups": pending.groups}, [g.tensors[pending.source]])
        return True
    if name in g.tensors and len(after) == len(before) + 1 and before[1] is not None and \
            after[1] * after[2] == before[1] and tuple(after[3:]) == tuple(before[2:]):
        g.pending[g.node.output[0]] = Pending("grouped", name, int(after[1]))
        return True
    return False


def import_transpose(g):
    """Only the middle of a channel shuffle: the group axes swapped."""
    from ...interchange.onnx_import import Pending
    pending = g.pending.get(g.node.input[0])
    perm = list(g.attr("perm", []))
    if pending is None or pending.kind != "grouped" or perm[:3] != [0, 2, 1] or \
            perm[3:] != list(range(3, len(perm))):
        g.fail("cnngraph transposes only the group axes of a channel shuffle")
    g.pending[g.node.output[0]] = Pending("transposed", pending.source, pending.groups)


IMPORTS = {"Transpose": import_transpose}
