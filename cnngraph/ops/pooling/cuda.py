"""Pooling on CUDA, one thread per element, no atomics.

Forward passes give each output element a thread that scans its window (max pooling keeps the
flat index of the first maximum, as the CPU kernel does). Backward passes are gathers: each
input element's thread visits the windows that contain it, so every dx element is written
once. Global pools give a thread to each (sample, channel) plane.
"""
from __future__ import annotations

from ...kernels.cuda.launch import blocks, instantiate, run

_TEMPLATE = '''
@cuda.jit(device=True, inline=True)
def window(r, stride, pad_lo, kernel, size, pad_hi):
    start = r * stride - pad_lo
    end = min(start + kernel, size + pad_hi)
    return max(start, 0), min(end, size), end - start


@cuda.jit(device=True, inline=True)
def covering(h, stride, pad_lo, kernel, outputs):
    """The range of output rows whose window contains input row h."""
    first = max(0, (h + pad_lo - kernel + stride) // stride)
    return first, min(outputs, (h + pad_lo) // stride + 1)


@cuda.jit(cache=True)
def maxpool_fwd(x, y, idx, kh, kw, sh, sw, pt, pl):
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for e in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        b, ch, r, q = e // (c * oh * ow), e // (oh * ow) % c, e // ow % oh, e % ow
        h0, w0 = r * sh - pt, q * sw - pl
        best = F(0)
        at = -1
        for i in range(max(h0, 0), min(h0 + kh, h)):
            for j in range(max(w0, 0), min(w0 + kw, w)):
                value = x[b, ch, i, j]
                if value > best or value != value or at < 0:   # NaN wins, as on the CPU
                    best = value
                    at = i * w + j
        y[b, ch, r, q] = best
        idx[b, ch, r, q] = at


@cuda.jit(cache=True)
def maxpool_bwd(dy, idx, dx, kh, kw, sh, sw, pt, pl):
    n, c, h, w = dx.shape
    oh, ow = dy.shape[2], dy.shape[3]
    for e in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        b, ch, i, j = e // (c * h * w), e // (h * w) % c, e // w % h, e % w
        r0, r1 = covering(i, sh, pt, kh, oh)
        q0, q1 = covering(j, sw, pl, kw, ow)
        total = F(0)
        for r in range(r0, r1):
            for q in range(q0, q1):
                if idx[b, ch, r, q] == i * w + j:
                    total += dy[b, ch, r, q]
        dx[b, ch, i, j] = total


@cuda.jit(cache=True)
def avgpool_fwd(x, y, kh, kw, sh, sw, pt, pb, pl, pr, include_pad):
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for e in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        b, ch, r, q = e // (c * oh * ow), e // (oh * ow) % c, e // ow % oh, e % ow
        h0, h1, hp = window(r, sh, pt, kh, h, pb)
        w0, w1, wp = window(q, sw, pl, kw, w, pr)
        total = F(0)
        for i in range(h0, h1):
            for j in range(w0, w1):
                total += x[b, ch, i, j]
        count = hp * wp if include_pad else (h1 - h0) * (w1 - w0)
        y[b, ch, r, q] = total / F(count)


@cuda.jit(cache=True)
def avgpool_bwd(dy, dx, kh, kw, sh, sw, pt, pb, pl, pr, include_pad):
    n, c, h, w = dx.shape
    oh, ow = dy.shape[2], dy.shape[3]
    for e in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        b, ch, i, j = e // (c * h * w), e // (h * w) % c, e // w % h, e % w
        r0, r1 = covering(i, sh, pt, kh, oh)
        q0, q1 = covering(j, sw, pl, kw, ow)
        total = F(0)
        for r in range(r0, r1):
            h0, h1, hp = window(r, sh, pt, kh, h, pb)
            for q in range(q0, q1):
                w0, w1, wp = window(q, sw, pl, kw, w, pr)
                count = hp * wp if include_pad else (h1 - h0) * (w1 - w0)
                total += dy[b, ch, r, q] / F(count)
        dx[b, ch, i, j] = total


@cuda.jit(cache=True)
def global_avgpool_fwd(x, y):
    n, c, h, w = x.shape
    for p in range(cuda.grid(1), n * c, cuda.gridsize(1)):
        total = F(0)
        for i in range(h):
            for j in range(w):
                total += x[p // c, p % c, i, j]
        y[p // c, p % c, 0, 0] = total / F(h * w)


@cuda.jit(cache=True)
def global_avgpool_bwd(dy, dx):
    n, c, h, w = dx.shape
    for e in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        b, ch = e // (c * h * w), e // (h * w) % c
        dx[b, ch, e // w % h, e % w] = dy[b, ch, 0, 0] / F(h * w)


@cuda.jit(cache=True)
def global_maxpool_fwd(x, y, idx):
    n, c, h, w = x.shape
    for p in range(cuda.grid(1), n * c, cuda.gridsize(1)):
        best = x[p // c, p % c, 0, 0]
        at = 0
        for k in range(1, h * w):
            value = x[p // c, p % c, k // w, k % w]
            if value > best:
                best = value
                at = k
        idx[p // c, p % c] = at
        y[p // c, p % c, 0, 0] = best


@cuda.jit(cache=True)
def global_maxpool_bwd(dy, idx, dx):
    n, c, h, w = dx.shape
    for e in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        b, ch, k = e // (c * h * w), e // (h * w) % c, e % (h * w)
        dx[b, ch, k // w, k % w] = dy[b, ch, 0, 0] if idx[b, ch] == k else F(0)
'''

KERNELS = instantiate(_TEMPLATE, "pooling")


def _launch(kernel: str, threads: int, *args) -> None:
    """Launch a pooling kernel over `threads` elements (or planes) for the first array's dtype."""
    run(getattr(KERNELS[args[0].dtype], kernel), blocks(threads), *args)


def maxpool_fwd_cuda(x, y, argmax, kernel_h, kernel_w, stride_h, stride_w, pad_top,
                     pad_left) -> None:
    _launch("maxpool_fwd", y.size, x, y, argmax, kernel_h, kernel_w, stride_h, stride_w, pad_top,
            pad_left)


def maxpool_bwd_cuda(dy, argmax, dx, kernel_h, kernel_w, stride_h, stride_w, pad_top,
                     pad_left) -> None:
    _launch("maxpool_bwd", dx.size, dy, argmax, dx, kernel_h, kernel_w, stride_h, stride_w,
            pad_top, pad_left)


def avgpool_fwd_cuda(x, y, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_bottom,
                     pad_left, pad_right, include_pad) -> None:
    _launch("avgpool_fwd", y.size, x, y, kernel_h, kernel_w, stride_h, stride_w, pad_top,
            pad_bottom, pad_left, pad_right, include_pad)


def avgpool_bwd_cuda(dy, dx, kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_bottom,
                     pad_left, pad_right, include_pad) -> None:
    _launch("avgpool_bwd", dx.size, dy, dx, kernel_h, kernel_w, stride_h, stride_w, pad_top,
            pad_bottom, pad_left, pad_right, include_pad)


def global_maxpool_fwd_cuda(x, y, argmax) -> None:
    _launch("global_maxpool_fwd", y.size, x, y, argmax)


def global_maxpool_bwd_cuda(dy, argmax, dx) -> None:
    _launch("global_maxpool_bwd", dx.size, dy, argmax, dx)


def global_avgpool_fwd_cuda(x, y) -> None:
    _launch("global_avgpool_fwd", y.size, x, y)


def global_avgpool_bwd_cuda(dy, dx) -> None:
    _launch("global_avgpool_bwd", dx.size, dy, dx)
