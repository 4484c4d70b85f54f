"""dropout on the CPU: inverted dropout with a counter-based random stream.

Each element's keep decision hashes (step seed, layer, element index) with SplitMix64, so masks
are reproducible for a seed and independent of how the work is split across threads. The top
53 bits of the hash are kept when they reach `threshold` = ceil(rate * 2^53): exactly "uniform
>= rate", in integers, so the CUDA kernel makes the same decisions.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ...kernels.cpu.chunks import chunk_kernel, run_chunks, span, split
from .lower import lowerings


@njit(cache=True, inline="always")
def _bits53(seed, salt, i):
    z = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt) * np.uint64(
        0xBF58476D1CE4E5B9) + np.uint64(i)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return z >> np.uint64(11)


@chunk_kernel
def _dropout_fwd(t, chunks, x, y, mask, rate, threshold, seed, salt, training):
    lo, hi = span(t, chunks, x.size)
    xs = x.reshape(-1)[lo:hi]
    ys = y.reshape(-1)[lo:hi]
    ms = mask.reshape(-1)[lo:hi]
    keep = xs.dtype.type(1.0 / (1.0 - rate))
    zero = xs.dtype.type(0)
    limit = np.uint64(threshold)
    for i in range(xs.size):
        if training:
            ms[i] = keep if _bits53(seed, salt, lo + i) >= limit else zero
            ys[i] = xs[i] * ms[i]
        else:
            ys[i] = xs[i]


def dropout_fwd_cpu(x, y, mask, rate, threshold, seed, salt, training) -> None:
    run_chunks(_dropout_fwd, split(x.size), x, y, mask, rate, threshold, seed, salt, training)


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


LOWER = lowerings("cpu")
