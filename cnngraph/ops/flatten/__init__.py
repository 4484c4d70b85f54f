"""flatten: (C, H, W) -> (C*H*W,), in C, H, W order as PyTorch; a vector passes unchanged.

    - flatten
"""
from __future__ import annotations

from ..base import GLOBAL, Cost, OpDef, numel, object_schema
from .lower import lower

OP = OpDef(
    package=__name__, lower=lower,
    name="flatten", doc=__doc__, schema=object_schema({}), attrs=lambda args: None,
    shape=lambda a, ins: (numel(ins[0]),),
    window=lambda a, ins: GLOBAL if len(ins[0]) == 3 else None,
    cost=lambda a, ins, out: Cost(),
)
