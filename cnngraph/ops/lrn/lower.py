"""lrn's lowering, one for every target: `lrn_fwd_<target>(x, y, size, alpha, beta, k)` and
`lrn_bwd_<target>(x, y, dy, dx, size, alpha, beta, k)`."""
from __future__ import annotations

from ..lowering import DX, DY, Call, Context, Kernel, Lowering, X, Y

FORWARD = Kernel("cnngraph.ops.lrn.{target}", "lrn_fwd_{target}")
BACKWARD = Kernel("cnngraph.ops.lrn.{target}", "lrn_bwd_{target}")


def lower(node, ctx: Context) -> Lowering:
    a = node.attrs
    constants = {"size": a.size, "alpha": a.alpha, "beta": a.beta, "k": a.k}
    return Lowering(
        forward=(Call(FORWARD, {"x": X(), "y": Y, **constants}),),
        backward=(Call(BACKWARD, {"x": X(), "y": Y, "dy": DY, "dx": DX(), **constants}),),
        reads=("input", "output"))
