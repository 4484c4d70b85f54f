"""zero_pad on the CPU, in parallel over (sample, channel) planes: each plane's border zeroed
and its interior copied (forward), or its interior copied back (backward)."""
from __future__ import annotations

from ...kernels.cpu.chunks import chunk_kernel, run_chunks, span, split


@chunk_kernel
def _zero_pad_fwd(t, chunks, x, y, top, left):
    _, h, w = x.shape
    zero = y.dtype.type(0)
    lo, hi = span(t, chunks, x.shape[0])
    for p in range(lo, hi):
        for r in range(y.shape[1]):
            for c in range(y.shape[2]):
                y[p, r, c] = zero
        for r in range(h):
            for c in range(w):
                y[p, top + r, left + c] = x[p, r, c]


@chunk_kernel
def _zero_pad_bwd(t, chunks, dy, dx, top, left):
    _, h, w = dx.shape
    lo, hi = span(t, chunks, dx.shape[0])
    for p in range(lo, hi):
        for r in range(h):
            for c in range(w):
                dx[p, r, c] = dy[p, top + r, left + c]


def zero_pad_fwd_cpu(x, y, top, left) -> None:
    run_chunks(_zero_pad_fwd, split(y.size), x, y, top, left)


def zero_pad_bwd_cpu(dy, dx, top, left) -> None:
    run_chunks(_zero_pad_bwd, split(dy.size), dy, dx, top, left)
