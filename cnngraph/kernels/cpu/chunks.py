"""How CPU kernels run in parallel: a serial, GIL-free kernel over chunks of the work, one OS
thread per chunk.

A chunk kernel, `@chunk_kernel def _k(t, chunks, ...)`, does chunk `t` of `chunks` (its items
`span(t, chunks, n)`). The entry point the step calls, `k_cpu(...)`, is a Python function that
calls `run_chunks(_k, chunks, ...)`. Why not Numba's `prange`:
- compile time: Numba compiles a `prange` body a second time as a gufunc and generates machine
  code again for everything linked into it. conv's backward kernel took 4.5 s to compile with
  `prange` and 1.7 s as chunk kernels, and ResNet-18's kernels 14.0 s instead of 7.4 s (measured);
- one set of threads: `prange`'s OpenMP threads spin after each parallel region, and while
  they spin they took the cores from the chunk threads (LeNet's conv2 ran 2.7x slower when both
  were in use, measured). So no CPU kernel uses `prange`.
A hand-off to the threads costs ~15-60 us (measured), so element-wise work under MIN_PARALLEL
items runs as one chunk on the calling thread.

Which thread runs a chunk never changes a result: chunk `t` always covers the same work and owns
workspace `t`.
"""
from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable

import numba
from numba import njit

MIN_PARALLEL = 1 << 15


def chunk_kernel(function=None, **options):
    """`njit` for a chunk kernel: without the GIL (so chunks run at once), cached on disk, and
    with NumPy's error model (Python's, the default, keeps division from vectorising)."""
    options = {"nogil": True, "cache": True, "error_model": "numpy", **options}
    return njit(**options) if function is None else njit(**options)(function)


@njit(cache=True, inline="always")
def span(t, chunks, n):
    """Chunk t's items [lo, hi) of n items cut into `chunks` chunks."""
    return t * n // chunks, (t + 1) * n // chunks


def split(items: int) -> int:
    """How many chunks to cut `items` items of element-wise work into."""
    return 1 if items < MIN_PARALLEL else numba.get_num_threads()


class _Pool:
    """`size - 1` helper threads; the calling thread runs chunk 0 itself."""

    def __init__(self, size: int):
        self.pid = os.getpid()        # threads do not survive fork(): a child makes its own
        self.jobs = [queue.SimpleQueue() for _ in range(size - 1)]
        self.done: queue.SimpleQueue = queue.SimpleQueue()
        self.busy = threading.Lock()  # one run at a time: `done` counts one run's replies
        for t, jobs in enumerate(self.jobs, start=1):
            threading.Thread(target=self._serve, args=(t, jobs), daemon=True,
                             name=f"cnngraph-chunk-{t}").start()

    def _serve(self, t: int, jobs: queue.SimpleQueue) -> None:
        while True:
            kernel, chunks, args = jobs.get()
            try:
                kernel(t, chunks, *args)
                self.done.put(None)
            except BaseException as error:   # handed to the caller, which raises it
                self.done.put(error)

    def run(self, kernel: Callable, chunks: int, args: tuple) -> None:
        with self.busy:
            for jobs in self.jobs:
                jobs.put((kernel, chunks, args))
            failure = None
            try:
                kernel(0, chunks, *args)
            except BaseException as error:
                failure = error
            for _ in self.jobs:              # wait for every helper, even after a failure
                reply = self.done.get()
                failure = failure or reply
        if failure is not None:
            raise failure


_pools: dict[int, _Pool] = {}
_lock = threading.Lock()


def run_chunks(kernel: Callable, chunks: int, *args) -> None:
    """kernel(t, chunks, *args) for every t in range(chunks), concurrently; returns when all
    are done and re-raises the first error."""
    if chunks == 1:
        kernel(0, 1, *args)
        return
    pool = _pools.get(chunks)
    if pool is None or pool.pid != os.getpid():
        with _lock:
            pool = _pools.get(chunks)
            if pool is None or pool.pid != os.getpid():
                pool = _pools[chunks] = _Pool(chunks)
    pool.run(kernel, chunks, args)
