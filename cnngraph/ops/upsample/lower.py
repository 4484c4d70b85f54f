"""upsample's lowering, one for every target: `upsample_fwd_<target>(x, y, scale, mode)` and
`upsample_bwd_<target>(dy, dx, scale, mode)`, on the tensors viewed as (N*C, H, W) planes."""
from __future__ import annotations

from ..lowering import DX, DY, Call, Context, Kernel, Lowering, X, Y

FORWARD = Kernel("cnngraph.ops.upsample.{target}", "upsample_fwd_{target}")
BACKWARD = Kernel("cnngraph.ops.upsample.{target}", "upsample_bwd_{target}")


def lower(node, ctx: Context) -> Lowering:
    a = node.attrs
    small, large = node.in_shapes[0][1:], node.shape[1:]
    return Lowering(
        forward=(Call(FORWARD, {"x": X().view(-1, *small), "y": Y.view(-1, *large),
                                "scale": a.scale, "mode": a.mode}),),
        backward=(Call(BACKWARD, {"dy": DY.view(-1, *large), "dx": DX().view(-1, *small),
                                  "scale": a.scale, "mode": a.mode}),))
