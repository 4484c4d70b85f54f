"""concat: join tensors along channels (or features, for vectors).

    - parallel: [[conv: {out: 64, kernel: 1}], [conv: {out: 32, kernel: 3, padding: 1}]]
      merge: concat

Spatial sizes must agree. Costs nothing under either policy (a copy).
"""
from __future__ import annotations

from ..base import Cost, OpDef, ShapeError, fmt_shape, object_schema
from .lower import lower


def shape(a, ins):
    ranks = {len(s) for s in ins}
    if len(ranks) > 1 or any(s[1:] != ins[0][1:] for s in ins):
        raise ShapeError("`concat` needs inputs with equal spatial size, received "
                         + ", ".join(fmt_shape(s) for s in ins),
                         "use the same strides and padding in every branch")
    return (sum(s[0] for s in ins), *ins[0][1:])


OP = OpDef(
    package=__name__,
    name="concat", doc=__doc__, schema=object_schema({}), attrs=lambda args: None, arity=None,
    shape=shape, cost=lambda a, ins, out: Cost(), lower=lower,
)
