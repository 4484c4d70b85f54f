"""locally_connected's lowering, one for both targets:

    locally_connected_fwd_<target>(x, weight, bias, y, [patches, rows,] stride_h, stride_w,
                                   pad_top, pad_left, has_bias)
    locally_connected_bwd_<target>(x, weight, dy, dx, weight_grad, bias_grad, [patches, rows,]
                                   need_dx, need_dw, stride_h, stride_w, pad_top, pad_left,
                                   has_bias)

The CPU kernels run one GEMM per output position over the batch, in workspaces of a row per
sample: `patches`, each thread's input patches (in * kh * kw values per sample), and `rows`,
each thread's outputs or output gradients at the position (out values per sample). The CUDA
kernels read the tensors directly and need none. Without a bias the kernels read none; a flat
view of the weight (and of its gradient) stands in for it, having the right type. The bias
and its gradient travel flat, (out, H_out, W_out) in that order, whichever stands in. The
backward kernel computes (and writes) the weight gradient only when `need_dw`, and the bias
gradient only when its `has_bias`: false for a frozen parameter (`Node.frozen`).

This module loads no kernel: `cnngraph summary` plans memory through it.
"""
from __future__ import annotations

from ..lowering import (
    BATCH,
    DX,
    DY,
    Call,
    Context,
    Kernel,
    Lowering,
    Ref,
    Scratch,
    Wants,
    X,
    Y,
    grad,
    param,
    scratch,
)

FORWARD = Kernel("cnngraph.ops.locally_connected.{target}", "locally_connected_fwd_{target}")
BACKWARD = Kernel("cnngraph.ops.locally_connected.{target}", "locally_connected_bwd_{target}")


def lower(node, ctx: Context) -> Lowering:
    a = node.attrs
    geometry = {"stride_h": a.stride[0], "stride_w": a.stride[1], "pad_top": a.padding[0],
                "pad_left": a.padding[2], "has_bias": a.bias}
    workspaces: dict[str, Scratch] = {}
    forward_ws: dict[str, Ref] = {}
    backward_ws: dict[str, Ref] = {}
    if ctx.target == "cpu":
        patch = node.in_shapes[0][0] * a.kernel[0] * a.kernel[1]
        workspaces = {"patches": Scratch((ctx.chunks * patch,), per_sample=True),
                      "rows": Scratch((ctx.chunks * a.out,), per_sample=True)}
        forward_ws = {key: scratch(key).view(BATCH, -1) for key in workspaces}
        backward_ws = {key: scratch(key, backward=True).view(BATCH, -1) for key in workspaces}
    return Lowering(
        forward=(Call(FORWARD, {
            "x": X(), "weight": param("weight"),
            "bias": param("bias" if a.bias else "weight").flat(), "y": Y,
            **forward_ws, **geometry}),),
        backward=(Call(BACKWARD, {
            "x": X(), "weight": param("weight"), "dy": DY, "dx": DX(),
            "weight_grad": grad("weight"),
            "bias_grad": grad("bias" if a.bias else "weight").flat(),
            **backward_ws, "need_dx": Wants(), "need_dw": "weight" not in node.frozen,
            **geometry, "has_bias": a.bias and "bias" not in node.frozen}),),
        scratch=workspaces, reads=("input",))
