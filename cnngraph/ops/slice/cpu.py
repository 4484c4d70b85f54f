"""slice on the CPU, on (N, elements per sample) views, each chunk owning a span of the flat
output elements (y forward, dx backward), so a batch of one still splits."""
from __future__ import annotations

from ...kernels.cpu.chunks import chunk_kernel, run_chunks, span, split


@chunk_kernel
def _slice_fwd(t, chunks, x, y, offset):
    width = y.shape[1]
    lo, hi = span(t, chunks, y.size)
    for b in range(lo // width, -(-hi // width)):
        first, last = max(lo - b * width, 0), min(hi - b * width, width)
        y[b, first:last] = x[b, offset + first:offset + last]


@chunk_kernel
def _slice_bwd(t, chunks, dy, dx, offset, clear):
    width, row = dy.shape[1], dx.shape[1]
    zero = dx.dtype.type(0)
    lo, hi = span(t, chunks, dx.size)
    for b in range(lo // row, -(-hi // row)):
        first, last = max(lo - b * row, 0), min(hi - b * row, row)
        # this chunk's part of the row: zeros, then the gradient's run, then zeros
        inside_lo = min(max(offset, first), last)
        inside_hi = min(max(offset + width, first), last)
        dx[b, inside_lo:inside_hi] = dy[b, inside_lo - offset:inside_hi - offset]
        if clear:
            dx[b, first:inside_lo] = zero
            dx[b, inside_hi:last] = zero


def slice_fwd_cpu(x, y, offset) -> None:
    """y[b] = x[b, offset:offset + y.shape[1]]."""
    run_chunks(_slice_fwd, split(y.size), x, y, offset)


def slice_bwd_cpu(dy, dx, offset, clear) -> None:
    """dx[b] = dy[b] at [offset, offset + dy.shape[1]), and, where `clear`, zero elsewhere."""
    run_chunks(_slice_bwd, split(dx.size), dy, dx, offset, clear)
