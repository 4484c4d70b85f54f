"""dense on CUDA: three tiled GEMMs.

y = x W^T + b (bias in the store);  dx = dy W;  dW = dy^T x, split along the batch when the
weight is too small to fill the GPU;  db = a per-feature tree reduction of dy.
"""
from __future__ import annotations

from ...kernels.cuda.gemm import gemm_kernel, launch, split_count
from ...kernels.cuda.launch import SPLITS, instantiate
from ...kernels.cuda.support import channel_sum_cuda, sum_splits_cuda
from ..lowering import IO, Context, Scratch, TextLowering
from ..pointwise.cuda import ACTIVATE, pointwise_bwd_cuda  # noqa: F401 (step code)
from ..pointwise.lower import epilogue

_TEMPLATE = gemm_kernel(
    "dense_fwd", "x, w, b, y, has_bias, act, act_arg",
    a_load="value = x[m, k]", b_load="value = w[n, k]", b_fast="k",
    store="""
        if has_bias:
            value += b[n]
        y[m, n] = activate(value, act, act_arg)
        """) + gemm_kernel(
    "dense_dgrad", "dy, w, dx",
    a_load="value = dy[m, k]", b_load="value = w[k, n]", store="dx[m, n] = value") + gemm_kernel(
    "dense_wgrad", "dy, x, parts",
    a_load="value = dy[k, m]", a_fast="m", b_load="value = x[k, n]",
    store="parts[s, m, n] = value")

KERNELS = instantiate(ACTIVATE + _TEMPLATE, "dense")


def dense_fwd_cuda(x, w, b, y, has_bias, act, act_arg):
    """y = activation(x W^T + b); `act` is the fused activation's code (0: none)."""
    launch(KERNELS[x.dtype].dense_fwd, (x, w, b, y, has_bias, act, x.dtype.type(act_arg)),
           x.shape[0], w.shape[0], w.shape[1])


def dense_bwd_cuda(x, w, dy, dx, dw, db, parts, has_bias, need_dx):
    k = KERNELS[x.dtype]
    (batch, features), out = x.shape, w.shape[0]
    splits = split_count(out, features, batch, 1, parts.shape[0])
    launch(k.dense_wgrad, (dy, x, parts), out, features, batch, 1, splits)
    sum_splits_cuda(parts, dw, splits)
    if has_bias:
        channel_sum_cuda(dy, db)
    if need_dx:
        launch(k.dense_dgrad, (dy, w, dx), batch, features, out)


def lower(node, ctx: Context) -> TextLowering:
    bias = node.attrs.bias
    fused = epilogue(node, "cuda")

    def forward(io: IO) -> list[str]:
        # without a bias the kernel ignores this argument; it only needs the right type
        b = io.param("bias") if bias else f"{io.param('weight')}.reshape(-1)"
        return [f"dense_fwd_cuda({io.x[0]}, {io.param('weight')}, {b}, {io.y}, {bias}, "
                f"{fused.args})"]

    def backward(io: IO) -> list[str]:
        db = io.grad("bias") if bias else f"{io.grad('weight')}.reshape(-1)"
        lines, dy = fused.backward(io)
        return [*lines, f"dense_bwd_cuda({io.x[0]}, {io.param('weight')}, {dy}, "
                f"{io.dx[0] or io.x[0]}, {io.grad('weight')}, {db}, {io.scratch('parts')}, "
                f"{bias}, {io.dx[0] is not None})"]

    return TextLowering(module=__name__,
                    kernels=("dense_fwd_cuda", "dense_bwd_cuda", "pointwise_bwd_cuda"),
                    forward=forward, backward=backward, reads=("input", *fused.reads()),
                    scratch={"parts": Scratch((SPLITS, *node.params["weight"]),
                                              backward_only=True), **fused.scratch(node)})


LOWER = {"dense": lower}
