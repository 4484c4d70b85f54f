"""Memory planning: every buffer of a step gets an offset in one arena, by lifetime.

The schedule of a training step is: forward of each node (steps 0..F-1), the loss (step F),
then the backward schedule. Each buffer is alive from the step that writes it to the last step
that reads it; buffers whose lifetimes do not overlap may share memory. Offsets are found by
greedy interval packing (largest first, lowest offset that conflicts with nothing alive at the
same time). Per-sample buffers are packed in units of one sample, then scaled by the batch
capacity, so a plan holds for every batch size up to the capacity it is bound with.

`compiled_plan` plans a network as a backend compiles it, and `Memory` counts a step's bytes from
a plan; `Model.memory_bytes` (what `cnngraph compile` prints) and `summary` (what `cnngraph
summary` prints) both count through them, so the two report the same figures.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..ir import INPUT, MAIN, Network, Node
from ..ops.base import Shape, numel
from ..ops.lowering import Lowering, scratch_name
from .autodiff import Backward, Sum, backward_schedule, grad_name
from .fold import Fold, fold_batchnorm
from .fuse import fuse_activations, fuse_copies

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
    steps: list[Backward | Sum]       # the backward schedule (empty for inference)
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


class _Lifetimes:
    """The buffers of a step as they are found, each alive from the first step that uses it to
    the last."""

    def __init__(self) -> None:
        self.buffers: dict[str, Buffer] = {}

    def use(self, name: str, shape: Shape, step: int, per_sample: bool = True,
            dtype: str = "float") -> None:
        if name in self.buffers:
            buf = self.buffers[name]
            buf.start, buf.end = min(buf.start, step), max(buf.end, step)
        else:
            self.buffers[name] = Buffer(name, tuple(shape), per_sample, dtype, step, step)


def make_plan(net: Network, lowerings: dict[str, Lowering], training: bool,
              input_grad: bool = False, keep: frozenset[str] = frozenset()) -> Plan:
    """The plan of one step; the tensors in `keep` stay alive to its end, so they can be read
    after it (the gradient checker reads the inputs of ReLU and max pooling)."""
    loss_step = len(net.nodes)
    steps = backward_schedule(net, input_grad) if training else []
    backward_step = {step.node: loss_step + 1 + k for k, step in enumerate(steps)
                     if isinstance(step, Backward)}
    last = loss_step + len(steps) if training else loss_step - 1
    lifetimes = _Lifetimes()
    lifetimes.use(INPUT, net.input_shape, -1)
    for i, node in enumerate(net.nodes):
        _node_uses(lifetimes, net, node, lowerings[node.name], i, backward_step.get(node.name))
    if training:
        _loss_and_backward_uses(lifetimes, net, steps, loss_step)
    else:
        for output in net.outputs:
            lifetimes.use(output.node, net.shape_of(output.node), last + 1)
    buffers = lifetimes.buffers
    for name in keep:
        buffers[name].end = max(buffers[name].end, last + 1)
    plan = Plan(buffers, steps, training)
    for dtype in ("float", "int32"):
        for per_sample in (True, False):
            group = [b for b in buffers.values() if b.dtype == dtype and b.per_sample == per_sample]
            plan.extent[(dtype, per_sample)] = _pack(group)
    return plan


def _node_uses(lifetimes: _Lifetimes, net: Network, node: Node, lowering: Lowering,
               forward: int, backward: int | None) -> None:
    """What a node's forward step (`forward`) and backward step (`backward`, None without one)
    use: its inputs and output, its scratch buffers, and the tensors its backward reads."""
    use = lifetimes.use
    use(node.name, node.shape, forward)
    for tensor in node.inputs:
        use(tensor, net.shape_of(tensor), forward)
    for key, scratch in lowering.scratch.items():
        name = scratch_name(node.name, key)
        layout = (scratch.per_sample, scratch.dtype)
        if scratch.saved:   # written by the forward even when no backward will read it
            use(name, scratch.shape, forward, *layout)
            if backward is not None:
                use(name, scratch.shape, backward, *layout)
        elif scratch.backward_only:
            if backward is not None:
                use(name, scratch.shape, backward, *layout)
        else:
            use(name, scratch.shape, forward, *layout)
            if backward is not None:   # a workspace of both passes: a second, separate buffer
                use(scratch_name(node.name, key, backward=True), scratch.shape, backward,
                    *layout)
    if backward is not None:
        if "input" in lowering.reads:
            for tensor in node.inputs:
                use(tensor, net.shape_of(tensor), backward)
        if "output" in lowering.reads:
            use(node.name, node.shape, backward)


def _loss_and_backward_uses(lifetimes: _Lifetimes, net: Network, steps: list[Backward | Sum],
                            loss_step: int) -> None:
    """What the losses and the backward schedule use: every output and its gradient, then each
    step's gradients (a fan-out sum's parts and total; a node's output gradient and the
    gradients of its inputs)."""
    use = lifetimes.use
    for output in net.outputs:
        use(output.node, net.shape_of(output.node), loss_step)
        use(grad_name(output.node), net.shape_of(output.node), loss_step)
    for k, step in enumerate(steps):
        at = loss_step + 1 + k
        if isinstance(step, Sum):
            shape = net.shape_of(step.tensor)
            for part in step.parts:
                use(part, shape, at)
            use(grad_name(step.tensor), shape, at)
        else:
            node = net.node(step.node)
            use(grad_name(node.name), node.shape, at)
            for tensor, dx in zip(node.inputs, step.dx, strict=True):
                if dx is not None:
                    use(dx, net.shape_of(tensor), at)


# -- what a step holds in memory --------------------------------------------------------------

# The arrays of the parameters' size each optimizer keeps: the `slots` of its class in
# cnngraph/train/optim.py (SGD keeps a velocity even without momentum), written out here so the
# pipeline does not import the trainer; tests/test_summary.py holds the two together.
OPTIMIZER_SLOTS = {"sgd": 1, "momentum": 1, "nesterov": 1, "rmsprop": 2, "adam": 2, "adamw": 2}


def optimizer_slots(net: Network, optimizer: str | None) -> tuple[str, int]:
    """The optimizer named (or the spec's `train.optimizer`, SGD with a momentum there named
    `momentum` or `nesterov`; no `train:` section counts as `momentum`) and its state arrays."""
    name = optimizer
    if name is None:
        name = str(net.train.get("optimizer", "momentum")).lower()
        if name == "sgd" and net.train.get("momentum"):
            name = "nesterov" if net.train.get("nesterov") else "momentum"
    return name, OPTIMIZER_SLOTS[name]


class Lowers(Protocol):
    """What planning needs of a backend: its lowering of each node (runtime/backend.Target)."""

    def lower(self, node: Node, training: bool = True, small_batch: bool = False) -> Lowering:
        ...


def compiled_net(net: Network, backend: Lowers, training: bool,
                 small_batch: bool = False) -> tuple[Network, dict[str, Lowering], list[Fold]]:
    """The network as `backend` compiles it, its lowerings, and the batch-norm folds: for
    inference every conv -> batch norm pair is folded into one conv first; then activations are
    fused into their producers where the backend can, and slices and channel shuffles into the
    concats beside them (passes/fuse.py). `small_batch`: inference for batches smaller than
    the backend's chunks (`Context`), which folds only the pairs whose conv has fewer weights
    than one sample's output values: folding rewrites a conv's weights before each call
    (batch norm's statistics may have changed), and at batch 1 rewriting ResNet-18-CIFAR's
    took longer than normalising the sample's maps (3.5 of its 21 ms), where normalising
    MobileNet v2's large maps at 224 took longer than folding. `Model` compiles this;
    `summary` plans it."""
    folds: list[Fold] = []
    if not training:   # inference runs the main output's part of the network
        net, folds = fold_batchnorm(net.for_output(MAIN), _cheaper_folded if small_batch
                                    else None)
    net = fuse_copies(fuse_activations(net))
    return net, {node.name: backend.lower(node, training, small_batch) for node in net.nodes}, \
        folds


def _cheaper_folded(conv: Node, norm: Node) -> bool:
    """Whether refolding a pair reads and writes less than normalising one sample."""
    return numel(conv.params["weight"]) <= numel(norm.shape)


def compiled_plan(net: Network, backend: Lowers, training: bool, input_grad: bool = False,
                  small_batch: bool = False) -> Plan:
    """The memory plan of `net` as `backend` compiles it (what `Model.program` plans)."""
    compiled, lowerings, _ = compiled_net(net, backend, training, small_batch)
    return make_plan(compiled, lowerings, training, input_grad)


@dataclass(frozen=True)
class Memory:
    """Bytes of one step, each part as the compiled model holds it: the parameters; for
    training their gradients and the optimizer's state (`slots` arrays of the parameters' size);
    for inference the conv weights and biases with batch norm folded in (kept beside the
    originals, so training can go on); the non-trainable buffers (batch-norm statistics); and
    the planned arena of activations, gradients of activations and workspaces for the batch."""
    params: int
    grads: int
    optimizer_state: int
    folded: int
    buffers: int
    arena: int

    @property
    def total(self) -> int:
        return self.params + self.grads + self.optimizer_state + self.folded + self.buffers \
            + self.arena

    def as_dict(self) -> dict[str, int]:
        """The parts and their total (the `memory` entries of `summary --json`)."""
        return {**{k: getattr(self, k) for k in self.__dataclass_fields__}, "total": self.total}

    @classmethod
    def of(cls, net: Network, plan: Plan, batch: int, itemsize: int, slots: int = 0,
           small_batch: bool = False) -> Memory:
        """A step of `net` (as written, before folding and fusion) under `plan`; `small_batch`:
        inference's program for batches below the backend's chunks (`compiled_net`), which
        folds fewer batch norms."""
        params = sum(numel(s) for s in net.param_shapes().values()) * itemsize
        buffers = sum(numel(s) for s in net.buffer_shapes().values()) * itemsize
        arena = plan.bytes(batch, itemsize)
        if plan.training:
            return cls(params, params, params * slots, 0, buffers, arena)
        folded_net, folds = fold_batchnorm(net, _cheaper_folded if small_batch else None)
        folded = sum(numel(s) for f in folds for s in folded_net.node(f.norm).params.values())
        return cls(params, 0, 0, folded * itemsize, buffers, arena)
