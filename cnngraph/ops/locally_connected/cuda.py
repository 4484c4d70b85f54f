"""locally_connected on CUDA: direct kernels, one thread per element written, so no thread
writes what another does and nothing is summed afterwards. Forward, per output element: its
position's weight against its input patch. Weight and bias gradients, per element: a sum over
the batch. Input gradient, per input pixel: over the output positions whose windows hold it.
The bias and its gradient arrive flat, (out, H_out, W_out); `zero` in the arrays' dtype."""
from __future__ import annotations

from numba import cuda

from ...kernels.cuda.launch import blocks, run


@cuda.jit(cache=True)
def locally_connected_fwd(x, weight, bias, y, stride_h, stride_w, pad_top, pad_left, has_bias,
                          zero):
    _, channels, h, w = x.shape
    oh, ow, out, _, kh, kw = weight.shape
    for e in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        s, o, r, q = e // (out * oh * ow), e // (oh * ow) % out, e // ow % oh, e % ow
        total = bias[e % (out * oh * ow)] if has_bias else zero
        for c in range(channels):
            for i in range(kh):
                row = r * stride_h - pad_top + i
                if row < 0 or row >= h:
                    continue
                for j in range(kw):
                    col = q * stride_w - pad_left + j
                    if col >= 0 and col < w:
                        total += x[s, c, row, col] * weight[r, q, o, c, i, j]
        y[s, o, r, q] = total


@cuda.jit(cache=True)
def locally_connected_wgrad(x, dy, weight_grad, stride_h, stride_w, pad_top, pad_left, zero):
    n, _, h, w = x.shape
    oh, ow, out, channels, kh, kw = weight_grad.shape
    for e in range(cuda.grid(1), weight_grad.size, cuda.gridsize(1)):
        taps = channels * kh * kw
        r, q, o = e // (ow * out * taps), e // (out * taps) % ow, e // taps % out
        c, i, j = e // (kh * kw) % channels, e // kw % kh, e % kw
        row, col = r * stride_h - pad_top + i, q * stride_w - pad_left + j
        total = zero
        if row >= 0 and row < h and col >= 0 and col < w:
            for s in range(n):
                total += dy[s, o, r, q] * x[s, c, row, col]
        weight_grad[r, q, o, c, i, j] = total


@cuda.jit(cache=True)
def locally_connected_bgrad(dy, bias_grad, zero):
    n, out, oh, ow = dy.shape
    for e in range(cuda.grid(1), bias_grad.size, cuda.gridsize(1)):
        o, r, q = e // (oh * ow), e // ow % oh, e % ow
        total = zero
        for s in range(n):
            total += dy[s, o, r, q]
        bias_grad[e] = total


@cuda.jit(cache=True)
def locally_connected_dgrad(weight, dy, dx, stride_h, stride_w, pad_top, pad_left, zero):
    _, channels, h, w = dx.shape
    oh, ow, out, _, kh, kw = weight.shape
    for e in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        s, c, row, col = e // (channels * h * w), e // (h * w) % channels, e // w % h, e % w
        total = zero
        for i in range(kh):
            span_h = row + pad_top - i          # r * stride_h, for the position r reading it
            if span_h < 0 or span_h % stride_h != 0 or span_h // stride_h >= oh:
                continue
            r = span_h // stride_h
            for j in range(kw):
                span_w = col + pad_left - j
                if span_w < 0 or span_w % stride_w != 0 or span_w // stride_w >= ow:
                    continue
                q = span_w // stride_w
                for o in range(out):
                    total += dy[s, o, r, q] * weight[r, q, o, c, i, j]
        dx[s, c, row, col] = total


def locally_connected_fwd_cuda(x, weight, bias, y, stride_h, stride_w, pad_top, pad_left,
                               has_bias) -> None:
    run(locally_connected_fwd, blocks(y.size), x, weight, bias, y, stride_h, stride_w, pad_top,
        pad_left, has_bias, x.dtype.type(0))


def locally_connected_bwd_cuda(x, weight, dy, dx, weight_grad, bias_grad, need_dx, need_dw,
                               stride_h, stride_w, pad_top, pad_left, has_bias) -> None:
    zero = x.dtype.type(0)
    if need_dw:
        run(locally_connected_wgrad, blocks(weight_grad.size), x, dy, weight_grad, stride_h,
            stride_w, pad_top, pad_left, zero)
    if has_bias:
        run(locally_connected_bgrad, blocks(bias_grad.size), dy, bias_grad, zero)
    if need_dx:
        run(locally_connected_dgrad, blocks(dx.size), weight, dy, dx, stride_h, stride_w,
            pad_top, pad_left, zero)
