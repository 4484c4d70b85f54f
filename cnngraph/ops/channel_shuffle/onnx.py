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
