"""Print a network as a fully expanded spec: no blocks, repeats, branches or includes.

Every layer carries its full dotted name as `id`, `from` wherever its input is not the layer
just above, and `output` where it ends a head, so `check` accepts the result and `summary`
counts it identically.
"""
from __future__ import annotations

import json

import yaml

from ..ir import Network


def flow(value: object) -> str:
    if not isinstance(value, (dict, list)):
        return json.dumps(value)  # a JSON scalar is a YAML scalar, without a document marker
    text: str = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000)
    return text.strip()


def expanded_yaml(net: Network) -> str:
    lines = ["version: 1", f"name: {flow(net.name)}", f"input: {flow(list(net.input_shape))}"]
    train = dict(net.train)
    if "losses" in train:   # a head switched off (`when: false`) has gone with its `when`
        names = {o.name for o in net.outputs}
        train["losses"] = {k: v for k, v in train["losses"].items() if k in names}
    if train:
        lines.append("train: " + flow(train))
    lines.append("layers:")
    previous = "input"
    heads = {o.node: o.name for o in net.outputs[1:]}
    for node in net.nodes:
        lines.append(f"  - {node.op}: {flow(node.args)}")
        lines.append(f"    id: {node.name}")
        if node.name in heads:
            lines.append(f"    output: {heads[node.name]}")
        if list(node.inputs) != [previous]:
            source = node.inputs[0] if len(node.inputs) == 1 else list(node.inputs)
            lines.append(f"    from: {flow(source)}")
        previous = node.name
    return "\n".join(lines) + "\n"
