"""dropout: inverted dropout, active only in training.

    - dropout: {rate: 0.5}

Costs nothing at inference (it is the identity there); its backward pass reads the mask.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..base import Cost, OpDef, object_schema, same_shape
from .lower import lower


@dataclass(frozen=True)
class DropoutAttrs:
    rate: float = 0.5


OP = OpDef(
    package=__name__, lower=lower,
    name="dropout", doc=__doc__,
    schema=object_schema({"rate": {"type": "number", "minimum": 0, "exclusiveMaximum": 1}}),
    attrs=lambda args: DropoutAttrs(args.get("rate", 0.5)),
    shape=same_shape, cost=lambda a, ins, out: Cost(),
)
