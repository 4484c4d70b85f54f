"""Run a serial, GIL-free kernel over chunks of work, one OS thread per chunk.

Kernels with large bodies (conv with its im2col and BLAS calls, batch norm) are written as
`kernel(t, chunks, *args)`, compiled with `nogil=True`, that do chunk `t` of `chunks`; the step
calls `run_chunks(kernel, chunks, *args)`. Why not `prange`: Numba compiles a `prange` body again
as a gufunc and re-generates machine code for everything it calls each time it links it in, so
the conv backward kernel took 4.5 s to compile with `prange` and 1.7 s as chunk kernels
(measured), and ran no faster. Element-wise loops, which compile quickly either way, keep
`prange`.

Which thread runs a chunk never changes a result: chunk `t` always covers the same work and owns
workspace `t`.
"""
from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable


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
