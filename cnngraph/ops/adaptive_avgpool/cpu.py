"""adaptive_avgpool on the CPU, in parallel over (sample, channel) planes. Forward: each output
sums its window (in float64) and divides by its size. Backward: each chunk zeroes its own
planes of dx and spreads every output's gradient over its window; overlapping windows (out >
input) add into the same plane, which only that chunk writes."""
from __future__ import annotations

from numba import njit

from ...kernels.cpu.chunks import chunk_kernel, run_chunks, span, split


@njit(cache=True, inline="always")
def _bounds(i, size, out):
    """The window [start, end) of output i: [floor(i*size/out), ceil((i+1)*size/out))."""
    return i * size // out, ((i + 1) * size + out - 1) // out


@chunk_kernel
def _adaptive_avgpool_fwd(t, chunks, x, y):
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    lo, hi = span(t, chunks, n * c)
    for p in range(lo, hi):
        plane, out = x[p // c, p % c], y[p // c, p % c]
        for r in range(oh):
            h0, h1 = _bounds(r, h, oh)
            for q in range(ow):
                w0, w1 = _bounds(q, w, ow)
                total = 0.0
                for i in range(h0, h1):
                    for j in range(w0, w1):
                        total += plane[i, j]
                out[r, q] = total / ((h1 - h0) * (w1 - w0))


def adaptive_avgpool_fwd_cpu(x, y) -> None:
    run_chunks(_adaptive_avgpool_fwd, split(x.size), x, y)


@chunk_kernel
def _adaptive_avgpool_bwd(t, chunks, dy, dx):
    n, c, h, w = dx.shape
    oh, ow = dy.shape[2], dy.shape[3]
    zero = dx.dtype.type(0)
    lo, hi = span(t, chunks, n * c)
    for p in range(lo, hi):
        plane, grads = dx[p // c, p % c], dy[p // c, p % c]
        for i in range(h):
            for j in range(w):
                plane[i, j] = zero
        for r in range(oh):
            h0, h1 = _bounds(r, h, oh)
            for q in range(ow):
                w0, w1 = _bounds(q, w, ow)
                share = grads[r, q] / dx.dtype.type((h1 - h0) * (w1 - w0))
                for i in range(h0, h1):
                    for j in range(w0, w1):
                        plane[i, j] += share


def adaptive_avgpool_bwd_cpu(dy, dx) -> None:
    run_chunks(_adaptive_avgpool_bwd, split(dx.size), dy, dx)
