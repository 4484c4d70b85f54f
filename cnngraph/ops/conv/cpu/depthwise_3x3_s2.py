"""Depthwise 3x3 conv of stride 2 padded by 1, on input maps of even width (the down-sampling
layers of MobileNet and ShuffleNet), on the CPU.

Output pixel (i, j) reads input rows 2i - 1, 2i and 2i + 1 at columns 2j - 1, 2j and 2j + 1.
With the plane split into its even and odd columns, E[r, j] = x[r, 2j] and O[r, j] =
x[r, 2j + 1] (one pass along the whole plane: an even width keeps a flat index's parity its
column's), each flat with rows ow = w / 2 apart, every tap of output (i, j) is one of them at a
fixed offset from flat index k = 2i·ow + j (input row 2i's):

    y[i, j] = b + l[k]·(w00·O[k - ow - 1] + w10·O[k - 1] + w20·O[k + ow - 1])
                + (w01·E[k - ow] + w11·E[k] + w21·E[k + ow])
                + (w02·O[k - ow] + w12·O[k] + w22·O[k + ow])

where l is 0 in the first column (the left taps' pixel lies in the padding) and 1 elsewhere.
So one pass along the flat split computes every output, and in between the odd input rows'
values, which are dropped: twice the multiply-adds, but long vectorised loops. (Splitting each
row into its four stride phases instead, runs of ow values, took 2-3x as long on 32x32 maps:
per-row loops of 16 values; depthwise_3x3.py's strided pass computes the whole input grid and
keeps every fourth value.) The split lies between zero rows, so rows -1 and h read zeros.

The backward pass is the adjoint, along the input's flat pairs (2k, 2k + 1), read in place:
with the output gradient spread onto input row 2i's flat indices (zero in between; a copy also
zero in the first column, for the left taps), the taps that read a pair lie at fixed offsets
from k, for its gradient and for the weight gradient's nine sums alike (a loop each: one loop
for both ran at half the speed). Chunks cut as depthwise_3x3.py's: forward the batch's
(sample, channel) planes, backward the channels, each summed in sample order (the same bits
for any number of chunks).
"""
from __future__ import annotations

from numba import njit

from ....kernels.cpu.chunks import chunk_kernel, run_chunks, span, split
from ...pointwise.cpu import activate_all
from .depthwise_3x3 import (
    AHEAD,
    add_taps,
    channel_sums,
    nine_weights,
    prefetch_next,
    prefetch_plane,
)
from .gradients import _total, before_activation


@njit(cache=True, inline="always")
def _split(plane, even, odd, base):
    """even[base + k] = the plane's value at flat index 2k, odd[base + k] at 2k + 1."""
    values = plane.reshape(-1)
    evens, odds = even[base:], odd[base:]
    for k in range(values.size // 2):
        evens[k] = values[2 * k]
        odds[k] = values[2 * k + 1]


@njit(cache=True, inline="always")
def _left_mask(mask, ow, base):
    """mask[base + k] = 0 where flat index k lies in the first column, 1 elsewhere."""
    one, zero = mask.dtype.type(1), mask.dtype.type(0)
    for at in range(mask.size):
        mask[at] = zero if (at - base) % ow == 0 else one


@chunk_kernel(fastmath=True)
def _depthwise_3x3_s2_fwd(t, chunks, x, w, b, y, columns, flat, has_bias, act, act_arg):
    """Chunk t of the (sample, channel) planes: columns[t] holds a plane's even and odd columns
    and the left taps' mask, flat[t] the output at input row 2i's flat indices (the backward
    pass needs no such buffer)."""
    c = x.shape[1]
    oh, ow = y.shape[2], y.shape[3]
    base = ow + 1                        # input pixel 0's index: behind a zero row and a zero
    length = (oh - 1) * 2 * ow + ow
    even, odd, mask = columns[t, 0], columns[t, 1], columns[t, 2]
    even[:] = 0                          # the zero rows: planes overwrite the rest
    odd[:] = 0
    _left_mask(mask, ow, base)
    out, left = flat[t, :length], mask[base:]
    up_left, at_left, down_left = odd[base - ow - 1:], odd[base - 1:], odd[base + ow - 1:]
    up, here, down = even[base - ow:], even[base:], even[base + ow:]
    up_right, at_right, down_right = odd[base - ow:], odd[base:], odd[base + ow:]
    lo, hi = span(t, chunks, x.shape[0] * c)
    for unit in range(lo, hi):
        n, ch = unit // c, unit % c
        prefetch_plane(x, unit + AHEAD, hi)
        _split(x[n, ch], even, odd, base)
        w00, w01, w02, w10, w11, w12, w20, w21, w22 = nine_weights(w, ch)
        bias = b[ch] if has_bias else b.dtype.type(0)
        for k in range(length):
            out[k] = bias + left[k] * (w00 * up_left[k] + w10 * at_left[k] + w20 * down_left[k]) \
                + (w01 * up[k] + w11 * here[k] + w21 * down[k]) \
                + (w02 * up_right[k] + w12 * at_right[k] + w22 * down_right[k])
        plane = y[n, ch]
        for i in range(oh):
            row, dst = out[2 * i * ow:], plane[i]
            for j in range(ow):
                dst[j] = row[j]
        if act != 0:
            activate_all(plane.reshape(-1), act, act_arg)


@njit(cache=True, inline="always")
def _plane_bwd(plane, grad, kept, back, w, c, taps, ow, base, need_dx, need_dw):
    """The bias gradient of channel c from this plane, returned; taps[tap] += its weight
    gradient (when `need_dw`); back = its input gradient (when `need_dx`). Each a pass along
    the input's flat pairs k (pixels 2k and 2k + 1) and the taps that read them: from `base`,
    grad holds the output gradient at input row 2i's flat indices and `kept` the same but 0
    in the first column (the left taps')."""
    w00, w01, w02, w10, w11, w12, w20, w21, w22 = nine_weights(w, c)
    values, gradients = plane.reshape(-1), back.reshape(-1)
    below, here, above = grad[base + ow:], grad[base:], grad[base - ow:]
    left_below, left_here = kept[base + ow + 1:], kept[base + 1:]
    left_above = kept[base - ow + 1:]
    zero = values.dtype.type(0)
    s00 = s01 = s02 = s10 = s11 = s12 = s20 = s21 = s22 = zero
    if need_dw:
        for k in range(values.size // 2):
            even, odd = values[2 * k], values[2 * k + 1]
            s01 += even * below[k]
            s11 += even * here[k]
            s21 += even * above[k]
            s02 += odd * below[k]
            s12 += odd * here[k]
            s22 += odd * above[k]
            s00 += odd * left_below[k]
            s10 += odd * left_here[k]
            s20 += odd * left_above[k]
    if need_dx:
        for k in range(values.size // 2):
            g_below, g_here, g_above = below[k], here[k], above[k]
            gradients[2 * k] = w01 * g_below + w11 * g_here + w21 * g_above
            gradients[2 * k + 1] = w02 * g_below + w12 * g_here + w22 * g_above \
                + w00 * left_below[k] + w10 * left_here[k] + w20 * left_above[k]
    bias = _total(grad[base:base + values.size // 2])
    if need_dw:
        add_taps(taps, s00, s01, s02, s10, s11, s12, s20, s21, s22)
    return bias


@chunk_kernel(fastmath=True)
def _depthwise_3x3_s2_bwd(t, chunks, x, w, y, dy, dx, dw_, db, columns, flat, has_bias, act,
                          act_arg, need_dx, need_dw):
    """Chunk t of the channels: their input gradient (when `need_dx`), weight gradient (when
    `need_dw`) and bias gradient (when `has_bias`). columns[t, 0] holds a plane's output
    gradient (after a fused activation's derivative) at input row 2i's flat indices from
    `base`, columns[t, 1] the same with the first column 0."""
    n_all, c = x.shape[0], x.shape[1]
    oh, ow = dy.shape[2], dy.shape[3]
    base = ow + 1
    grad, kept = columns[t, 0], columns[t, 1]
    grad[:] = 0                           # zero but at the outputs' indices
    kept[:] = 0
    lo_c, hi_c = span(t, chunks, c)
    sums = channel_sums(dw_, db, lo_c, hi_c, need_dw, has_bias)
    for n in range(n_all):                # samples outside: the chunk's planes of a sample
        for ch in range(lo_c, hi_c):      # are one contiguous stretch of memory
            prefetch_next(x, dy, n, ch, lo_c, hi_c, need_dw)
            for i in range(oh):
                at = base + 2 * i * ow
                row, left = grad[at:at + ow], kept[at:at + ow]
                # (without an activation, dy stands in for y and this is a copy)
                before_activation(row, dy[n, ch, i], y[n, ch, i], act, act_arg)
                for j in range(1, ow):
                    left[j] = row[j]
            bias = _plane_bwd(x[n, ch], grad, kept, dx[n, ch], w, ch, sums[ch - lo_c], ow, base,
                              need_dx, need_dw)
            if has_bias:
                db[ch] += bias


def conv_depthwise_3x3_s2_fwd_cpu(x, weight, bias, y, columns, flat, stride_h, stride_w,
                                  pad_top, pad_left, dilation_h, dilation_w, groups, has_bias,
                                  act, act_arg) -> None:
    # planes are computed alone: one piece a thread (a chunk's call costs ~1 us of dispatch)
    run_chunks(_depthwise_3x3_s2_fwd, min(columns.shape[0], split(y.size)), x, weight, bias, y,
               columns, flat, has_bias, act, act_arg)


def conv_depthwise_3x3_s2_bwd_cpu(x, weight, y, dy, dx, weight_grad, bias_grad, columns, flat,
                                  need_dx, need_dw, stride_h, stride_w, pad_top, pad_left,
                                  dilation_h, dilation_w, groups, has_bias, act,
                                  act_arg) -> None:
    """y is read only with a fused activation (act != 0)."""
    run_chunks(_depthwise_3x3_s2_bwd, min(columns.shape[0], x.shape[1]), x, weight, y, dy, dx,
               weight_grad, bias_grad, columns, flat, has_bias, act, act_arg, need_dx, need_dw)
