"""relu, leaky_relu, sigmoid, tanh, identity: element-wise ops, one row each.

    - relu
    - leaky_relu: {slope: 0.1}
    - sigmoid

Each row gives the op's arguments, the forward expression (in `x`, the scalar argument `a`,
`zero` and `one`, constants of the array's dtype: a bare `0` would promote float32 to float64,
and the functions `sigmoid` and `tanh`, which each backend defines for its kernels), the
backward expression (in `x`, `y`, `dy`, `a`, `zero`, `one`), the tensor the
backward reads, and the cost per element under the full policy: relu 1 (max), leaky_relu 2
(compare, multiply), sigmoid 4 (negate, exp, add, divide), tanh 5, identity 0. The backends
generate their kernels from these expressions.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..base import Cost, OpDef, numel, object_schema, same_shape
from .lower import lowering


@dataclass(frozen=True)
class LeakyReluAttrs:
    slope: float = 0.01


@dataclass(frozen=True)
class Row:
    name: str
    forward: str
    backward: str
    ops_per_element: int
    reads: tuple[str, ...]   # what the backward expression reads: input or output
    schema: dict
    attrs: object
    argument: str = ""   # the attribute passed to the kernels as `a`
    rectifier: bool = False
    kink: Callable | None = None


def _kink_at_zero(node, x, winners):
    """The ReLU family's kink is at 0: an input's distance from it is the input itself."""
    return x, None


ROWS = (
    Row("relu", "x if x > zero else x * zero", "dy if y > zero else dy * zero", 1, ("output",), {},
        lambda args: None, rectifier=True, kink=_kink_at_zero),
    Row("leaky_relu", "x if x > zero else a * x", "dy if x > zero else a * dy", 2, ("input",),
        {"slope": {"type": "number", "minimum": 0}},
        lambda args: LeakyReluAttrs(args.get("slope", 0.01)), "slope", rectifier=True,
        kink=_kink_at_zero),
    Row("sigmoid", "sigmoid(x)", "dy * y * (one - y)", 4, ("output",), {}, lambda args: None),
    Row("tanh", "tanh(x)", "dy * (one - y * y)", 5, ("output",), {}, lambda args: None),
    Row("identity", "x", "dy", 0, (), {}, lambda args: None),
)


def _op(row: Row) -> OpDef:
    k = row.ops_per_element
    return OpDef(package=__name__, name=row.name, doc=__doc__,
                 schema=object_schema(row.schema), attrs=row.attrs,
                 shape=same_shape, rectifier=row.rectifier, kink=row.kink, lower=lowering(row),
                 cost=lambda a, ins, out: Cost(ops=k * numel(out)))


OPS = tuple(_op(row) for row in ROWS)
