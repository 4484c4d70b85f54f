"""Launch geometry and per-dtype kernel instantiation for the CUDA backend.

Every kernel loops grid-stride (over elements, planes or GEMM tiles), so its result does not
depend on how many blocks are launched. On a GPU a launch covers the work in one pass; under
Numba's CUDA simulator, where each thread is a Python thread, launches are capped to a few
small blocks and GEMM tiles shrink to 8x8, so tests on tiny shapes still cross tile edges.

Kernel modules are instantiated for float32 and float64 with `F` bound to the element type:
Numba sizes and types shared arrays at compile time, and a float32 kernel must not promote
anything to float64, so every constant is written `F(...)`.
"""
from __future__ import annotations

import sys

import numpy as np
from numba import config

from ...errors import DeviceError
from ...jit import load_module

SIMULATOR = bool(config.ENABLE_CUDASIM)


def _simulate_shared_arrays_safely() -> None:
    """Make the simulator's `cuda.shared.array` atomic. It finds a block's array by the calling
    line and creates it on first use, unlocked: two threads of a block arriving together could
    each create one and then work on different arrays (found as gradients that differed from
    the CPU's about once in twenty runs on a loaded machine)."""
    import threading
    import traceback

    from numba.core import types
    from numba.cuda.simulator.kernelapi import FakeCUDAShared
    from numba.np import numpy_support
    lock = threading.Lock()

    def array(self, shape, dtype, alignment=None):
        assert shape != 0 and alignment is None, "cnngraph uses static shared arrays only"
        if isinstance(dtype, types.Type):
            dtype = numpy_support.as_dtype(dtype)
        caller = tuple(traceback.extract_stack(sys._getframe(1), limit=1)[0][0:2])
        with lock:
            if caller not in self._allocations:
                self._allocations[caller] = np.empty(shape, dtype)
            return self._allocations[caller]

    FakeCUDAShared.array = array


def _simulate_blocks_with_a_barrier() -> None:
    """Run the simulator's thread blocks with a barrier instead of its scheduler, which polls
    every thread of a block in a busy loop until all wait in syncthreads (or are done), holding
    the GIL that the threads it waits for need (the pooling tests on CUDA: 11.7 -> 8.4 s; the
    small Inception net's two steps: 62 -> 49 s). A thread counts itself in at syncthreads
    and the last to arrive wakes the others; a thread that ends leaves the count, as the
    polling loop let it. Python's default switch interval is now the fastest."""
    import threading

    from numba.cuda.simulator import kernel as simulator

    def release(manager) -> None:
        manager.arrived = 0
        manager.generation += 1
        manager.barrier.notify_all()

    def run_block(self, grid_point, *args):
        self.barrier = threading.Condition(threading.Lock())
        self.arrived, self.generation, self.failed = 0, 0, None
        threads = [simulator.BlockThread(lambda: self._f(*args), self, grid_point, point,
                                         self._debug) for point in np.ndindex(*self._block_dim)]
        self.running = len(threads)
        for thread in threads:
            thread.start()
        with self.barrier:
            while self.running and self.failed is None:
                self.barrier.wait()
        if self.failed is not None:
            with self.barrier:              # the others raise at their syncthreads
                for thread in threads:
                    thread.abort = True
                self.barrier.notify_all()
            raise self.failed.exception[0].with_traceback(self.failed.exception[1])

    def syncthreads(self):
        if self.abort:
            raise RuntimeError("abort flag set on syncthreads call")
        manager = self._manager
        with manager.barrier:
            generation = manager.generation
            manager.arrived += 1
            if manager.arrived == manager.running:
                release(manager)
            while generation == manager.generation and not self.abort:
                manager.barrier.wait()
        if self.abort:
            raise RuntimeError("abort flag set on syncthreads clear")

    run_thread = simulator.BlockThread.run

    def run_and_leave(self):
        try:
            run_thread(self)                # (which keeps an exception in self.exception)
        finally:
            manager = self._manager
            with manager.barrier:
                manager.running -= 1
                if self.exception is not None and manager.failed is None:
                    manager.failed = self
                if manager.arrived and manager.arrived == manager.running:
                    release(manager)
                manager.barrier.notify_all()

    simulator.BlockManager.run = run_block
    simulator.BlockThread.syncthreads = syncthreads
    simulator.BlockThread.run = run_and_leave


if SIMULATOR:
    _simulate_shared_arrays_safely()
    _simulate_blocks_with_a_barrier()

THREADS = 32 if SIMULATOR else 256          # threads of a 1-D block (a power of two)
MAX_BLOCKS = 2 if SIMULATOR else 4096       # grid-stride beyond this many blocks

# GEMM tiling: a block of BY x BX threads computes a TM x TN tile of C, each thread an RM x RN
# register tile (rows ty + i*BY, columns tx + j*BX: coalesced stores); K advances TK at a time.
if SIMULATOR:
    GEMM = {"BX": 4, "BY": 4, "RM": 2, "RN": 2, "TK": 8}
else:
    GEMM = {"BX": 16, "BY": 16, "RM": 4, "RN": 4, "TK": 16}
GEMM["TM"] = GEMM["BY"] * GEMM["RM"]
GEMM["TN"] = GEMM["BX"] * GEMM["RN"]
# Shared tiles are padded by one column so that a warp storing along K hits distinct banks.
GEMM["TM1"] = GEMM["TM"] + 1
GEMM["TN1"] = GEMM["TN"] + 1

DTYPES = {"f32": "float32", "f64": "float64"}


def require_cuda() -> None:
    from numba import cuda
    if SIMULATOR:
        return
    if not cuda.is_available():
        raise DeviceError(
            "no CUDA GPU is available to Numba",
            hint="run on a machine with an NVIDIA GPU and driver, or set NUMBA_ENABLE_CUDASIM=1 "
                 "to run the CUDA kernels in Numba's simulator (slow; for testing)")


_COMPUTE: list = []


def stream():
    """The stream every kernel launches on, created on first use. It is a stream of its own,
    not the default one, so that the next batch's copy (on the backend's copy stream) can run
    while a step's kernels do; copies on the default stream still wait for it."""
    if not _COMPUTE:
        from numba import cuda
        _COMPUTE.append(cuda.stream())
    return _COMPUTE[0]


def run(kernel, grid: int, *args) -> None:
    """Launch a 1-D kernel: `grid` blocks of THREADS threads, on the compute stream."""
    kernel[grid, THREADS, stream()](*args)


def blocks(n: int, threads: int = THREADS) -> int:
    """Blocks for n work items of `threads` each, at least one, capped (grid-stride covers
    the rest)."""
    return max(1, min(MAX_BLOCKS, -(-n // threads)))


def instantiate(template: str, stem: str) -> dict:
    """Compile a kernel template for each dtype: returns {np.dtype: module}."""
    constants = "".join(f"{k} = {v}\n" for k, v in {**GEMM, "THREADS": THREADS}.items())
    modules = {}
    for suffix, name in DTYPES.items():
        source = (f'"""CUDA kernels ({name}) generated by cnngraph."""\n'
                  "import math\n\nfrom numba import cuda, float32, float64, int32, uint64\n"
                  f"\n{constants}F = {name}\n\n" + template)
        modules[np.dtype(name)] = load_module(source, f"cuda_{stem}_{suffix}")
    return modules


# Weight gradients of layers with a small output and a long reduction (early convolutions)
# split the reduction into at most this many partial products (see gemm.split_count).
SPLITS = 2 if SIMULATOR else 16
