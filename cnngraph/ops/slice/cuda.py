"""slice on CUDA, on (N, elements per sample) views: forward, one thread per output element;
backward, one thread per element of dx (its gradient inside the range, zero outside where it
clears)."""
from __future__ import annotations

from numba import cuda

from ...kernels.cuda.launch import blocks, run


@cuda.jit(cache=True)
def slice_fwd(x, y, offset):
    width = y.shape[1]
    for e in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        b, i = e // width, e % width
        y[b, i] = x[b, offset + i]


@cuda.jit(cache=True)
def slice_bwd(dy, dx, offset, clear):
    width, row = dy.shape[1], dx.shape[1]
    for e in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        b, i = e // row, e % row
        if i >= offset and i < offset + width:
            dx[b, i] = dy[b, i - offset]
        elif clear:
            dx[b, i] = 0


def slice_fwd_cuda(x, y, offset) -> None:
    """y[b] = x[b, offset:offset + y.shape[1]]."""
    run(slice_fwd, blocks(y.size), x, y, offset)


def slice_bwd_cuda(dy, dx, offset, clear) -> None:
    """dx[b] = dy[b] at [offset, offset + dy.shape[1]), and, where `clear`, zero elsewhere."""
    run(slice_bwd, blocks(dx.size), dy, dx, offset, clear)
