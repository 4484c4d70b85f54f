"""dropout on the CPU: inverted dropout with a counter-based random stream.

Each element's keep decision hashes (step seed, layer, element index) with SplitMix64, so masks
are reproducible for a seed and independent of how the work is split across threads. The top
53 bits of the hash are kept when they reach `threshold` = ceil(rate * 2^53): exactly "uniform
>= rate", in integers, so the CUDA kernel makes the same decisions.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .lower import lowerings


@njit(cache=True, inline="always")
def _bits53(seed, salt, i):
    z = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(salt) * np.uint64(
        0xBF58476D1CE4E5B9) + np.uint64(i)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return z >> np.uint64(11)


@njit(parallel=True, cache=True)
def dropout_fwd_cpu(x, y, mask, rate, threshold, seed, salt, training):
    xs = x.reshape(-1)
    ys = y.reshape(-1)
    ms = mask.reshape(-1)
    keep = xs.dtype.type(1.0 / (1.0 - rate))
    zero = xs.dtype.type(0)
    limit = np.uint64(threshold)
    for i in prange(xs.size):
        if training:
            ms[i] = keep if _bits53(seed, salt, i) >= limit else zero
            ys[i] = xs[i] * ms[i]
        else:
            ys[i] = xs[i]


@njit(parallel=True, cache=True)
def dropout_bwd_cpu(dy, mask, dx):
    dys = dy.reshape(-1)
    ms = mask.reshape(-1)
    dxs = dx.reshape(-1)
    for i in prange(dys.size):
        dxs[i] = dys[i] * ms[i]


LOWER = lowerings("cpu")
