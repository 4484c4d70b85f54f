"""prelu on CUDA, on the (N, S, L) views: forward and dx one thread per element; the weight
gradient one block per slope (grid-stride over slopes), each thread summing x * dy over its
share of the slope's inputs at or below 0 and the block adding the shares in a fixed tree
(kernels/cuda/reduce.py): no atomics, the same result on every run."""
from __future__ import annotations

from ...kernels.cuda.launch import blocks, instantiate, run
from ...kernels.cuda.reduce import BLOCK_SUM

_TEMPLATE = BLOCK_SUM + '''

@cuda.jit(cache=True)
def prelu_fwd(x, weight, y):
    n, s, size = x.shape
    for e in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        i, ch, k = e // (s * size), e // size % s, e % size
        value = x[i, ch, k]
        y[i, ch, k] = value if value > F(0) else weight[ch] * value


@cuda.jit(cache=True)
def prelu_dx(x, dy, dx, weight):
    n, s, size = x.shape
    for e in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        i, ch, k = e // (s * size), e // size % s, e % size
        g = dy[i, ch, k]
        dx[i, ch, k] = g if x[i, ch, k] > F(0) else weight[ch] * g


@cuda.jit(cache=True)
def prelu_dweight(x, dy, dweight):
    shared = cuda.shared.array(THREADS, F)
    n, s, size = x.shape
    t = cuda.threadIdx.x
    for ch in range(cuda.blockIdx.x, s, cuda.gridDim.x):
        total = F(0)
        for e in range(t, n * size, THREADS):
            total += min(x[e // size, ch, e % size], F(0)) * dy[e // size, ch, e % size]
        total = block_sum(shared, total)
        if t == 0:
            dweight[ch] = total
'''

KERNELS = instantiate(_TEMPLATE, "prelu")


def prelu_fwd_cuda(x, weight, y) -> None:
    run(KERNELS[x.dtype].prelu_fwd, blocks(x.size), x, weight, y)


def prelu_bwd_cuda(x, dy, dx, weight, weight_grad, need_dx, need_dw) -> None:
    k = KERNELS[x.dtype]
    if need_dw:
        run(k.prelu_dweight, blocks(x.shape[1], 1), x, dy, weight_grad)
    if need_dx:
        run(k.prelu_dx, blocks(x.size), x, dy, dx, weight)
