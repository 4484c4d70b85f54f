"""upsample on the CPU, in parallel over (sample, channel) planes.

A chunk owns whole planes, so the backward passes scatter each output's gradient to the inputs
it read (as PyTorch does: in the same order, output row by row) without two threads ever
writing the same dx element. A bilinear chunk first tabulates each output row's and column's
neighbours and weights, so the inner loops hold no index arithmetic and compute in the data's
dtype.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ...kernels.cpu.chunks import chunk_kernel, run_chunks, span, split


@njit(cache=True)
def _neighbours(outputs, inputs, scale, dtype):
    """Per output index along one axis: its two input neighbours and their weights. PyTorch's
    source position src = (d + 0.5) / scale - 0.5, clamped at 0, is the exact fraction
    (2d + 1 - scale) / (2 scale); the second neighbour is clamped at the edge."""
    first, second = np.empty(outputs, np.int64), np.empty(outputs, np.int64)
    near, far = np.empty(outputs, dtype), np.empty(outputs, dtype)
    for d in range(outputs):
        numerator = max(2 * d + 1 - scale, 0)
        first[d] = numerator // (2 * scale)
        second[d] = min(first[d] + 1, inputs - 1)
        far[d] = numerator % (2 * scale) / (2 * scale)
        near[d] = 1 - far[d]
    return first, second, near, far


@chunk_kernel
def _nearest_fwd(t, chunks, x, y, scale):
    planes, oh, ow = y.shape
    lo, hi = span(t, chunks, planes)
    for p in range(lo, hi):
        for r in range(oh):
            row, out = x[p, r // scale], y[p, r]
            for q in range(ow):
                out[q] = row[q // scale]


@chunk_kernel
def _nearest_bwd(t, chunks, dy, dx, scale):
    planes, oh, ow = dy.shape
    lo, hi = span(t, chunks, planes)
    for p in range(lo, hi):
        dx[p] = 0
        for r in range(oh):
            row, out = dy[p, r], dx[p, r // scale]
            for q in range(ow):
                out[q // scale] += row[q]


@chunk_kernel
def _bilinear_fwd(t, chunks, x, y, scale):
    planes, h, w = x.shape
    oh, ow = y.shape[1:]
    r0, r1, up, down = _neighbours(oh, h, scale, y.dtype)
    q0, q1, left, right = _neighbours(ow, w, scale, y.dtype)
    lo, hi = span(t, chunks, planes)
    for p in range(lo, hi):
        for r in range(oh):
            top, bottom, out = x[p, r0[r]], x[p, r1[r]], y[p, r]
            for q in range(ow):
                a, b = q0[q], q1[q]
                out[q] = (up[r] * (left[q] * top[a] + right[q] * top[b])
                          + down[r] * (left[q] * bottom[a] + right[q] * bottom[b]))


@chunk_kernel
def _bilinear_bwd(t, chunks, dy, dx, scale):
    planes, h, w = dx.shape
    oh, ow = dy.shape[1:]
    r0, r1, up, down = _neighbours(oh, h, scale, dx.dtype)
    q0, q1, left, right = _neighbours(ow, w, scale, dx.dtype)
    lo, hi = span(t, chunks, planes)
    for p in range(lo, hi):
        dx[p] = 0
        for r in range(oh):
            top, bottom = dx[p, r0[r]], dx[p, r1[r]]
            for q in range(ow):
                a, b, g = q0[q], q1[q], dy[p, r, q]
                top[a] += up[r] * left[q] * g
                top[b] += up[r] * right[q] * g
                bottom[a] += down[r] * left[q] * g
                bottom[b] += down[r] * right[q] * g


_FORWARD = {"nearest": _nearest_fwd, "bilinear": _bilinear_fwd}
_BACKWARD = {"nearest": _nearest_bwd, "bilinear": _bilinear_bwd}


def upsample_fwd_cpu(x, y, scale, mode) -> None:
    """y (N*C, H*scale, W*scale) from x (N*C, H, W)."""
    run_chunks(_FORWARD[mode], split(y.size), x, y, scale)


def upsample_bwd_cpu(dy, dx, scale, mode) -> None:
    """dx (N*C, H, W), the adjoint of the forward pass, from dy (N*C, H*scale, W*scale)."""
    run_chunks(_BACKWARD[mode], split(dy.size), dy, dx, scale)
