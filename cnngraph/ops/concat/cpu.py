"""concat on the CPU: copies into and out of channel (or feature) ranges of the output."""
from __future__ import annotations

from ...kernels.cpu.chunks import chunk_kernel, run_chunks, span, split


@chunk_kernel
def _concat_slice(t, chunks, src, dst, offset, to_dst):
    """Copy src (N, C_i, ...) into dst[:, offset:offset + C_i] (or back, when not to_dst)."""
    n = src.shape[0]
    size = src[0].size
    lo, hi = span(t, chunks, n)
    for b in range(lo, hi):
        a = src[b].reshape(-1)
        d = dst[b].reshape(-1)[offset * (dst[b].size // dst.shape[1]):][:size]
        if to_dst:
            d[:] = a
        else:
            a[:] = d


def concat_slice_cpu(src, dst, offset, to_dst) -> None:
    run_chunks(_concat_slice, split(src.size), src, dst, offset, to_dst)

