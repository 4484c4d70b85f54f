"""concat on CUDA: one thread per element of an input, copying it into (or back out of) its
channel range of the output; the tensors are viewed as (N, elements per sample)."""
from __future__ import annotations

from numba import cuda

from ...kernels.cuda.launch import blocks, run


@cuda.jit(cache=True)
def concat_slice(src, dst, start, to_dst):
    n, size = src.shape
    for e in range(cuda.grid(1), n * size, cuda.gridsize(1)):
        b, i = e // size, e % size
        if to_dst:
            dst[b, start + i] = src[b, i]
        else:
            src[b, i] = dst[b, start + i]


def concat_slice_cuda(src, dst, offset: int, to_dst: bool) -> None:
    """Copy src (N, C_i, ...) into dst[:, offset:offset + C_i] (or back, when not to_dst)."""
    n = src.shape[0]
    plane = dst.size // (n * dst.shape[1])
    run(concat_slice, blocks(src.size), src.reshape(n, src.size // n),
        dst.reshape(n, dst.size // n), offset * plane,
        to_dst)

