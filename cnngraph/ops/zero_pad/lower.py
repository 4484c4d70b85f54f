"""zero_pad's lowering, one for every target, on the tensors viewed as (N*C, H, W) planes:
`zero_pad_fwd_<target>(x, y, top, left)` writes x into the zeroed y at (top, left);
`zero_pad_bwd_<target>(dy, dx, top, left)` crops the gradient back."""
from __future__ import annotations

from ..lowering import DX, DY, Call, Context, Kernel, Lowering, X, Y

FORWARD = Kernel("cnngraph.ops.zero_pad.{target}", "zero_pad_fwd_{target}")
BACKWARD = Kernel("cnngraph.ops.zero_pad.{target}", "zero_pad_bwd_{target}")


def lower(node, ctx: Context) -> Lowering:
    small, large = node.in_shapes[0][1:], node.shape[1:]
    top, _, left, _ = node.attrs.padding
    return Lowering(
        forward=(Call(FORWARD, {"x": X().view(-1, *small), "y": Y.view(-1, *large),
                                "top": top, "left": left}),),
        backward=(Call(BACKWARD, {"dy": DY.view(-1, *large), "dx": DX().view(-1, *small),
                                  "top": top, "left": left}),))
