"""upsample on CUDA, one thread per element, no atomics.

Forward passes give each output element a thread. Backward passes are gathers: each input
element's thread sums the gradients of the outputs that read it. We chose this over a scatter
with atomic adds: every dx element is written once (kernels overwrite their outputs, so no
zeroing pass), the sum's order is fixed (a step's result does not change from run to run), and
there is no contention on the 4 x scale^2 outputs that share an input. The cost is that a
bilinear thread visits 3 x scale candidate rows and columns, most with a zero weight: small
work beside the memory traffic for the scales in use (2, 3, 4).
"""
from __future__ import annotations

from ...kernels.cuda.launch import blocks, instantiate, run

_TEMPLATE = '''
@cuda.jit(device=True, inline=True)
def neighbours(d, inputs, scale):
    """Output index d's two input neighbours along an axis and the second one's weight.
    PyTorch's source position src = (d + 0.5) / scale - 0.5, clamped at 0, is the exact
    fraction (2d + 1 - scale) / (2 scale); the second neighbour is clamped at the edge."""
    numerator = max(2 * d + 1 - scale, 0)
    first = numerator // (2 * scale)
    return first, min(first + 1, inputs - 1), F(numerator % (2 * scale)) / F(2 * scale)


@cuda.jit(device=True, inline=True)
def weight_of(i, d, inputs, scale):
    """The weight of input index i in output index d along an axis (both neighbours may be i
    at the edge)."""
    first, second, far = neighbours(d, inputs, scale)
    return (F(1) - far if first == i else F(0)) + (far if second == i else F(0))


@cuda.jit(cache=True)
def nearest_fwd(x, y, scale):
    planes, oh, ow = y.shape
    for e in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        p, r, q = e // (oh * ow), e // ow % oh, e % ow
        y[p, r, q] = x[p, r // scale, q // scale]


@cuda.jit(cache=True)
def nearest_bwd(dy, dx, scale):
    planes, h, w = dx.shape
    for e in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        p, i, j = e // (h * w), e // w % h, e % w
        total = F(0)
        for r in range(i * scale, (i + 1) * scale):
            for q in range(j * scale, (j + 1) * scale):
                total += dy[p, r, q]
        dx[p, i, j] = total


@cuda.jit(cache=True)
def bilinear_fwd(x, y, scale):
    planes, h, w = x.shape
    oh, ow = y.shape[1], y.shape[2]
    for e in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        p, r, q = e // (oh * ow), e // ow % oh, e % ow
        r0, r1, down = neighbours(r, h, scale)
        q0, q1, right = neighbours(q, w, scale)
        up, left = F(1) - down, F(1) - right
        y[p, r, q] = (up * (left * x[p, r0, q0] + right * x[p, r0, q1])
                      + down * (left * x[p, r1, q0] + right * x[p, r1, q1]))


@cuda.jit(cache=True)
def bilinear_bwd(dy, dx, scale):
    planes, h, w = dx.shape
    oh, ow = dy.shape[1], dy.shape[2]
    for e in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        p, i, j = e // (h * w), e // w % h, e % w
        total = F(0)
        # the outputs whose neighbours can include row i (column j) lie in [(i - 1) s, (i + 2) s)
        for r in range(max((i - 1) * scale, 0), min((i + 2) * scale, oh)):
            row = weight_of(i, r, h, scale)
            if row == F(0):
                continue
            for q in range(max((j - 1) * scale, 0), min((j + 2) * scale, ow)):
                total += row * weight_of(j, q, w, scale) * dy[p, r, q]
        dx[p, i, j] = total
'''

KERNELS = instantiate(_TEMPLATE, "upsample")


def upsample_fwd_cuda(x, y, scale, mode) -> None:
    """y (N*C, H*scale, W*scale) from x (N*C, H, W)."""
    run(getattr(KERNELS[x.dtype], f"{mode}_fwd"), blocks(y.size), x, y, scale)


def upsample_bwd_cuda(dy, dx, scale, mode) -> None:
    """dx (N*C, H, W), the adjoint of the forward pass, from dy (N*C, H*scale, W*scale)."""
    run(getattr(KERNELS[dx.dtype], f"{mode}_bwd"), blocks(dx.size), dy, dx, scale)
