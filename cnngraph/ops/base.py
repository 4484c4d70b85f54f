"""The contract every op fulfils: one `OpDef` per op name.

Shape, parameter and cost rules are pure functions of per-sample shapes (the batch dimension is
implicit everywhere in the IR). Kernels are attached by the backends, keyed by the same name.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
    """Sliding-window geometry along (H, W), for receptive-field arithmetic."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int] = (1, 1)


# The largest tensor (elements per sample) and parameter a spec may describe: far above any
# real network (VGG-16's largest is 102M), low enough that every count stays a finite float
# and an index fits the kernels' 32-bit arithmetic.
MAX_ELEMENTS = 2**31 - 1


def no_params(attrs, ins: list[Shape]) -> dict[str, Shape]:
    return {}


def no_warnings(attrs, ins: list[Shape]) -> list[tuple[str, str]]:
    return []


def pointwise_window(attrs, ins: list[Shape]):
    return None


def same_shape(attrs, ins: list[Shape]) -> Shape:
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
    window    a Window, GLOBAL, or None for ops that act pointwise in space
    resolve   fills input-dependent attributes (e.g. `padding: same`) before `shape` runs
    package   the op's package; its `cpu` (and `cuda`) module lowers it for that backend
    lint      (message, hint) pairs for valid but suspicious attributes: warnings, not errors
    lower     the op's lowering for every target (ops/lowering.py): node, Context -> Lowering
    """

    name: str
    doc: str
    schema: dict
    attrs: Callable[[dict], Any]
    shape: Callable[[Any, list[Shape]], Shape]
    cost: Callable[[Any, list[Shape], Shape], Cost]
    arity: int | None = 1
    params: Callable[[Any, list[Shape]], dict[str, Shape]] = no_params
    buffers: Callable[[Any, list[Shape]], dict[str, Shape]] = no_params
    window: Callable[[Any, list[Shape]], Any] = pointwise_window
    resolve: Callable[[Any, list[Shape]], Any] = field(default=lambda attrs, ins: attrs)
    package: str = ""
    lint: Callable[[Any, list[Shape]], list[tuple[str, str]]] = no_warnings
    lower: Callable[[Any, Any], Any] | None = None


def object_schema(properties: dict, required: tuple[str, ...] = ()) -> dict:
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
