"""adaptive_avgpool's lowering, one for every target, on the (N, C, H, W) tensors:
`adaptive_avgpool_fwd_<target>(x, y)` and `adaptive_avgpool_bwd_<target>(dy, dx)`; the
windows follow from the two shapes."""
from __future__ import annotations

from ..lowering import DX, DY, Call, Context, Kernel, Lowering, X, Y

FORWARD = Kernel("cnngraph.ops.adaptive_avgpool.{target}", "adaptive_avgpool_fwd_{target}")
BACKWARD = Kernel("cnngraph.ops.adaptive_avgpool.{target}", "adaptive_avgpool_bwd_{target}")


def lower(node, ctx: Context) -> Lowering:
    return Lowering(forward=(Call(FORWARD, {"x": X(), "y": Y}),),
                    backward=(Call(BACKWARD, {"dy": DY, "dx": DX()}),))
