"""Activations fused into the op that produces their input, where its kernels can apply them.

An op whose kernels can (`OpDef.fuses_activation`: conv, dense, batch norm) and whose output
feeds exactly one pointwise op, whose backward reads only that op's output (relu, relu6,
sigmoid, tanh, identity), applies that op in its own output loop: the pair becomes one node
that keeps the producer's name and parameters and carries the activation; the producer's raw
output is never stored, and the backward pass applies the activation's derivative (from the
saved output) before the producer's own. Consumers of the activation read the fused node
instead. `leaky_relu` and the others stay separate: their derivatives need the raw output,
which fusion would not keep.
"""
from __future__ import annotations

from dataclasses import replace

from ..ir import Network, Node
from ..ops import REGISTRY
from ..ops.pointwise import ROWS

FUSABLE = {row.name: row for row in ROWS if set(row.reads) <= {"output"}}


def fuse_activations(net: Network) -> Network:
    """The network with each fusing producer -> activation pair fused."""
    consumers: dict[str, list[Node]] = {}
    for node in net.nodes:
        for tensor in node.inputs:
            consumers.setdefault(tensor, []).append(node)
    fused, renamed = {}, {}
    outputs = {o.node for o in net.outputs}
    for node in net.nodes:
        users = consumers.get(node.name, [])
        if REGISTRY[node.op].fuses_activation and node.activation is None \
                and node.name not in outputs and len(users) == 1 and users[0].op in FUSABLE:
            act = users[0]
            row = FUSABLE[act.op]
            argument = getattr(act.attrs, row.argument) if row.argument else 0.0
            fused[node.name] = replace(node, activation=(act.op, float(argument)))
            renamed[act.name] = node.name
    nodes = tuple(replace(fused.get(n.name, n),
                          inputs=tuple(renamed.get(i, i) for i in n.inputs))
                  for n in net.nodes if n.name not in renamed)
    return replace(net, nodes=nodes).with_outputs(renamed)
