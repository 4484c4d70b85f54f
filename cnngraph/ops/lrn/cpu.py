"""lrn on the CPU, in parallel over samples.

scale_c = k + alpha / size * sum of x_j^2 for j in [c - size//2, c + (size-1)//2];
y_c = x_c * scale_c^-beta;
dx_i = dy_i * scale_i^-beta - 2 alpha beta / size * x_i * sum over the windows j containing i
of dy_j * y_j / scale_j. The scales are recomputed in the backward pass rather than stored.
Scalars arrive in the array's dtype, with alpha / size and 2 alpha beta / size folded on the
host, so float32 stays float32 (as on CUDA).
"""
from __future__ import annotations

from numba import njit

from ...kernels.cpu.chunks import chunk_kernel, run_chunks, span, split


@njit(cache=True, inline="always")
def _scale(x, b, c, r, q, size, alpha_n, k):
    channels = x.shape[1]
    total = k - k
    for j in range(max(c - size // 2, 0), min(c + (size - 1) // 2 + 1, channels)):
        total += x[b, j, r, q] * x[b, j, r, q]
    return k + alpha_n * total


@chunk_kernel
def _lrn_fwd(t, chunks, x, y, size, alpha_n, beta, k):
    n, c, h, w = x.shape
    lo, hi = span(t, chunks, n)
    for b in range(lo, hi):
        for r in range(h):
            for q in range(w):
                for ch in range(c):
                    y[b, ch, r, q] = x[b, ch, r, q] * _scale(x, b, ch, r, q, size, alpha_n, k) \
                        ** -beta


def lrn_fwd_cpu(x, y, size, alpha, beta, k) -> None:
    f = x.dtype.type
    run_chunks(_lrn_fwd, split(x.size), x, y, size, f(alpha / size), f(beta), f(k))


@chunk_kernel
def _lrn_bwd(t, chunks, x, y, dy, dx, size, alpha_n, beta, k, coeff):
    n, c, h, w = x.shape
    lo, hi = span(t, chunks, n)
    for b in range(lo, hi):
        for r in range(h):
            for q in range(w):
                for i in range(c):
                    total = k - k
                    for j in range(max(i - (size - 1) // 2, 0), min(i + size // 2 + 1, c)):
                        total += dy[b, j, r, q] * y[b, j, r, q] / _scale(x, b, j, r, q, size,
                                                                         alpha_n, k)
                    own = _scale(x, b, i, r, q, size, alpha_n, k) ** -beta
                    dx[b, i, r, q] = dy[b, i, r, q] * own - coeff * x[b, i, r, q] * total


def lrn_bwd_cpu(x, y, dy, dx, size, alpha, beta, k) -> None:
    f = x.dtype.type
    run_chunks(_lrn_bwd, split(x.size), x, y, dy, dx, size, f(alpha / size), f(beta), f(k),
               f(2 * alpha * beta / size))
