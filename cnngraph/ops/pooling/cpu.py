"""Pooling on the CPU, in parallel over (sample, channel) planes.

Max pooling keeps the flat index of each window's maximum (the first, in scan order, on ties)
for its backward pass. Average pooling follows PyTorch: a window is clipped to the padded input
for the `count_include_pad` divisor and to the real input for the sum.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ...kernels.cpu.chunks import chunk_kernel, run_chunks, span, split


@chunk_kernel
def _maxpool_fwd(t, chunks, x, y, idx, kh, kw, sh, sw, pt, pl):
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    xs = x.reshape(n * c, h * w)
    ys = y.reshape(n * c, oh * ow)
    ids = idx.reshape(n * c, oh * ow)
    lo, hi = span(t, chunks, n * c)
    for p in range(lo, hi):
        for r in range(oh):
            h0 = r * sh - pt
            for q in range(ow):
                w0 = q * sw - pl
                best = -np.inf
                at = -1
                for i in range(max(h0, 0), min(h0 + kh, h)):
                    for j in range(max(w0, 0), min(w0 + kw, w)):
                        value = xs[p, i * w + j]
                        if value > best or at < 0:
                            best = value
                            at = i * w + j
                ys[p, r * ow + q] = best
                ids[p, r * ow + q] = at


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
    tiled = inside and kh == sh and kw == sw and oh * sh == h and ow * sw == w
    scale = dx.dtype.type(1 / (kh * kw))
    spread = rows[t, :w]
    lo, hi = span(t, chunks, n * c)
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

