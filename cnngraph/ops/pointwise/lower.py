"""The pointwise ops' lowering, one for every target: `pointwise_fwd_<target>(op, x, y, argument)`
and `pointwise_bwd_<target>(op, x, y, dy, dx, argument)` run the kernels generated from row `op`;
`argument` is the row's attribute (leaky_relu's slope), 0.0 for the rows without one."""
from __future__ import annotations

from ..lowering import DX, DY, Call, Context, Kernel, Lowering, X, Y

FORWARD = Kernel("cnngraph.ops.pointwise.{target}", "pointwise_fwd_{target}")
BACKWARD = Kernel("cnngraph.ops.pointwise.{target}", "pointwise_bwd_{target}")


def lowering(row):
    """The lowering of the op of table row `row`."""
    def lower(node, ctx: Context) -> Lowering:
        argument = getattr(node.attrs, row.argument) if row.argument else 0.0
        return Lowering(
            forward=(Call(FORWARD, {"op": row.name, "x": X(), "y": Y, "argument": argument}),),
            backward=(Call(BACKWARD, {"op": row.name, "x": X(), "y": Y, "dy": DY, "dx": DX(),
                                      "argument": argument}),),
            reads=row.reads)
    return lower
