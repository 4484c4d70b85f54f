"""Fusion passes of a backend: activations into their producers, copies into concat.

Activations fused into the op that produces their input, where its kernels can apply them.

An op whose kernels can (`OpDef.fuses_activation`: conv, dense, batch norm, add) and whose
output feeds exactly one pointwise op, whose backward reads only that op's output (relu, relu6,
sigmoid, tanh, identity), applies that op in its own output loop: the pair becomes one node
that keeps the producer's name and parameters and carries the activation; the producer's raw
output is never stored, and the backward pass applies the activation's derivative (from the
saved output) before the producer's own. Consumers of the activation read the fused node
instead. `leaky_relu` and the others stay separate: their derivatives need the raw output,
which fusion would not keep.

Copies folded into concat (`fuse_copies`): a slice whose only consumer is a concat becomes a
channel range that the concat reads from the slice's input, and a channel shuffle that is a
concat's only consumer becomes the order in which the concat writes (`ConcatAttrs`). ShuffleNet
v2's unit (split, branch, join, shuffle) then copies each value once where it took four copies,
and the split's two halves partition its input, so their gradients need no sum
(`passes/autodiff.py`).
"""
from __future__ import annotations

from dataclasses import replace

from ..ir import Network, Node
from ..ops import REGISTRY
from ..ops.pointwise import ROWS

FUSABLE = {row.name: row for row in ROWS if set(row.reads) <= {"output"}}


def _consumers(net: Network) -> dict[str, list[Node]]:
    """Each tensor's consuming nodes, a node once per input it takes the tensor as."""
    consumers: dict[str, list[Node]] = {}
    for node in net.nodes:
        for tensor in node.inputs:
            consumers.setdefault(tensor, []).append(node)
    return consumers


def fuse_activations(net: Network) -> Network:
    """The network with each fusing producer -> activation pair fused."""
    consumers = _consumers(net)
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


def fuse_copies(net: Network) -> Network:
    """The network with each concat -> channel shuffle pair fused, then each slice -> concat."""
    consumers = _consumers(net)
    outputs = {o.node for o in net.outputs}
    nodes = {n.name: n for n in net.nodes}
    renamed: dict[str, str] = {}
    for node in net.nodes:
        users = consumers.get(node.name, [])
        if node.op == "concat" and node.name not in outputs and len(users) == 1 \
                and users[0].op == "channel_shuffle":
            nodes[node.name] = replace(node, attrs=replace(
                node.attrs, shuffle=users[0].attrs.groups))
            renamed[users[0].name] = node.name
            del nodes[users[0].name]
    for node in net.nodes:
        users = consumers.get(node.name, [])
        if node.op == "slice" and node.name not in outputs and len(users) == 1 \
                and users[0].op == "concat":
            concat = nodes[users[0].name]
            i = concat.inputs.index(node.name)
            reads = list(concat.attrs.reads or (None,) * len(concat.inputs))
            reads[i] = node.attrs.bounds(node.in_shapes[0][0])
            folded = replace(concat, inputs=(*concat.inputs[:i], node.inputs[0],
                                             *concat.inputs[i + 1:]),
                             in_shapes=(*concat.in_shapes[:i], node.in_shapes[0],
                                        *concat.in_shapes[i + 1:]),
                             attrs=replace(concat.attrs, reads=tuple(reads)))
            # an input read in part is copied in one run, so its gradient clears the rest
            # in one call (concat/lower.py)
            if sum(run[0] == i for run in folded.attrs.runs(folded.in_shapes)) == 1:
                nodes[concat.name] = folded
                del nodes[node.name]
    kept = tuple(replace(nodes[n.name], inputs=tuple(renamed.get(i, i)
                                                     for i in nodes[n.name].inputs))
                 for n in net.nodes if n.name in nodes)
    return replace(net, nodes=kept).with_outputs(renamed)
