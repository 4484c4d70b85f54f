"""concat on the CPU: copies channel planes of an input into and out of the output, in
parallel over those planes."""
from __future__ import annotations

from ...kernels.cpu.chunks import chunk_kernel, run_chunks, span, split


@chunk_kernel
def _concat_copy(t, chunks, src, dst, first, count, dst_first, step, to_dst, clear):
    n, channels, size = src.shape
    lo, hi = span(t, chunks, n * count)
    # element loops rather than plane slices: slicing costs more than copying a 4x4 plane
    for plane in range(lo, hi):
        b, c = plane // count, plane % count
        if to_dst:
            for i in range(size):
                dst[b, dst_first + c * step, i] = src[b, first + c, i]
        else:
            for i in range(size):
                src[b, first + c, i] = dst[b, dst_first + c * step, i]
    if clear:
        rest = channels - count
        lo, hi = span(t, chunks, n * rest)
        zero = src.dtype.type(0)
        for plane in range(lo, hi):
            b, c = plane // rest, plane % rest
            for i in range(size):
                src[b, c if c < first else c + count, i] = zero


def concat_copy_cpu(src, dst, first, count, dst_first, step, to_dst, clear) -> None:
    """dst[:, dst_first + c * step] = src[:, first + c] for c < count, on (N, C, L) views; or
    back when not `to_dst`, then, where `clear`, zero src's other channels."""
    run_chunks(_concat_copy, split(src.size if clear else src.size // src.shape[1] * count),
               src, dst, first, count, dst_first, step, to_dst, clear)
