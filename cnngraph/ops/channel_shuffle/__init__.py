"""channel_shuffle: interleave the channels of `groups` groups (ShuffleNet), as PyTorch's
`nn.ChannelShuffle`.

    - conv: {out: 240, kernel: 1, groups: 3}
    - channel_shuffle: {groups: 3}

The C channels, read as a (groups, C / groups) matrix, are transposed: output channel
i * groups + j is input channel j * (C / groups) + i. Needs a (C, H, W) input with C divisible
by `groups`. No parameters; costs nothing under either policy (a copy).
"""
from __future__ import annotations

from dataclasses import dataclass
from math import isqrt

from ..base import Cost, OpDef, ShapeError, object_schema, require_rank
from ..window import POSITIVE
from .lower import lower


@dataclass(frozen=True)
class ShuffleAttrs:
    groups: int


def shape(a: ShuffleAttrs, ins):
    require_rank("channel_shuffle", ins[0], 3)
    channels = ins[0][0]
    if channels % a.groups:
        divisors = sorted({d for k in range(1, isqrt(channels) + 1) if channels % k == 0
                           for d in (k, channels // k)})
        raise ShapeError(f"`channel_shuffle` groups={a.groups} does not divide the {channels} "
                         "input channels",
                         "groups must divide the channels: here one of "
                         + ", ".join(map(str, divisors)))
    return ins[0]


OP = OpDef(
    package=__name__,
    name="channel_shuffle", doc=__doc__,
    schema=object_schema({"groups": POSITIVE}, required=("groups",)),
    attrs=lambda args: ShuffleAttrs(args["groups"]),
    shape=shape, cost=lambda a, ins, out: Cost(), lower=lower,
)
