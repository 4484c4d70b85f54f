"""The machine's GEMM peak, measured: every core running its own single-threaded sgemm (or
dgemm) at once, the regime the convolution kernels work in (`cnngraph bench` reports each
layer's share of it)."""
from __future__ import annotations

import time

import numba
import numpy as np

from .blas import gemm
from .chunks import chunk_kernel, run_chunks


@chunk_kernel
def _gemms_chunk(t, chunks, a, b, c, repeat):
    for _ in range(repeat):
        n = a.shape[1]
        gemm(False, False, n, n, n, 1.0, a[t], n, b[t], n, 0.0, c[t], n)


def _gemms(a, b, c, repeat):
    run_chunks(_gemms_chunk, a.shape[0], a, b, c, repeat)


def gemm_peak(dtype=np.float32, size: int = 512, repeat: int = 8) -> float:
    """GFLOP/s of one sgemm per core, all cores at once (best of three)."""
    threads = numba.get_num_threads()
    a = np.random.default_rng(0).random((threads, size, size)).astype(dtype)
    b, c = a.copy(), np.empty_like(a)
    _gemms(a, b, c, 1)
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        _gemms(a, b, c, repeat)
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 * threads * repeat / best / 1e9
