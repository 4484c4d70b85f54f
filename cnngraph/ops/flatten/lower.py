"""flatten's lowering, one for every target: the support kernel `copy_<target>(src, dst)` in
each direction (the memory order is already C, H, W)."""
from __future__ import annotations

from ..lowering import DX, DY, Call, Context, Kernel, Lowering, X, Y

COPY = Kernel("cnngraph.kernels.{target}.support", "copy_{target}")


def lower(node, ctx: Context) -> Lowering:
    return Lowering(forward=(Call(COPY, {"src": X(), "dst": Y}),),
                    backward=(Call(COPY, {"src": DY, "dst": DX()}),))
