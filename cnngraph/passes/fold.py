"""Batch norm folded into the convolution before it, for inference.

In evaluation mode a batch norm is an affine map per channel, so conv followed by batch norm is
one conv with weight W * g / sqrt(var + eps) and bias (b - mean) * g / sqrt(var + eps) + beta.
`fold_batchnorm` rewrites the IR wherever an op's `OpDef.folds_into` names its producer (batch
norm's names conv): the producer takes the folding op's place, under its name so its consumers
are unchanged; each backend's `fold` computes the folded parameters from the current ones
before every inference call, so training can go on between them.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from ..ir import Network, Node
from ..ops import REGISTRY


@dataclass(frozen=True)
class Fold:
    conv: str          # the original producer (a conv)
    norm: str          # the op folded into it (a batch norm; the new node's name)
    eps: float


def fold_batchnorm(net: Network, where: Callable[[Node, Node], bool] | None = None
                   ) -> tuple[Network, list[Fold]]:
    """`net` with every pair folded (or those for which `where(conv, norm)` holds), and the
    folds."""
    consumers: dict[str, list[Node]] = {}
    for node in net.nodes:
        for tensor in node.inputs:
            consumers.setdefault(tensor, []).append(node)
    folds, dropped, replaced = [], set(), {}
    outputs = {o.node for o in net.outputs}
    for node in net.nodes:
        users = consumers.get(node.name, [])
        if len(users) == 1 and node.op in REGISTRY[users[0].op].folds_into \
                and node.name not in outputs and (where is None or where(node, users[0])):
            norm = users[0]
            folds.append(Fold(node.name, norm.name, norm.attrs.eps))
            dropped.add(node.name)
            replaced[norm.name] = replace(
                node, name=norm.name, attrs=replace(node.attrs, bias=True),
                params={"weight": node.params["weight"], "bias": (node.shape[0],)},
                loc=norm.loc)
    nodes = tuple(replaced.get(n.name, n) for n in net.nodes if n.name not in dropped)
    return replace(net, nodes=nodes), folds
