"""Depthwise conv on small maps along rows of whole samples, on the CPU.

On a 4x4 or 8x8 map a plane is too short for depthwise.py's passes along it to vectorise, and
transposing channels into vector lanes (oneDNN's blocked layout) costs more than the few
multiply-adds. Here a sample is one flat row of C·H·W values, and a tap (ky, kx) reads the
row shifted by a constant offset: at output-grid position k of the input's grid, the value at
k + (ky·dh - pt)·W + (kx·dw - pl). Where that read leaves the tap's plane (its row or column
crosses the padding), the weight is zero: `expanded[tap, k]` holds w[c, tap] or 0, built once
a call. So each tap is one multiply-add along a row of thousands of values, without copies. As
in Winograd's tiles, a non-finite input value can turn a neighbouring plane's output NaN
(0 · inf); finite values are exact.

The taps run on the input's grid (stride 1); a strided conv keeps every stride-th value of it
(choose.py sends here the convs whose output positions lie on that grid). The channels go in
groups of `per_group`, at most geometry.ROW_VALUES values each, so that a group's expanded
weights stay in cache across the samples. Forward chunks cut the (group, sample) pairs, group-major.
Backward chunks cut the groups: each owns its channels' weight and bias gradients over the
whole batch, summed in sample order (bitwise the same for any number of chunks). The input
gradient is the adjoint: each tap adds expanded · g, shifted back.
"""
from __future__ import annotations

from numba import njit

from ....kernels.cpu.chunks import chunk_kernel, run_chunks, span
from ....kernels.cpu.im2col import keep_strided, spread_strided
from ...pointwise.cpu import activate_all
from .gradients import before_activation


@njit(cache=True, inline="always")
def _reach(ky, kx, width, pt, pl, dh, dw):
    """The tap's offset along a sample's row, and its row and column shifts."""
    down, right = ky * dh - pt, kx * dw - pl
    return down * width + right, down, right


@njit(cache=True, inline="always")
def _span(k0, k1, offset):
    """The part [lo, hi) of a group's values [k0, k1) whose read at +offset stays in the group
    (a tap that reads inside its plane always does)."""
    return max(k0, k0 - offset), min(k1, k1 - offset)


@chunk_kernel
def _expand(t, chunks, w, expanded, h, width, pt, pl, dh, dw):
    """Chunk t of the channels: expanded[tap, c·H·W + p] = w[c, tap] where the tap reads inside
    the plane from grid position p, else 0."""
    kh, kw = w.shape[2], w.shape[3]
    hw = h * width
    first, last = span(t, chunks, w.shape[0])
    for ch in range(first, last):
        for ky in range(kh):
            for kx in range(kw):
                _, down, right = _reach(ky, kx, width, pt, pl, dh, dw)
                row = expanded[ky * kw + kx][ch * hw:(ch + 1) * hw]
                value = w[ch, 0, ky, kx]
                for r in range(h):
                    inside = 0 <= r + down < h
                    for q in range(width):
                        row[r * width + q] = value if inside and 0 <= q + right < width \
                            else w.dtype.type(0)


@chunk_kernel(fastmath=True)
def _depthwise_rows_fwd(t, chunks, x, w, b, y, expanded, grid, sh, sw, pt, pl, dh, dw,
                        per_group, has_bias, act, act_arg):
    """Chunk t of the (group, sample) pairs; grid[t] holds a strided conv's values on the
    input's grid (a stride-1 conv that keeps the map's size writes into y)."""
    n_all, c, h, width = x.shape
    oh, ow = y.shape[2], y.shape[3]
    kh, kw = w.shape[2], w.shape[3]
    hw = h * width
    direct = oh == h and ow == width and sh == 1 and sw == 1
    groups = -(-c // per_group)
    lo, hi = span(t, chunks, groups * n_all)
    for unit in range(lo, hi):
        g, n = unit // n_all, unit % n_all
        c0, c1 = g * per_group, min(c, (g + 1) * per_group)
        k0, k1 = c0 * hw, c1 * hw
        row = x[n].reshape(-1)
        out = y[n].reshape(-1)[k0:k1] if direct else grid[t][:k1 - k0]
        for ch in range(c0, c1):
            out[(ch - c0) * hw:(ch - c0 + 1) * hw] = b[ch] if has_bias else b.dtype.type(0)
        for ky in range(kh):
            for kx in range(kw):
                offset, _, _ = _reach(ky, kx, width, pt, pl, dh, dw)
                first, last = _span(k0, k1, offset)
                weights = expanded[ky * kw + kx][first:last]
                src, dst = row[first + offset:last + offset], out[first - k0:last - k0]
                for k in range(last - first):
                    dst[k] += weights[k] * src[k]
        if not direct:
            keep_strided(out, y[n, c0:c1], sh, sw, width)
        if act != 0:
            activate_all(y[n].reshape(-1)[c0 * oh * ow:c1 * oh * ow], act, act_arg)


@njit(cache=True, inline="always")
def _sum_tap_grads(part, at, tap_grads, h, width, pt, pl, dh, dw):
    """tap_grads[ky, kx] = the sum of the tap's per-position products part[tap] over one
    plane's positions from `at` whose read stays inside the plane."""
    kh, kw = tap_grads.shape
    for tap in range(kh * kw):
        ky, kx = tap // kw, tap % kw
        _, down, right = _reach(ky, kx, width, pt, pl, dh, dw)
        products = part[tap][at:at + h * width]
        total = products.dtype.type(0)
        for r in range(max(0, -down), min(h, h - down)):
            for q in range(max(0, -right), min(width, width - right)):
                total += products[r * width + q]
        tap_grads[ky, kx] = total


@chunk_kernel(fastmath=True)
def _depthwise_rows_bwd(t, chunks, x, w, y, dy, dx, dw_, db, expanded, grid, parts, raw, sh, sw,
                        pt, pl, dh, dw, per_group, has_bias, act, act_arg, need_dx, need_dw):
    """Chunk t of the groups: their input gradient (when `need_dx`), weight gradient (when
    `need_dw`) and bias gradient (when `has_bias`). grid[t] holds a sample's output gradient on
    the input's grid (after a fused activation's derivative, through raw[t] when strided),
    parts[t] the per-position sums of the weight gradients (a row per tap) and of the bias
    gradient (the last row)."""
    n_all, c, h, width = x.shape
    oh, ow = dy.shape[2], dy.shape[3]
    kh, kw = w.shape[2], w.shape[3]
    taps, hw = kh * kw, h * width
    direct = oh == h and ow == width and sh == 1 and sw == 1
    groups = -(-c // per_group)
    lo, hi = span(t, chunks, groups)
    for g in range(lo, hi):
        c0, c1 = g * per_group, min(c, (g + 1) * per_group)
        k0, k1 = c0 * hw, c1 * hw
        part = parts[t]
        for tap in range(taps + 1):
            part[tap][:k1 - k0] = 0
        for n in range(n_all):
            grads = grid[t][:k1 - k0]
            if direct:
                if act != 0:
                    before_activation(grads, dy[n].reshape(-1)[k0:k1],
                                      y[n].reshape(-1)[k0:k1], act, act_arg)
                else:
                    grads = dy[n].reshape(-1)[k0:k1]
            else:
                values = dy[n].reshape(-1)[c0 * oh * ow:c1 * oh * ow]
                if act != 0:
                    before_activation(raw[t][:values.size], values,
                                      y[n].reshape(-1)[c0 * oh * ow:c1 * oh * ow], act, act_arg)
                    values = raw[t][:values.size]
                spread_strided(values.reshape(c1 - c0, oh, ow), grads, sh, sw, width)
            if has_bias:
                sums = part[taps][:k1 - k0]
                for k in range(k1 - k0):
                    sums[k] += grads[k]
            if need_dw:
                row = x[n].reshape(-1)
                for tap in range(taps):
                    offset, _, _ = _reach(tap // kw, tap % kw, width, pt, pl, dh, dw)
                    first, last = _span(k0, k1, offset)
                    products, g_, src = part[tap][first - k0:last - k0], \
                        grads[first - k0:last - k0], row[first + offset:last + offset]
                    for k in range(last - first):
                        products[k] += g_[k] * src[k]
            if need_dx:
                back = dx[n].reshape(-1)[k0:k1]
                back[:] = 0
                for tap in range(taps):
                    offset, _, _ = _reach(tap // kw, tap % kw, width, pt, pl, dh, dw)
                    first, last = _span(k0, k1, offset)
                    weights, g_ = expanded[tap][first:last], grads[first - k0:last - k0]
                    dst = back[first + offset - k0:last + offset - k0]
                    for k in range(last - first):
                        dst[k] += weights[k] * g_[k]
        for ch in range(c0, c1):
            at = (ch - c0) * hw
            if has_bias:
                db[ch] = part[taps][at:at + hw].sum()
            if need_dw:
                _sum_tap_grads(part, at, dw_[ch, 0], h, width, pt, pl, dh, dw)


def conv_depthwise_rows_fwd_cpu(x, weight, bias, y, expanded, grid, stride_h, stride_w, pad_top,
                                pad_left, dilation_h, dilation_w, per_group, groups, has_bias,
                                act, act_arg) -> None:
    chunks = grid.shape[0]
    run_chunks(_expand, chunks, weight, expanded, x.shape[2], x.shape[3], pad_top, pad_left,
               dilation_h, dilation_w)
    run_chunks(_depthwise_rows_fwd, chunks, x, weight, bias, y, expanded, grid, stride_h,
               stride_w, pad_top, pad_left, dilation_h, dilation_w, per_group, has_bias, act,
               act_arg)


def conv_depthwise_rows_bwd_cpu(x, weight, y, dy, dx, weight_grad, bias_grad, expanded, grid,
                                parts, raw, need_dx, need_dw, stride_h, stride_w, pad_top,
                                pad_left, dilation_h, dilation_w, per_group, groups, has_bias,
                                act, act_arg) -> None:
    """y is read only with a fused activation (act != 0)."""
    chunks = grid.shape[0]
    run_chunks(_expand, chunks, weight, expanded, x.shape[2], x.shape[3], pad_top, pad_left,
               dilation_h, dilation_w)
    run_chunks(_depthwise_rows_bwd, min(chunks, -(-x.shape[1] // per_group)), x, weight, y, dy,
               dx, weight_grad, bias_grad, expanded, grid, parts, raw, stride_h, stride_w,
               pad_top, pad_left, dilation_h, dilation_w, per_group, has_bias, act, act_arg,
               need_dx, need_dw)
