"""Batch norm folded into the convolution before it, for inference.

In evaluation mode a batch norm is an affine map per channel, so conv followed by batch norm is
one conv with weight W * g / sqrt(var + eps) and bias (b - mean) * g / sqrt(var + eps) + beta.
`fold_batchnorm` rewrites the IR (the conv takes the batch norm's place, under the batch norm's
name so its consumers are unchanged); `folded_values` computes the folded parameters from the
current ones, so training can go on between inference calls.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .ir import Network, Node


@dataclass(frozen=True)
class Fold:
    conv: str          # the original conv node
    norm: str          # the batch norm it is folded into (the new node's name)
    eps: float


def fold_batchnorm(net: Network) -> tuple[Network, list[Fold]]:
    consumers: dict[str, list[Node]] = {}
    for node in net.nodes:
        for tensor in node.inputs:
            consumers.setdefault(tensor, []).append(node)
    folds, dropped, replaced = [], set(), {}
    for node in net.nodes:
        users = consumers.get(node.name, [])
        if node.op == "conv" and len(users) == 1 and users[0].op == "batchnorm" \
                and node.name != net.output:
            norm = users[0]
            folds.append(Fold(node.name, norm.name, norm.attrs.eps))
            dropped.add(node.name)
            replaced[norm.name] = replace(
                node, name=norm.name, attrs=replace(node.attrs, bias=True),
                params={"weight": node.params["weight"], "bias": (node.shape[0],)},
                loc=norm.loc)
    nodes = tuple(replaced.get(n.name, n) for n in net.nodes if n.name not in dropped)
    return replace(net, nodes=nodes), folds


def folded_values(fold: Fold, params: dict, buffers: dict, dtype) -> tuple[np.ndarray, ...]:
    """(weight, bias) of the folded conv, computed in float64 from the current values."""
    w = params[f"{fold.conv}.weight"].astype(np.float64)
    b = params.get(f"{fold.conv}.bias")
    b = np.zeros(w.shape[0]) if b is None else b.astype(np.float64)
    scale = params[f"{fold.norm}.weight"] / np.sqrt(buffers[f"{fold.norm}.running_var"]
                                                    .astype(np.float64) + fold.eps)
    weight = w * scale[:, None, None, None]
    bias = (b - buffers[f"{fold.norm}.running_mean"]) * scale + params[f"{fold.norm}.bias"]
    return weight.astype(dtype), bias.astype(dtype)
