"""dense: fully connected layer on a (features,) vector.

    - dense: {out: 10}
    - dense: {out: 4096, bias: true, init: glorot_uniform}

Weight layout (out, in) and bias (out,), as PyTorch and ONNX.
Cost: MACs = in * out; the full policy adds `out` ops for the bias.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..base import Cost, OpDef, object_schema, require_rank
from ..inits import INITS, weight_init
from ..window import POSITIVE
from .lower import lower


@dataclass(frozen=True)
class DenseAttrs:
    out: int
    bias: bool = True
    init: str | None = None


def shape(a: DenseAttrs, ins):
    require_rank("dense", ins[0], 1)
    return (a.out,)


def params(a: DenseAttrs, ins):
    weight = (a.out, ins[0][0])
    return {"weight": weight, "bias": (a.out,)} if a.bias else {"weight": weight}


OP = OpDef(
    package=__name__, lower=lower,
    name="dense", doc=__doc__,
    schema=object_schema({"out": POSITIVE, "bias": {"type": "boolean"}, "init": {"enum": INITS}},
                         required=("out",)),
    attrs=lambda args: DenseAttrs(args["out"], args.get("bias", True), args.get("init")),
    shape=shape, params=params, init=weight_init, fuses_activation=True,
    cost=lambda a, ins, out: Cost(macs=ins[0][0] * a.out, ops=a.out if a.bias else 0),
)
