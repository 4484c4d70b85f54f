"""prelu on the CPU, in parallel over (sample, slope) planes of the (N, S, L) views.

Backward: dx = dy where x > 0, else weight * dy; the weight gradient, the sum of x * dy over
the inputs at or below 0, is reduced per chunk into its own row of `parts` (a sum per plane in
float64), then the rows are added in chunk order: the result does not depend on scheduling.
"""
from __future__ import annotations

from ...kernels.cpu.chunks import chunk_kernel, run_chunks, span, split

# The weight gradient's sum may be reassociated, so that it vectorises (NaN and infinity keep
# their meaning).
SUMS_IN_ANY_ORDER = {"reassoc", "contract", "nsz", "arcp"}


@chunk_kernel
def _prelu_fwd(t, chunks, x, weight, y):
    n, s, size = x.shape
    zero = x.dtype.type(0)
    lo, hi = span(t, chunks, n * s)
    for p in range(lo, hi):
        slope = weight[p % s]
        src, out = x[p // s, p % s], y[p // s, p % s]
        for k in range(size):
            out[k] = src[k] if src[k] > zero else slope * src[k]


def prelu_fwd_cpu(x, weight, y) -> None:
    run_chunks(_prelu_fwd, split(x.size), x, weight, y)


@chunk_kernel(fastmath=SUMS_IN_ANY_ORDER)
def _prelu_bwd(t, chunks, x, dy, dx, weight, parts, need_dx, need_dw):
    n, s, size = x.shape
    zero = x.dtype.type(0)
    row = parts[t]
    for k in range(s):
        row[k] = 0
    lo, hi = span(t, chunks, n * s)
    for p in range(lo, hi):
        src, grads = x[p // s, p % s], dy[p // s, p % s]
        if need_dw:
            total = 0.0
            for k in range(size):
                total += min(src[k], zero) * grads[k]
            row[p % s] += total
        if need_dx:
            slope = weight[p % s]
            out = dx[p // s, p % s]
            for k in range(size):
                out[k] = grads[k] if src[k] > zero else slope * grads[k]


@chunk_kernel
def _sum_parts(t, chunks, parts, used, dweight):
    """Chunk t of the weight gradient: the first `used` rows of parts summed in row order."""
    lo, hi = span(t, chunks, dweight.size)
    for k in range(lo, hi):
        total = parts[0, k]
        for r in range(1, used):
            total += parts[r, k]
        dweight[k] = total


def prelu_bwd_cpu(x, dy, dx, weight, weight_grad, need_dx, need_dw, parts) -> None:
    chunks = min(split(x.size), parts.shape[0])
    run_chunks(_prelu_bwd, chunks, x, dy, dx, weight, parts, need_dx, need_dw)
    if need_dw:
        run_chunks(_sum_parts, split(weight_grad.size), parts, chunks, weight_grad)
