"""Memory planning: every buffer of a step gets an offset in one arena, by lifetime.

The schedule of a training step is: forward of each node (steps 0..F-1), the loss (step F),
then the backward schedule. Each buffer is alive from the step that writes it to the last step
that reads it; buffers whose lifetimes do not overlap may share memory. Offsets are found by
greedy interval packing (largest first, lowest offset that conflicts with nothing alive at the
same time). Per-sample buffers are packed in units of one sample, then scaled by the batch
capacity, so a plan holds for every batch size up to the capacity it is bound with.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .autodiff import Backward, Sum, backward_schedule, grad_name
from .ir import INPUT, Network
from .lowering import Lowering
from .ops.base import numel

ALIGN = 16  # elements: 64-byte alignment for float32 vectors


@dataclass
class Buffer:
    name: str
    shape: tuple[int, ...]        # per sample when `per_sample`
    per_sample: bool
    dtype: str                    # "float" or "int32"
    start: int
    end: int
    offset: int = -1

    @property
    def size(self) -> int:
        return -(-numel(self.shape) // ALIGN) * ALIGN


@dataclass
class Plan:
    buffers: dict[str, Buffer]
    steps: list                       # the backward schedule (empty for inference)
    training: bool
    extent: dict[tuple[str, bool], int] = field(default_factory=dict)  # (dtype, per_sample)

    def arena_elements(self, dtype: str, capacity: int) -> int:
        return self.extent.get((dtype, True), 0) * capacity + self.extent.get((dtype, False), 0)

    def bytes(self, capacity: int, itemsize: int) -> int:
        return self.arena_elements("float", capacity) * itemsize \
            + self.arena_elements("int32", capacity) * 4


def _pack(buffers: list[Buffer]) -> int:
    """Assign offsets; return the extent of the packing."""
    placed: list[Buffer] = []
    extent = 0
    for buf in sorted(buffers, key=lambda b: (-b.size, b.start, b.name)):
        busy = sorted((b.offset, b.offset + b.size) for b in placed
                      if b.start <= buf.end and buf.start <= b.end)
        offset = 0
        for lo, hi in busy:
            if offset + buf.size <= lo:
                break
            offset = max(offset, hi)
        buf.offset = offset
        placed.append(buf)
        extent = max(extent, offset + buf.size)
    return extent


def make_plan(net: Network, lowerings: dict[str, Lowering], training: bool,
              input_grad: bool = False) -> Plan:
    forward_step = {node.name: i for i, node in enumerate(net.nodes)}
    loss_step = len(net.nodes)
    steps = backward_schedule(net, input_grad) if training else []
    backward_step = {}
    for k, step in enumerate(steps):
        if isinstance(step, Backward):
            backward_step[step.node] = loss_step + 1 + k
    last = loss_step + len(steps) if training else loss_step - 1
    buffers: dict[str, Buffer] = {}

    def use(name: str, shape, per_sample: bool, dtype: str, step: int) -> None:
        if name in buffers:
            buf = buffers[name]
            buf.start, buf.end = min(buf.start, step), max(buf.end, step)
        else:
            buffers[name] = Buffer(name, tuple(shape), per_sample, dtype, step, step)

    use(INPUT, net.input_shape, True, "float", -1)
    for node in net.nodes:
        i = forward_step[node.name]
        use(node.name, node.shape, True, "float", i)
        for tensor in node.inputs:
            use(tensor, net.shape_of(tensor), True, "float", i)
        lowering = lowerings[node.name]
        b = backward_step.get(node.name)
        for key, scratch in lowering.scratch.items():
            name = f"{node.name}.{key}"
            if scratch.saved:   # written by the forward even when no backward will read it
                use(name, scratch.shape, scratch.per_sample, scratch.dtype, i)
                if b is not None:
                    use(name, scratch.shape, scratch.per_sample, scratch.dtype, b)
            elif scratch.backward_only:
                if b is not None:
                    use(name, scratch.shape, scratch.per_sample, scratch.dtype, b)
            else:
                use(name, scratch.shape, scratch.per_sample, scratch.dtype, i)
                if b is not None:   # a workspace of both passes: a second, separate buffer
                    use(name + "@b", scratch.shape, scratch.per_sample, scratch.dtype, b)
        if b is not None:
            if "input" in lowering.reads:
                for tensor in node.inputs:
                    use(tensor, net.shape_of(tensor), True, "float", b)
            if "output" in lowering.reads:
                use(node.name, node.shape, True, "float", b)
    output = net.output
    if training:
        use(output, net.shape_of(output), True, "float", loss_step)
        use(grad_name(output), net.shape_of(output), True, "float", loss_step)
        for k, step in enumerate(steps):
            at = loss_step + 1 + k
            if isinstance(step, Sum):
                shape = net.shape_of(step.tensor)
                for part in step.parts:
                    use(part, shape, True, "float", at)
                use(grad_name(step.tensor), shape, True, "float", at)
            else:
                node = net.node(step.node)
                use(grad_name(node.name), node.shape, True, "float", at)
                for tensor, dx in zip(node.inputs, step.dx, strict=True):
                    if dx is not None:
                        use(dx, net.shape_of(tensor), True, "float", at)
    else:
        use(output, net.shape_of(output), True, "float", last + 1)
    plan = Plan(buffers, steps, training)
    for dtype in ("float", "int32"):
        for per_sample in (True, False):
            group = [b for b in buffers.values() if b.dtype == dtype and b.per_sample == per_sample]
            plan.extent[(dtype, per_sample)] = _pack(group)
    return plan
