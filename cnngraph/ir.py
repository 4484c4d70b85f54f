"""The intermediate representation: a typed graph of ops with static per-sample shapes.

`Network` is what `cnngraph.load` returns and what every later stage consumes: the summary,
the CPU and CUDA backends and the generated backward pass. Nodes are in topological order; the
batch dimension is implicit in every shape.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import cached_property
from typing import Any

from .errors import Location, Problem
from .ops.base import Cost, Shape

INPUT = "input"

# A length along (H, W) in input pixels: a Fraction of one after an upsample.
Pixels = tuple[int | Fraction, int | Fraction]


@dataclass(frozen=True)
class Node:
    name: str                      # stable dotted name: `layer1.basic2.conv1`
    op: str                        # registry key
    attrs: Any                     # the op's frozen attributes, input-dependent ones resolved
    args: dict[str, Any]           # the arguments as written (after block expansion)
    inputs: tuple[str, ...]        # producer node names, or `input`
    in_shapes: tuple[Shape, ...]
    shape: Shape                   # output shape
    params: dict[str, Shape]       # trainable, PyTorch layout; full name is `<node>.<param>`
    buffers: dict[str, Shape]      # non-trainable state
    cost: Cost
    receptive_field: Pixels | None  # None: vectors only
    jump: Pixels | None             # cumulative stride
    global_context: bool = False   # a global gate (squeeze-excite) scaled it: see infer.py
    loc: Location | None = None
    # A pointwise op (name, argument) applied to the output in the same kernel: set by a
    # backend's fusion pass (`cnngraph.passes.fuse`), never by a spec.
    activation: tuple[str, float] | None = None
    # The keys of its parameters and buffers that training leaves unchanged, set by the
    # trainer's `freeze` and `bn` settings (cnngraph/train/freeze.py), never by a spec: a
    # frozen parameter's gradient is never computed; frozen batch-norm statistics
    # (`running_mean`, `running_var`) normalise in training too and are not updated.
    frozen: frozenset[str] = frozenset()

    @property
    def trains(self) -> bool:
        """Whether any of its parameters trains."""
        return any(key not in self.frozen for key in self.params)


MAIN = "main"     # the name of the output the last top-level layer makes


@dataclass(frozen=True)
class Distill:
    """Soft targets an output learns besides its own loss: a teacher's logits for each batch,
    matched at `temperature` (Hinton et al.'s loss, times `weight`). Set by the trainer's
    `teacher` and `lwf` settings (cnngraph/train/distill.py), never by a spec."""

    temperature: float
    weight: float


@dataclass(frozen=True)
class Output:
    """A named output of the network and the loss that trains it (`train.loss`/`losses`)."""

    name: str
    node: str
    loss: str = "cross_entropy"    # cross_entropy | mse | l1 | bce_with_logits
    weight: float = 1.0            # 0: its own loss is left out (it learns soft targets alone)
    loc: Location | None = None
    distill: Distill | None = None


@dataclass(frozen=True)
class Network:
    name: str
    file: str
    input_shape: Shape
    nodes: tuple[Node, ...]
    output: str                    # the node of the main output
    groups: dict[str, str] = field(default_factory=dict)   # group name -> block name or 'branch'
    train: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)   # the spec's `params:`, as set
    # Valid but probably unintended (a final softmax, Keras's batch-norm momentum...): each a
    # located Problem of severity "warning", printed by `check` and `summary`.
    warnings: tuple[Problem, ...] = ()
    # Every output, the main one first; heads (GoogLeNet's auxiliary classifiers) follow. Empty
    # means the main output alone, trained with softmax cross-entropy.
    heads: tuple[Output, ...] = ()

    def node(self, name: str) -> Node:
        return self._by_name[name]

    @cached_property
    def _by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    def shape_of(self, tensor: str) -> Shape:
        return self.input_shape if tensor == INPUT else self.node(tensor).shape

    @property
    def output_shape(self) -> Shape:
        return self.node(self.output).shape

    @property
    def outputs(self) -> tuple[Output, ...]:
        return self.heads or (Output(MAIN, self.output),)

    def output_named(self, name: str) -> Output:
        found = [o for o in self.outputs if o.name == name]
        if not found:
            raise KeyError(name)
        return found[0]

    def with_outputs(self, nodes: dict[str, str]) -> Network:
        """This network with output nodes renamed (`nodes`: old -> new, by a pass that merges
        nodes), the main one included."""
        return replace(self, output=nodes.get(self.output, self.output), heads=tuple(
            replace(o, node=nodes.get(o.node, o.node)) for o in self.heads))

    def with_distillation(self, name: str, distill: Distill, weight: float) -> Network:
        """This network with the output `name` learning soft targets too (`distill`), its own
        loss weighted by `weight` instead."""
        return replace(self, heads=tuple(
            replace(o, distill=distill, weight=weight) if o.name == name else o
            for o in self.outputs))

    @property
    def distilled(self) -> tuple[Output, ...]:
        """The outputs that learn soft targets, in order: each batch gives each one a
        teacher's logits."""
        return tuple(o for o in self.outputs if o.distill is not None)

    def for_output(self, name: str = MAIN) -> Network:
        """The part of the network one output needs (what inference of it runs), with that
        output alone."""
        wanted = self.output_named(name)
        needed = {wanted.node}
        for node in reversed(self.nodes):
            if node.name in needed:
                needed.update(node.inputs)
        return replace(self, nodes=tuple(n for n in self.nodes if n.name in needed),
                       output=wanted.node, heads=(wanted,))

    def up_to(self, layer: str) -> Network:
        """The part of the network a layer's output needs, with that layer as its only output
        (what `cnngraph features` runs). KeyError for a name that is not a layer."""
        needed = {self.node(layer).name}
        for node in reversed(self.nodes):
            if node.name in needed:
                needed.update(node.inputs)
        return replace(self, nodes=tuple(n for n in self.nodes if n.name in needed),
                       output=layer, heads=())

    def with_frozen(self, tensors) -> Network:
        """This network with the parameters and buffers named in `tensors` (full names:
        `layer1.conv1.weight`) frozen, and every other one not."""
        tensors = set(tensors)
        return replace(self, nodes=tuple(replace(n, frozen=frozenset(
            k for k in (*n.params, *n.buffers) if f"{n.name}.{k}" in tensors))
            for n in self.nodes))

    def frozen(self) -> list[str]:
        """The full names of its frozen parameters and buffers."""
        return [f"{n.name}.{k}" for n in self.nodes for k in (*n.params, *n.buffers)
                if k in n.frozen]

    def param_shapes(self) -> dict[str, Shape]:
        return {f"{n.name}.{k}": s for n in self.nodes for k, s in n.params.items()}

    def buffer_shapes(self) -> dict[str, Shape]:
        return {f"{n.name}.{k}": s for n in self.nodes for k, s in n.buffers.items()}
