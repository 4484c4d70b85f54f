"""dense's lowering, one for every target: `dense_fwd_<target>(x, weight, bias, y, has_bias, act,
act_arg)` and `dense_bwd_<target>(x, weight, dy, dx, weight_grad, bias_grad, has_bias,
need_dx, need_dw)`, which on CUDA also take `parts`, its workspace for the weight gradient's
partial sums, and on the CPU `chunks`, the chunks the batch (and dW's rows) are cut into.
Without a bias, the kernels ignore `bias` and `bias_grad`; a flat view of the weight (and of
its gradient) stands in. The backward kernel computes (and writes) the weight
gradient only when `need_dw`, the bias gradient only when its `has_bias`: false for a frozen
parameter (`Node.frozen`)."""
from __future__ import annotations

from ..lowering import (
    DX,
    Call,
    Context,
    Kernel,
    Lowering,
    Scratch,
    Wants,
    X,
    Y,
    grad,
    param,
    scratch,
)
from ..pointwise.epilogue import epilogue

FORWARD = Kernel("cnngraph.ops.dense.{target}", "dense_fwd_{target}")
BACKWARD = Kernel("cnngraph.ops.dense.{target}", "dense_bwd_{target}")


def lower(node, ctx: Context) -> Lowering:
    bias = node.attrs.bias
    fused = epilogue(node)
    backward = {"x": X(), "weight": param("weight"), "dy": fused.dy, "dx": DX(),
                "weight_grad": grad("weight"),
                "bias_grad": grad("bias") if bias else grad("weight").flat(),
                "has_bias": bias and "bias" not in node.frozen, "need_dx": Wants(0),
                "need_dw": "weight" not in node.frozen}
    forward = {"x": X(), "weight": param("weight"),
               "bias": param("bias") if bias else param("weight").flat(), "y": Y,
               "has_bias": bias, **fused.args}
    workspaces = dict(fused.scratch)
    if ctx.target == "cuda":
        backward["parts"] = scratch("parts")
        workspaces["parts"] = Scratch((ctx.chunks, *node.params["weight"]), backward_only=True)
    else:     # its GEMMs' shapes, and so their sums' order, depend on the chunks: fix them
        forward["chunks"] = backward["chunks"] = ctx.chunks
    return Lowering(
        forward=(Call(FORWARD, forward),),
        backward=(*fused.backward, Call(BACKWARD, backward)),
        scratch=workspaces, reads=("input", *fused.reads))
