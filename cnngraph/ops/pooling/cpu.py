"""Pooling on the CPU, in parallel over (sample, channel) planes.

Max pooling keeps the flat index of each window's maximum (the first, in scan order, on ties)
for its backward pass. Average pooling follows PyTorch: a window is clipped to the padded input
for the `count_include_pad` divisor and to the real input for the sum.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ...lowering import Lowering, Scratch


@njit(parallel=True, cache=True)
def maxpool_fwd_cpu(x, y, idx, kh, kw, sh, sw, pt, pl):
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    xs = x.reshape(n * c, h * w)
    ys = y.reshape(n * c, oh * ow)
    ids = idx.reshape(n * c, oh * ow)
    for p in prange(n * c):
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


@njit(parallel=True, cache=True)
def maxpool_bwd_cpu(dy, idx, dx):
    n, c, h, w = dx.shape
    m = dy.shape[2] * dy.shape[3]
    dys = dy.reshape(n * c, m)
    ids = idx.reshape(n * c, m)
    dxs = dx.reshape(n * c, h * w)
    for p in prange(n * c):
        dxs[p] = 0
        for k in range(m):
            dxs[p, ids[p, k]] += dys[p, k]


@njit(cache=True, inline="always")
def _window(r, stride, pad_lo, kernel, size, pad_hi):
    start = r * stride - pad_lo
    end = min(start + kernel, size + pad_hi)
    padded = end - start
    return max(start, 0), min(end, size), padded


@njit(parallel=True, cache=True)
def avgpool_fwd_cpu(x, y, kh, kw, sh, sw, pt, pb, pl, pr, include_pad):
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for p in prange(n * c):
        b, ch = p // c, p % c
        for r in range(oh):
            h0, h1, hp = _window(r, sh, pt, kh, h, pb)
            for q in range(ow):
                w0, w1, wp = _window(q, sw, pl, kw, w, pr)
                total = x[b, ch, h0:h1, w0:w1].sum()
                count = hp * wp if include_pad else (h1 - h0) * (w1 - w0)
                y[b, ch, r, q] = total / count


@njit(parallel=True, cache=True)
def avgpool_bwd_cpu(dy, dx, kh, kw, sh, sw, pt, pb, pl, pr, include_pad):
    n, c, h, w = dx.shape
    oh, ow = dy.shape[2], dy.shape[3]
    for p in prange(n * c):
        b, ch = p // c, p % c
        dx[b, ch] = 0
        for r in range(oh):
            h0, h1, hp = _window(r, sh, pt, kh, h, pb)
            for q in range(ow):
                w0, w1, wp = _window(q, sw, pl, kw, w, pr)
                count = hp * wp if include_pad else (h1 - h0) * (w1 - w0)
                share = dy[b, ch, r, q] / count
                for i in range(h0, h1):
                    for j in range(w0, w1):
                        dx[b, ch, i, j] += share


@njit(parallel=True, cache=True)
def global_avgpool_fwd_cpu(x, y):
    n, c, h, w = x.shape
    planes = x.reshape(n * c, h * w)
    means = y.reshape(n * c)
    for p in prange(n * c):
        total = 0.0
        for i in range(h * w):
            total += planes[p, i]
        means[p] = total / (h * w)


@njit(parallel=True, cache=True)
def global_avgpool_bwd_cpu(dy, dx):
    n, c, h, w = dx.shape
    planes = dx.reshape(n * c, h * w)
    grads = dy.reshape(n * c)
    for p in prange(n * c):
        share = grads[p] / (h * w)
        for i in range(h * w):
            planes[p, i] = share


@njit(parallel=True, cache=True)
def global_maxpool_fwd_cpu(x, y, idx):
    n, c, h, w = x.shape
    xs = x.reshape(n * c, h * w)
    for p in prange(n * c):
        at = np.argmax(xs[p])
        idx[p // c, p % c] = at
        y[p // c, p % c, 0, 0] = xs[p, at]


@njit(parallel=True, cache=True)
def global_maxpool_bwd_cpu(dy, idx, dx):
    n, c, h, w = dx.shape
    dxs = dx.reshape(n * c, h * w)
    for p in prange(n * c):
        dxs[p] = 0
        dxs[p, idx[p // c, p % c]] = dy[p // c, p % c, 0, 0]


def _geometry(a, with_bottom_right: bool) -> str:
    t, b, left, right = a.padding
    pads = f"{t}, {b}, {left}, {right}" if with_bottom_right else f"{t}, {left}"
    return f"{a.kernel[0]}, {a.kernel[1]}, {a.stride[0]}, {a.stride[1]}, {pads}"


def lower_maxpool(node, threads: int) -> Lowering:
    geometry = _geometry(node.attrs, False)
    return Lowering(
        module=__name__, kernels=("maxpool_fwd_cpu", "maxpool_bwd_cpu"),
        forward=lambda io: [f"maxpool_fwd_cpu({io.x[0]}, {io.y}, {io.scratch('argmax')}, "
                            f"{geometry})"],
        backward=lambda io: [f"maxpool_bwd_cpu({io.dy}, {io.scratch('argmax')}, {io.dx[0]})"],
        scratch={"argmax": Scratch(node.shape, per_sample=True, dtype="int32", saved=True)})


def lower_avgpool(node, threads: int) -> Lowering:
    geometry = f"{_geometry(node.attrs, True)}, {node.attrs.count_include_pad}"
    return Lowering(
        module=__name__, kernels=("avgpool_fwd_cpu", "avgpool_bwd_cpu"),
        forward=lambda io: [f"avgpool_fwd_cpu({io.x[0]}, {io.y}, {geometry})"],
        backward=lambda io: [f"avgpool_bwd_cpu({io.dy}, {io.dx[0]}, {geometry})"])


def lower_global_avgpool(node, threads: int) -> Lowering:
    return Lowering(
        module=__name__, kernels=("global_avgpool_fwd_cpu", "global_avgpool_bwd_cpu"),
        forward=lambda io: [f"global_avgpool_fwd_cpu({io.x[0]}, {io.y})"],
        backward=lambda io: [f"global_avgpool_bwd_cpu({io.dy}, {io.dx[0]})"])


def lower_global_maxpool(node, threads: int) -> Lowering:
    return Lowering(
        module=__name__, kernels=("global_maxpool_fwd_cpu", "global_maxpool_bwd_cpu"),
        forward=lambda io: [f"global_maxpool_fwd_cpu({io.x[0]}, {io.y}, "
                            f"{io.scratch('argmax')})"],
        backward=lambda io: [f"global_maxpool_bwd_cpu({io.dy}, {io.scratch('argmax')}, "
                             f"{io.dx[0]})"],
        scratch={"argmax": Scratch((node.shape[0],), per_sample=True, dtype="int32",
                                   saved=True)})


LOWER = {"maxpool": lower_maxpool, "avgpool": lower_avgpool,
         "global_avgpool": lower_global_avgpool, "global_maxpool": lower_global_maxpool}
