"""prelu's lowering, one for every target, on tensors viewed as (N, S, L) with S the number of
slopes: (N, C, H*W) for a map, (N, F, 1) for a vector, and (N, 1, everything) with one shared
slope, so the kernels only ever pair channel s with weight[s].
`prelu_fwd_<target>(x, weight, y)`; `prelu_bwd_<target>(x, dy, dx, weight, weight_grad,
need_dx, need_dw, [parts])`, where the CPU's `parts` holds each chunk's sums of the weight
gradient, added up in chunk order afterwards (no two chunks add into one element). The weight
gradient is computed (and written) only when `need_dw`: not for a frozen weight
(`Node.frozen`)."""
from __future__ import annotations

from ..lowering import (
    BATCH,
    DX,
    DY,
    Arg,
    Call,
    Context,
    Kernel,
    Lowering,
    Wants,
    X,
    Y,
    chunk_rows,
    grad,
    param,
    scratch,
)

FORWARD = Kernel("cnngraph.ops.prelu.{target}", "prelu_fwd_{target}")
BACKWARD = Kernel("cnngraph.ops.prelu.{target}", "prelu_bwd_{target}")


def lower(node, ctx: Context) -> Lowering:
    slopes = node.params["weight"][0]
    backward: dict[str, Arg] = {"x": X().view(BATCH, slopes, -1), "dy": DY.view(BATCH, slopes, -1),
                "dx": DX().view(BATCH, slopes, -1), "weight": param("weight"),
                "weight_grad": grad("weight"), "need_dx": Wants(0),
                "need_dw": "weight" not in node.frozen}
    workspaces = {}
    if ctx.target == "cpu":
        backward["parts"] = scratch("parts")
        workspaces["parts"] = chunk_rows(ctx.chunks, slopes, backward_only=True)
    return Lowering(
        forward=(Call(FORWARD, {"x": X().view(BATCH, slopes, -1), "weight": param("weight"),
                                "y": Y.view(BATCH, slopes, -1)}),),
        backward=(Call(BACKWARD, backward),),
        scratch=workspaces, reads=("input",))
