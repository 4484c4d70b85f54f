"""The backward pass, generated from the graph (iteratively, no recursion).

Which tensors need a gradient: a node's output does when the node has a parameter that trains
(not frozen: `Node.frozen`) or any input does; the network input only when asked. So no
backward step runs below the lowest layer that trains, and a frozen layer above it passes the
gradient on without computing its own parameters' (its kernels are told which they want).
Backward steps run in reverse topological order. A tensor with several consumers gets one
partial gradient per consumer and an explicit `Sum` step that adds them, so every kernel
overwrites its outputs and fan-out is visible in the schedule.

Except where the consumers read disjoint channel ranges that together cover the tensor
(`OpDef.channels_read`: ShuffleNet v2's split into two halves): each consumer writes its range
of the one gradient buffer, none zeros the rest (`Backward.alone` false), and nothing is summed.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import INPUT, Network
from ..ops import REGISTRY


@dataclass(frozen=True)
class Backward:
    node: str
    dx: tuple[str | None, ...]     # gradient buffer per input, None where none is needed
    alone: tuple[bool, ...] = ()   # per input: no other consumer writes into its dx (see above)


@dataclass(frozen=True)
class Sum:
    tensor: str
    parts: tuple[str, ...]         # partial gradient buffers, summed into grad_name(tensor)


def grad_name(tensor: str) -> str:
    return f"d.{tensor}"


def needs_grad(net: Network, input_grad: bool = False) -> dict[str, bool]:
    needs = {INPUT: input_grad}
    for node in net.nodes:
        needs[node.name] = node.trains or any(needs[i] for i in node.inputs)
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
    shared: set[tuple[str, int]] = set()
    for tensor, users in consumers.items():
        if len(users) == 1:
            target[users[0]] = grad_name(tensor)
        elif _partition(net, tensor, users):
            for user in users:
                target[user] = grad_name(tensor)
                shared.add(user)
        else:
            for k, user in enumerate(users):
                target[user] = f"{grad_name(tensor)}#{k}"
    steps: list[Backward | Sum] = []

    def sum_step(tensor: str) -> None:
        users = consumers.get(tensor, [])
        if len(users) > 1 and users[0] not in shared:
            steps.append(Sum(tensor, tuple(target[u] for u in users)))

    for node in reversed(net.nodes):
        if not needs[node.name]:
            continue
        sum_step(node.name)
        inputs = range(len(node.inputs))
        steps.append(Backward(node.name, tuple(target.get((node.name, i)) for i in inputs),
                              tuple((node.name, i) not in shared for i in inputs)))
    if input_grad:
        sum_step(INPUT)
    return steps


def _partition(net: Network, tensor: str, users: list[tuple[str, int]]) -> bool:
    """Whether the consumers of `tensor` read disjoint channel ranges covering all of it."""
    ranges = []
    for name, i in users:
        node = net.node(name)
        read = REGISTRY[node.op].channels_read(node.attrs, list(node.in_shapes), i)
        if read is None:
            return False
        ranges.append(read)
    ranges.sort()
    ends = [0] + [stop for _, stop in ranges]
    return all(start == end for (start, _), end in zip(ranges, ends, strict=False)) \
        and ends[-1] == net.shape_of(tensor)[0]
