"""numba.cuda kernels shared by the ops: launch geometry, the tiled GEMM generator,
block reductions, the loss, gradient sums and the optimiser updates."""
