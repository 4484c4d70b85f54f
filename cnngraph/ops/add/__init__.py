"""add: element-wise sum of two or more tensors of equal shape (residual connections).

    - parallel: [[conv: {out: 64, kernel: 3, padding: 1}], []]
      merge: add
    - add: {}
      from: [branch_a, branch_b]

Cost (full policy): (inputs - 1) ops per output element. Its kernels apply a following
activation (passes/fuse.py: a residual block's add -> relu) in their own passes.
"""
from __future__ import annotations

from ..base import Cost, OpDef, ShapeError, fmt_shape, numel, object_schema
from .lower import lower


def shape(a, ins):
    if any(s != ins[0] for s in ins[1:]):
        raise ShapeError("`add` needs inputs of equal shape, received "
                         + ", ".join(fmt_shape(s) for s in ins),
                         "match the channels and strides of the branches, e.g. a 1x1 conv "
                         "projection on the shortcut")
    return ins[0]


OP = OpDef(
    package=__name__, lower=lower,
    name="add", doc=__doc__, schema=object_schema({}), attrs=lambda args: None, arity=None,
    shape=shape, cost=lambda a, ins, out: Cost(ops=(len(ins) - 1) * numel(out)),
    fuses_activation=True,
)
