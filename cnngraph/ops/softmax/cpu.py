"""softmax on the CPU over axis 1 (features, or channels at each pixel), as (N, C, L) views.

y = exp(x - max) / sum;  dx = y * (dy - sum over C of dy * y).
"""
from __future__ import annotations

import numpy as np

from ...kernels.cpu.chunks import chunk_kernel, run_chunks, span, split


@chunk_kernel
def _softmax_fwd(t, chunks, x, y):
    n, c, size = x.shape
    lo, hi = span(t, chunks, n * size)
    for p in range(lo, hi):
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


def softmax_fwd_cpu(x, y) -> None:
    run_chunks(_softmax_fwd, split(x.size), x, y)


@chunk_kernel
def _softmax_bwd(t, chunks, y, dy, dx):
    n, c, size = y.shape
    lo, hi = span(t, chunks, n * size)
    for p in range(lo, hi):
        b, j = p // size, p % size
        dot = 0.0
        for ch in range(c):
            dot += dy[b, ch, j] * y[b, ch, j]
        for ch in range(c):
            dx[b, ch, j] = y[b, ch, j] * (dy[b, ch, j] - dot)


def softmax_bwd_cpu(y, dy, dx) -> None:
    run_chunks(_softmax_bwd, split(y.size), y, dy, dx)

