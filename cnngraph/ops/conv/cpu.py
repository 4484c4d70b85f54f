"""conv on the CPU: im2col + GEMM per sample (or Winograd, below), in parallel over fixed chunks
of the batch.

The batch is cut into one chunk per thread (kernels/cpu/chunks.py). Each chunk owns a partial
weight gradient; the partials are summed in chunk order, so results are bitwise reproducible
whichever thread runs which chunk.
Forward:      y[n, g] = W[g] (O/g x K) @ col[g] (K x OH*OW) + b
Grad weight:  dW[g]^T += col[g] @ dy[n, g]^T        Grad input: col[g] = W[g]^T @ dy[n, g]; col2im
A 1x1, stride-1, unpadded conv skips im2col: the input sample is already its column matrix.

Flat columns: im2col's copies go through a table per output pixel (kernels/cpu/im2col.py), and
cost as much as the GEMMs when there are few output channels. So the sample is first copied
into zero-padded planes, split into stride phases and stored flat, where each column row is one
contiguous slice, and the GEMMs run on (oh-1)*wp + ow columns instead of oh*ow: the wp - ow
extra columns per output row are computed and dropped. That extra work grows with the channels
while im2col's share shrinks, so flat columns are used while the extra work stays under
FLAT_UP_TO multiply-adds per output pixel and column row: the dropped columns' share of the
columns times the output channels per group (the figure in brackets below). Measured, GFLOP/s
forward / backward on 2 threads, flat columns against im2col's: LeNet's conv1 (1->6, 5x5,
28x28, batch 256; 0.8) 80 / 72 against 26 / 27; conv2 (6->16, 5x5, 10x10; 5.8) 84 / 66 against
59 / 48; ResNet (batch 64) 64->64 3x3 at 32x32 (3.9) 148 / 163 against 125 / 127; 64->128
stride 2 (7.5) 136 / 142 against 147 / 155; 128->128 at 16x16 (15) 146 / 160 against
157 / 161. Windows that do not overlap (kernel <= stride) never take flat columns: their
im2col copies each pixel at most once, while flat columns copy every stride phase (ResNet's
1x1 stride-2 convs: 60-82 / 60-72 flat against 95-122 / 95-116). Nor do convs with more than
FLAT_OUT_UP_TO output channels per group, where the GEMMs outweigh im2col's copies: ResNet's
first conv (3->64) measured 81 / 75 flat against 85 / 72, and one code path fewer to compile
is worth more (ResNet-18's kernels then need no flat-column kernels).

Column matrices otherwise: when training, convs with few output channels (O/g <=
SAVE_COLUMNS_UP_TO) keep each sample's columns from the forward pass for the backward pass,
which reads them and then overwrites them with the input gradient's columns. Other convs, and
inference, rebuild them in a workspace per chunk (`cols[t]`), which costs no memory per sample.
Small output maps make short GEMMs (ResNet's 4x4 stage: 16 columns), so such convs stack the
columns of `stack` samples side by side and run one GEMM for all of them (at least STACK_COLUMNS
columns; outputs and output gradients pass through a per-chunk `stage` buffer).

Winograd F(4x4, 3x3) (kernels/cpu/winograd.py) takes the 3x3, stride-1 convs padded by 1 with
at least WINOGRAD_FROM input and output channels, on maps at least WINOGRAD_MAPS_FROM pixels a
side: 36 GEMMs per stack of samples with 4x fewer multiplications, plus the tile transforms.
Its gradients are the exact adjoints of its forward pass, which differs from the direct
convolution by rounding: in float32, below 1e-5 of the largest output (1.4-3.1e-6 RMS
relative) on ResNet's four layer shapes, measured. F(2x2, 3x3), used before, rounded below 1e-6
but saved only 2.25x: ResNet-18 (batch 64, taking turns on a busy machine) took 0.98-1.17 s per
training step and 0.32-0.35 s per inference call with it, 0.86-0.98 and 0.26-0.31 s with
F(4x4, 3x3). GFLOP/s of the direct convolution's work, forward / backward, batch 64, 2 threads,
two runs: ResNet 64->64 at 32x32 203-227 / 222-322 (F(2x2) 231 / 236, columns 148 / 163);
128->128 at 16x16 294-297 / 299-308 (309 / 315); 256->256 at 8x8 365-368 / 337-350 (307 / 310);
512->512 at 4x4 290-320 / 242-271 (301 / 285), with stacks of at least WINOGRAD_COLUMNS tiles.
At 4x4 a map is one tile, so a chunk's GEMMs have as many columns as it has samples. With 3
input channels (ResNet's first conv) the transforms cost more than the GEMMs save (F(2x2):
3.9 + 3.1 ms by flat columns, 7.1 + 7.9 by Winograd).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ...kernels.cpu.blas import gemm
from ...kernels.cpu.chunks import chunk_kernel, run_chunks, span, split
from ...kernels.cpu.im2col import (
    col2im,
    crop,
    flat_col2im,
    flat_im2col,
    gather,
    im2col,
    pad,
    pixel_offsets,
    spread,
)
from ...kernels.cpu.winograd import (
    XI,
    filter_tiles,
    filter_tiles_adjoint,
    input_tiles,
    input_tiles_adjoint,
    output_tiles,
    output_tiles_adjoint,
    rows_workspace,
)
from ..lowering import IO, Context, Scratch, TextLowering, thread_rows
from ..pointwise.cpu import activate_all, derive_all, pointwise_bwd_cpu  # noqa: F401 (step code)
from ..pointwise.lower import epilogue
from .lower import bias, bias_grad, geometry

SAVE_COLUMNS_UP_TO = 32
STACK_COLUMNS, MAX_STACK = 128, 32
FLAT_UP_TO, FLAT_OUT_UP_TO = 6, 32
TILE = 32
WINOGRAD_FROM, WINOGRAD_MAPS_FROM, WINOGRAD_COLUMNS = 16, 4, 256


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


@njit(cache=True, fastmath=True)
def _total(values):
    """The sum of a flat array, vectorised (fastmath lets the additions reassociate)."""
    total = values.dtype.type(0)
    for i in range(values.size):
        total += values[i]
    return total


@chunk_kernel
def _conv_fwd(t, chunks, x, w, b, y, planes, offsets, cols, stage, saved, stack, sh, sw, pt, pb,
              pl, pr, dh, dw, groups, has_bias, act, act_arg):
    """Chunk t of the batch, `stack` samples per GEMM. The padded input goes to planes[t, 0],
    columns to cols[n] when `saved`, else to workspace cols[t]; stacked samples' outputs land in
    stage[t] and are copied out. A fused activation (code `act`) is applied to each sample's
    output while it is in cache."""
    n_batch, out_c, kh, kw, oh, ow, k, og, hw = _sizes(x, w, y, groups)
    direct = _is_pointwise(kh, kw, sh, sw, pt, pb, pl, pr) and stack == 1
    width = stack * hw                # the column matrices' row length
    wp = x.shape[3] + pl + pr
    padded, first_taps = planes[t, 0], offsets[t, :hw]
    if not direct:
        padded[:] = 0                 # the padding; samples overwrite the rest
        pixel_offsets(first_taps, oh, ow, sh, sw, wp)
    lo, hi = span(t, chunks, n_batch)
    for n in range(lo, hi, stack):
        m = min(stack, hi - n)
        col = cols[n] if saved else cols[t]
        src = x[n].reshape(x.shape[1], hw) if direct else col
        if not direct:
            for s in range(m):
                pad(x[n + s], padded, pt, pl, wp)
                im2col(padded, first_taps, col, s * hw, kh, kw, dh, dw, wp)
        out = y[n].reshape(out_c, hw) if stack == 1 else stage[t]
        for g in range(groups):
            gemm(False, False, og, m * hw, k, 1.0, w[g * og:], k, src[g * k:], width, 0.0,
                 out[g * og:], width)
        if stack > 1 or has_bias:
            for s in range(m):
                for o in range(out_c):
                    plane = y[n + s, o].reshape(-1)
                    shift = b[o] if has_bias else b.dtype.type(0)
                    if stack > 1:
                        part = out[o, s * hw:(s + 1) * hw]
                        for i in range(hw):
                            plane[i] = part[i] + shift
                    else:
                        for i in range(hw):
                            plane[i] += shift
        if act != 0:
            for s in range(m):
                activate_all(y[n + s].reshape(-1), act, act_arg)


@chunk_kernel
def _conv_bwd(t, chunks, x, w, dy, dx, planes, offsets, cols, stage, saved, stack, parts,
              bias_parts, sh, sw, pt, pb, pl, pr, dh, dw, groups, has_bias, need_dx):
    """Chunk t of the batch: its grad input, and its shares of the weight and bias gradients in
    parts[t] and bias_parts[t]. Stacked samples' dy are gathered in stage[t]; planes[t, 0] holds
    the padded input, planes[t, 1] the padded input gradient."""
    n_batch, out_c, kh, kw, oh, ow, k, og, hw = _sizes(x, w, dy, groups)
    direct = _is_pointwise(kh, kw, sh, sw, pt, pb, pl, pr) and stack == 1
    width = stack * hw
    wp = x.shape[3] + pl + pr
    padded, padded_grad, first_taps = planes[t, 0], planes[t, 1], offsets[t, :hw]
    if not direct:
        padded[:] = 0
        pixel_offsets(first_taps, oh, ow, sh, sw, wp)
    part, bias_part = parts[t], bias_parts[t]
    part[:] = 0
    bias_part[:] = 0
    lo, hi = span(t, chunks, n_batch)
    for n in range(lo, hi, stack):
        m = min(stack, hi - n)
        if has_bias:
            for s in range(m):
                _add_sums(bias_part, dy[n + s])
        col = cols[n] if saved else cols[t]
        src = x[n].reshape(x.shape[1], hw) if direct else col
        if not direct and not saved:
            for s in range(m):
                pad(x[n + s], padded, pt, pl, wp)
                im2col(padded, first_taps, col, s * hw, kh, kw, dh, dw, wp)
        grad = dy[n].reshape(out_c, hw) if stack == 1 else stage[t]
        if stack > 1:
            for s in range(m):
                for o in range(out_c):
                    plane = dy[n + s, o].reshape(-1)
                    row = grad[o, s * hw:(s + 1) * hw]
                    for i in range(hw):
                        row[i] = plane[i]
        for g in range(groups):
            gemm(False, True, k, og, m * hw, 1.0, src[g * k:], width, grad[g * og:], width, 1.0,
                 part[g], og)
        if need_dx:
            target = dx[n].reshape(x.shape[1], hw) if direct else col
            for g in range(groups):
                gemm(True, False, k, m * hw, og, 1.0, w[g * og:], k, grad[g * og:], width, 0.0,
                     target[g * k:], width)
            if not direct:
                for s in range(m):
                    col2im(col, s * hw, padded_grad, first_taps, kh, kw, dh, dw, wp)
                    crop(padded_grad, dx[n + s], pt, pl, wp)


@chunk_kernel
def _conv_params_grad(t, chunks, parts, bias_parts, dw_, db, has_bias):
    """Chunk t of the weight and bias gradients: the batch chunks' parts summed in chunk order,
    each group's weight part transposed back. The transposition goes tile by tile (TILE x TILE),
    so both the strided reads and the writes stay in cache: 512 -> 512 3x3 took 4.0 ms, against
    9.5 ms in dw's order (measured, 2 threads)."""
    threads, groups, k, og = parts.shape
    total = dw_.reshape(groups, og, k)
    row_tiles = -(-k // TILE)
    lo, hi = span(t, chunks, groups * row_tiles)
    for unit in range(lo, hi):
        g, tile = divmod(unit, row_tiles)
        first_row, last_row = tile * TILE, min(k, (tile + 1) * TILE)
        for first_out in range(0, og, TILE):
            for o in range(first_out, min(og, first_out + TILE)):
                out = total[g, o]
                for row in range(first_row, last_row):
                    value = parts[0, g, row, o]
                    for s in range(1, threads):
                        value += parts[s, g, row, o]
                    out[row] = value
    if has_bias:
        _bias_grad(t, chunks, bias_parts, db)


@njit(cache=True, inline="always")
def _bias_grad(t, chunks, bias_parts, db):
    """Chunk t of the bias gradient: the batch chunks' parts summed in chunk order."""
    first, last = span(t, chunks, db.size)
    for o in range(first, last):
        value = bias_parts[0, o]
        for s in range(1, bias_parts.shape[0]):
            value += bias_parts[s, o]
        db[o] = value


@njit(cache=True, inline="always")
def _before_activation(raw, dy, y, act, act_arg):
    """raw = the gradient before the fused activation (code `act`), from its output's gradient
    dy and its output y (flat views; a 3-D slice assignment compiles for seconds)."""
    for i in range(raw.size):
        raw[i] = dy[i]
    derive_all(raw, y, act, act_arg)


@njit(cache=True, inline="always")
def _add_sums(sums, planes):
    """sums[c] += the sum of plane c."""
    for c in range(planes.shape[0]):
        sums[c] += _total(planes[c].reshape(-1))


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
              pt, pl, dh, dw, wp, groups, has_bias, act, act_arg, need_dx):
    """Chunk t of the batch with flat columns: its grad input, and its shares of the weight and
    bias gradients in parts[t] and bias_parts[t]. A fused activation's derivative (from the
    output y) turns each sample's dy into raw[t] first. flat_y[t] holds that gradient flat, zero
    in the dropped columns; planes[t, 0] the padded input's phases, planes[t, 1] those of the
    padded input gradient."""
    out_c, _, kh, kw = w.shape
    oh, ow = dy.shape[2], dy.shape[3]
    length = (oh - 1) * wp + ow
    k, og = w.shape[1] * kh * kw, out_c // groups
    plane, grad_plane, col, grad = planes[t, 0], planes[t, 1], cols[t], flat_y[t]
    part, bias_part = parts[t], bias_parts[t]
    plane[:] = 0
    grad[:] = 0
    part[:] = 0
    bias_part[:] = 0
    lo, hi = span(t, chunks, x.shape[0])
    for n in range(lo, hi):
        spread(x[n], plane, pt, pl, sh, sw, wp)
        flat_im2col(plane, col, kh, kw, sh, sw, dh, dw, wp)
        sample = dy[n]
        if act != 0:
            sample = raw[t]
            _before_activation(sample.reshape(-1), dy[n].reshape(-1), y[n].reshape(-1), act,
                               act_arg)
        if has_bias:
            _add_sums(bias_part, sample)
        pad(sample, grad, np.intp(0), np.intp(0), wp)  # (typed as the other calls: one pad)
        for g in range(groups):
            gemm(False, True, k, og, length, 1.0, col[g * k:], length, grad[g * og:], length,
                 1.0, part[g], og)
        if need_dx:
            for g in range(groups):
                gemm(True, False, k, length, og, 1.0, w[g * og:], k, grad[g * og:], length, 0.0,
                     col[g * k:], length)
            flat_col2im(col, grad_plane, kh, kw, sh, sw, dh, dw, wp)
            gather(grad_plane, dx[n], pt, pl, sh, sw, wp)


@chunk_kernel
def _winograd_fwd(t, chunks, x, U, b, y, rows, V, M, stack, has_bias, act, act_arg):
    """Chunk t of the batch by Winograd F(4x4, 3x3), `stack` samples' tiles per GEMM: V[t]
    and M[t] hold the transformed input and output, rows[t] the transforms' workspace; U is the
    transformed filters."""
    n_batch, c = x.shape[0], x.shape[1]
    out_c = U.shape[1]
    th, tw = _tiles(x)
    work, inputs, outputs = rows[t], V[t], M[t]
    width = inputs.shape[2]
    lo, hi = span(t, chunks, n_batch)
    for n in range(lo, hi, stack):
        m = min(stack, hi - n)
        input_tiles(x, n, m, work, inputs, th, tw)
        for xi in range(XI):
            gemm(False, False, out_c, m * th * tw, c, 1.0, U[xi], c, inputs[xi], width, 0.0,
                 outputs[xi], width)
        output_tiles(outputs, m, y[n:n + m], b, has_bias, th, tw, work)
        if act != 0:
            activate_all(y[n:n + m].reshape(-1), act, act_arg)


@chunk_kernel
def _winograd_bwd(t, chunks, x, U, y, dy, dx, rows, V, M, raw, parts, bias_parts, stack,
                  has_bias, act, act_arg, need_dx):
    """Chunk t of the batch by the adjoint of _winograd_fwd: its grad input, and its shares of
    the transformed filters' gradient in parts[t] and of the bias gradient in bias_parts[t]. A
    fused activation's derivative (from the output y) turns the stack's dy into raw[t] first."""
    n_batch, c = x.shape[0], x.shape[1]
    out_c = U.shape[1]
    th, tw = _tiles(x)
    work, inputs, grads = rows[t], V[t], M[t]
    width = inputs.shape[2]
    part, bias_part = parts[t], bias_parts[t]
    part[:] = 0
    bias_part[:] = 0
    lo, hi = span(t, chunks, n_batch)
    for n in range(lo, hi, stack):
        m = min(stack, hi - n)
        input_tiles(x, n, m, work, inputs, th, tw)
        grad = dy[n:n + m]
        if act != 0:
            grad = raw[t, :m]
            _before_activation(grad.reshape(-1), dy[n:n + m].reshape(-1),
                               y[n:n + m].reshape(-1), act, act_arg)
        if has_bias:
            for s in range(m):
                _add_sums(bias_part, grad[s])
        output_tiles_adjoint(grad, m, grads, th, tw, work)
        for xi in range(XI):      # dU += dM V^T
            gemm(False, True, out_c, c, m * th * tw, 1.0, grads[xi], width, inputs[xi], width,
                 1.0, part[xi], c)
        if need_dx:
            for xi in range(XI):  # dV = U^T dM, over the transformed input
                gemm(True, False, c, m * th * tw, out_c, 1.0, U[xi], c, grads[xi], width, 0.0,
                     inputs[xi], width)
            input_tiles_adjoint(inputs, dx, n, m, work, th, tw)


@njit(cache=True, inline="always")
def _tiles(x):
    """Winograd's tile rows and columns for x's maps."""
    return (x.shape[2] + 3) // 4, (x.shape[3] + 3) // 4


@chunk_kernel
def _bias_grad_chunks(t, chunks, bias_parts, db):
    _bias_grad(t, chunks, bias_parts, db)


def conv_fwd_cpu(x, w, b, y, planes, offsets, cols, stage, saved, stack,
                 *geometry_and_activation) -> None:
    run_chunks(_conv_fwd, stage.shape[0], x, w, b, y, planes, offsets, cols, stage, saved, stack,
               *geometry_and_activation)


def conv_bwd_cpu(x, w, dy, dx, dw, db, planes, offsets, cols, stage, saved, stack, parts,
                 bias_parts, need_dx, *geometry) -> None:
    chunks = parts.shape[0]
    run_chunks(_conv_bwd, chunks, x, w, dy, dx, planes, offsets, cols, stage, saved, stack, parts,
               bias_parts, *geometry, need_dx)
    run_chunks(_conv_params_grad, chunks, parts, bias_parts, dw, db, geometry[-1])


def conv_flat_fwd_cpu(x, w, b, y, planes, cols, flat_y, *geometry_and_activation) -> None:
    run_chunks(_flat_fwd, planes.shape[0], x, w, b, y, planes, cols, flat_y,
               *geometry_and_activation)


def conv_flat_bwd_cpu(x, w, y, dy, dx, dw, db, planes, cols, flat_y, raw, parts, bias_parts,
                      need_dx, *geometry_and_activation) -> None:
    chunks = parts.shape[0]
    run_chunks(_flat_bwd, chunks, x, w, y, dy, dx, planes, cols, flat_y, raw, parts, bias_parts,
               *geometry_and_activation, need_dx)
    *_, has_bias, _act, _act_arg = geometry_and_activation
    run_chunks(_conv_params_grad, chunks, parts, bias_parts, dw, db, has_bias)


def conv_winograd_fwd_cpu(x, w, b, y, U, rows, V, M, stack, has_bias, act, act_arg) -> None:
    run_chunks(filter_tiles, split(w.size), w, U)
    run_chunks(_winograd_fwd, rows.shape[0], x, U, b, y, rows, V, M, stack, has_bias, act,
               act_arg)


def conv_winograd_bwd_cpu(x, w, y, dy, dx, dw, db, U, rows, V, M, raw, parts, bias_parts,
                          need_dx, stack, has_bias, act, act_arg) -> None:
    """The filters are transformed again rather than kept from the forward pass (4 times the
    weights per conv)."""
    chunks = parts.shape[0]
    run_chunks(filter_tiles, split(w.size), w, U)
    run_chunks(_winograd_bwd, chunks, x, U, y, dy, dx, rows, V, M, raw, parts,
               bias_parts, stack, has_bias, act, act_arg, need_dx)
    run_chunks(filter_tiles_adjoint, chunks, parts, dw)
    if has_bias:
        run_chunks(_bias_grad_chunks, chunks, bias_parts, db)


def stack_size(hw: int, columns: int = STACK_COLUMNS) -> int:
    """Samples per GEMM for output maps of hw pixels (or tiles): enough for `columns` columns."""
    return max(1, min(MAX_STACK, -(-columns // hw)))


def lower(node, ctx: Context) -> TextLowering:
    a = node.attrs
    c, h, w = node.in_shapes[0]
    out_c, oh, ow = node.shape
    rows, hw = c * a.kernel[0] * a.kernel[1], oh * ow
    pointwise = a.kernel == (1, 1) and a.stride == (1, 1) and not any(a.padding)
    fused = epilogue(node, "cpu")
    if winograd(c, out_c, (h, w), a):
        return _lower_winograd(node, ctx, fused)
    if not pointwise and flat_columns(out_c // a.groups, (h, w), (oh, ow), a):
        return _lower_flat(node, ctx, fused)
    shape = geometry(a)     # the kernels' geometry arguments
    saved = ctx.training and out_c // a.groups <= SAVE_COLUMNS_UP_TO and not pointwise
    stack = 1 if saved else stack_size(hw)
    threads = ctx.threads
    cols = Scratch((rows, hw), per_sample=True, saved=True) if saved \
        else Scratch((threads, rows, stack * hw))
    stage = Scratch((threads, out_c, stack * hw) if stack > 1 else (threads, 1, 1))
    padded = (h + a.padding[0] + a.padding[1]) * (w + a.padding[2] + a.padding[3])
    direct = pointwise and stack == 1      # the kernels' test: no columns, no planes
    planes = Scratch((threads, 2, 1, 1) if direct else (threads, 2, c, padded))
    offsets = Scratch((threads, 1 if direct else hw), dtype="int32")

    def forward(io: IO) -> list[str]:
        return [f"conv_fwd_cpu({io.x[0]}, {io.param('weight')}, {bias(io, a)}, {io.y}, "
                f"{io.scratch('planes')}, {io.scratch('offsets')}, {io.scratch('cols')}, "
                f"{io.scratch('stage')}, {saved}, {stack}, {shape}, {fused.args})"]

    def backward(io: IO) -> list[str]:
        lines, dy = fused.backward(io)
        dx = io.dx[0] or io.x[0]
        return lines + [
            f"conv_bwd_cpu({io.x[0]}, {io.param('weight')}, {dy}, {dx}, "
            f"{io.grad('weight')}, {bias_grad(io, a)}, {io.scratch('planes.backward')}, "
            f"{io.scratch('offsets.backward')}, "
            f"{io.scratch('cols' if saved else 'cols.backward')}, "
            f"{io.scratch('stage.backward')}, "
            f"{saved}, {stack}, {io.scratch('parts')}, {io.scratch('bias_parts')}, "
            f"{io.dx[0] is not None}, {shape})"]

    return TextLowering(
        module=__name__, kernels=("conv_fwd_cpu", "conv_bwd_cpu", "pointwise_bwd_cpu"),
        forward=forward, backward=backward, reads=("input", *fused.reads()),
        scratch={"planes": planes, "offsets": offsets, "cols": cols, "stage": stage,
                 **_grad_parts(node, threads),
                 **fused.scratch(node)})


def _grad_parts(node, threads: int) -> dict[str, Scratch]:
    """Each chunk's shares of the weight gradient, per group transposed (k x og: cols @ dy^T
    runs 5-55 % faster in OpenBLAS than dy @ cols^T at LeNet's and ResNet's shapes, measured),
    and of the bias gradient (a row per thread, updated every sample)."""
    out_c, in_per_group, kh, kw = node.params["weight"]
    groups = node.attrs.groups
    return {"parts": Scratch((threads, groups, in_per_group * kh * kw, out_c // groups),
                             backward_only=True),
            "bias_parts": thread_rows(threads, out_c, backward_only=True)}


def flat_columns(out_per_group: int, in_hw, out_hw, a) -> bool:
    """Whether a conv runs on flat columns (see the module's doc)."""
    (kh, kw), (sh, sw) = a.kernel, a.stride
    if kh <= sh and kw <= sw:
        return False      # windows that do not overlap: im2col copies each pixel at most once
    if out_per_group > FLAT_OUT_UP_TO:
        return False      # the GEMMs outweigh im2col's copies (see the module's doc)
    _, _, length = flat_size(in_hw, out_hw, a)
    hw = out_hw[0] * out_hw[1]
    return (length - hw) * out_per_group <= FLAT_UP_TO * hw


def flat_size(in_hw, out_hw, a) -> tuple[int, int, int]:
    """Flat columns' phase planes: height, width (row stride), and the columns' length. A
    phase holds the rows the taps read and every input pixel, so spread needs no bounds."""
    (h, w), (oh, ow) = in_hw, out_hw
    (kh, kw), (sh, sw), (dh, dw) = a.kernel, a.stride, a.dilation
    rows = max(oh + (kh - 1) * dh // sh, -(-(h + a.padding[0]) // sh))
    wp = max(ow + (kw - 1) * dw // sw, -(-(w + a.padding[2]) // sw))
    return rows, wp, (oh - 1) * wp + ow


def _lower_flat(node, ctx: Context, fused) -> TextLowering:
    a = node.attrs
    c, h, w = node.in_shapes[0]
    out_c, oh, ow = node.shape
    rows, wp, length = flat_size((h, w), (oh, ow), a)
    phases = c * a.stride[0] * a.stride[1]
    shape = (f"{a.stride[0]}, {a.stride[1]}, {a.padding[0]}, {a.padding[2]}, {a.dilation[0]}, "
             f"{a.dilation[1]}, {wp}, {a.groups}, {a.bias}")  # top and left padding only
    threads = ctx.threads
    return _lower_with_workspaces(
        node, fused, "flat", shape,
        {"planes": Scratch((threads, 2, phases, rows * wp)),  # x, and its gradient
         "cols": Scratch((threads, c * a.kernel[0] * a.kernel[1], length)),
         "flat_y": Scratch((threads, out_c, length))},       # y, or dy
        {"raw": Scratch((threads, *(node.shape if fused.name else (1, 1, 1))),
                        backward_only=True),                   # dy before the activation
         **_grad_parts(node, threads)})


def _lower_with_workspaces(node, fused, path: str, tail: str, workspaces: dict,
                           backward_scratch: dict) -> TextLowering:
    """The lowering of a conv path whose kernels keep their data in per-thread workspaces and
    apply the fused activation's derivative themselves (flat columns, Winograd):
    conv_<path>_fwd_cpu(x, w, b, y, *workspaces, <tail>, activation) and
    conv_<path>_bwd_cpu(x, w, y, dy, dx, dw, db, *workspaces, raw, parts, bias_parts, need_dx,
    <tail>, activation)."""
    a = node.attrs

    def forward(io: IO) -> list[str]:
        spaces = ", ".join(io.scratch(name) for name in workspaces)
        return [f"conv_{path}_fwd_cpu({io.x[0]}, {io.param('weight')}, {bias(io, a)}, {io.y}, "
                f"{spaces}, {tail}, {fused.args})"]

    def backward(io: IO) -> list[str]:
        dx = io.dx[0] or io.x[0]
        y = io.y if fused.name else io.dy    # (read only with an activation)
        spaces = ", ".join(io.scratch(f"{name}.backward") for name in workspaces)
        return [
            f"conv_{path}_bwd_cpu({io.x[0]}, {io.param('weight')}, {y}, {io.dy}, {dx}, "
            f"{io.grad('weight')}, {bias_grad(io, a)}, {spaces}, {io.scratch('raw')}, "
            f"{io.scratch('parts')}, {io.scratch('bias_parts')}, {io.dx[0] is not None}, "
            f"{tail}, {fused.args})"]

    return TextLowering(
        module=__name__, kernels=(f"conv_{path}_fwd_cpu", f"conv_{path}_bwd_cpu"),
        forward=forward, backward=backward, reads=("input", *fused.reads()),
        scratch={**workspaces, **backward_scratch})


def winograd(in_c: int, out_c: int, in_hw, a) -> bool:
    """Whether a conv runs by Winograd F(4x4, 3x3) (see the module's doc)."""
    return a.kernel == (3, 3) and a.stride == (1, 1) and a.dilation == (1, 1) \
        and a.groups == 1 and tuple(a.padding) == (1, 1, 1, 1) \
        and min(in_c, out_c) >= WINOGRAD_FROM and min(in_hw) >= WINOGRAD_MAPS_FROM


def _lower_winograd(node, ctx: Context, fused) -> TextLowering:
    c, h, w = node.in_shapes[0]
    out_c = node.shape[0]
    th, tw = (h + 3) // 4, (w + 3) // 4
    stack = stack_size(th * tw, WINOGRAD_COLUMNS)
    threads = ctx.threads
    return _lower_with_workspaces(
        node, fused, "winograd", f"{stack}, {node.attrs.bias}",
        {"filters": Scratch((XI, out_c, c)),
         "rows": Scratch((threads, rows_workspace(th, tw, stack))),
         "inputs": Scratch((threads, XI, c, stack * th * tw)),
         "outputs": Scratch((threads, XI, out_c, stack * th * tw))},
        {"raw": Scratch((threads, stack, *node.shape) if fused.name else (threads, 1, 1, 1, 1),
                        backward_only=True),
         "parts": Scratch((threads, XI, out_c, c), backward_only=True),
         "bias_parts": thread_rows(threads, out_c, backward_only=True)})


LOWER = {"conv": lower}
