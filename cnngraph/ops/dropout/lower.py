"""dropout's lowering, one for every target: `dropout_fwd_<target>(x, y, mask, rate, threshold,
seed, salt, first, training)` draws the mask (mask.py) in training and keeps it for
`dropout_bwd_<target>(dy, mask, dx)`; `salt` tells the layers' masks apart, and an element's
index counts from sample `first` of the step's batch (so a sample keeps its mask whichever
data-parallel worker takes it)."""
from __future__ import annotations

import zlib

from ..lowering import (
    DX,
    DY,
    FIRST,
    SEED,
    TRAINING,
    Call,
    Context,
    Kernel,
    Lowering,
    Scratch,
    X,
    Y,
    scratch,
)
from .mask import threshold

FORWARD = Kernel("cnngraph.ops.dropout.{target}", "dropout_fwd_{target}")
BACKWARD = Kernel("cnngraph.ops.dropout.{target}", "dropout_bwd_{target}")


def lower(node, ctx: Context) -> Lowering:
    rate = node.attrs.rate
    mask = scratch("mask")
    return Lowering(
        forward=(Call(FORWARD, {"x": X(), "y": Y, "mask": mask, "rate": rate,
                                "threshold": threshold(rate), "seed": SEED,
                                "salt": zlib.crc32(node.name.encode()), "first": FIRST,
                                "training": TRAINING}),),
        backward=(Call(BACKWARD, {"dy": DY, "mask": mask, "dx": DX()}),),
        scratch={"mask": Scratch(node.shape, per_sample=True, saved=True)})
