"""The backward pass, generated from the graph (iteratively, no recursion).

Which tensors need a gradient: a node's output does when the node has parameters or any input
does; the network input only when asked. Backward steps run in reverse topological order. A
tensor with several consumers gets one partial gradient per consumer and an explicit `Sum` step
that adds them, so every kernel overwrites its outputs and fan-out is visible in the schedule.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import INPUT, Network


@dataclass(frozen=True)
class Backward:
    node: str
    dx: tuple[str | None, ...]     # gradient buffer per input, None where none is needed


@dataclass(frozen=True)
class Sum:
    tensor: str
    parts: tuple[str, ...]         # partial gradient buffers, summed into grad_name(tensor)


def grad_name(tensor: str) -> str:
    return f"d.{tensor}"


def needs_grad(net: Network, input_grad: bool = False) -> dict[str, bool]:
    needs = {INPUT: input_grad}
    for node in net.nodes:
        needs[node.name] = bool(node.params) or any(needs[i] for i in node.inputs)
    return needs


def backward_schedule(net: Network, input_grad: bool = False) -> list[Backward | Sum]:
    needs = needs_grad(net, input_grad)
    consumers: dict[str, list[tuple[str, int]]] = {}
    for node in net.nodes:
        for i, tensor in enumerate(node.inputs):
            if needs[tensor]:
                consumers.setdefault(tensor, []).append((node.name, i))
    # Where each consumer writes the gradient of each of its inputs.
    target: dict[tuple[str, int], str] = {}
    for tensor, users in consumers.items():
        if len(users) == 1:
            target[users[0]] = grad_name(tensor)
        else:
            for k, user in enumerate(users):
                target[user] = f"{grad_name(tensor)}#{k}"
    steps: list[Backward | Sum] = []

    def sum_step(tensor: str) -> None:
        users = consumers.get(tensor, [])
        if len(users) > 1:
            steps.append(Sum(tensor, tuple(target[u] for u in users)))

    for node in reversed(net.nodes):
        if not needs[node.name]:
            continue
        sum_step(node.name)
        dx = tuple(target.get((node.name, i)) for i in range(len(node.inputs)))
        steps.append(Backward(node.name, dx))
    if input_grad:
        sum_step(INPUT)
    return steps
