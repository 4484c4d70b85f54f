"""lrn: local response normalisation across channels (AlexNet, GoogLeNet, VGG-A-LRN).

    - lrn: {size: 5, alpha: 0.0001, beta: 0.75, k: 2}

b_c = a_c / (k + alpha / size * sum of a_j^2 over the `size` channels around c) ^ beta, the
PyTorch and Caffe convention (alpha is divided by size). Defaults are AlexNet's.
Cost (full policy): size + 4 ops per element.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..base import Cost, OpDef, numel, object_schema, require_rank
from ..window import POSITIVE
from .lower import lower


@dataclass(frozen=True)
class LrnAttrs:
    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 2.0


def shape(a, ins):
    require_rank("lrn", ins[0], 3)
    return ins[0]


OP = OpDef(
    package=__name__, lower=lower,
    name="lrn", doc=__doc__,
    schema=object_schema({"size": POSITIVE, "alpha": {"type": "number", "minimum": 0},
                          "beta": {"type": "number", "minimum": 0},
                          "k": {"type": "number", "exclusiveMinimum": 0}}),
    attrs=lambda args: LrnAttrs(args.get("size", 5), args.get("alpha", 1e-4),
                                args.get("beta", 0.75), args.get("k", 2.0)),
    shape=shape,
    cost=lambda a, ins, out: Cost(ops=(a.size + 4) * numel(out)),
)
