"""channel_shuffle on CUDA: one thread per output element, reading its element of the source
channel (reads and writes both run along the plane, so both coalesce)."""
from __future__ import annotations

from numba import cuda

from ...kernels.cuda.launch import blocks, run


@cuda.jit(cache=True)
def channel_shuffle(src, dst, groups):
    n, channels, plane = src.shape
    per_group = channels // groups
    for e in range(cuda.grid(1), src.size, cuda.gridsize(1)):
        b, out, k = e // (channels * plane), e // plane % channels, e % plane
        dst[b, out, k] = src[b, out % groups * per_group + out // groups, k]


def channel_shuffle_cuda(src, dst, groups, inverse) -> None:
    """dst[:, i * groups + j] = src[:, j * (C / groups) + i], on (N, C, H*W) views; with
    `inverse`, the inverse permutation (the shuffle with C / groups groups)."""
    shuffled = src.shape[1] // groups if inverse else groups
    run(channel_shuffle, blocks(src.size), src, dst, shuffled)
