"""softmax on the CPU over axis 1 (features, or channels at each pixel), as (N, C, L) views.

y = exp(x - max) / sum;  dx = y * (dy - sum over C of dy * y).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .lower import lowerings


@njit(parallel=True, cache=True)
def softmax_fwd_cpu(x, y):
    n, c, size = x.shape
    for p in prange(n * size):
        b, j = p // size, p % size
        peak = x[b, 0, j]
        for ch in range(1, c):
            peak = max(peak, x[b, ch, j])
        total = 0.0
        for ch in range(c):
            y[b, ch, j] = np.exp(x[b, ch, j] - peak)
            total += y[b, ch, j]
        for ch in range(c):
            y[b, ch, j] /= total


@njit(parallel=True, cache=True)
def softmax_bwd_cpu(y, dy, dx):
    n, c, size = y.shape
    for p in prange(n * size):
        b, j = p // size, p % size
        dot = 0.0
        for ch in range(c):
            dot += dy[b, ch, j] * y[b, ch, j]
        for ch in range(c):
            dx[b, ch, j] = y[b, ch, j] * (dy[b, ch, j] - dot)


LOWER = lowerings("cpu")
