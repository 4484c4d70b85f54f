"""Depthwise conv on small maps by blocks of channels, on the CPU.

On a 4x4 or 8x8 map a plane is too short for depthwise.py's passes along it to vectorise (a
vector loop wants 32 values and more; what is left runs scalar), and its fixed costs per plane
outweigh the few multiply-adds. So here BLOCK channels of a sample are transposed into cells,
one row of BLOCK values per padded pixel, and every tap of an output pixel is one vectorised
multiply-add across the block's channels, with any stride or dilation. The loops run over whole
cells, a last block's missing channels as zeros: at 32 values a loop is one vectorised
iteration, while 16, or a count under 32, ran scalar at under half the speed (measured). The
transposes stay in L1: a block of an 8x8 map, padded, is 12.5 KiB.

Forward chunks cut the batch's (sample, block) pairs in order. Backward chunks cut the blocks:
each owns its channels' weight and bias gradients over the whole batch, summed in sample order
(bitwise reproducible whatever the number of chunks). The input gradient is the adjoint: each
tap adds w * dy to its cell of the padded gradient.
"""
from __future__ import annotations

from numba import njit

from ....kernels.cpu.chunks import chunk_kernel, run_chunks, span
from ...pointwise.cpu import activate_all
from ..geometry import BLOCK
from .gradients import before_activation


@njit(cache=True, inline="always")
def _cells(x, w, y, sh, sw, dh, dw):
    """Kernel and output sizes, and the padded input's rows and columns (geometry.py's
    padded_size)."""
    kh, kw, oh, ow = w.shape[2], w.shape[3], y.shape[2], y.shape[3]
    return kh, kw, oh, ow, (oh - 1) * sh + (kh - 1) * dh + 1, (ow - 1) * sw + (kw - 1) * dw + 1


@njit(cache=True, inline="always")
def _into_cells(planes, cells, top, left, rows, cols):
    """cells[(r + top) * cols + q + left, i] = planes[i, r, q], for the pixels that fall inside
    rows x cols; the rest of `cells` is left as it is."""
    for i in range(planes.shape[0]):
        plane = planes[i]
        for r in range(min(plane.shape[0], rows - top)):
            row, at = plane[r], (r + top) * cols + left
            for q in range(min(plane.shape[1], cols - left)):
                cells[at + q, i] = row[q]


@njit(cache=True, inline="always")
def _from_cells(cells, planes, top, left, rows, cols):
    """The inverse of _into_cells, 0 for the pixels outside rows x cols (no tap reads them)."""
    for i in range(planes.shape[0]):
        plane = planes[i]
        for r in range(plane.shape[0]):
            row, at = plane[r], (r + top) * cols + left
            for q in range(plane.shape[1]):
                inside = r + top < rows and q + left < cols
                row[q] = cells[at + q, i] if inside else cells.dtype.type(0)


@chunk_kernel(fastmath=True)
def _depthwise_blocks_fwd(t, chunks, x, w, b, y, planes, cells, taps, sh, sw, pt, pl, dh, dw,
                          has_bias, act, act_arg):
    """Chunk t of the (sample, block) pairs: planes[t, 0] holds the block's padded input as
    cells, cells[t] its output, taps[t] its weights (a row per tap) and bias."""
    c = x.shape[1]
    kh, kw, oh, ow, rows, cols = _cells(x, w, y, sh, sw, dh, dw)
    padded = planes[t, 0, :rows * cols * BLOCK].reshape(rows * cols, BLOCK)
    out = cells[t, :oh * ow * BLOCK].reshape(oh * ow, BLOCK)
    weights, shift = taps[t, :kh * kw], taps[t, 2 * kh * kw]
    width = padded.shape[1]       # BLOCK, unknown to the compiler: see the module's doc
    padded[:] = 0                 # the padding; blocks overwrite the rest
    blocks = (c + BLOCK - 1) // BLOCK
    lo, hi = span(t, chunks, x.shape[0] * blocks)
    for unit in range(lo, hi):
        n, first = unit // blocks, unit % blocks * BLOCK
        cb = min(BLOCK, c - first)
        if cb < width:
            padded[:] = 0
            shift[:] = 0
            weights[:] = 0
        _into_cells(x[n, first:first + cb], padded, pt, pl, rows, cols)
        for i in range(cb):
            shift[i] = b[first + i] if has_bias else b.dtype.type(0)
            for ky in range(kh):
                for kx in range(kw):
                    weights[ky * kw + kx, i] = w[first + i, 0, ky, kx]
        for r in range(oh):
            for q in range(ow):
                acc = out[r * ow + q]
                for i in range(width):
                    acc[i] = shift[i]
                for ky in range(kh):
                    at = (r * sh + ky * dh) * cols + q * sw
                    for kx in range(kw):
                        src, tap = padded[at + kx * dw], weights[ky * kw + kx]
                        for i in range(width):
                            acc[i] += tap[i] * src[i]
        for i in range(cb):
            plane = y[n, first + i]
            for r in range(oh):
                row = plane[r]
                for q in range(ow):
                    row[q] = out[r * ow + q, i]
            if act != 0:
                activate_all(plane.reshape(-1), act, act_arg)


@chunk_kernel(fastmath=True)
def _depthwise_blocks_bwd(t, chunks, x, w, y, dy, dx, dw_, db, planes, cells, taps, raw, sh, sw,
                          pt, pl, dh, dw, has_bias, act, act_arg, need_dx):
    """Chunk t of the blocks: their input gradient, weight and bias gradients. planes[t, 0]
    holds a sample's padded input as cells, planes[t, 1] its gradient, cells[t] dy's (after a
    fused activation's derivative, through raw[t]); taps[t] the weights, their gradients and
    the bias gradient, a row per tap."""
    c = x.shape[1]
    kh, kw, oh, ow, rows, cols = _cells(x, w, dy, sh, sw, dh, dw)
    padded = planes[t, 0, :rows * cols * BLOCK].reshape(rows * cols, BLOCK)
    grad_padded = planes[t, 1, :rows * cols * BLOCK].reshape(rows * cols, BLOCK)
    grads = cells[t, :oh * ow * BLOCK].reshape(oh * ow, BLOCK)
    weights, weight_grads = taps[t, :kh * kw], taps[t, kh * kw:2 * kh * kw]
    bias_grads = taps[t, 2 * kh * kw]
    width = padded.shape[1]
    padded[:] = 0
    lo, hi = span(t, chunks, (c + BLOCK - 1) // BLOCK)
    for block in range(lo, hi):
        first = block * BLOCK
        cb = min(BLOCK, c - first)
        weight_grads[:] = 0
        bias_grads[:] = 0
        if cb < width:
            padded[:] = 0
            grads[:] = 0
            weights[:] = 0
        for i in range(cb):
            for ky in range(kh):
                for kx in range(kw):
                    weights[ky * kw + kx, i] = w[first + i, 0, ky, kx]
        for n in range(x.shape[0]):
            _into_cells(x[n, first:first + cb], padded, pt, pl, rows, cols)
            if act != 0:
                for i in range(cb):
                    before_activation(raw[t].reshape(-1), dy[n, first + i].reshape(-1),
                                      y[n, first + i].reshape(-1), act, act_arg)
                    _into_cells(raw[t:t + 1], grads[:, i:], 0, 0, oh, ow)
            else:
                _into_cells(dy[n, first:first + cb], grads, 0, 0, oh, ow)
            if need_dx:
                grad_padded[:] = 0
            for r in range(oh):
                for q in range(ow):
                    g = grads[r * ow + q]
                    for i in range(width):
                        bias_grads[i] += g[i]
                    for ky in range(kh):
                        at = (r * sh + ky * dh) * cols + q * sw
                        for kx in range(kw):
                            src, tap_grad = padded[at + kx * dw], weight_grads[ky * kw + kx]
                            for i in range(width):
                                tap_grad[i] += g[i] * src[i]
                            if need_dx:
                                dst, tap = grad_padded[at + kx * dw], weights[ky * kw + kx]
                                for i in range(width):
                                    dst[i] += tap[i] * g[i]
            if need_dx:
                _from_cells(grad_padded, dx[n, first:first + cb], pt, pl, rows, cols)
        for i in range(cb):
            if has_bias:
                db[first + i] = bias_grads[i]
            for ky in range(kh):
                for kx in range(kw):
                    dw_[first + i, 0, ky, kx] = weight_grads[ky * kw + kx, i]


def conv_depthwise_blocks_fwd_cpu(x, weight, bias, y, planes, cells, taps, stride_h, stride_w,
                                  pad_top, pad_left, dilation_h, dilation_w, groups, has_bias,
                                  act, act_arg) -> None:
    run_chunks(_depthwise_blocks_fwd, planes.shape[0], x, weight, bias, y, planes, cells, taps,
               stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w, has_bias, act,
               act_arg)


def conv_depthwise_blocks_bwd_cpu(x, weight, y, dy, dx, weight_grad, bias_grad, planes, cells,
                                  taps, raw, need_dx, stride_h, stride_w, pad_top, pad_left,
                                  dilation_h, dilation_w, groups, has_bias, act,
                                  act_arg) -> None:
    """y is read only with a fused activation (act != 0)."""
    blocks = (x.shape[1] + BLOCK - 1) // BLOCK
    run_chunks(_depthwise_blocks_bwd, min(planes.shape[0], blocks), x, weight, y, dy, dx,
               weight_grad, bias_grad, planes, cells, taps, raw, stride_h, stride_w, pad_top,
               pad_left, dilation_h, dilation_w, has_bias, act, act_arg, need_dx)
