"""mul on the CPU: y = a * b where either may be a (C, 1, 1) gate broadcast over H x W.

da = dy * b (summed over H x W when a is the gate), and likewise for b.
"""
from __future__ import annotations

from ...kernels.cpu.chunks import chunk_kernel, run_chunks, span, split


@chunk_kernel
def _mul_fwd(t, chunks, a, b, y):
    n, c = y.shape[0], y.shape[1]
    lo, hi = span(t, chunks, n * c)
    for p in range(lo, hi):
        i, ch = p // c, p % c
        ya = a[i, ch].reshape(-1)
        yb = b[i, ch].reshape(-1)
        yy = y[i, ch].reshape(-1)
        for k in range(yy.size):
            yy[k] = ya[k if ya.size > 1 else 0] * yb[k if yb.size > 1 else 0]


def mul_fwd_cpu(a, b, y) -> None:
    run_chunks(_mul_fwd, split(y.size), a, b, y)


@chunk_kernel
def _mul_bwd(t, chunks, other, dy, dx):
    """The gradient of one factor: dy * other, reduced to the factor's shape."""
    n, c = dy.shape[0], dy.shape[1]
    lo, hi = span(t, chunks, n * c)
    for p in range(lo, hi):
        i, ch = p // c, p % c
        o = other[i, ch].reshape(-1)
        g = dy[i, ch].reshape(-1)
        d = dx[i, ch].reshape(-1)
        if d.size == g.size:
            for k in range(g.size):
                d[k] = g[k] * o[k if o.size > 1 else 0]
        else:      # the gate's sum over H x W accumulates in float64, as every CPU sum does
            total = 0.0
            for k in range(g.size):
                total += g[k] * o[k if o.size > 1 else 0]
            d[0] = total


def mul_bwd_cpu(other, dy, dx) -> None:
    run_chunks(_mul_bwd, split(dy.size), other, dy, dx)

