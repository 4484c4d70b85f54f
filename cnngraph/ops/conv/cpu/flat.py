"""conv by flat columns, on the CPU.

im2col's copies go through a table per output pixel (kernels/cpu/im2col.py), and cost as much
as the GEMMs when there are few output channels. So the sample is first copied into zero-padded
planes, split into stride phases and stored flat (`plane_width` values a row), where each column
row is one contiguous slice, and the GEMMs run on (oh-1)*wp + ow columns instead of oh*ow: the
wp - ow extra columns per output row are computed and dropped (choose.py says when that pays).
"""
from __future__ import annotations

import numpy as np

from ....kernels.cpu.blas import gemm
from ....kernels.cpu.chunks import chunk_kernel, run_chunks, run_samples, span
from ....kernels.cpu.im2col import flat_col2im, flat_im2col, gather, pad, spread
from ...pointwise.cpu import activate_all
from .gradients import add_sums, before_activation, sum_parts


@chunk_kernel
def _flat_fwd(t, chunks, x, w, b, y, planes, cols, flat_y, sh, sw, pt, pl, dh, dw, wp, groups,
              has_bias, act, act_arg):
    """Chunk t of the batch with flat columns: planes[t] holds the padded input's phases,
    cols[t] its columns, flat_y[t] the flat output."""
    out_c, _, kh, kw = w.shape
    oh, ow = y.shape[2], y.shape[3]
    length = (oh - 1) * wp + ow
    k, og = w.shape[1] * kh * kw, out_c // groups
    plane, col, out = planes[t, 0], cols[t], flat_y[t]
    plane[:] = 0
    lo, hi = span(t, chunks, x.shape[0])
    for n in range(lo, hi):
        spread(x[n], plane, pt, pl, sh, sw, wp)
        flat_im2col(plane, col, kh, kw, sh, sw, dh, dw, wp)
        for g in range(groups):
            gemm(False, False, og, length, k, 1.0, w[g * og:], k, col[g * k:], length, 0.0,
                 out[g * og:], length)
        for o in range(out_c):
            shift = b[o] if has_bias else b.dtype.type(0)
            for r in range(oh):
                src = out[o, r * wp:r * wp + ow]
                dst = y[n, o, r]
                for i in range(ow):
                    dst[i] = src[i] + shift
        if act != 0:
            activate_all(y[n].reshape(-1), act, act_arg)


@chunk_kernel
def _flat_bwd(t, chunks, x, w, y, dy, dx, planes, cols, flat_y, raw, parts, bias_parts, sh, sw,
              pt, pl, dh, dw, wp, groups, has_bias, act, act_arg, need_dx, need_dw):
    """Chunk t of the batch with flat columns: its grad input (when `need_dx`), and its shares
    of the weight gradient (when `need_dw`) and of the bias gradient (when `has_bias`) in
    parts[t] and bias_parts[t]. A fused activation's derivative (from the output y) turns each
    sample's dy into raw[t] first. flat_y[t] holds that gradient flat, zero in the dropped
    columns; planes[t, 0] the padded input's phases, planes[t, 1] those of the padded input
    gradient."""
    out_c, _, kh, kw = w.shape
    oh, ow = dy.shape[2], dy.shape[3]
    length = (oh - 1) * wp + ow
    k, og = w.shape[1] * kh * kw, out_c // groups
    plane, grad_plane, col, grad = planes[t, 0], planes[t, 1], cols[t], flat_y[t]
    part, bias_part = parts[t], bias_parts[t]
    plane[:] = 0
    grad[:] = 0
    if need_dw:
        part[:] = 0
    bias_part[:] = 0
    lo, hi = span(t, chunks, x.shape[0])
    for n in range(lo, hi):
        if need_dw:           # the input's columns: the input gradient only writes them
            spread(x[n], plane, pt, pl, sh, sw, wp)
            flat_im2col(plane, col, kh, kw, sh, sw, dh, dw, wp)
        sample = dy[n]
        if act != 0:
            sample = raw[t]
            before_activation(sample.reshape(-1), dy[n].reshape(-1), y[n].reshape(-1), act,
                              act_arg)
        if has_bias:
            add_sums(bias_part, sample)
        pad(sample, grad, np.intp(0), np.intp(0), wp)  # (typed as the other calls: one pad)
        if need_dw:
            for g in range(groups):
                gemm(False, True, k, og, length, 1.0, col[g * k:], length, grad[g * og:],
                     length, 1.0, part[g], og)
        if need_dx:
            for g in range(groups):
                gemm(True, False, k, length, og, 1.0, w[g * og:], k, grad[g * og:], length, 0.0,
                     col[g * k:], length)
            flat_col2im(col, grad_plane, kh, kw, sh, sw, dh, dw, wp)
            gather(grad_plane, dx[n], pt, pl, sh, sw, wp)


def conv_flat_fwd_cpu(x, weight, bias, y, planes, cols, flat_y, stride_h, stride_w, pad_top,
                      pad_left, dilation_h, dilation_w, plane_width, groups, has_bias, act,
                      act_arg) -> None:
    run_samples(_flat_fwd, planes.shape[0], x.shape[0], x, weight, bias, y, planes, cols,
                flat_y, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w,
                plane_width, groups, has_bias, act, act_arg)


def conv_flat_bwd_cpu(x, weight, y, dy, dx, weight_grad, bias_grad, planes, cols, flat_y, raw,
                      parts, bias_parts, need_dx, need_dw, stride_h, stride_w, pad_top,
                      pad_left, dilation_h, dilation_w, plane_width, groups, has_bias, act,
                      act_arg) -> None:
    """y is read only with a fused activation (act != 0)."""
    chunks = parts.shape[0]
    run_chunks(_flat_bwd, chunks, x, weight, y, dy, dx, planes, cols, flat_y, raw, parts,
               bias_parts, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w,
               plane_width, groups, has_bias, act, act_arg, need_dx, need_dw)
    run_chunks(sum_parts, chunks, parts, bias_parts, weight_grad, bias_grad, need_dw, has_bias)
