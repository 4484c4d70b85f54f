"""batchnorm's lowering, one for every target; the kernels see (N, C, L) views, vectors as
(N, F, 1): `batchnorm_fwd_<target>(x, y, weight, bias, running_mean, running_var, mean, invstd,
eps, momentum, training, act, act_arg)`, which keeps the statistics it normalised with in
`mean` and `invstd` for `batchnorm_bwd_<target>(x, dy, dx, weight, mean, invstd, weight_grad,
bias_grad, need_dx)`."""
from __future__ import annotations

from ..lowering import (
    BATCH,
    DX,
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


def lower(node, ctx: Context) -> Lowering:
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
