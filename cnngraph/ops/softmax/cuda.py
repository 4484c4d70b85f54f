"""softmax on CUDA over axis 1 of (N, C, L) views: one thread per (sample, position)."""
from __future__ import annotations

import math

from numba import cuda

from ...kernels.cuda.launch import THREADS, blocks
from ...lowering import Lowering


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


def _view(a, c: int):
    return a.reshape(a.shape[0], c, a.size // (a.shape[0] * c))


def softmax_fwd_cuda(x, y, c: int):
    softmax_fwd[blocks(x.size // c), THREADS](_view(x, c), _view(y, c), x.dtype.type(0))


def softmax_bwd_cuda(y, dy, dx, c: int):
    softmax_bwd[blocks(y.size // c), THREADS](_view(y, c), _view(dy, c), _view(dx, c),
                                              y.dtype.type(0))


def lower(node, threads: int) -> Lowering:
    c = node.shape[0]
    return Lowering(
        module=__name__, kernels=("softmax_fwd_cuda", "softmax_bwd_cuda"), reads=("output",),
        forward=lambda io: [f"softmax_fwd_cuda({io.x[0]}, {io.y}, {c})"],
        backward=lambda io: [f"softmax_bwd_cuda({io.y}, {io.dy}, {io.dx[0]}, {c})"])


LOWER = {"softmax": lower}
