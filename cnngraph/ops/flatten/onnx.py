"""ONNX form of `flatten`: Flatten from axis 1 (the batch axis kept)."""
from __future__ import annotations


def export(node, inputs, graph):
    return graph.add("Flatten", inputs, node.name, axis=1)


def import_flatten(g):
    rank = len(g.shape())
    if g.attr("axis", 1) % max(rank, 1) != 1 and rank > 1:
        g.fail("cnngraph flattens everything after the batch axis (axis 1)")
    if rank == 2:
        return g.alias(g.tensor(0))
    g.layer("flatten", {}, [g.tensor(0)])


def import_reshape(g):
    """A Reshape to (batch, everything else) is a flatten; to the shape it had, nothing; the
    Reshapes of a channel shuffle are read by channel_shuffle's rules."""
    from ..channel_shuffle.onnx import reshape_in_shuffle
    before, after = g.shape(), g.out_shape()
    if reshape_in_shuffle(g, before, after):
        return
    if len(after) == 2 and len(before) > 2 and after[1] == _product(before[1:]):
        return g.layer("flatten", {}, [g.tensor(0)])
    if tuple(after[1:]) == tuple(before[1:]):
        return g.alias(g.tensor(0))
    g.fail(f"cnngraph reshapes only to flatten (this is {before} to {after})")


def _product(dims):
    total = 1
    for d in dims:
        total *= d
    return total


IMPORTS = {"Flatten": import_flatten, "Reshape": import_reshape}
