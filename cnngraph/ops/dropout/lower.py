"""dropout's lowering, one for every target: `dropout_fwd_<target>(x, y, mask, rate, threshold,
seed, salt, training)` draws the mask (mask.py) in training and keeps it for
`dropout_bwd_<target>(dy, mask, dx)`; `salt` tells the layers' masks apart."""
from __future__ import annotations

import zlib

from ..lowering import (
    DX,
    DY,
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
                                "salt": zlib.crc32(node.name.encode()),
                                "training": TRAINING}),),
        backward=(Call(BACKWARD, {"dy": DY, "mask": mask, "dx": DX()}),),
        scratch={"mask": Scratch(node.shape, per_sample=True, saved=True)})
