"""softmax on CUDA over axis 1 of (N, C, L) views: one thread per (sample, position)."""
from __future__ import annotations

import math

from numba import cuda

from ...kernels.cuda.launch import blocks, run


@cuda.jit(cache=True)
def softmax_fwd(x, y, zero):
    n, c, size = x.shape
    for p in range(cuda.grid(1), n * size, cuda.gridsize(1)):
        b, j = p // size, p % size
        peak = x[b, 0, j]
        for ch in range(1, c):
            peak = max(peak, x[b, ch, j])
        total = zero
        for ch in range(c):
            y[b, ch, j] = math.exp(x[b, ch, j] - peak)
            total += y[b, ch, j]
        for ch in range(c):
            y[b, ch, j] /= total


@cuda.jit(cache=True)
def softmax_bwd(y, dy, dx, zero):
    n, c, size = y.shape
    for p in range(cuda.grid(1), n * size, cuda.gridsize(1)):
        b, j = p // size, p % size
        dot = zero
        for ch in range(c):
            dot += dy[b, ch, j] * y[b, ch, j]
        for ch in range(c):
            dx[b, ch, j] = y[b, ch, j] * (dy[b, ch, j] - dot)


def softmax_fwd_cuda(x, y):
    run(softmax_fwd, blocks(x.size // x.shape[1]), x, y, x.dtype.type(0))


def softmax_bwd_cuda(y, dy, dx):
    run(softmax_bwd, blocks(y.size // y.shape[1]), y, dy, dx, y.dtype.type(0))

