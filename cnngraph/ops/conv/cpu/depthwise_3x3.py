"""Depthwise 3x3 conv padded by 1 (MobileNet's, ShuffleNet's) on larger maps, on the CPU.

The taps run along each flat plane on the input's grid, as depthwise_rows.py's, but with a
channel's weights as scalars, all nine in one pass over the plane:
`y[k] = b + Σ l[k]·w0·s[k-1] + w1·s[k] + r[k]·w2·s[k+1]` over the kernel rows, s the plane
shifted by a kernel row, l and r masks that are 0 in the first and last column (where a tap
would read the neighbouring row). The plane is first copied whole into a flat row with a zero
row and one zero more above and below it (`padded`), so every tap of every position reads
inside, and the output is written once. (A scalar loop that checked each tap of the first and
last rows took as long as the nine-tap pass over all the others; three passes, one per kernel
row, ran at 0.6x the speed: measured on 32x32 planes.) A strided conv keeps every stride-th
value of the grid, as in depthwise_rows.py, and the forward pass computes only the rows it
keeps, on planes of STRIDED_ROWS_FROM columns and more (MobileNet v2's 96-channel 112x112
layer of stride 2 at batch 1, one thread, in processes taking turns: 1.2-1.6x faster; on 28x28
and 14x14 planes the rows' short runs were slower than the whole plane's one run). Stride 2 on
maps of even width, the common case, takes depthwise_3x3_s2.py instead (half the values);
these passes keep the other strides and odd widths.

Forward chunks cut the batch's (sample, channel) planes in order. Backward chunks cut the
channels: each owns its channels' weight and bias gradients over the whole batch, summed in
sample order (bitwise the same for any number of chunks), and runs through them sample by
sample (a sample's planes of a chunk are one stretch of memory; channel by channel, reading
planes 512 KiB apart, ran slower). The weight gradient's nine sums and the input gradient (the
adjoint: each tap adds w · mask · g, shifted back) are one pass (the input gradient's alone
where the weight is frozen). Both kernels prefetch the
next plane's input (and output gradient) while they work on one (kernels/cpu/prefetch.py).
"""
from __future__ import annotations

from numba import njit

from ....kernels.cpu.chunks import chunk_kernel, run_chunks, span, split
from ....kernels.cpu.im2col import keep_strided, spread_strided
from ....kernels.cpu.prefetch import prefetch
from ...pointwise.cpu import activate_all
from .gradients import _total, before_activation

AHEAD = 1
STRIDED_ROWS_FROM = 48


@njit(cache=True, inline="always")
def _masks(masks, width):
    """masks[0] (the left taps'): 0 in the first column, masks[1] (the right taps'): 0 in the
    last column, 1 elsewhere, along a flat plane of `width` columns."""
    one, zero = masks.dtype.type(1), masks.dtype.type(0)
    for k in range(masks.shape[1]):
        q = k % width
        masks[0, k] = zero if q == 0 else one
        masks[1, k] = zero if q == width - 1 else one


@njit(cache=True, inline="always")
def _pad(plane, padded, width):
    """padded[width + 1:][:plane.size] = plane; the rest of `padded` stays zero."""
    inside = padded[width + 1:width + 1 + plane.size]
    for k in range(plane.size):
        inside[k] = plane[k]


@njit(cache=True, inline="always")
def nine_weights(w, c):
    """Channel c's nine taps, row by row: w00, w01, w02, w10, ..., w22."""
    return (w[c, 0, 0, 0], w[c, 0, 0, 1], w[c, 0, 0, 2], w[c, 0, 1, 0], w[c, 0, 1, 1],
            w[c, 0, 1, 2], w[c, 0, 2, 0], w[c, 0, 2, 1], w[c, 0, 2, 2])


@njit(cache=True, inline="always")
def add_taps(taps, s00, s01, s02, s10, s11, s12, s20, s21, s22):
    """taps (a channel's nine weight-gradient sums, row by row) += the sums of one plane."""
    taps[0] += s00
    taps[1] += s01
    taps[2] += s02
    taps[3] += s10
    taps[4] += s11
    taps[5] += s12
    taps[6] += s20
    taps[7] += s21
    taps[8] += s22


@njit(cache=True, inline="always")
def prefetch_plane(x, unit, hi):
    """Prefetch (sample, channel) plane `unit` of x, a forward chunk's next, if before `hi`."""
    if unit < hi:
        c = x.shape[1]
        prefetch(x[unit // c, unit % c].reshape(-1))


@njit(cache=True, inline="always")
def channel_sums(dw_, db, lo_c, hi_c, need_dw, has_bias):
    """A backward chunk's channels lo_c..hi_c: their weight gradient as rows of nine sums,
    zeroed (when `need_dw`), and their bias gradient zeroed (when `has_bias`)."""
    sums = dw_[lo_c:hi_c].reshape(-1, 9)
    if need_dw:
        sums[:] = 0
    if has_bias:
        db[lo_c:hi_c] = 0
    return sums


@njit(cache=True, inline="always")
def prefetch_next(x, dy, n, ch, lo_c, hi_c, need_dw):
    """Prefetch the planes a backward chunk reads after sample n's channel ch, AHEAD on in its
    order (samples outside, its channels inside): dy's, and x's when `need_dw`."""
    count = hi_c - lo_c
    ahead = n * count + ch - lo_c + AHEAD
    after, next_ch = ahead // count, lo_c + ahead % count
    if after < x.shape[0]:
        if need_dw:
            prefetch(x[after, next_ch].reshape(-1))
        prefetch(dy[after, next_ch].reshape(-1))


@njit(cache=True, inline="always")
def _plane_fwd(padded, dst, w, c, bias, masks, width, sh):
    """dst (a plane on the grid) = bias + the nine taps of channel c over the padded plane: in
    every sh-th row of the grid (the rows a conv of stride sh keeps) on planes of at least
    STRIDED_ROWS_FROM columns, else over the whole plane as one run."""
    size = dst.size
    run, step = (width, sh * width) if sh > 1 and width >= STRIDED_ROWS_FROM else (size, size)
    w00, w01, w02, w10, w11, w12, w20, w21, w22 = nine_weights(w, c)
    for start in range(0, size, step):     # (sliced: indices from `start` would not vectorise)
        out, left, right = dst[start:start + run], masks[0][start:], masks[1][start:]
        up, mid, down = padded[start:start + run + 2], \
            padded[start + width:start + width + run + 2], \
            padded[start + 2 * width:start + 2 * width + run + 2]
        for k in range(run):
            out[k] = bias + left[k] * (w00 * up[k] + w10 * mid[k] + w20 * down[k]) \
                + (w01 * up[k + 1] + w11 * mid[k + 1] + w21 * down[k + 1]) \
                + right[k] * (w02 * up[k + 2] + w12 * mid[k + 2] + w22 * down[k + 2])


@njit(cache=True, inline="always")
def _plane_bwd(src, padded_grads, back, w, c, taps, masks, width, need_dx):
    """The bias gradient of channel c from this plane, returned, and taps[tap] += its weight
    gradient; back = its input gradient (when `need_dx`). From the input plane `src` and the
    output gradient on the grid, padded in `padded_grads`, all in one pass over the input's
    positions j: tap (ky, kx) of grid position k = j - (ky - 1)·width - (kx - 1) reads j, so
    it adds w · g[k] to back[j] and g[k] · src[j] to its weight gradient, where its mask at k
    is 1: a left tap's (k = j + 1) is 0 where j is in the last column, a right tap's (k = j -
    1) where j is in the first (the masks repeat each row)."""
    size = src.size
    from_left, from_right = masks[1], masks[0]
    below, level, above = padded_grads[2 * width:2 * width + size + 2], \
        padded_grads[width:width + size + 2], padded_grads[:size + 2]
    w00, w01, w02, w10, w11, w12, w20, w21, w22 = nine_weights(w, c)
    zero = src.dtype.type(0)
    s00 = s01 = s02 = s10 = s11 = s12 = s20 = s21 = s22 = bias = zero
    for j in range(size):
        # the gradients that reach j from the right (kx = 2: the first of each triple, 0 in
        # the first column), straight (kx = 1) and from the left (kx = 0, 0 in the last)
        x, right, left = src[j], from_right[j], from_left[j]
        b0, b1, b2 = below[j], below[j + 1], below[j + 2]
        m0, m1, m2 = level[j], level[j + 1], level[j + 2]
        a0, a1, a2 = above[j], above[j + 1], above[j + 2]
        bias += m1
        x_right, x_left = right * x, left * x
        s02 += b0 * x_right
        s12 += m0 * x_right
        s22 += a0 * x_right
        s01 += b1 * x
        s11 += m1 * x
        s21 += a1 * x
        s00 += b2 * x_left
        s10 += m2 * x_left
        s20 += a2 * x_left
        if need_dx:
            back[j] = right * (w02 * b0 + w12 * m0 + w22 * a0) + (w01 * b1 + w11 * m1 + w21 * a1) \
                + left * (w00 * b2 + w10 * m2 + w20 * a2)
    add_taps(taps, s00, s01, s02, s10, s11, s12, s20, s21, s22)
    return bias


@njit(cache=True, inline="always")
def _plane_dx(padded_grads, back, w, c, masks, width):
    """back = the input gradient of channel c's plane, from the output gradient on the grid
    padded in `padded_grads`: _plane_bwd's input gradient alone, for a frozen weight."""
    size = back.size
    from_left, from_right = masks[1], masks[0]
    below, level, above = padded_grads[2 * width:2 * width + size + 2], \
        padded_grads[width:width + size + 2], padded_grads[:size + 2]
    w00, w01, w02, w10, w11, w12, w20, w21, w22 = nine_weights(w, c)
    for j in range(size):
        back[j] = from_right[j] * (w02 * below[j] + w12 * level[j] + w22 * above[j]) \
            + (w01 * below[j + 1] + w11 * level[j + 1] + w21 * above[j + 1]) \
            + from_left[j] * (w00 * below[j + 2] + w10 * level[j + 2] + w20 * above[j + 2])


@chunk_kernel(fastmath=True)
def _depthwise_3x3_fwd(t, chunks, x, w, b, y, grid, padded, masks, sh, sw, has_bias, act,
                       act_arg):
    """Chunk t of the (sample, channel) planes; padded[t] holds the input plane, grid[t] a
    strided conv's plane on the input's grid (a stride-1 conv writes into y)."""
    n_all, c, h, width = x.shape
    direct = sh == 1 and sw == 1
    _masks(masks[t], width)
    padded[t] = 0
    lo, hi = span(t, chunks, n_all * c)
    for unit in range(lo, hi):
        n, ch = unit // c, unit % c
        prefetch_plane(x, unit + AHEAD, hi)
        out = y[n, ch].reshape(-1) if direct else grid[t]
        _pad(x[n, ch].reshape(-1), padded[t], width)
        _plane_fwd(padded[t], out, w, ch, b[ch] if has_bias else b.dtype.type(0), masks[t],
                   width, sh)
        if not direct:
            keep_strided(out, y[n, ch:ch + 1], sh, sw, width)
        if act != 0:
            activate_all(y[n, ch].reshape(-1), act, act_arg)


@chunk_kernel(fastmath=True)
def _depthwise_3x3_bwd(t, chunks, x, w, y, dy, dx, dw_, db, grid, padded, masks, sh, sw,
                       has_bias, act, act_arg, need_dx, need_dw):
    """Chunk t of the channels: their input gradient (when `need_dx`), weight gradient (when
    `need_dw`) and bias gradient (when `has_bias`). padded[t] holds a plane's output gradient
    on the input's grid, between zero rows (after a fused activation's derivative, through
    grid[t] when strided)."""
    n_all, c, h, width = x.shape
    oh, ow = dy.shape[2], dy.shape[3]
    direct = sh == 1 and sw == 1
    _masks(masks[t], width)
    padded[t] = 0
    lo_c, hi_c = span(t, chunks, c)
    sums = channel_sums(dw_, db, lo_c, hi_c, need_dw, has_bias)
    for n in range(n_all):            # samples outside: the chunk's planes of a sample are
        for ch in range(lo_c, hi_c):  # one contiguous stretch of memory
            prefetch_next(x, dy, n, ch, lo_c, hi_c, need_dw)
            inside = padded[t][width + 1:width + 1 + h * width]
            if direct and act != 0:
                before_activation(inside, dy[n, ch].reshape(-1), y[n, ch].reshape(-1), act,
                                  act_arg)
            elif direct:
                _pad(dy[n, ch].reshape(-1), padded[t], width)
            else:
                values = dy[n, ch]
                if act != 0:
                    raw = grid[t][:oh * ow]
                    before_activation(raw, values.reshape(-1), y[n, ch].reshape(-1), act,
                                      act_arg)
                    values = raw.reshape(oh, ow)
                spread_strided(values.reshape(1, oh, ow), inside, sh, sw, width)
            back = dx[n, ch].reshape(-1)
            if need_dw:
                bias = _plane_bwd(x[n, ch].reshape(-1), padded[t], back, w, ch, sums[ch - lo_c],
                                  masks[t], width, need_dx)
            else:
                bias = _total(inside)
                if need_dx:
                    _plane_dx(padded[t], back, w, ch, masks[t], width)
            if has_bias:
                db[ch] += bias


def conv_depthwise_3x3_fwd_cpu(x, weight, bias, y, grid, padded, masks, stride_h, stride_w,
                               pad_top, pad_left, dilation_h, dilation_w, groups, has_bias, act,
                               act_arg) -> None:
    # planes are computed alone: one piece a thread (a chunk's call costs ~1 us of dispatch)
    run_chunks(_depthwise_3x3_fwd, min(grid.shape[0], split(y.size)), x, weight, bias, y, grid,
               padded, masks, stride_h, stride_w, has_bias, act, act_arg)


def conv_depthwise_3x3_bwd_cpu(x, weight, y, dy, dx, weight_grad, bias_grad, grid, padded,
                               masks, need_dx, need_dw, stride_h, stride_w, pad_top, pad_left,
                               dilation_h, dilation_w, groups, has_bias, act, act_arg) -> None:
    """y is read only with a fused activation (act != 0)."""
    run_chunks(_depthwise_3x3_bwd, min(grid.shape[0], x.shape[1]), x, weight, y, dy, dx,
               weight_grad, bias_grad, grid, padded, masks, stride_h, stride_w, has_bias, act,
               act_arg, need_dx, need_dw)
