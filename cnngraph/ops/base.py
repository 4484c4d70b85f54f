"""The contract every op fulfils: one `OpDef` per op name.

Shape, parameter and cost rules are pure functions of per-sample shapes (the batch dimension is
implicit everywhere in the IR). Kernels are attached by the backends, keyed by the same name.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from .lowering import Context, Lowering

Shape = tuple[int, ...]

# `window` results: how an op changes receptive field and jump along H and W.
GLOBAL = "global"  # the output sees the whole input (global pooling, flatten)


class ShapeError(ValueError):
    """The shapes an op receives break one of its rules (a user error, located by the caller)."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Cost:
    """Per-sample cost of the forward pass.

    `macs` counts the multiply-accumulates of contractions (conv and dense, no bias): the `paper`
    policy. `ops` counts every other floating-point operation (bias, normalisation, activations,
    pooling, merges) by the per-op formula documented in the op; the `full` policy adds them.
    """

    macs: int = 0
    ops: int = 0


@dataclass(frozen=True)
class Window:
    """Sliding-window geometry along (H, W), for receptive-field arithmetic. An op that enlarges
    the map has a stride below one (upsampling by s: `Fraction(1, s)`), and the jump after it
    is a fraction of an input pixel."""

    kernel: tuple[int, int]
    stride: tuple[int | Fraction, int | Fraction]
    dilation: tuple[int, int] = (1, 1)


# The largest tensor (elements per sample) and parameter a spec may describe: far above any
# real network (VGG-16's largest is 102M), low enough that every count stays a finite float
# and an index fits the kernels' 32-bit arithmetic.
MAX_ELEMENTS = 2**31 - 1


def no_params(attrs: Any, ins: list[Shape]) -> dict[str, Shape]:
    return {}


def no_warnings(attrs: Any, ins: list[Shape]) -> list[tuple[str, str]]:
    return []


def reads_all(attrs: Any, ins: list[Shape], index: int) -> tuple[int, int] | None:
    return None


def zero_init(attrs: Any, default: str) -> dict[str, str | float]:
    return {}


def pointwise_window(attrs: Any, ins: list[Shape]) -> None:
    return None


def same_shape(attrs: Any, ins: list[Shape]) -> Shape:
    return ins[0]


@dataclass(frozen=True)
class OpDef:
    """Everything the pipeline knows about one op.

    name      the YAML key, registry key and module name
    schema    JSON Schema (Draft 2020-12) of the op's arguments: an object schema
    attrs     builds the frozen attribute record from validated arguments (defaults filled)
    shape     output shape from input shapes; raises ShapeError for broken cross-field rules
    arity     number of inputs: 1, 2 (exactly two), or None for merges (two or more)
    params    trainable parameter shapes, in PyTorch/ONNX layout
    buffers   non-trainable state shapes (batch-norm running statistics)
    cost      forward Cost per sample
    lower     the op's lowering for every target (ops/lowering.py): node, Context -> Lowering
    window    a Window, GLOBAL, or None for ops that act pointwise in space
    resolve   fills input-dependent attributes (e.g. `padding: same`) before `shape` runs
    package   the op's folder: where its `reference` (PyTorch) and `cases` (tests) live
    lint      (message, hint) pairs for valid but suspicious attributes: warnings, not errors
    init      how each parameter and buffer starts, by key: a scheme of ops/inits.py (drawn), or
              a constant; `default` is the network's scheme (see `rectifier`); unnamed keys 0
    rectifier a ReLU-family activation: networks with one default to He rather than Glorot init
    decay_exempt  parameters weight decay leaves alone under `decay_bn_bias=False`
    folds_into    ops that this op's inference form (a per-channel affine map) folds into, when
              it is their only consumer: they have `bias` attributes and (out, ...) weights
    fuses_activation  its kernels apply a following activation in their output loop
    ending    (message, hint) of a warning when the op ends the network (its output is not
              the logits training and `predict` expect)
    backward_compiles_slowly  its backward kernels take seconds to compile: a cold cache's
              helper process compiles them first (runtime/warm.py)
    channels_read  (attrs, input shapes, i) -> the channels [start, stop) of input i the op
              reads, None for all: where the consumers of a tensor read disjoint ranges that
              cover it, their gradients go into one buffer without a sum (passes/autodiff.py)
    kink      where its output is not differentiable, for gradient checks (tools/gradcheck.py):
              (node, input, winners) -> (each input element's signed distance from its kink,
              winners), where `winners` (the max windows' argmax) is what the first call, given
              None, fixes for the later ones; None for smooth ops
    """

    name: str
    doc: str
    schema: dict[str, Any]
    attrs: Callable[[dict[str, Any]], Any]
    shape: Callable[[Any, list[Shape]], Shape]
    cost: Callable[[Any, list[Shape], Shape], Cost]
    lower: Callable[[Any, Context], Lowering]
    arity: int | None = 1
    params: Callable[[Any, list[Shape]], dict[str, Shape]] = no_params
    buffers: Callable[[Any, list[Shape]], dict[str, Shape]] = no_params
    window: Callable[[Any, list[Shape]], Window | str | None] = pointwise_window
    resolve: Callable[[Any, list[Shape]], Any] = field(default=lambda attrs, ins: attrs)
    package: str = ""
    lint: Callable[[Any, list[Shape]], list[tuple[str, str]]] = no_warnings
    init: Callable[[Any, str], Mapping[str, str | float]] = zero_init
    rectifier: bool = False
    decay_exempt: tuple[str, ...] = ("bias",)
    folds_into: tuple[str, ...] = ()
    fuses_activation: bool = False
    backward_compiles_slowly: bool = False
    ending: tuple[str, str] | None = None
    channels_read: Callable[[Any, list[Shape], int], tuple[int, int] | None] = reads_all
    kink: Callable[[Any, Any, Any], tuple[Any, Any]] | None = None


def object_schema(properties: dict[str, Any],
                  required: tuple[str, ...] = ()) -> dict[str, Any]:
    """An arguments schema that rejects unknown keys (no silent defaults for typos)."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


def numel(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def fmt_shape(shape: Shape) -> str:
    return str(tuple(shape))


def require_rank(op: str, shape: Shape, rank: int) -> None:
    if len(shape) == rank:
        return
    if rank == 3:
        hint = ("it needs a (C, H, W) feature map" + (
            "; this input was already flattened, move the op before `flatten`"
            if len(shape) == 1 else ""))
        raise ShapeError(f"`{op}` expected an input of shape (C, H, W), received "
                         f"{fmt_shape(shape)}", hint)
    hint = ("insert `flatten` (or `global_avgpool` then `flatten`) before it"
            if len(shape) == 3 else "")
    raise ShapeError(f"`{op}` expected an input of shape (features,), received "
                     f"{fmt_shape(shape)}", hint)


@dataclass(frozen=True)
class Case:
    """One test case of an op (`ops/<op>/cases.py` lists them): the spec's layers, indented as
    list items, on an input of `input` shape. With `head`, flatten and a small dense layer follow,
    so the loss, the dense weight's gradient and the input's gradient all depend on the op."""

    layers: str
    input: Shape = (3, 9, 9)
    head: bool = True
    batch: int = 3

    @property
    def id(self) -> str:
        return " ".join(self.layers.split()).removeprefix("- ")
