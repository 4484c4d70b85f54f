"""The contract between an op and the code generators: how one op becomes kernel calls, as data.

Every op has one `lower(node, ctx) -> Lowering` (in `ops/<op>/lower.py`), where `ctx` (a
`Context`) says which target the code is for, how many chunks its kernels cut the work into and
whether the step trains. A lowering is data: the `Call`s of the forward pass, those of the
backward pass, the extra buffers it needs (`Scratch`) and the tensors its backward reads. A
call names its kernel (a `Kernel`, written once for every target: `{target}` stands for "cpu"
or "cuda") and passes named arguments: tensors (`Ref`, or a tuple of them), the step's own
variables (`TRAINING`, `SEED`), a `Wants` or `Alone` flag (or a tuple of `Wants`), or plain
numbers, booleans and strings.
`runtime/codegen.py` renders the calls into the generated step functions; `passes/plan.py`
gives every scratch buffer its place in memory. A lowering that differs between targets tests
`ctx.target`; most are written once for both.

This module imports nothing that compiles: `cnngraph summary` plans memory through lowerings
without loading a kernel.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

TARGETS = ("cpu", "cuda")


@dataclass(frozen=True)
class Context:
    """What a lowering is for: the target ("cpu" or "cuda"); `chunks`, the parts a kernel
    splits its work into, each with a workspace of its own (on the CPU, the chunks that
    Numba's threads share out, kernels/cpu/chunks.py; on CUDA the partial sums of a weight
    gradient, kernels/cuda/launch.SPLITS); and whether the step trains (a backward pass
    follows) or only infers. `shards`: with the exact reduction (train/parallel.py), how many
    shards of a step's samples this process takes, each computed apart (0: none).
    `small_batch`: inference for batches smaller than the chunks (batch-1 prediction), where
    an algorithm that reads the weights several times over per sample loses to one that reads
    them once (conv/choose.py)."""

    chunks: int
    training: bool
    target: str = "cpu"
    shards: int = 0
    small_batch: bool = False


@dataclass(frozen=True)
class Scratch:
    """An extra buffer of one op: a workspace, or state kept from forward to backward.

    A workspace of both passes (neither `saved` nor `backward_only`) gets a second, separate
    buffer for the backward pass, named by `Ref(..., backward=True)`: the forward's may share
    memory with other layers' buffers in between."""

    shape: tuple[int, ...]        # per sample when `per_sample`, else the whole shape
    per_sample: bool = False
    dtype: str = "float"          # "float" (the model's dtype) or "int32"
    saved: bool = False           # lives from this op's forward to its backward
    backward_only: bool = False   # a workspace of the backward kernel alone


def chunk_rows(chunks: int, width: int, backward_only: bool = False) -> Scratch:
    """A workspace row of `width` values per chunk, 16 values apart: threads writing rows that
    share a cache line ran ~2x slower (measured on avgpool's rows)."""
    return Scratch((chunks, width + 16), backward_only=backward_only)


BATCH = "batch"   # in a view's shape: the batch dimension of the tensor viewed


@dataclass(frozen=True)
class Ref:
    """A tensor a kernel receives.

    kind      "x" (input `key`), "y" (the output), "dy" (its gradient), "dx" (the gradient of
              input `key`), "param", "grad" (a parameter's gradient), "buffer" (non-trainable
              state) or "scratch" (the op's `Scratch` named `key`)
    backward  for scratch: the backward pass's own copy of a workspace of both passes
    shape     a view: the tensor reshaped, BATCH standing for its batch dimension; () is as is
    """

    kind: str
    key: str | int = 0
    backward: bool = False
    shape: tuple[int | str, ...] = ()

    def view(self, *shape: int | str) -> Ref:
        """This tensor reshaped, e.g. `X(0).view(BATCH, channels, -1)`."""
        return Ref(self.kind, self.key, self.backward, tuple(shape))

    def flat(self) -> Ref:
        return self.view(-1)


def X(i: int = 0) -> Ref:
    return Ref("x", i)


Y = Ref("y")
DY = Ref("dy")


def DX(i: int = 0) -> Ref:
    """The gradient of input i. Where it is not wanted, input i itself is passed in its place
    (a kernel given `Wants(i)` false reads neither)."""
    return Ref("dx", i)


def param(key: str) -> Ref:
    return Ref("param", key)


def grad(key: str) -> Ref:
    return Ref("grad", key)


def buffer(key: str) -> Ref:
    return Ref("buffer", key)


def scratch(key: str, backward: bool = False) -> Ref:
    return Ref("scratch", key, backward)


@dataclass(frozen=True)
class Var:
    """A variable of the generated step function itself."""

    name: str


TRAINING = Var("training")    # whether the step trains (batch statistics, dropout)
SEED = Var("seed")            # the step's random seed (dropout masks)
FIRST = Var("first")          # the index in the step's whole batch of the first sample here
                              # (a data-parallel worker's share: dropout masks)
SHARDS = Var("shards")        # the step's shards, [(lo, hi), ...] of its samples, with the
                              # exact reduction (None without): for a kernel that takes them,
                              # every other kernel runs shard by shard


@dataclass(frozen=True)
class Wants:
    """Whether the gradient of input `index` is wanted in this backward pass (a boolean)."""

    index: int = 0


@dataclass(frozen=True)
class Alone:
    """Whether this op alone writes the gradient of input `index` (a boolean), so it must zero
    the channels it does not read. False where the input's consumers read disjoint channel
    ranges that together cover it (`passes/autodiff.py`): each writes its own range of the one
    gradient buffer, and no sum follows."""

    index: int = 0


Arg = Ref | Var | Wants | Alone | bool | int | float | str | None | tuple[Ref, ...] \
    | tuple[Wants, ...]


@dataclass(frozen=True)
class Kernel:
    """A kernel function by module and name, `{target}` in either standing for the target."""

    module: str
    name: str

    def on(self, target: str) -> tuple[str, str]:
        return self.module.format(target=target), self.name.format(target=target)


@dataclass(frozen=True)
class Call:
    """One call of a kernel with named arguments (the kernel's own parameter names, in order).
    With `only_if_wanted` set to i, the call is made only where input i's gradient is wanted."""

    kernel: Kernel
    args: Mapping[str, Arg]
    only_if_wanted: int | None = None


@dataclass(frozen=True)
class Lowering:
    forward: tuple[Call, ...]
    backward: tuple[Call, ...] | None = None   # None: no gradient flows through the op
    scratch: dict[str, Scratch] = field(default_factory=dict)
    # tensors the backward kernels read: "input" (all inputs), "output"
    reads: tuple[str, ...] = ()
    # gathers among a data-parallel step's workers that a training step's kernels make
    # (kernels/cpu/workers.py: batch norm's synchronised statistics)
    collectives: int = 0

    def kernels(self) -> set[Kernel]:
        return {call.kernel for call in (*self.forward, *(self.backward or ()))}


def scratch_name(node: str, key: str, backward: bool = False) -> str:
    """The planned buffer of a node's scratch (the backward copy of a workspace of both passes
    is a buffer of its own)."""
    return f"{node}.{key}" + (".backward" if backward else "")


def ident(name: str) -> str:
    """A buffer name as a Python identifier: `layer1.conv1` -> `layer1__conv1`,
    `d.x#1` (a partial gradient) -> `d__x_part1`."""
    return name.replace(".", "__").replace("#", "_part")
