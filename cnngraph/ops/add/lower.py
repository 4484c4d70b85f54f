"""add's lowering, one for every target: `add_fwd_<target>(out, parts, act, act_arg)` sums the
inputs and applies a fused activation (passes/fuse.py; `act` 0 for none), and
`add_bwd_<target>(dy, y, dxs, wants, act, act_arg)` writes each wanted input's gradient: dy
through the activation's derivative, which reads the output y (dy stands in for y without an
activation)."""
from __future__ import annotations

from ..lowering import DX, DY, Call, Context, Kernel, Lowering, Wants, X, Y
from ..pointwise.epilogue import epilogue

FORWARD = Kernel("cnngraph.ops.add.{target}", "add_fwd_{target}")
BACKWARD = Kernel("cnngraph.ops.add.{target}", "add_bwd_{target}")


def lower(node, ctx: Context) -> Lowering:
    inputs = range(len(node.inputs))
    fused = epilogue(node)
    return Lowering(
        forward=(Call(FORWARD, {"out": Y, "parts": tuple(X(i) for i in inputs),
                                **fused.args}),),
        backward=(Call(BACKWARD, {"dy": DY, "y": Y if node.activation else DY,
                                  "dxs": tuple(DX(i) for i in inputs),
                                  "wants": tuple(Wants(i) for i in inputs), **fused.args}),),
        reads=fused.reads)
