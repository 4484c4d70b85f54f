"""The direct micro-kernels of flat-plane convs (cnngraph/kernels/cpu/direct.py) against what
they replaced, one sample on one thread: the outputs by `direct_tile` against im2col's flat
columns and an OpenBLAS GEMM, and the weight gradient by `direct_sums` against the columns
times dy^T.

    .venv/bin/python bench/direct_kernels.py

GFLOP/s count the flat positions both sides compute (the dropped ones included); best of 5.
"""
from __future__ import annotations

import time

import numpy as np
from numba import njit

from cnngraph.kernels.cpu.blas import call_gemm
from cnngraph.kernels.cpu.direct import direct_sums, direct_tile, fold_lanes
from cnngraph.kernels.cpu.im2col import flat_im2col

LAYERS = [  # name, in channels, size, out channels, kernel, padding (stride 1)
    ("lenet conv1", 1, 28, 6, 5, 2),
    ("lenet conv2", 6, 14, 16, 5, 0),
    ("3->64 32x32 (a CIFAR stem)", 3, 32, 64, 3, 1),
    ("16->48 16x16 5x5", 16, 16, 48, 5, 2),
    ("64->64 8x8", 64, 8, 64, 3, 1),
    ("64->64 32x32", 64, 32, 64, 3, 1),
]


@njit(cache=True)
def _outputs(out, w, src, offsets, length, repeat):
    for _ in range(repeat):
        direct_tile(out, w, 0, w.shape[0], src, offsets, 0, length)


@njit(cache=True)
def _weight_gradient(sums, dy, src, offsets, length, repeat, dw):
    for _ in range(repeat):
        direct_sums(sums, dy, src, offsets, length)
    fold_lanes(sums, dw)


def _best(run, repeat: int) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        run()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best


def measure(c: int, size: int, o: int, k: int, p: int, rng) -> dict:
    """Seconds per sample of each side, and the largest difference between their results."""
    wp = size + 2 * p
    out = wp - k + 1
    length = (out - 1) * wp + out
    x = rng.standard_normal((c, wp * wp)).astype(np.float32)
    w = rng.standard_normal((o, c * k * k)).astype(np.float32)
    dy = rng.standard_normal((o, length)).astype(np.float32)
    offsets = np.array([ch * wp * wp + i * wp + j for ch in range(c) for i in range(k)
                        for j in range(k)], np.int32)
    cols = np.empty((c * k * k, length), np.float32)
    y, y_blas = np.empty((o, length), np.float32), np.empty((o, length), np.float32)
    sums = np.zeros((c * k * k, o, 8), np.float32)
    dw, dw_blas = np.zeros((c * k * k, o), np.float32), np.zeros((c * k * k, o), np.float32)
    repeat = max(1, int(1e8 / (o * c * k * k * length)))

    def blas_outputs():
        for _ in range(repeat):
            flat_im2col(x, cols, k, k, 1, 1, 1, 1, wp)
            call_gemm(False, False, o, length, c * k * k, 1.0, w, c * k * k, cols, length, 0.0,
                      y_blas, length)

    def blas_weight_gradient():
        for _ in range(repeat):
            flat_im2col(x, cols, k, k, 1, 1, 1, 1, wp)
            call_gemm(False, True, c * k * k, o, length, 1.0, cols, length, dy, length, 1.0,
                      dw_blas, o)

    flat = x.reshape(-1)
    times = {
        "outputs": _best(lambda: _outputs(y, w, flat, offsets, length, repeat), repeat),
        "outputs_blas": _best(blas_outputs, repeat),
        "weight_gradient": _best(lambda: _weight_gradient(sums, dy, flat, offsets, length,
                                                          repeat, dw), repeat),
        "weight_gradient_blas": _best(blas_weight_gradient, repeat)}
    scale = float(np.abs(y_blas).max())
    # dw and dw_blas summed the same products over different numbers of runs: compare one
    sums[:] = 0
    dw[:] = 0
    _weight_gradient(sums, dy, flat, offsets, length, 1, dw)
    gap = max(float(np.abs(y - y_blas).max()) / scale,
              float(np.abs(dw - cols @ dy.T).max() / np.abs(dw).max()))
    return {**times, "flops": 2 * o * c * k * k * length, "gap": gap}


def main() -> None:
    rng = np.random.default_rng(0)
    print("| layer | outputs: direct | im2col + OpenBLAS | weight gradient: direct "
          "| im2col + OpenBLAS |")
    print("|---|---|---|---|---|")
    for name, *layer in LAYERS:
        m = measure(*layer, rng)
        cells = [f"{m[key] * 1e6:.1f} us, {m['flops'] / m[key] / 1e9:.0f} GFLOP/s"
                 for key in ("outputs", "outputs_blas", "weight_gradient",
                             "weight_gradient_blas")]
        print(f"| {name} | " + " | ".join(cells) + " |")
        assert m["gap"] < 1e-4, (name, m["gap"])


if __name__ == "__main__":
    main()
