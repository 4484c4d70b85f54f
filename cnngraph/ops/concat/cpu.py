"""concat on the CPU: copies into and out of channel (or feature) ranges of the output."""
from __future__ import annotations

from numba import njit, prange

from .lower import lowering


@njit(parallel=True, cache=True)
def concat_slice_cpu(src, dst, offset, to_dst):
    """Copy src (N, C_i, ...) into dst[:, offset:offset + C_i] (or back, when not to_dst)."""
    n = src.shape[0]
    size = src[0].size
    for b in prange(n):
        a = src[b].reshape(-1)
        d = dst[b].reshape(-1)[offset * (dst[b].size // dst.shape[1]):][:size]
        if to_dst:
            d[:] = a
        else:
            a[:] = d


LOWER = {"concat": lowering("cpu")}
