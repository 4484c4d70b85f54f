"""conv on CUDA: three implicit GEMMs, no column matrix in memory.

Forward:      y[n, g*og + o, r, q] = sum over (c, i, j) W[o, c, i, j] x[n, c, r*s - p + i*d, ...]
              (M = out channels per group, N = batch x output pixels, K = C/g x KH x KW),
              the bias and a fused activation (cnngraph/passes/fuse.py) applied in the store.
Grad input:   dx[n, c, h, w] = sum over (o, i, j) W[o, c, i, j] dy[n, o, (h + p - i*d) / s, ...]
              where the division is exact (M = C/g, N = batch x input pixels, K = og x KH x KW):
              a gather, so every dx element is written once, without atomics.
Grad weight:  dW[o, (c, i, j)] = sum over (n, r, q) of dy x (M = og, N = C/g x KH x KW,
              K = batch x output pixels), split along K into partial products when M x N is
              too small to fill the GPU, then summed in order. The bias gradient is a
              per-channel tree reduction of dy.
"""
from __future__ import annotations

from ...kernels.cuda.gemm import gemm_kernel, launch, split_count
from ...kernels.cuda.launch import instantiate
from ...kernels.cuda.support import channel_sum_cuda, sum_splits_cuda
from ..pointwise.cuda import ACTIVATE

_INPUT_PIXEL = """
c = {c} // (kh * kw)
i = ({c} // kw) % kh
j = {c} % kw
h = r * sh - pt + i * dh
v = q * sw - pl + j * dw
if 0 <= h < x.shape[2] and 0 <= v < x.shape[3]:
    value = x[nb, g * ({cols} // (kh * kw)) + c, h, v]
"""

FORWARD = gemm_kernel(
    "conv_fwd", "x, w2, b, y, kh, kw, sh, sw, pt, pl, dh, dw, has_bias, act, act_arg",
    a_load="value = w2[g * M + m, k]",
    b_load=("""
        nb = n // (y.shape[2] * y.shape[3])
        r = n % (y.shape[2] * y.shape[3]) // y.shape[3]
        q = n % y.shape[3]
        """, _INPUT_PIXEL.format(c="k", cols="K")),
    store="""
        o = g * M + m
        if has_bias:
            value += b[o]
        value = activate(value, act, act_arg)
        pix = n % (y.shape[2] * y.shape[3])
        y[n // (y.shape[2] * y.shape[3]), o, pix // y.shape[3], pix % y.shape[3]] = value
        """)

GRAD_INPUT = gemm_kernel(
    "conv_dgrad", "dy, w, dx, kh, kw, sh, sw, pt, pl, dh, dw",
    a_load="value = w[g * (K // (kh * kw)) + k // (kh * kw), m, (k // kw) % kh, k % kw]",
    b_load="""
        pix = n % (dx.shape[2] * dx.shape[3])
        rr = pix // dx.shape[3] + pt - (k // kw) % kh * dh
        qq = pix % dx.shape[3] + pl - k % kw * dw
        if rr >= 0 and qq >= 0 and rr % sh == 0 and qq % sw == 0:
            if rr // sh < dy.shape[2] and qq // sw < dy.shape[3]:
                value = dy[n // (dx.shape[2] * dx.shape[3]),
                           g * (K // (kh * kw)) + k // (kh * kw), rr // sh, qq // sw]
        """,
    store="""
        pix = n % (dx.shape[2] * dx.shape[3])
        dx[n // (dx.shape[2] * dx.shape[3]), g * M + m, pix // dx.shape[3],
           pix % dx.shape[3]] = value
        """)

GRAD_WEIGHT = gemm_kernel(
    "conv_wgrad", "dy, x, parts, kh, kw, sh, sw, pt, pl, dh, dw",
    a_load="""
        pix = k % (dy.shape[2] * dy.shape[3])
        value = dy[k // (dy.shape[2] * dy.shape[3]), g * M + m, pix // dy.shape[3],
                   pix % dy.shape[3]]
        """,
    b_load=("""
        nb = k // (dy.shape[2] * dy.shape[3])
        r = k % (dy.shape[2] * dy.shape[3]) // dy.shape[3]
        q = k % dy.shape[3]
        """, _INPUT_PIXEL.format(c="n", cols="N")),
    store="parts[s, g * M + m, n] = value",
    b_fast="k")

KERNELS = instantiate(ACTIVATE + FORWARD + GRAD_INPUT + GRAD_WEIGHT, "conv")


def conv_fwd_cuda(x, weight, bias, y, stride_h, stride_w, pad_top, pad_left, dilation_h,
                  dilation_w, groups, has_bias, act, act_arg) -> None:
    """y = activation(conv(x) + bias); `act` is the fused activation's code (0: none)."""
    out_c, cg, kh, kw = weight.shape
    k = KERNELS[x.dtype]
    launch(k.conv_fwd, (x, weight.reshape(out_c, cg * kh * kw), bias, y, kh, kw, stride_h,
                        stride_w, pad_top, pad_left, dilation_h, dilation_w, has_bias, act,
                        x.dtype.type(act_arg)),
           out_c // groups, x.shape[0] * y.shape[2] * y.shape[3], cg * kh * kw, groups)


def conv_bwd_cuda(x, weight, dy, dx, weight_grad, bias_grad, parts, need_dx, need_dw, stride_h,
                  stride_w, pad_top, pad_left, dilation_h, dilation_w, groups, has_bias) -> None:
    """The weight gradient only when `need_dw`, the bias gradient only when `has_bias`."""
    out_c, cg, kh, kw = weight.shape
    og, cols, pixels = out_c // groups, cg * kh * kw, x.shape[0] * dy.shape[2] * dy.shape[3]
    k = KERNELS[x.dtype]
    geometry = (kh, kw, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w)
    if need_dw:
        splits = split_count(og, cols, pixels, groups, parts.shape[0])
        launch(k.conv_wgrad, (dy, x, parts.reshape(parts.shape[0], out_c, cols), *geometry), og,
               cols, pixels, groups, splits)
        sum_splits_cuda(parts, weight_grad, splits)
    if has_bias:
        channel_sum_cuda(dy, bias_grad)
    if need_dx:
        launch(k.conv_dgrad, (dy, weight, dx, *geometry), cg,
               x.shape[0] * x.shape[2] * x.shape[3], og * kh * kw, groups)
