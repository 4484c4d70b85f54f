"""conv on flat planes, on the CPU: direct, register-tiled products (kernels/cpu/direct.py).

The sample is first copied into zero-padded planes, split into stride phases and stored flat
(`plane_width` values a row), where each column row of im2col is one contiguous slice, at an
offset that depends on its tap alone. The micro-kernels read those slices in place, with no
column matrix: the outputs (`direct_tile`), the weight gradient (`direct_sums`) and, with stride
1, the input gradient, itself a direct convolution of dy. They run on (oh-1)*wp + ow positions
instead of oh*ow: the wp - ow extra positions per output row are computed and dropped (choose.py
says when that pays). Strided convs' input gradients scatter W^T dy's columns (a GEMM).

LeNet's convs, forward / backward, batch 256, 2 threads, against the im2col and OpenBLAS GEMMs
these ran before: conv1 2.5-2.8 / 2.9-3.3 -> 1.1-1.2 / 1.4 ms, conv2 3.7-4.1 / 5.2-5.8 ->
1.5 / 3.5 ms (bench/results/kernels.md).

Forward chunks cut the batch; a batch smaller than the chunks (batch-1 inference) is cut by
output channels instead, where the work is worth a helper thread (MobileNet's first conv at
224x224; LeNet's run on the calling thread): the sample's planes are written once, and each
chunk's rows of the products read them.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ....kernels.cpu.blas import gemm
from ....kernels.cpu.chunks import chunk_kernel, cut, run_chunks, run_samples, span
from ....kernels.cpu.direct import direct_sums, direct_tile, fold_lanes
from ....kernels.cpu.im2col import flat_col2im, flat_offsets, gather, pad, spread
from ...pointwise.cpu import activate_all
from .gradients import add_sums, before_activation, sum_parts


@chunk_kernel
def _flat_fwd(t, chunks, x, w, b, y, planes, offsets, flat_y, sh, sw, pt, pl, dh, dw, wp, groups,
              has_bias, act, act_arg):
    """Chunk t of the batch, directly on the flat planes: planes[t, 0] holds the padded
    input's phases, read through the column rows' offsets[t] (no columns are copied: the
    products run in `direct_tile`), flat_y[t] the flat output."""
    out_c, _, kh, kw = w.shape
    oh, ow = y.shape[2], y.shape[3]
    length = (oh - 1) * wp + ow
    k, og = w.shape[1] * kh * kw, out_c // groups
    plane, taps, out = planes[t, 0], offsets[t], flat_y[t]
    weights = w.reshape(out_c, k)
    plane[:] = 0
    flat_offsets(taps, kh, kw, sh, sw, dh, dw, wp, plane.shape[1])
    lo, hi = span(t, chunks, x.shape[0])
    for n in range(lo, hi):
        spread(x[n], plane, pt, pl, sh, sw, wp)
        for g in range(groups):
            direct_tile(out, weights, g * og, og, plane.reshape(-1), taps, g * k, length)
        _unflatten(out, y, n, 0, out_c, b, has_bias, wp, act, act_arg)


@njit(cache=True, nogil=True)
def _sample_planes(x, n, plane, taps, kh, kw, sh, sw, pt, pl, dh, dw, wp):
    """Sample n's padded phases in `plane`, where the column rows start in `taps`."""
    plane[:] = 0
    flat_offsets(taps, kh, kw, sh, sw, dh, dw, wp, plane.shape[1])
    spread(x[n], plane, pt, pl, sh, sw, wp)


@chunk_kernel
def _flat_fwd_channels(t, chunks, x, w, b, y, n, plane, taps, flat_y, wp, has_bias, act,
                       act_arg):
    """Chunk t of sample n's output channels (one group), from its phases in `plane` (column
    rows at `taps`): their products in their rows of flat_y[t], then bias and activation."""
    out_c = w.shape[0]
    oh, ow = y.shape[2], y.shape[3]
    lo, hi = span(t, chunks, out_c)
    if hi == lo:
        return
    out = flat_y[t]
    direct_tile(out, w.reshape(out_c, w.size // out_c), lo, hi - lo, plane.reshape(-1), taps,
                0, (oh - 1) * wp + ow)
    _unflatten(out, y, n, lo, hi, b, has_bias, wp, act, act_arg)


@njit(cache=True, inline="always")
def _unflatten(flat, y, n, lo, hi, b, has_bias, wp, act, act_arg):
    """y[n, lo:hi] = the flat output's rows (wp apart, the positions between them dropped)
    plus bias, then the activation."""
    oh, ow = y.shape[2], y.shape[3]
    for o in range(lo, hi):
        shift = b[o] if has_bias else b.dtype.type(0)
        for r in range(oh):
            src, dst = flat[o, r * wp:r * wp + ow], y[n, o, r]
            for i in range(ow):
                dst[i] = src[i] + shift
    if act != 0:
        activate_all(y[n, lo:hi].reshape(-1), act, act_arg)


def _flat_bwd_of(stride_one: bool):
    """The backward chunk kernel of flat convs with stride 1 (`stride_one`, a constant Numba
    prunes the other branch by) or a larger one: a network compiles the input gradients its
    convs take, not both (a one-conv network's cold first step: 19.8 s with both, 16.4 with
    the stride-1 one alone)."""

    @chunk_kernel
    def flat_bwd(t, chunks, x, w, y, dy, dx, planes, offsets, flat_y, sums, cols, margins,
                 flipped, flipped_offsets, raw, parts, bias_parts, sh, sw, pt, pl, dh, dw, wp,
                 groups, has_bias, act, act_arg, need_dx, need_dw):
        """Chunk t of the batch on flat planes: its grad input (when `need_dx`), and its shares
        of the weight gradient (when `need_dw`) and of the bias gradient (when `has_bias`) in
        parts[t] and bias_parts[t]. A fused activation's derivative (from the output y) turns
        each sample's dy into raw[t] first. flat_y[t] holds that gradient flat, zero in the dropped
        columns; planes[t, 0] the padded input's phases, planes[t, 1] those of the padded input
        gradient.

        The weight gradient sums dy times the input's slices read in place (`direct_sums`), in
        vectors (sums[t]) until the chunk's last sample. With stride 1 the input gradient is
        itself a direct convolution (`direct_tile`): of the flat gradient, between zero margins
        (margins[t]), with the weights' taps transposed (flipped[t], read through
        flipped_offsets[t]). Strided convs scatter W^T dy's columns (cols[t])."""
        out_c, _, kh, kw = w.shape
        oh, ow = dy.shape[2], dy.shape[3]
        length = (oh - 1) * wp + ow
        k, og = w.shape[1] * kh * kw, out_c // groups
        plane, grad_plane, taps, grad = planes[t, 0], planes[t, 1], offsets[t], flat_y[t]
        part, bias_part = parts[t], bias_parts[t]
        plane[:] = 0
        grad[:] = 0
        if need_dw:
            part[:] = 0
            sums[t] = 0
            flat_offsets(taps, kh, kw, sh, sw, dh, dw, wp, plane.shape[1])
        bias_part[:] = 0
        margin = margins.shape[2] - grad_plane.shape[1]
        if stride_one:
            if need_dx:
                margins[t] = 0
                _flip_taps(w, flipped[t], flipped_offsets[t], dh, dw, wp, margin,
                           margins.shape[2])
        lo, hi = span(t, chunks, x.shape[0])
        for n in range(lo, hi):
            sample = dy[n]
            if act != 0:
                sample = raw[t]
                before_activation(sample.reshape(-1), dy[n].reshape(-1), y[n].reshape(-1), act,
                                  act_arg)
            if has_bias:
                add_sums(bias_part, sample)
            pad(sample, grad, np.intp(0), np.intp(0), wp)  # (typed as the other calls: one pad)
            if need_dw:           # the input's phases: the weight gradient alone reads them
                spread(x[n], plane, pt, pl, sh, sw, wp)
                for g in range(groups):
                    direct_sums(sums[t, g], grad[g * og:(g + 1) * og], plane.reshape(-1),
                                taps[g * k:(g + 1) * k], length)
            if not need_dx:
                continue
            if stride_one:
                between = margins[t]
                for o in range(out_c):
                    row, values = between[o, margin:margin + length], grad[o]
                    for i in range(length):      # (a slice assignment compiled for seconds)
                        row[i] = values[i]
                for g in range(groups):
                    direct_tile(grad_plane, flipped[t], g * w.shape[1], w.shape[1],
                                between.reshape(-1), flipped_offsets[t], g * og * kh * kw,
                                grad_plane.shape[1])
            else:
                col = cols[t]
                for g in range(groups):
                    gemm(True, False, k, length, og, 1.0, w[g * og:], k, grad[g * og:], length,
                         0.0, col[g * k:], length)
                flat_col2im(col, grad_plane, kh, kw, sh, sw, dh, dw, wp)
            gather(grad_plane, dx[n], pt, pl, sh, sw, wp)
        if need_dw:
            for g in range(groups):
                fold_lanes(sums[t, g], part[g])
    return flat_bwd


_FLAT_BWD = {stride_one: _flat_bwd_of(stride_one) for stride_one in (True, False)}


@njit(cache=True)
def _flip_taps(w, flipped, offsets, dh, dw, wp, margin, row):
    """The stride-1 input gradient as a direct convolution: padded input gradient
    dP[c, q] = sum over o, taps (ky, kx) of w[o, c, ky, kx] * dy_flat[o, q - off(ky, kx)],
    off = ky*dh*wp + kx*dw, with dy_flat's rows `row` values apart and `margin` zeros before
    them. So flipped[c, j*taps + tap] = w[g*og + j, c - g*cg, tap] for input channel c of group
    g, read at offsets[(g*og + j)*taps + tap] = (g*og + j)*row + margin - off."""
    out_c, cg, kh, kw = w.shape
    taps = kh * kw
    og = flipped.shape[1] // taps
    for o in range(out_c):
        g, j = divmod(o, og)
        for ky in range(kh):
            for kx in range(kw):
                tap = ky * kw + kx
                offsets[o * taps + tap] = o * row + margin - (ky * dh * wp + kx * dw)
                for c in range(cg):
                    flipped[g * cg + c, j * taps + tap] = w[o, c, ky, kx]


def conv_flat_fwd_cpu(x, weight, bias, y, planes, offsets, flat_y, stride_h, stride_w, pad_top,
                      pad_left, dilation_h, dilation_w, plane_width, groups, has_bias, act,
                      act_arg) -> None:
    chunks = planes.shape[0]
    by_channels = cut(weight.size * y.shape[2] * y.shape[3] // 8, chunks)
    if x.shape[0] < chunks and groups == 1 and by_channels > 1:
        _, _, kh, kw = weight.shape
        for n in range(x.shape[0]):
            _sample_planes(x, n, planes[0, 0], offsets[0], kh, kw, stride_h, stride_w, pad_top,
                           pad_left, dilation_h, dilation_w, plane_width)
            run_chunks(_flat_fwd_channels, by_channels, x, weight, bias, y, n, planes[0, 0],
                       offsets[0], flat_y, plane_width, has_bias, act, act_arg)
        return
    run_samples(_flat_fwd, chunks, x.shape[0], x, weight, bias, y, planes, offsets, flat_y,
                stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w, plane_width,
                groups, has_bias, act, act_arg)


def conv_flat_bwd_cpu(x, weight, y, dy, dx, weight_grad, bias_grad, planes, offsets, flat_y,
                      sums, cols, margins, flipped, flipped_offsets, raw,
                      parts, bias_parts, need_dx, need_dw, stride_h, stride_w, pad_top,
                      pad_left, dilation_h, dilation_w, plane_width, groups, has_bias, act,
                      act_arg) -> None:
    """y is read only with a fused activation (act != 0)."""
    chunks = parts.shape[0]
    run_chunks(_FLAT_BWD[stride_h == 1 and stride_w == 1], chunks, x, weight, y, dy, dx, planes,
               offsets, flat_y, sums, cols, margins, flipped, flipped_offsets, raw, parts,
               bias_parts, stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w,
               plane_width, groups, has_bias, act, act_arg, need_dx, need_dw)
    run_chunks(sum_parts, chunks, parts, bias_parts, weight_grad, bias_grad, need_dw, has_bias)
