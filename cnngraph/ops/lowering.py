"""The contract between the pipeline and a backend's kernels: how one op becomes code.

A backend gives each op a `lower(node, ctx) -> Lowering`, where `ctx` (a `Context`) says what the
code is for. The lowering names the kernels it calls, the extra buffers it needs (`Scratch`), and
emits the lines of the generated step functions that call those kernels, given an `IO` that
names every tensor involved. The backward pass, the memory plan and the code generator are
shared by all backends; only lowerings differ.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Context:
    """What a lowering is for: the backend's thread count (CPU workspaces are per thread), and
    whether the step trains (a backward pass follows the forward) or only infers."""

    threads: int
    training: bool


@dataclass(frozen=True)
class Scratch:
    """An extra buffer of one op: a workspace, or state kept from forward to backward."""

    shape: tuple[int, ...]        # per sample when `per_sample`, else the whole shape
    per_sample: bool = False
    dtype: str = "float"          # "float" (the model's dtype) or "int32"
    saved: bool = False           # lives from this op's forward to its backward
    backward_only: bool = False   # a workspace of the backward kernel alone


def thread_rows(threads: int, width: int, **options) -> Scratch:
    """A workspace row of `width` values per thread, 16 values apart: threads writing rows that
    share a cache line ran ~2x slower (measured on avgpool's rows)."""
    return Scratch((threads, width + 16), **options)


@dataclass
class IO:
    """Expressions naming everything one op's kernels read and write, in the generated code.

    `dx[i]` is None where input i needs no gradient; `param(k)` / `grad(k)` / `buffer(k)` /
    `scratch(k)` name the op's parameters, their gradients, its buffers and its scratch.
    """

    node: str
    x: list[str]
    y: str
    dy: str | None = None
    dx: list[str | None] = field(default_factory=list)

    def param(self, key: str) -> str:
        return f"p.{ident(self.node + '.' + key)}"

    def grad(self, key: str) -> str:
        return f"g.{ident(self.node + '.' + key)}"

    def buffer(self, key: str) -> str:
        return f"s.{ident(self.node + '.' + key)}"

    def scratch(self, key: str) -> str:
        return f"v.{ident(self.node + '.' + key)}"


@dataclass(frozen=True)
class Lowering:
    module: str                                   # the module that defines the kernels
    kernels: tuple[str, ...]
    forward: Callable[[IO], list[str]]
    backward: Callable[[IO], list[str]] | None = None   # None: no gradient flows through
    scratch: dict[str, Scratch] = field(default_factory=dict)
    # tensors the backward kernel reads: 'input' (all inputs), 'output'
    reads: tuple[str, ...] = ()


def ident(name: str) -> str:
    """A buffer name as a Python identifier: `layer1.conv1` -> `layer1__conv1`,
    `d.x#1` (a partial gradient) -> `d__x_part1`, `conv1.cols@b` -> `conv1__cols_b`."""
    return name.replace(".", "__").replace("#", "_part").replace("@", "_")
