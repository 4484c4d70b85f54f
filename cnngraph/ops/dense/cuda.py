"""dense on CUDA: three tiled GEMMs.

y = x W^T + b (bias in the store);  dx = dy W;  dW = dy^T x, split along the batch when the
weight is too small to fill the GPU;  db = a per-feature tree reduction of dy.
"""
from __future__ import annotations

from ...kernels.cuda.gemm import gemm_kernel, launch, split_count
from ...kernels.cuda.launch import instantiate
from ...kernels.cuda.support import channel_sum_cuda, sum_splits_cuda
from ..pointwise.cuda import ACTIVATE

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


def dense_fwd_cuda(x, weight, bias, y, has_bias, act, act_arg):
    """y = activation(x W^T + b); `act` is the fused activation's code (0: none)."""
    launch(KERNELS[x.dtype].dense_fwd, (x, weight, bias, y, has_bias, act,
                                        x.dtype.type(act_arg)),
           x.shape[0], weight.shape[0], weight.shape[1])


def dense_bwd_cuda(x, weight, dy, dx, weight_grad, bias_grad, has_bias, need_dx, need_dw,
                   parts):
    """`parts` holds the weight gradient's partial sums, one per split."""
    k = KERNELS[x.dtype]
    (batch, features), out = x.shape, weight.shape[0]
    if need_dw:
        splits = split_count(out, features, batch, 1, parts.shape[0])
        launch(k.dense_wgrad, (dy, x, parts), out, features, batch, 1, splits)
        sum_splits_cuda(parts, weight_grad, splits)
    if has_bias:
        channel_sum_cuda(dy, bias_grad)
    if need_dx:
        launch(k.dense_dgrad, (dy, weight, dx), batch, features, out)

