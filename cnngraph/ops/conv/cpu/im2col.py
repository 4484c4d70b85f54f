"""conv by im2col + GEMM, per sample or per stack of samples, on the CPU.

Forward:      y[n, g] = W[g] (O/g x K) @ col[g] (K x OH*OW) + b
Grad weight:  dW[g]^T += col[g] @ dy[n, g]^T        Grad input: col[g] = W[g]^T @ dy[n, g]; col2im
A 1x1, stride-1, unpadded conv skips im2col: the input sample is already its column matrix
(stacked samples' rows are copied side by side, without padded planes or a table of pixels:
that copy through im2col's took as long as the GEMMs on 4x4 maps).
The columns come from the forward pass (`saved`, cols[n]) or are rebuilt in a workspace per
chunk (cols[t]); `stack` samples' columns side by side make one GEMM (choose.py says when).
A batch smaller than the chunks (batch-1 inference) is cut by output channels instead: each
sample's columns are built once, and each chunk multiplies its rows of the weights by them (in
OpenBLAS, or for a few rows and for 4x4 maps in the direct micro-kernels, kernels/cpu/direct.py).
"""
from __future__ import annotations

from numba import njit

from ....kernels.cpu.blas import gemm
from ....kernels.cpu.chunks import chunk_kernel, cut, run_chunks, span, split, threads
from ....kernels.cpu.direct import TILE_BYTES, direct_tile, tile_width
from ....kernels.cpu.im2col import (
    col2im,
    crop,
    im2col,
    pad,
    pixel_offsets,
    stack_rows,
    unstack_rows,
)
from ...pointwise.cpu import activate_all
from .gradients import add_sums, sum_parts

# one sample's products of few output channels: the direct micro-kernels (see _tiled_rows)
TILED_ROWS_UP_TO, TILED_FROM, TILED_BLOCK = 32, 128, 256


@njit(cache=True, inline="always")
def _is_pointwise(kh, kw, sh, sw, pt, pb, pl, pr):
    return kh == 1 and kw == 1 and sh == 1 and sw == 1 and pt == 0 and pb == 0 and pl == 0 \
        and pr == 0


@njit(cache=True, inline="always")
def _sizes(x, w, y, groups):
    """Batch, out channels, kernel, output size, GEMM K, out channels per group, output
    pixels."""
    out_c, _, kh, kw = w.shape
    oh, ow = y.shape[2], y.shape[3]
    return x.shape[0], out_c, kh, kw, oh, ow, w.shape[1] * kh * kw, out_c // groups, oh * ow


@chunk_kernel
def _conv_fwd(t, chunks, x, w, b, y, planes, offsets, cols, stage, saved, stack, sh, sw, pt, pb,
              pl, pr, dh, dw, groups, has_bias, act, act_arg):
    """Chunk t of the batch, `stack` samples per GEMM. The padded input goes to planes[t, 0],
    columns to cols[n] when `saved`, else to workspace cols[t]; stacked samples' outputs land in
    stage[t] and are copied out. A fused activation (code `act`) is applied to each sample's
    output while it is in cache."""
    n_batch, out_c, kh, kw, oh, ow, k, og, hw = _sizes(x, w, y, groups)
    pointwise = _is_pointwise(kh, kw, sh, sw, pt, pb, pl, pr)
    direct = pointwise and stack == 1
    width = stack * hw                # the column matrices' row length
    wp = x.shape[3] + pl + pr
    padded, first_taps = planes[t, 0], offsets[t, :hw]
    if not pointwise:
        padded[:] = 0                 # the padding; samples overwrite the rest
        pixel_offsets(first_taps, oh, ow, sh, sw, wp)
    lo, hi = span(t, chunks, n_batch)
    for n in range(lo, hi, stack):
        m = min(stack, hi - n)
        col = cols[n] if saved else cols[t]
        src = x[n].reshape(x.shape[1], hw) if direct else col
        if not direct:
            for s in range(m):
                if pointwise:
                    stack_rows(x[n + s].reshape(x.shape[1], hw), col, s * hw)
                else:
                    pad(x[n + s], padded, pt, pl, wp)
                    im2col(padded, first_taps, col, s * hw, kh, kw, dh, dw, wp)
        out = y[n].reshape(out_c, hw) if stack == 1 else stage[t]
        for g in range(groups):
            gemm(False, False, og, m * hw, k, 1.0, w[g * og:], k, src[g * k:], width, 0.0,
                 out[g * og:], width)
        if stack > 1 or has_bias:
            # indices into one view per sample: a view per plane cost more than its copy on
            # 2x2 maps (measured: 0.79 of a 1024-channel layer's 7 ms, now 0.1)
            for s in range(m):
                sample = y[n + s].reshape(-1)
                for o in range(out_c):
                    shift = b[o] if has_bias else b.dtype.type(0)
                    if stack > 1:
                        for i in range(hw):
                            sample[o * hw + i] = out[o, s * hw + i] + shift
                    else:
                        for i in range(hw):
                            sample[o * hw + i] += shift
        if act != 0:
            for s in range(m):
                activate_all(y[n + s].reshape(-1), act, act_arg)


@chunk_kernel
def _sample_columns(t, chunks, x, y, n, planes, offsets, columns, sh, sw, pt, pl, pr, dh, dw,
                    kh, kw):
    """Chunk t of the input channels of sample n (not a 1x1 conv's): their rows of `columns`
    (K x OH*OW), their padded planes in planes[0, 0]."""
    oh, ow = y.shape[2], y.shape[3]
    hw, taps = oh * ow, kh * kw
    wp = x.shape[3] + pl + pr
    lo, hi = span(t, chunks, x.shape[1])
    padded, first_taps = planes[0, 0][lo:hi], offsets[t, :hw]
    padded[:] = 0
    pixel_offsets(first_taps, oh, ow, sh, sw, wp)
    pad(x[n][lo:hi], padded, pt, pl, wp)
    im2col(padded, first_taps, columns[lo * taps:hi * taps], 0, kh, kw, dh, dw, wp)


@chunk_kernel
def _conv_fwd_channels(t, chunks, x, w, b, y, n, src, offsets, tiled, has_bias, act, act_arg):
    """Chunk t of sample n's output channels (one group): their rows of the weights times the
    sample's columns `src` (K x OH*OW, rows `src.shape[1]` apart), then bias and activation.
    When `tiled`, by the direct micro-kernels (offsets[t] holds where each column row starts),
    else by OpenBLAS. The caller gives the micro-kernels chunks of at most TILED_ROWS_UP_TO
    channels on maps of TILED_FROM pixels and more, and maps of one tile's positions (4x4 in
    float32), where OpenBLAS's products run slow (one thread, float32, m x n x k: 12 x 3136 x
    96, a chunk of MobileNet v2's 1x1 conv on 56x56 maps, 0.34-0.48 ms against 0.15-0.19; 512 x
    16 x 4608, ResNet-18-CIFAR's 4x4 layers, 1.3-1.5 ms against 0.84-1.03). With more rows or
    longer column rows (7x7 and 8x8 maps), OpenBLAS was as fast or faster (ResNet-18-CIFAR's
    8x8 layers: 0.65-0.75x by tiles)."""
    out_c, k = w.shape[0], src.shape[0]
    hw = y.shape[2] * y.shape[3]
    lo, hi = span(t, chunks, out_c)
    if hi == lo:
        return
    out = y[n].reshape(out_c, hw)
    if tiled:
        rows = offsets[t, :k]
        for r in range(k):
            rows[r] = r * src.shape[1]
        _tiled_rows(out, w.reshape(out_c, k), b, lo, hi, src.reshape(-1), rows, hw, has_bias,
                    act, act_arg)
        return
    gemm(False, False, hi - lo, hw, k, 1.0, w[lo:], k, src, src.shape[1], 0.0, out[lo:], hw)
    if has_bias:
        for o in range(lo, hi):
            for i in range(hw):
                out[o, i] += b[o]
    if act != 0:
        activate_all(y[n, lo:hi].reshape(-1), act, act_arg)


@njit(cache=True, nogil=True)
def _tiled_rows(out, w, b, lo, hi, src, offsets, hw, has_bias, act, act_arg):
    """out[lo:hi] = w[lo:hi] times the column rows that start at `offsets` in `src`, plus
    bias, then the activation: by blocks of about TILED_BLOCK positions, whose columns stay in
    cache across the blocks of rows, and whose outputs are finished while they are."""
    width = tile_width(out)
    q0 = 0
    while q0 < hw:
        # a block no shorter than a tile: the last one takes the rest
        q1 = hw if hw - q0 < TILED_BLOCK + width else q0 + TILED_BLOCK
        direct_tile(out[:, q0:q1], w, lo, hi - lo, src[q0:], offsets, 0, q1 - q0)
        for o in range(lo, hi):
            row = out[o, q0:q1]
            if has_bias:
                for i in range(q1 - q0):
                    row[i] += b[o]
            if act != 0:
                activate_all(row, act, act_arg)
        q0 = q1


@chunk_kernel
def _conv_bwd(t, chunks, x, w, dy, dx, planes, offsets, cols, stage, saved, stack, parts,
              bias_parts, sh, sw, pt, pb, pl, pr, dh, dw, groups, has_bias, need_dx, need_dw):
    """Chunk t of the batch: its grad input (when `need_dx`), and its shares of the weight
    gradient (when `need_dw`) and of the bias gradient (when `has_bias`) in parts[t] and
    bias_parts[t]. Stacked samples' dy are gathered in stage[t]; planes[t, 0] holds the padded
    input, planes[t, 1] the padded input gradient."""
    n_batch, out_c, kh, kw, oh, ow, k, og, hw = _sizes(x, w, dy, groups)
    pointwise = _is_pointwise(kh, kw, sh, sw, pt, pb, pl, pr)
    direct = pointwise and stack == 1
    width = stack * hw
    wp = x.shape[3] + pl + pr
    padded, padded_grad, first_taps = planes[t, 0], planes[t, 1], offsets[t, :hw]
    if not pointwise:
        padded[:] = 0
        pixel_offsets(first_taps, oh, ow, sh, sw, wp)
    part, bias_part = parts[t], bias_parts[t]
    if need_dw:
        part[:] = 0
    bias_part[:] = 0
    lo, hi = span(t, chunks, n_batch)
    for n in range(lo, hi, stack):
        m = min(stack, hi - n)
        if has_bias:
            for s in range(m):
                add_sums(bias_part, dy[n + s])
        col = cols[n] if saved else cols[t]
        src = x[n].reshape(x.shape[1], hw) if direct else col
        if need_dw and not direct and not saved:   # the input gradient only writes columns
            for s in range(m):
                if pointwise:
                    stack_rows(x[n + s].reshape(x.shape[1], hw), col, s * hw)
                else:
                    pad(x[n + s], padded, pt, pl, wp)
                    im2col(padded, first_taps, col, s * hw, kh, kw, dh, dw, wp)
        grad = dy[n].reshape(out_c, hw) if stack == 1 else stage[t]
        if stack > 1:
            for s in range(m):
                stack_rows(dy[n + s].reshape(out_c, hw), grad, s * hw)
        if need_dw:
            for g in range(groups):
                gemm(False, True, k, og, m * hw, 1.0, src[g * k:], width, grad[g * og:], width,
                     1.0, part[g], og)
        if need_dx:
            target = dx[n].reshape(x.shape[1], hw) if direct else col
            for g in range(groups):
                gemm(True, False, k, m * hw, og, 1.0, w[g * og:], k, grad[g * og:], width, 0.0,
                     target[g * k:], width)
            for s in range(0 if direct else m):
                if pointwise:
                    unstack_rows(col, s * hw, dx[n + s].reshape(x.shape[1], hw))
                else:
                    col2im(col, s * hw, padded_grad, first_taps, kh, kw, dh, dw, wp)
                    crop(padded_grad, dx[n + s], pt, pl, wp)


def conv_fwd_cpu(x, weight, bias, y, planes, offsets, cols, stage, saved, stack, stride_h,
                 stride_w, pad_top, pad_left, dilation_h, dilation_w, pad_bottom, pad_right,
                 groups, has_bias, act, act_arg) -> None:
    chunks = stage.shape[0]
    if x.shape[0] < chunks and groups == 1 and not saved:
        _conv_fwd_by_channels(x, weight, bias, y, planes, offsets, cols, chunks, stride_h,
                              stride_w, pad_top, pad_bottom, pad_left, pad_right, dilation_h,
                              dilation_w, has_bias, act, act_arg)
        return
    run_chunks(_conv_fwd, stage.shape[0], x, weight, bias, y, planes, offsets, cols, stage,
               saved, stack, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right,
               dilation_h, dilation_w, groups, has_bias, act, act_arg)


def _conv_fwd_by_channels(x, weight, bias, y, planes, offsets, cols, chunks, sh, sw, pt, pb, pl,
                          pr, dh, dw, has_bias, act, act_arg) -> None:
    """A batch smaller than the chunks, sample by sample: its columns cut by input channels,
    then its output channels cut into the chunks (either as one chunk where the work is too
    small to share)."""
    out_c, c, kh, kw = weight.shape
    hw = y.shape[2] * y.shape[3]
    pointwise = _is_pointwise(kh, kw, sh, sw, pt, pb, pl, pr)
    for n in range(x.shape[0]):
        if pointwise:
            src = x[n].reshape(c, hw)
        else:
            # rows hw apart, not the workspace's stack * hw: the products read them as a tile
            src = cols[0].reshape(-1)[:c * kh * kw * hw].reshape(c * kh * kw, hw)
            run_chunks(_sample_columns, split(c * kh * kw * hw), x, y, n, planes, offsets, src,
                       sh, sw, pt, pl, pr, dh, dw, kh, kw)
        pieces = cut(weight.size * hw // 8, chunks)
        # The micro-kernels' sums do not depend on the rows a piece holds: where they take the
        # products (decided on the chunks' rows, never the thread count), one piece a thread
        # reads the columns once per thread, not once per chunk (chunks of 2 rows took 16 x
        # 12544 x 32 in 0.44 ms on one thread, one piece in 0.25).
        tiled = -(-out_c // pieces) <= TILED_ROWS_UP_TO and hw >= TILED_FROM or \
            hw == TILE_BYTES // y.itemsize
        run_chunks(_conv_fwd_channels, min(threads(), pieces) if tiled else pieces, x, weight,
                   bias, y, n, src, offsets, tiled, has_bias, act, act_arg)


def conv_bwd_cpu(x, weight, dy, dx, weight_grad, bias_grad, planes, offsets, cols, stage, parts,
                 bias_parts, need_dx, need_dw, saved, stack, stride_h, stride_w, pad_top,
                 pad_left, dilation_h, dilation_w, pad_bottom, pad_right, groups,
                 has_bias) -> None:
    chunks = parts.shape[0]
    run_chunks(_conv_bwd, chunks, x, weight, dy, dx, planes, offsets, cols, stage, saved, stack,
               parts, bias_parts, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right,
               dilation_h, dilation_w, groups, has_bias, need_dx, need_dw)
    run_chunks(sum_parts, chunks, parts, bias_parts, weight_grad, bias_grad, need_dw, has_bias)
