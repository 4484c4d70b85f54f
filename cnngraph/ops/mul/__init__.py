"""mul: element-wise product of exactly two inputs, broadcasting a (C, 1, 1) gate over a
(C, H, W) map. Three factors take two `mul` layers (`add` and `concat` take any number).

    - parallel:
        - []
        - [global_avgpool, conv: {out: 4, kernel: 1}, relu, conv: {out: 64, kernel: 1}, sigmoid]
      merge: mul                                  # squeeze-and-excitation

Cost (full policy): one op per output element.
"""
from __future__ import annotations

from ..base import Cost, OpDef, ShapeError, fmt_shape, numel, object_schema
from .lower import lower


def shape(a, ins):
    full = max(ins, key=numel)
    for s in ins:
        if s != full and not (len(s) == len(full) == 3 and s == (full[0], 1, 1)):
            raise ShapeError("`mul` needs inputs of equal shape or a (C, 1, 1) gate, received "
                             + ", ".join(fmt_shape(s) for s in ins),
                             "the gate needs as many channels as the feature map")
    return full


OP = OpDef(
    package=__name__, lower=lower,
    name="mul", doc=__doc__, schema=object_schema({}), attrs=lambda args: None, arity=2,
    shape=shape,
    cost=lambda a, ins, out: Cost(ops=(len(ins) - 1) * numel(out)),
)
