"""softmax's lowering, one for every target: the kernels see (N, C, L) views,
`softmax_fwd_<target>(x, y)` and `softmax_bwd_<target>(y, dy, dx)`."""
from __future__ import annotations

from ..lowering import BATCH, DX, DY, Call, Context, Kernel, Lowering, X, Y

FORWARD = Kernel("cnngraph.ops.softmax.{target}", "softmax_fwd_{target}")
BACKWARD = Kernel("cnngraph.ops.softmax.{target}", "softmax_bwd_{target}")


def lower(node, ctx: Context) -> Lowering:
    c = node.shape[0]
    return Lowering(
        forward=(Call(FORWARD, {"x": X().view(BATCH, c, -1), "y": Y.view(BATCH, c, -1)}),),
        backward=(Call(BACKWARD, {"y": Y.view(BATCH, c, -1), "dy": DY.view(BATCH, c, -1),
                                  "dx": DX().view(BATCH, c, -1)}),),
        reads=("output",))
