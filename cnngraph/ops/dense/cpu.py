"""dense on the CPU: GEMMs over the whole batch, cut into the lowering's chunks
(kernels/cpu/chunks.py).

y = x W^T + b (then a fused activation, if any), chunked by samples, or by output features for
a batch smaller than the chunks (batch-1 prediction: chunks of samples would leave all but one
chunk idle);  dx = dy W, by samples; dW = dy^T x and db = sum over the batch of dy, by output
features (each chunk owns its rows of dW: nothing to sum afterwards).
"""
from __future__ import annotations

from numba import njit

from ...kernels.cpu.blas import gemm
from ...kernels.cpu.chunks import chunk_kernel, cut, run_chunks, span
from ..pointwise.cpu import activate_all


@njit(cache=True, inline="always")
def _dense_block(x, w, b, y, r0, r1, f0, f1, has_bias, act, act_arg):
    """y[r0:r1, f0:f1] = activation(x W^T + b) for samples [r0, r1) and output features
    [f0, f1); `act` is a fused activation's code (0: none)."""
    features, out = x.shape[1], w.shape[0]
    if r1 == r0 or f1 == f0:
        return
    gemm(False, True, r1 - r0, f1 - f0, features, 1.0, x[r0:], features, w[f0:], features, 0.0,
         y[r0:, f0:], out)
    if has_bias:
        for i in range(r0, r1):
            for o in range(f0, f1):
                y[i, o] += b[o]
    if act == 0:
        return
    if f1 - f0 == out:                  # whole rows: one pass over them all
        activate_all(y[r0:r1].reshape(-1), act, act_arg)
    else:
        for i in range(r0, r1):
            activate_all(y[i, f0:f1], act, act_arg)


@chunk_kernel
def _dense_fwd(t, chunks, x, w, b, y, has_bias, act, act_arg):
    """y = activation(x W^T + b) for chunk t of the batch."""
    lo, hi = span(t, chunks, x.shape[0])
    _dense_block(x, w, b, y, lo, hi, 0, w.shape[0], has_bias, act, act_arg)


@chunk_kernel
def _dense_fwd_features(t, chunks, x, w, b, y, has_bias, act, act_arg):
    """_dense_fwd for chunk t of the output features, over the whole batch."""
    lo, hi = span(t, chunks, w.shape[0])
    _dense_block(x, w, b, y, 0, x.shape[0], lo, hi, has_bias, act, act_arg)


@chunk_kernel
def _dense_bwd(t, chunks, x, w, dy, dx, dw, db, has_bias, need_dx, need_dw):
    n, features = x.shape
    out = w.shape[0]
    first, last = span(t, chunks, out)
    if need_dw and last > first:
        gemm(True, False, last - first, features, n, 1.0, dy[:, first:], out, x, features, 0.0,
             dw[first:], features)
    if has_bias:
        for o in range(first, last):
            value = 0.0
            for i in range(n):
                value += dy[i, o]
            db[o] = value
    lo, hi = span(t, chunks, n)
    if need_dx and hi > lo:
        gemm(False, False, hi - lo, features, out, 1.0, dy[lo:], out, w, features, 0.0,
             dx[lo:], features)


def dense_fwd_cpu(x, weight, bias, y, has_bias, act, act_arg, chunks) -> None:
    pieces = _chunks(x, weight, chunks)
    # MobileNet v2's 1280 -> 1000 layer at batch 1: all on the helper thread by samples, 0.41 ms
    run_chunks(_dense_fwd_features if x.shape[0] < pieces else _dense_fwd, pieces, x, weight,
               bias, y, has_bias, act, act_arg)


def dense_bwd_cpu(x, weight, dy, dx, weight_grad, bias_grad, has_bias, need_dx, need_dw,
                  chunks) -> None:
    run_chunks(_dense_bwd, _chunks(x, weight, chunks), x, weight, dy, dx, weight_grad,
               bias_grad, has_bias, need_dx, need_dw)


def _chunks(x, w, chunks: int) -> int:
    """The lowering's `chunks`, unless the GEMM is too small to hand to another thread. Its
    multiply-adds count as 1/8 of an element-wise item each: sgemm does ~8 of them in the time
    a vectorised element-wise loop takes per item. (Not a chunk per thread: OpenBLAS sums in
    an order that depends on a GEMM's shape, so the cut must not change with the threads.)"""
    return cut(x.shape[0] * w.size // 8, chunks)

