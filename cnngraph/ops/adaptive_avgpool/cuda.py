"""adaptive_avgpool on CUDA, one thread per element, no atomics. Forward: each output's thread
averages its window. Backward, a gather: each input element's thread adds the shares of the
outputs whose windows contain it, so every dx element is written once."""
from __future__ import annotations

from ...kernels.cuda.launch import blocks, instantiate, run

_TEMPLATE = '''
@cuda.jit(device=True, inline=True)
def bounds(i, size, out):
    """The window [start, end) of output i: [floor(i*size/out), ceil((i+1)*size/out))."""
    return i * size // out, ((i + 1) * size + out - 1) // out


@cuda.jit(device=True, inline=True)
def covering(i, size, out):
    """The outputs [first, last) whose windows contain input i (the same formula with size and
    out swapped: output r's window holds i exactly when r*size < (i+1)*out and
    (r+1)*size > i*out)."""
    first, last = bounds(i, out, size)
    return first, min(last, out)


@cuda.jit(cache=True)
def adaptive_avgpool_fwd(x, y):
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    for e in range(cuda.grid(1), y.size, cuda.gridsize(1)):
        b, ch, r, q = e // (c * oh * ow), e // (oh * ow) % c, e // ow % oh, e % ow
        h0, h1 = bounds(r, h, oh)
        w0, w1 = bounds(q, w, ow)
        total = F(0)
        for i in range(h0, h1):
            for j in range(w0, w1):
                total += x[b, ch, i, j]
        y[b, ch, r, q] = total / F((h1 - h0) * (w1 - w0))


@cuda.jit(cache=True)
def adaptive_avgpool_bwd(dy, dx):
    n, c, h, w = dx.shape
    oh, ow = dy.shape[2], dy.shape[3]
    for e in range(cuda.grid(1), dx.size, cuda.gridsize(1)):
        b, ch, i, j = e // (c * h * w), e // (h * w) % c, e // w % h, e % w
        r0, r1 = covering(i, h, oh)
        q0, q1 = covering(j, w, ow)
        total = F(0)
        for r in range(r0, r1):
            h0, h1 = bounds(r, h, oh)
            for q in range(q0, q1):
                w0, w1 = bounds(q, w, ow)
                total += dy[b, ch, r, q] / F((h1 - h0) * (w1 - w0))
        dx[b, ch, i, j] = total
'''

KERNELS = instantiate(_TEMPLATE, "adaptive_avgpool")


def adaptive_avgpool_fwd_cuda(x, y) -> None:
    run(KERNELS[x.dtype].adaptive_avgpool_fwd, blocks(y.size), x, y)


def adaptive_avgpool_bwd_cuda(dy, dx) -> None:
    run(KERNELS[dx.dtype].adaptive_avgpool_bwd, blocks(dx.size), dy, dx)
