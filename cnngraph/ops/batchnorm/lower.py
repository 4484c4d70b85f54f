"""batchnorm's lowering. The kernels see (N, C, L) views, vectors as (N, F, 1):
`batchnorm_fwd_<target>(x, y, weight, bias, running_mean, running_var, ..., eps, momentum,
training, act, act_arg)` keeps the statistics it normalised with for
`batchnorm_bwd_<target>(x, ..., dy, dx, weight, ..., weight_grad, bias_grad, ..., need_dx,
need_dw, need_db, batch_statistics)`: on CUDA `mean` and `invstd`. The backward kernel writes
weight_grad only when `need_dw` and bias_grad only when `need_db` (false for a frozen
parameter: `Node.frozen`).

With frozen statistics (`running_mean` and `running_var` in `Node.frozen`, fine-tuning's
`train.bn: frozen`) a training step normalises with the running statistics, as evaluation
does, and leaves them as they are: the forward kernel is told `training=False`, and the
backward kernel, with `batch_statistics` false, takes the derivative of that affine map
(dx = weight * invstd * g, where the batch's statistics add two terms).

On the CPU (cpu.py) both take `parts`, per-position sums of each chunk of samples; the forward
pass keeps `invstd` and `flats` (scale, shift and mean as rows of C·L values; in an inference
program, which has no backward, of C) for the backward, whose own rows are `terms`. The
backward kernel finds the gradient before a fused activation itself, from the activation's
output recomputed from x (in `rows`): it reads neither y nor a saved gradient, which saves two
passes over the batch. On CUDA the fused activation's backward runs first, as for dense.
"""
from __future__ import annotations

from ..base import numel
from ..lowering import (
    BATCH,
    DX,
    DY,
    SHARDS,
    TRAINING,
    Arg,
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
            "training": _training(node), **fused.args}),),
        backward=(*fused.backward, Call(BACKWARD, {
            "x": X().view(BATCH, c, -1), "dy": fused.dy.view(BATCH, c, -1),
            "dx": DX().view(BATCH, c, -1), "weight": param("weight"), "mean": scratch("mean"),
            "invstd": scratch("invstd"), "weight_grad": grad("weight"), "bias_grad": grad("bias"),
            **_backward_flags(node)})),
        scratch={"mean": Scratch((c,), saved=True), "invstd": Scratch((c,), saved=True),
                 **fused.scratch},
        reads=("input", *fused.reads))


def _lower_cpu(node, ctx: Context) -> Lowering:
    c, width = node.shape[0], numel(node.shape)
    a = node.attrs
    fused = epilogue(node)
    chunks = max(ctx.chunks, ctx.shards)          # of samples: a shard each, where shards
    parts = Scratch((chunks, 2, width + 16) if ctx.training else (1, 2, 1))
    return Lowering(
        forward=(Call(FORWARD, {
            "x": X().view(BATCH, c, -1), "y": Y.view(BATCH, c, -1), "weight": param("weight"),
            "bias": param("bias"), "running_mean": buffer("running_mean"),
            "running_var": buffer("running_var"), "invstd": scratch("invstd"),
            "parts": scratch("parts"), "flats": scratch("flats"), "eps": a.eps,
            "momentum": a.momentum, "training": _training(node), **fused.args,
            "shards": SHARDS}),),
        backward=(Call(BACKWARD, {
            "x": X().view(BATCH, c, -1), "dy": DY.view(BATCH, c, -1),
            "dx": DX().view(BATCH, c, -1), "weight": param("weight"), "invstd": scratch("invstd"),
            "weight_grad": grad("weight"), "bias_grad": grad("bias"),
            "parts": scratch("parts", backward=True), "flats": scratch("flats"),
            "terms": scratch("terms"), "rows": scratch("rows"), **fused.args,
            **_backward_flags(node), "shards": SHARDS}),),
        scratch={"invstd": Scratch((c,), saved=True), "parts": parts,
                 # per position for the backward pass; inference's per channel
                 "flats": Scratch((3, width if ctx.training else c), saved=True),
                 "terms": Scratch((3, width), backward_only=True),
                 "rows": Scratch((chunks, 2, PIECE) if node.activation
                                 else (chunks, 2, 1), backward_only=True)},
        reads=("input",),
        # the statistics, then the sums for dx, of every data-parallel worker's samples
        collectives=2 if ctx.training and _batch_statistics(node) else 0)


def _batch_statistics(node) -> bool:
    """Whether a training step normalises with the batch's statistics and updates the running
    ones: not where those are frozen (the trainer freezes both or neither)."""
    return "running_mean" not in node.frozen


def _training(node) -> Arg:
    """The forward kernel's `training`: the step's, unless the statistics are frozen."""
    return TRAINING if _batch_statistics(node) else False


def _backward_flags(node) -> dict[str, Arg]:
    """Which gradients the backward kernel writes (dx where wanted, a parameter's where it is
    not frozen) and whose derivative it takes (the batch statistics' or the running ones')."""
    return {"need_dx": Wants(0), "need_dw": "weight" not in node.frozen,
            "need_db": "bias" not in node.frozen, "batch_statistics": _batch_statistics(node)}
