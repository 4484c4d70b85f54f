"""relu, leaky_relu, sigmoid, tanh, identity: element-wise ops, one row each.

    - relu
    - leaky_relu: {slope: 0.1}
    - sigmoid

Each row gives the op's arguments, the tensor its backward pass reads, and the cost per element
under the full policy: relu 1 (max), leaky_relu 2 (compare, multiply), sigmoid 4 (negate, exp,
add, divide), tanh 5, identity 0. Forward and derivative expressions join these rows when the
backends are written.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..base import Cost, OpDef, numel, object_schema, same_shape


@dataclass(frozen=True)
class LeakyReluAttrs:
    slope: float = 0.01


@dataclass(frozen=True)
class Row:
    name: str
    ops_per_element: int
    saves: tuple[str, ...]
    schema: dict
    attrs: object


ROWS = (
    Row("relu", 1, ("output",), {}, lambda args: None),
    Row("leaky_relu", 2, ("input",), {"slope": {"type": "number", "minimum": 0}},
        lambda args: LeakyReluAttrs(args.get("slope", 0.01))),
    Row("sigmoid", 4, ("output",), {}, lambda args: None),
    Row("tanh", 5, ("output",), {}, lambda args: None),
    Row("identity", 0, (), {}, lambda args: None),
)


def _op(row: Row) -> OpDef:
    k = row.ops_per_element
    return OpDef(package=__name__, name=row.name, doc=__doc__,
                 schema=object_schema(row.schema), attrs=row.attrs,
                 shape=same_shape, saves=row.saves,
                 cost=lambda a, ins, out: Cost(ops=k * numel(out)))


OPS = tuple(_op(row) for row in ROWS)
