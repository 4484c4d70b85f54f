"""dropout on CUDA: mask.py's counter-based hash as a device function, one thread per element,
so a seed gives the same masks on both backends."""
from __future__ import annotations

import numpy as np
from numba import cuda

from ...kernels.cuda.launch import blocks, run
from . import mask as masks

bits53 = cuda.jit(device=True)(masks.bits53)


@cuda.jit(cache=True)
def dropout_fwd(xs, ys, ms, keep, zero, limit, seed, salt, offset, training):
    for i in range(cuda.grid(1), xs.size, cuda.gridsize(1)):
        if training:
            ms[i] = keep if bits53(seed, salt, offset + i) >= limit else zero
            ys[i] = xs[i] * ms[i]
        else:
            ys[i] = xs[i]


@cuda.jit(cache=True)
def dropout_bwd(dys, ms, dxs):
    for i in range(cuda.grid(1), dys.size, cuda.gridsize(1)):
        dxs[i] = dys[i] * ms[i]


def _flat(a):
    return a.reshape(a.size)


def dropout_fwd_cuda(x, y, mask, rate, threshold, seed, salt, first, training):
    offset = first * (x.size // x.shape[0]) if x.shape[0] else 0
    run(dropout_fwd, blocks(x.size), _flat(x), _flat(y), _flat(mask),
        x.dtype.type(1.0 / (1.0 - rate)), x.dtype.type(0), np.uint64(threshold),
        np.uint64(seed), np.uint64(salt), np.uint64(offset), training)


def dropout_bwd_cuda(dy, mask, dx):
    run(dropout_bwd, blocks(dy.size), _flat(dy), _flat(mask), _flat(dx))

