"""The CPU backend: each op's `cpu` lowering, host arrays, Numba threads."""
from __future__ import annotations

import ctypes
import mmap
import threading

import numpy as np

from ..ir import Node
from ..ops.lowering import Lowering
from .backend import Target, cpu_chunks

MAPPED_FROM, HUGE_PAGES_FROM = 1 << 22, 1 << 26
MADV_POPULATE_WRITE = 23       # Linux 5.14+ (Python's mmap module names it from 3.13)
# libc's madvise through ctypes, which releases the GIL (mmap.madvise holds it)
_MADVISE = ctypes.CDLL(None, use_errno=True).madvise
_MADVISE.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def _populate_in_background(memory: mmap.mmap) -> None:
    """Fault in a fresh mapping's pages on another thread. MADV_POPULATE_WRITE changes no
    contents, so the caller and kernels may write to the memory meanwhile; it takes page faults
    off them, on a core that is idle while Python builds a model or Numba loads kernels
    (bench/results/runtime.md). Where the kernel lacks the call, madvise fails and nothing
    happens."""
    view = ctypes.c_char.from_buffer(memory)

    def populate() -> None:      # (holding `view` keeps the mapping open until it returns)
        _MADVISE(ctypes.addressof(view), len(memory), MADV_POPULATE_WRITE)

    threading.Thread(target=populate, name="cnngraph-populate", daemon=True).start()


class CpuBackend:
    name = "cpu"
    profile_imports: list[str] = []
    sync = ""          # kernels return when done: nothing to wait for before a clock read
    host_memory = True          # arrays are NumPy arrays in host memory

    def __init__(self, chunks: int | None = None, shards: int = 0) -> None:
        """`chunks`: how many parts the kernels split their work into (backend.cpu_chunks);
        Numba's threads share them out, and the results do not depend on how many threads
        there are. `shards`: with the exact reduction, the shards of its samples that a step
        computes apart (each op called once a shard: train/parallel.py)."""
        self.chunks = cpu_chunks(chunks)
        self.shards = shards
        self.target = Target("cpu", self.chunks, shards)
        self.small_batch = self.chunks   # a chunk per sample at most: cut convs by channels
        self._fold_tables: dict[tuple, tuple] = {}

    def lower(self, node: Node, training: bool = True, small_batch: bool = False) -> Lowering:
        return self.target.lower(node, training, small_batch)

    def before_first_training_step(self, model) -> None:
        """On a cold kernel cache, start compiling the backward kernels in a second process
        (runtime/warm.py)."""
        from .warm import start
        start(model)

    def empty(self, size: int, dtype) -> np.ndarray:
        """Buffers of MAPPED_FROM bytes or more (parameters, gradients, optimiser state,
        activation arenas) are fresh mappings whose pages another thread faults in at once
        (_populate_in_background); from HUGE_PAGES_FROM bytes (activation arenas) with a request
        for transparent huge pages. Faulting in fresh memory is slow on this kind of virtual
        machine, several times slower in 4 KiB pages than in huge pages; huge pages for smaller
        buffers measured no gain, or a loss (bench/results/runtime.md)."""
        nbytes = size * np.dtype(dtype).itemsize
        if nbytes < max(MAPPED_FROM, 1):
            return np.empty(size, dtype)
        memory = mmap.mmap(-1, nbytes)
        if nbytes >= HUGE_PAGES_FROM and hasattr(mmap, "MADV_HUGEPAGE"):
            memory.madvise(mmap.MADV_HUGEPAGE)
        _populate_in_background(memory)
        return np.frombuffer(memory, dtype, count=size)

    def to_host(self, array) -> np.ndarray:
        return array

    def from_host(self, array: np.ndarray, out) -> None:
        out[...] = array

    def upload(self, array: np.ndarray, out, staged: bool = False) -> None:
        out[...] = array

    def stage(self, x: np.ndarray, labels: np.ndarray) -> bool:
        """Nothing to copy ahead: the kernels read host memory."""
        return False

    def unstage(self) -> None:
        pass

    def zeros(self, array) -> None:
        array[...] = 0

    def device_labels(self, labels: np.ndarray, staged: bool = False,
                      slot: int = 0) -> np.ndarray:
        return labels

    def scalar(self, value) -> float:
        return float(value)

    def snapshot(self, array) -> np.ndarray:
        return array.copy()

    def squared_norm(self, array) -> float:
        return float(np.dot(array, array))

    def scale(self, array, factor: float) -> None:
        array *= array.dtype.type(factor)

    def fold(self, folds: tuple, params: dict, buffers: dict, folded: dict) -> None:
        """Batch norm folded into its conv (in float64, rounded once), for every fold in one
        kernel call, through a table of where the values lie made once for each set of folds."""
        from ..ops.batchnorm.cpu import fold_cpu, fold_table
        key = (folds, id(params), id(buffers), id(folded))
        if key not in self._fold_tables:
            self._fold_tables[key] = fold_table(folds, params, buffers, folded)
        fold_cpu(*self._fold_tables[key])

    def synchronize(self) -> None:
        pass

    def peak_gflops(self, dtype) -> tuple[float, str]:
        from ..kernels.cpu.peak import gemm_peak
        return gemm_peak(dtype), "one sgemm per core, measured" if np.dtype(dtype) == np.float32 \
            else "one dgemm per core, measured"
