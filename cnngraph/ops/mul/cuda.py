"""mul on CUDA: y = a * b where either may be a (C, 1, 1) gate broadcast over H x W; tensors
arrive as (N, C, H, W) (vectors as (N, F, 1, 1)) and are viewed as (N, C, L). The gate's
gradient is a sum over L per (sample, channel): one thread per pair; the full-size factor's
gradient is one thread per element."""
from __future__ import annotations

from numba import cuda

from ...kernels.cuda.launch import blocks, run


@cuda.jit(cache=True)
def mul_fwd(a, b, y):
    n, c, size = y.shape
    for e in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        i, ch, k = e // (c * size), e // size % c, e % size
        y[i, ch, k] = a[i, ch, k if a.shape[2] > 1 else 0] * b[i, ch, k if b.shape[2] > 1 else 0]


@cuda.jit(cache=True)
def mul_bwd(other, dy, dx, zero):
    """The gradient of one factor: dy * other, reduced to the factor's shape."""
    n, c, size = dy.shape
    own = dx.shape[2]
    for e in range(cuda.grid(1), n * c * own, cuda.gridsize(1)):
        i, ch, k = e // (c * own), e // own % c, e % own
        if own == size:
            dx[i, ch, k] = dy[i, ch, k] * other[i, ch, k if other.shape[2] > 1 else 0]
        else:
            total = zero
            for j in range(size):
                total += dy[i, ch, j] * other[i, ch, j if other.shape[2] > 1 else 0]
            dx[i, ch, 0] = total


def _planes(a):
    """(N, C, H, W) as (N, C, H x W)."""
    return a.reshape(a.shape[0], a.shape[1], a.size // (a.shape[0] * a.shape[1]))


def mul_fwd_cuda(a, b, y) -> None:
    run(mul_fwd, blocks(y.size), _planes(a), _planes(b), _planes(y))


def mul_bwd_cuda(other, dy, dx) -> None:
    run(mul_bwd, blocks(dx.size), _planes(other), _planes(dy), _planes(dx), dx.dtype.type(0))

