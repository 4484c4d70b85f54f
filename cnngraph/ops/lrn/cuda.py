"""lrn on CUDA: one thread per element, the scales recomputed in the backward pass (as on the
CPU), so nothing is stored between the passes. Scalars arrive in the array's dtype, with
alpha / size and 2 alpha beta / size folded on the host."""
from __future__ import annotations

from numba import cuda

from ...kernels.cuda.launch import blocks, run


@cuda.jit(device=True, inline=True)
def scale_at(x, b, c, r, q, size, alpha_n, k):
    total = k - k
    for j in range(max(c - size // 2, 0), min(c + (size - 1) // 2 + 1, x.shape[1])):
        total += x[b, j, r, q] * x[b, j, r, q]
    return k + alpha_n * total


@cuda.jit(cache=True)
def lrn_fwd(x, y, size, alpha_n, beta, k):
    n, c, h, w = x.shape
    for e in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        b, ch, r, q = e // (c * h * w), e // (h * w) % c, e // w % h, e % w
        y[b, ch, r, q] = x[b, ch, r, q] * scale_at(x, b, ch, r, q, size, alpha_n, k) ** -beta


@cuda.jit(cache=True)
def lrn_bwd(x, y, dy, dx, size, alpha_n, beta, k, coeff):
    n, c, h, w = x.shape
    for e in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        b, i, r, q = e // (c * h * w), e // (h * w) % c, e // w % h, e % w
        total = k - k
        for j in range(max(i - (size - 1) // 2, 0), min(i + size // 2 + 1, c)):
            total += dy[b, j, r, q] * y[b, j, r, q] / scale_at(x, b, j, r, q, size, alpha_n, k)
        own = scale_at(x, b, i, r, q, size, alpha_n, k) ** -beta
        dx[b, i, r, q] = dy[b, i, r, q] * own - coeff * x[b, i, r, q] * total


def lrn_fwd_cuda(x, y, size, alpha, beta, k):
    f = x.dtype.type
    run(lrn_fwd, blocks(x.size), x, y, size, f(alpha / size), f(beta), f(k))


def lrn_bwd_cuda(x, y, dy, dx, size, alpha, beta, k):
    f = x.dtype.type
    run(lrn_bwd, blocks(x.size), x, y, dy, dx, size, f(alpha / size), f(beta), f(k),
        f(2 * alpha * beta / size))

