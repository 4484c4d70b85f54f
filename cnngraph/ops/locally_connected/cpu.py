"""locally_connected on the CPU: at each output position one GEMM over the batch, between the
samples' input patches there (gathered into a thread's workspace, n x in*kh*kw) and that
position's own weight (out x in*kh*kw).

Forward and weight gradient are chunked by output positions: a chunk writes y, the weight
gradient and the bias gradient at its positions only. The input gradient, where windows of
neighbouring positions overlap, is chunked by samples instead: a chunk computes its samples'
patch gradients at every position and adds them back into its own samples of dx.
"""
from __future__ import annotations

from numba import njit

from ...kernels.cpu.blas import gemm
from ...kernels.cpu.chunks import chunk_kernel, cut, run_chunks, span


@njit(cache=True)
def _gather(x, patches, at, first, last, top, left, kh, kw):
    """patches[s, at + (c*kh + i)*kw + j] = x[s, c, top + i, left + j] for samples
    [first, last), 0 outside x: the input patches at one output position. (Indices, not
    slices: a view per row of taps cost more than the copy.)"""
    _, channels, h, w = x.shape
    zero = patches.dtype.type(0)
    lo, hi = max(0, -left), max(0, min(kw, w - left))      # the taps j inside the row
    for s in range(first, last):
        for c in range(channels):
            for i in range(kh):
                start = at + (c * kh + i) * kw
                if top + i < 0 or top + i >= h:
                    for j in range(kw):
                        patches[s, start + j] = zero
                    continue
                for j in range(min(lo, kw)):
                    patches[s, start + j] = zero
                for j in range(lo, hi):
                    patches[s, start + j] = x[s, c, top + i, left + j]
                for j in range(max(lo, hi), kw):
                    patches[s, start + j] = zero


@njit(cache=True)
def _scatter_add(patches, dx, first, last, top, left, kh, kw):
    """dx[s, c, top + i, left + j] += patches[s, (c*kh + i)*kw + j] inside dx, for samples
    [first, last): the adjoint of _gather at `at` 0."""
    _, channels, h, w = dx.shape
    lo, hi = max(0, -left), min(kw, w - left)
    for s in range(first, last):
        for c in range(channels):
            for i in range(kh):
                if top + i < 0 or top + i >= h:
                    continue
                start = (c * kh + i) * kw
                for j in range(lo, hi):
                    dx[s, c, top + i, left + j] += patches[s, start + j]


@chunk_kernel
def _locally_connected_fwd(t, chunks, x, weight, bias, y, patches, rows, stride_h, stride_w,
                           pad_top, pad_left, has_bias):
    n = x.shape[0]
    oh, ow, out, channels, kh, kw = weight.shape
    size = channels * kh * kw
    at, row_at = t * size, t * out
    lo, hi = span(t, chunks, oh * ow)
    for p in range(lo, hi):
        r, q = p // ow, p % ow
        _gather(x, patches, at, 0, n, r * stride_h - pad_top, q * stride_w - pad_left, kh, kw)
        gemm(False, True, n, out, size, 1.0, patches[:, at:], patches.shape[1], weight[r, q],
             size, 0.0, rows[:, row_at:], rows.shape[1])
        for o in range(out):
            b = bias[(o * oh + r) * ow + q] if has_bias else bias.dtype.type(0)
            for s in range(n):
                y[s, o, r, q] = rows[s, row_at + o] + b


@chunk_kernel
def _locally_connected_wgrad(t, chunks, x, dy, weight_grad, bias_grad, patches, rows,
                             stride_h, stride_w, pad_top, pad_left, has_bias, need_dw):
    """The weight gradient (when `need_dw`: dW = dy^T patches) and the bias gradient (when
    `has_bias`) at chunk t's positions."""
    n = x.shape[0]
    oh, ow, out, channels, kh, kw = weight_grad.shape
    size = channels * kh * kw
    at, row_at = t * size, t * out
    lo, hi = span(t, chunks, oh * ow)
    for p in range(lo, hi):
        r, q = p // ow, p % ow
        for s in range(n):
            for o in range(out):
                rows[s, row_at + o] = dy[s, o, r, q]
        if need_dw:
            _gather(x, patches, at, 0, n, r * stride_h - pad_top, q * stride_w - pad_left, kh,
                    kw)
            gemm(True, False, out, size, n, 1.0, rows[:, row_at:], rows.shape[1],
                 patches[:, at:], patches.shape[1], 0.0, weight_grad[r, q], size)
        if has_bias:
            for o in range(out):
                total = bias_grad.dtype.type(0)
                for s in range(n):
                    total += rows[s, row_at + o]
                bias_grad[(o * oh + r) * ow + q] = total


@chunk_kernel
def _locally_connected_dgrad(t, chunks, weight, dy, dx, patches, rows, stride_h, stride_w,
                             pad_top, pad_left):
    """The input gradient of chunk t's samples: at each position, the patches' gradient
    dy W added back at the patches' pixels."""
    oh, ow, out, channels, kh, kw = weight.shape
    size = channels * kh * kw
    lo, hi = span(t, chunks, dx.shape[0])
    if hi == lo:
        return
    dx[lo:hi] = 0
    for p in range(oh * ow):
        r, q = p // ow, p % ow
        for s in range(lo, hi):
            for o in range(out):
                rows[s, o] = dy[s, o, r, q]
        gemm(False, False, hi - lo, size, out, 1.0, rows[lo:], rows.shape[1], weight[r, q],
             size, 0.0, patches[lo:], patches.shape[1])
        _scatter_add(patches, dx, lo, hi, r * stride_h - pad_top, q * stride_w - pad_left,
                     kh, kw)


def _chunks(x, weight, patches) -> int:
    """As many chunks as the workspace has room for (the lowering's), unless the GEMMs are too
    small to hand to another thread (a multiply-add counts as 1/8 of an element-wise item, as
    in dense). Never one per thread: OpenBLAS sums in an order that depends on a GEMM's shape."""
    size = weight.shape[3] * weight.shape[4] * weight.shape[5]
    return cut(x.shape[0] * weight.size // 8, patches.shape[1] // size)


def locally_connected_fwd_cpu(x, weight, bias, y, patches, rows, stride_h, stride_w, pad_top,
                              pad_left, has_bias) -> None:
    run_chunks(_locally_connected_fwd, _chunks(x, weight, patches), x, weight, bias, y, patches,
               rows, stride_h, stride_w, pad_top, pad_left, has_bias)


def locally_connected_bwd_cpu(x, weight, dy, dx, weight_grad, bias_grad, patches, rows, need_dx,
                              need_dw, stride_h, stride_w, pad_top, pad_left, has_bias) -> None:
    chunks = _chunks(x, weight, patches)
    if need_dw or has_bias:
        run_chunks(_locally_connected_wgrad, chunks, x, dy, weight_grad, bias_grad, patches,
                   rows, stride_h, stride_w, pad_top, pad_left, has_bias, need_dw)
    if need_dx:
        run_chunks(_locally_connected_dgrad, chunks, weight, dy, dx, patches, rows, stride_h,
                   stride_w, pad_top, pad_left)
