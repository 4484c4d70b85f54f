"""dropout on the CPU: inverted dropout, its mask drawn from the counter-based hash of mask.py
(so the CUDA kernel makes the same decisions)."""
from __future__ import annotations

import numpy as np
from numba import njit

from ...kernels.cpu.chunks import chunk_kernel, run_chunks, span, split
from . import mask as masks

bits53 = njit(cache=True, inline="always")(masks.bits53)


@chunk_kernel
def _dropout_fwd(t, chunks, x, y, mask, rate, threshold, seed, salt, offset, training):
    lo, hi = span(t, chunks, x.size)
    xs = x.reshape(-1)[lo:hi]
    ys = y.reshape(-1)[lo:hi]
    ms = mask.reshape(-1)[lo:hi]
    keep = xs.dtype.type(1.0 / (1.0 - rate))
    zero = xs.dtype.type(0)
    limit = np.uint64(threshold)
    for i in range(xs.size):
        if training:
            ms[i] = keep if bits53(seed, salt, offset + lo + i) >= limit else zero
            ys[i] = xs[i] * ms[i]
        else:
            ys[i] = xs[i]


def dropout_fwd_cpu(x, y, mask, rate, threshold, seed, salt, first, training) -> None:
    offset = first * (x.size // x.shape[0]) if x.shape[0] else 0
    run_chunks(_dropout_fwd, split(x.size), x, y, mask, rate, threshold, seed, salt, offset,
               training)


@chunk_kernel
def _dropout_bwd(t, chunks, dy, mask, dx):
    lo, hi = span(t, chunks, dy.size)
    dys = dy.reshape(-1)[lo:hi]
    ms = mask.reshape(-1)[lo:hi]
    dxs = dx.reshape(-1)[lo:hi]
    for i in range(dys.size):
        dxs[i] = dys[i] * ms[i]


def dropout_bwd_cpu(dy, mask, dx) -> None:
    run_chunks(_dropout_bwd, split(dy.size), dy, mask, dx)

