"""Pooling on the CPU, in parallel over (sample, channel) planes.

Max pooling keeps the flat index of each window's maximum for its backward pass: as in PyTorch,
the first in scan order on ties, and a NaN wins its window. Average pooling follows PyTorch: a
window is clipped to the padded input for the `count_include_pad` divisor and to the real input
for the sum.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ...kernels.cpu.chunks import chunk_kernel, run_chunks, span, split
from ...kernels.cpu.vmath import select


@njit(cache=True, inline="always")
def _larger(value, best):
    """Whether `value` replaces the running maximum `best`, as PyTorch decides: when larger or
    NaN (so NaN propagates), and not on ties (so the first maximum in scan order wins)."""
    return (value > best) | (value != value)


@njit(cache=True, inline="always")
def _max_window(plane, w, i0, i1, j0, j1, best, at):
    """The maximum of `best` (at flat index `at`) and plane's window rows [i0, i1), columns
    [j0, j1) (plane a flat row-major map of width w), and its flat index."""
    for i in range(i0, i1):
        for j in range(j0, j1):
            take = _larger(plane[i * w + j], best)
            best = select(take, plane[i * w + j], best)
            at = select(take, np.int32(i * w + j), at)
    return best, at


@njit(cache=True, inline="always")
def _max_pass(src, best, where, start, kw, sw):
    """best[k], where[k] = the maximum of best[k] (at where[k]) and src[k*sw + j] for j < kw
    (src's element 0 being the map's flat index `start`), for every k: the window's columns in
    registers, consecutive outputs in SIMD lanes."""
    for k in range(best.size):
        value, at = best[k], where[k]
        for j in range(kw):
            take = _larger(src[k * sw + j], value)
            value = select(take, src[k * sw + j], value)
            at = select(take, np.int32(start + k * sw + j), at)
        best[k] = value
        where[k] = at


@njit(cache=True, inline="always")
def _max_pass_constant(src, best, where, start, kw, sw):
    """_max_pass with the common windows' width and stride as constants: the window loop
    unrolls and the outputs' loop vectorises."""
    if kw == 3 and sw == 1:
        _max_pass(src, best, where, start, 3, 1)
    elif kw == 3 and sw == 2:
        _max_pass(src, best, where, start, 3, 2)
    elif kw == 2 and sw == 2:
        _max_pass(src, best, where, start, 2, 2)
    else:
        _max_pass(src, best, where, start, kw, sw)


@chunk_kernel
def _maxpool_fwd(t, chunks, x, y, idx, kh, kw, sh, sw, pt, pl):
    """Chunk t of the (sample, channel) planes. The outputs whose windows lie inside the input's
    width take one pass per window row (`_max_pass`): over the whole plane at once when the
    pooling keeps the map's size at stride 1 (an output row then starts where its input row
    does, so consecutive outputs read consecutive inputs across rows too), else along each
    output row. The columns at the edges follow, a column at a time. Window at a time with a
    branch per value, GoogLeNet-CIFAR's first 3x3 stride-1 pooling at batch 32 (6.3 M windows)
    took 116 ms; row at a time, its 16x16 and 8x8 poolings spent 250 ns a row."""
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    xs = x.reshape(n * c, h * w)
    ys = y.reshape(n * c, oh * ow)
    ids = idx.reshape(n * c, oh * ow)
    # the columns [q0, q1) of windows inside the width; those before and after reach into the
    # padding or (ceil mode) past the input's end
    q0 = min((pl + sw - 1) // sw, ow)
    q1 = max(min((w + pl - kw) // sw + 1, ow), q0)
    flat = sh == 1 and sw == 1 and oh == h and ow == w
    lowest = x.dtype.type(-np.inf)
    lo, hi = span(t, chunks, n * c)
    for p in range(lo, hi):
        plane, out, arg = xs[p], ys[p], ids[p]
        out[:] = lowest
        arg[:] = -1
        if flat:
            # window row i of output row r is input row r + i - pt: the rows [r0, r1) have it;
            # the outputs between q0 of r0 and q1 of r1 - 1 read inside the plane, and those
            # at the edges in between read wrong columns, rewritten below
            for i in range(kh):
                r0, r1 = max(pt - i, 0), min(oh, h + pt - i)
                if r0 < r1:
                    first, last = r0 * ow + q0, (r1 - 1) * ow + q1
                    start = first + (i - pt) * w - pl
                    _max_pass_constant(plane[start:], out[first:last], arg[first:last], start,
                                       kw, 1)
        else:
            for r in range(oh):
                for i in range(max(r * sh - pt, 0), min(r * sh - pt + kh, h)):
                    start = i * w + q0 * sw - pl
                    _max_pass_constant(plane[start:], out[r * ow + q0:r * ow + q1],
                                       arg[r * ow + q0:r * ow + q1], start, kw, sw)
        for e in range(ow - (q1 - q0)):
            q = e if e < q0 else e + q1 - q0
            j0, j1 = max(q * sw - pl, 0), min(q * sw - pl + kw, w)
            for r in range(oh):
                out[r * ow + q], arg[r * ow + q] = _max_window(
                    plane, w, max(r * sh - pt, 0), min(r * sh - pt + kh, h), j0, j1, lowest,
                    np.int32(-1))


def maxpool_fwd_cpu(x, y, argmax, kernel_h, kernel_w, stride_h, stride_w, pad_top,
                    pad_left) -> None:
    run_chunks(_maxpool_fwd, split(x.size), x, y, argmax, kernel_h, kernel_w, stride_h,
               stride_w, pad_top, pad_left)


@chunk_kernel
def _maxpool_bwd(t, chunks, dy, idx, dx):
    n, c, h, w = dx.shape
    m = dy.shape[2] * dy.shape[3]
    dys = dy.reshape(n * c, m)
    ids = idx.reshape(n * c, m)
    dxs = dx.reshape(n * c, h * w)
    lo, hi = span(t, chunks, n * c)
    for p in range(lo, hi):
        dxs[p] = 0
        for k in range(m):
            dxs[p, ids[p, k]] += dys[p, k]


def maxpool_bwd_cpu(dy, argmax, dx) -> None:
    run_chunks(_maxpool_bwd, split(dx.size), dy, argmax, dx)


@njit(cache=True, inline="always")
def _window(r, stride, pad_lo, kernel, size, pad_hi):
    start = r * stride - pad_lo
    end = min(start + kernel, size + pad_hi)
    padded = end - start
    return max(start, 0), min(end, size), padded


@njit(cache=True, inline="always")
def _inside(h, w, oh, ow, kh, kw, sh, sw, pt, pb, pl, pr):
    """Whether every window lies inside the input (no padding, none cut short): then each
    averages kh * kw values, and a pass can run along whole rows."""
    return pt == 0 and pb == 0 and pl == 0 and pr == 0 and (oh - 1) * sh + kh <= h \
        and (ow - 1) * sw + kw <= w


@njit(cache=True, inline="always")
def _window_sums(row, out, kw, sw, scale):
    """out[q] = scale * the sum of row[q*sw:q*sw + kw]."""
    for q in range(out.size):
        total = row[q * sw]
        for j in range(1, kw):
            total += row[q * sw + j]
        out[q] = total * scale


@njit(cache=True, inline="always")
def _window_spread(grads, row, kw, sw, scale):
    """row[q*sw:q*sw + kw] += scale * grads[q], the adjoint of _window_sums."""
    for q in range(grads.size):
        share = grads[q] * scale
        for j in range(kw):
            row[q * sw + j] += share


@njit(cache=True, inline="always")
def _with_constant_window(kernel, source, target, kw, sw, scale):
    """kernel(source, target, kw, sw, scale), with the window's width and stride as constants
    for the common windows: the loops then unroll and vectorise (LeNet's 2x2 pooling ran 3x
    faster than with them as variables)."""
    if kw == 2 and sw == 2:
        kernel(source, target, 2, 2, scale)
    elif kw == 3 and sw == 2:
        kernel(source, target, 3, 2, scale)
    else:
        kernel(source, target, kw, sw, scale)


# Windows that tile an input of rows this short run one window at a time along rows of all
# the planes (below), not as passes along each row: a pass over 10 values costs more than its
# work. LeNet's 16 x 10x10 maps at batch 256, one thread: forward 238-260 -> 148-154 us,
# backward 460 -> 140-144 us; its 28x28 maps, on the passes, 323-367 us either way.
SHORT_ROWS_UP_TO = 16


@njit(cache=True, inline="always")
def _tiles(h, w, oh, ow, kh, kw, sh, sw, inside):
    """Whether the windows tile the input: each input pixel in exactly one window."""
    return inside and kh == sh and kw == sw and oh * sh == h and ow * sw == w


@njit(cache=True, inline="always")
def _tiled_means(x, y, lo, hi, kh, kw, scale):
    """Output rows [lo, hi) of all planes (y as rows of ow, x as blocks of kh rows), each
    window the sum of its columns' sums, in the order the passes along rows add them."""
    w = x.shape[3]
    blocks = x.reshape(-1, kh * w)
    rows = y.reshape(-1, y.shape[3])
    for r in range(lo, hi):
        block, row = blocks[r], rows[r]
        for q in range(row.size):
            total = block[q * kw]
            for i in range(1, kh):
                total += block[i * w + q * kw]
            for j in range(1, kw):
                column = block[q * kw + j]
                for i in range(1, kh):
                    column += block[i * w + q * kw + j]
                total += column
            row[q] = total * scale


@njit(cache=True, inline="always")
def _tiled_spread(dy, dx, lo, hi, kh, kw, scale):
    """The adjoint of _tiled_means: every input pixel of a window gets its share."""
    w = dx.shape[3]
    blocks = dx.reshape(-1, kh * w)
    rows = dy.reshape(-1, dy.shape[3])
    for r in range(lo, hi):
        block, row = blocks[r], rows[r]
        for q in range(row.size):
            share = row[q] * scale
            for i in range(kh):
                for j in range(kw):
                    block[i * w + q * kw + j] = share


@njit(cache=True, inline="always")
def _with_constant_tile(kernel, source, target, lo, hi, kh, kw, scale):
    """kernel(source, target, lo, hi, kh, kw, scale), with 2x2 windows as constants: their
    loops then unroll."""
    if kh == 2 and kw == 2:
        kernel(source, target, lo, hi, 2, 2, scale)
    else:
        kernel(source, target, lo, hi, kh, kw, scale)


@chunk_kernel
def _avgpool_fwd(t, chunks, x, y, rows, kh, kw, sh, sw, pt, pb, pl, pr, include_pad):
    """Chunk t of the (sample, channel) planes. When every window is inside the input, each
    output row sums its kh input rows into rows[t] (whole rows, vectorised), then the windows
    along it."""
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    inside = _inside(h, w, oh, ow, kh, kw, sh, sw, pt, pb, pl, pr)
    scale = x.dtype.type(1 / (kh * kw))
    total = rows[t, :w]
    lo, hi = span(t, chunks, n * c)
    if w <= SHORT_ROWS_UP_TO and _tiles(h, w, oh, ow, kh, kw, sh, sw, inside):
        _with_constant_tile(_tiled_means, x, y, lo * oh, hi * oh, kh, kw, scale)
        return
    for p in range(lo, hi):
        plane = x[p // c, p % c]      # views once per plane: a view per window costs ~3x
        out = y[p // c, p % c]
        for r in range(oh):
            row = out[r]
            if inside:
                first = plane[r * sh]
                for k in range(w):
                    total[k] = first[k]
                for i in range(1, kh):
                    src = plane[r * sh + i]
                    for k in range(w):
                        total[k] += src[k]
                _with_constant_window(_window_sums, total, row, kw, sw, scale)
                continue
            h0, h1, hp = _window(r, sh, pt, kh, h, pb)
            for q in range(ow):
                w0, w1, wp = _window(q, sw, pl, kw, w, pr)
                value = 0.0
                for i in range(h0, h1):
                    for j in range(w0, w1):
                        value += plane[i, j]
                count = hp * wp if include_pad else (h1 - h0) * (w1 - w0)
                row[q] = value / count


def avgpool_fwd_cpu(x, y, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_bottom,
                    pad_left, pad_right, include_pad, rows) -> None:
    run_chunks(_avgpool_fwd, min(split(x.size), rows.shape[0]), x, y, rows, kernel_h,
               kernel_w, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right,
               include_pad)


@chunk_kernel
def _avgpool_bwd(t, chunks, dy, dx, rows, kh, kw, sh, sw, pt, pb, pl, pr, include_pad):
    """The adjoint of _avgpool_fwd: inside windows spread each output gradient row along
    rows[t], then add it to its kh input rows (or write it there, when the windows tile the
    input)."""
    n, c, h, w = dx.shape
    oh, ow = dy.shape[2], dy.shape[3]
    inside = _inside(h, w, oh, ow, kh, kw, sh, sw, pt, pb, pl, pr)
    # every input pixel in exactly one window: each input row is written once, not summed
    tiled = _tiles(h, w, oh, ow, kh, kw, sh, sw, inside)
    scale = dx.dtype.type(1 / (kh * kw))
    spread = rows[t, :w]
    lo, hi = span(t, chunks, n * c)
    if tiled and w <= SHORT_ROWS_UP_TO:
        _with_constant_tile(_tiled_spread, dy, dx, lo * oh, hi * oh, kh, kw, scale)
        return
    for p in range(lo, hi):
        plane = dx[p // c, p % c]
        grads = dy[p // c, p % c]
        if not tiled:
            for i in range(h):
                for j in range(w):
                    plane[i, j] = 0
        for r in range(oh):
            row = grads[r]
            if inside:
                for k in range(w):
                    spread[k] = 0
                _with_constant_window(_window_spread, row, spread, kw, sw, scale)
                for i in range(kh):
                    dst = plane[r * sh + i]
                    if tiled:
                        for k in range(w):
                            dst[k] = spread[k]
                    else:
                        for k in range(w):
                            dst[k] += spread[k]
                continue
            h0, h1, hp = _window(r, sh, pt, kh, h, pb)
            for q in range(ow):
                w0, w1, wp = _window(q, sw, pl, kw, w, pr)
                count = hp * wp if include_pad else (h1 - h0) * (w1 - w0)
                share = row[q] / count
                for i in range(h0, h1):
                    for j in range(w0, w1):
                        plane[i, j] += share


def avgpool_bwd_cpu(dy, dx, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_bottom,
                    pad_left, pad_right, include_pad, rows) -> None:
    run_chunks(_avgpool_bwd, min(split(dx.size), rows.shape[0]), dy, dx, rows, kernel_h,
               kernel_w, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right,
               include_pad)


@chunk_kernel
def _global_avgpool_fwd(t, chunks, x, y):
    n, c, h, w = x.shape
    planes = x.reshape(n * c, h * w)
    means = y.reshape(n * c)
    lo, hi = span(t, chunks, n * c)
    for p in range(lo, hi):
        total = 0.0
        for i in range(h * w):
            total += planes[p, i]
        means[p] = total / (h * w)


def global_avgpool_fwd_cpu(x, y) -> None:
    run_chunks(_global_avgpool_fwd, split(x.size), x, y)


@chunk_kernel
def _global_avgpool_bwd(t, chunks, dy, dx):
    n, c, h, w = dx.shape
    planes = dx.reshape(n * c, h * w)
    grads = dy.reshape(n * c)
    lo, hi = span(t, chunks, n * c)
    for p in range(lo, hi):
        share = grads[p] / (h * w)
        for i in range(h * w):
            planes[p, i] = share


def global_avgpool_bwd_cpu(dy, dx) -> None:
    run_chunks(_global_avgpool_bwd, split(dx.size), dy, dx)


@chunk_kernel
def _global_maxpool_fwd(t, chunks, x, y, idx):
    n, c, h, w = x.shape
    xs = x.reshape(n * c, h * w)
    lo, hi = span(t, chunks, n * c)
    for p in range(lo, hi):
        at = np.argmax(xs[p])
        idx[p // c, p % c] = at
        y[p // c, p % c, 0, 0] = xs[p, at]


def global_maxpool_fwd_cpu(x, y, argmax) -> None:
    run_chunks(_global_maxpool_fwd, split(x.size), x, y, argmax)


@chunk_kernel
def _global_maxpool_bwd(t, chunks, dy, idx, dx):
    n, c, h, w = dx.shape
    dxs = dx.reshape(n * c, h * w)
    lo, hi = span(t, chunks, n * c)
    for p in range(lo, hi):
        dxs[p] = 0
        dxs[p, idx[p // c, p % c]] = dy[p // c, p % c, 0, 0]


def global_maxpool_bwd_cpu(dy, argmax, dx) -> None:
    run_chunks(_global_maxpool_bwd, split(dx.size), dy, argmax, dx)

