"""batchnorm's lowering. The kernels see (N, C, L) views, vectors as (N, F, 1):
`batchnorm_fwd_<target>(x, y, weight, bias, running_mean, running_var, mean, invstd, ...,
eps, momentum, training, act, act_arg)` keeps the statistics it normalised with in `mean` and
`invstd` for `batchnorm_bwd_<target>(x, ..., dy, dx, weight, mean, invstd, weight_grad,
bias_grad, ...)`.

On the CPU (cpu.py) both take workspaces: `parts`, per-position sums of each chunk of samples,
and `flats`, per-channel constants expanded to rows; the backward kernel finds the gradient
before a fused activation itself, from the activation's output recomputed from x (in `rows`):
it reads neither y nor a saved gradient, which saves two passes over the batch. On CUDA the
fused activation's backward runs first, as for dense.
"""
from __future__ import annotations

from ..base import numel
from ..lowering import (
    BATCH,
    DX,
    DY,
    TRAINING,
    Call,
    Context,
    Kernel,
    Lowering,
    Scratch,
    Wants,
    X,
    Y,
    buffer,
    grad,
    param,
    scratch,
)
from ..pointwise.epilogue import epilogue

FORWARD = Kernel("cnngraph.ops.batchnorm.{target}", "batchnorm_fwd_{target}")
BACKWARD = Kernel("cnngraph.ops.batchnorm.{target}", "batchnorm_bwd_{target}")
PIECE = 1024    # values of a row the CPU kernels take at a time (cpu.py: _piece)


def lower(node, ctx: Context) -> Lowering:
    if ctx.target == "cpu":
        return _lower_cpu(node, ctx)
    c = node.shape[0]
    a = node.attrs
    fused = epilogue(node)
    return Lowering(
        forward=(Call(FORWARD, {
            "x": X().view(BATCH, c, -1), "y": Y.view(BATCH, c, -1), "weight": param("weight"),
            "bias": param("bias"), "running_mean": buffer("running_mean"),
            "running_var": buffer("running_var"), "mean": scratch("mean"),
            "invstd": scratch("invstd"), "eps": a.eps, "momentum": a.momentum,
            "training": TRAINING, **fused.args}),),
        backward=(*fused.backward, Call(BACKWARD, {
            "x": X().view(BATCH, c, -1), "dy": fused.dy.view(BATCH, c, -1),
            "dx": DX().view(BATCH, c, -1), "weight": param("weight"), "mean": scratch("mean"),
            "invstd": scratch("invstd"), "weight_grad": grad("weight"), "bias_grad": grad("bias"),
            "need_dx": Wants(0)})),
        scratch={"mean": Scratch((c,), saved=True), "invstd": Scratch((c,), saved=True),
                 **fused.scratch},
        reads=("input", *fused.reads))


def _lower_cpu(node, ctx: Context) -> Lowering:
    c, width = node.shape[0], numel(node.shape)
    a = node.attrs
    fused = epilogue(node)
    rows = {"parts": Scratch((ctx.threads, 2, width + 16) if ctx.training else (1, 2, 1)),
            "flats": Scratch((6, width))}
    statistics = {"weight": param("weight"), "mean": scratch("mean"),
                  "invstd": scratch("invstd")}
    return Lowering(
        forward=(Call(FORWARD, {
            "x": X().view(BATCH, c, -1), "y": Y.view(BATCH, c, -1), **statistics,
            "bias": param("bias"), "running_mean": buffer("running_mean"),
            "running_var": buffer("running_var"), **{key: scratch(key) for key in rows},
            "eps": a.eps, "momentum": a.momentum, "training": TRAINING, **fused.args}),),
        backward=(Call(BACKWARD, {
            "x": X().view(BATCH, c, -1), "dy": DY.view(BATCH, c, -1),
            "dx": DX().view(BATCH, c, -1), **statistics, "bias": param("bias"),
            "weight_grad": grad("weight"), "bias_grad": grad("bias"),
            **{key: scratch(key, backward=True) for key in rows}, "rows": scratch("rows"),
            **fused.args, "need_dx": Wants(0)}),),
        scratch={"mean": Scratch((c,), saved=True), "invstd": Scratch((c,), saved=True),
                 **rows, "rows": Scratch((ctx.threads, 2, PIECE) if node.activation
                                         else (ctx.threads, 2, 1), backward_only=True)},
        reads=("input",))
