"""concat on CUDA: one thread per element of an input, copying it into (or back out of) its
channel of the output, or clearing it where the input is read in part."""
from __future__ import annotations

from numba import cuda

from ...kernels.cuda.launch import blocks, run


@cuda.jit(cache=True)
def concat_copy(src, dst, first, count, dst_first, step, to_dst, clear):
    n, channels, size = src.shape
    for e in range(cuda.grid(1), src.size, cuda.gridsize(1)):
        b, c, i = e // (channels * size), e // size % channels, e % size
        if c >= first and c < first + count:
            if to_dst:
                dst[b, dst_first + (c - first) * step, i] = src[b, c, i]
            else:
                src[b, c, i] = dst[b, dst_first + (c - first) * step, i]
        elif clear:
            src[b, c, i] = 0


def concat_copy_cuda(src, dst, first, count, dst_first, step, to_dst, clear) -> None:
    """dst[:, dst_first + c * step] = src[:, first + c] for c < count, on (N, C, L) views; or
    back when not `to_dst`, then, where `clear`, zero src's other channels."""
    run(concat_copy, blocks(src.size), src, dst, first, count, dst_first, step, to_dst, clear)
