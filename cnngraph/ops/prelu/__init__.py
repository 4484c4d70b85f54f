"""prelu: a leaky ReLU whose negative slope is learned per channel, as PyTorch's
`nn.PReLU(num_parameters=C, init=0.25)`: y = x where x > 0, else weight[c] * x.

    - prelu                          # a slope per channel, starting at 0.25
    - prelu: {init: 0.1}
    - prelu: {shared: true}          # one slope for every channel (`nn.PReLU()`)

The channels are those of a (C, H, W) map or the features of a (features,) vector (PyTorch's
dimension 1 in both). Parameter `weight`: (C,), or (1,) when `shared`; it starts at `init` and,
as a slope rather than a scale, weight decay leaves it alone (PyTorch's docs advise the same).
Cost (full policy): 2 ops per element (compare, multiply), as leaky_relu; no MACs.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..base import Cost, OpDef, ShapeError, fmt_shape, numel, object_schema
from .lower import lower


@dataclass(frozen=True)
class PReluAttrs:
    init: float = 0.25
    shared: bool = False


def shape(a: PReluAttrs, ins):
    if len(ins[0]) not in (1, 3):
        raise ShapeError(f"`prelu` expected (C, H, W) or (features,), received "
                         f"{fmt_shape(ins[0])}")
    return ins[0]


def _params(a: PReluAttrs, ins):
    return {"weight": (1,) if a.shared else (ins[0][0],)}


def _kink(node, x, winners):
    """Its derivative jumps at 0 (from the slope to 1): an input's distance from the kink is
    the input itself."""
    return x, None


OP = OpDef(
    package=__name__, lower=lower,
    name="prelu", doc=__doc__,
    schema=object_schema({"init": {"type": "number"}, "shared": {"type": "boolean"}}),
    attrs=lambda args: PReluAttrs(float(args.get("init", 0.25)), args.get("shared", False)),
    shape=shape, params=_params,
    init=lambda a, default: {"weight": a.init},
    rectifier=True, decay_exempt=("weight",), kink=_kink,
    cost=lambda a, ins, out: Cost(ops=2 * numel(out)),
)
