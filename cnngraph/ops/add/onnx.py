"""ONNX form of `add`: Add for two inputs, Sum for more."""
from __future__ import annotations


def export(node, inputs, graph):
    return graph.add("Add" if len(inputs) == 2 else "Sum", inputs, node.name)


def import_add(g):
    """Add or Sum of feature maps of one shape; with a constant, a per-channel shift."""
    constants = [g.const(i) for i in range(len(g.node.input))]
    if len(constants) == 2 and any(c is not None for c in constants):
        data = 0 if constants[1] is not None else 1
        return g.affine(data, shift=constants[1 - data])
    shapes = {g.shape(i=i) for i in range(len(g.node.input))}
    if len(shapes) != 1:
        g.fail(f"cnngraph adds inputs of one shape, not {sorted(shapes, key=str)}")
    g.layer("add", {}, [g.tensor(i) for i in range(len(g.node.input))])


def import_sub(g):
    shift = g.const(1)
    if shift is None or g.const(0) is not None:
        g.fail("cnngraph imports Sub of a constant from a feature map only")
    g.affine(0, shift=-shift)


IMPORTS = {"Add": import_add, "Sum": import_add, "Sub": import_sub}
