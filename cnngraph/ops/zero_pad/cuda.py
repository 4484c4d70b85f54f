"""zero_pad on CUDA: forward, one thread per output element (zero, or its input element);
backward, one thread per input element, reading its element of the gradient."""
from __future__ import annotations

from numba import cuda

from ...kernels.cuda.launch import blocks, run


@cuda.jit(cache=True)
def zero_pad_fwd(x, y, top, left):
    _, h, w = x.shape
    _, oh, ow = y.shape
    for e in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        p, r, c = e // (oh * ow), e // ow % oh, e % ow
        if r >= top and r < top + h and c >= left and c < left + w:
            y[p, r, c] = x[p, r - top, c - left]
        else:
            y[p, r, c] = 0


@cuda.jit(cache=True)
def zero_pad_bwd(dy, dx, top, left):
    _, h, w = dx.shape
    for e in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        p, r, c = e // (h * w), e // w % h, e % w
        dx[p, r, c] = dy[p, top + r, left + c]


def zero_pad_fwd_cuda(x, y, top, left) -> None:
    run(zero_pad_fwd, blocks(y.size), x, y, top, left)


def zero_pad_bwd_cuda(dy, dx, top, left) -> None:
    run(zero_pad_bwd, blocks(dx.size), dy, dx, top, left)
