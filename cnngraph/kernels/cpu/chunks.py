"""How CPU kernels run in parallel: a serial, GIL-free kernel over chunks of the work, the
chunks shared out among Numba's number of OS threads (`numba.get_num_threads()`).

A chunk kernel, `@chunk_kernel def _k(t, chunks, ...)`, does chunk `t` of `chunks` (its items
`span(t, chunks, n)`). The entry point the step calls, `k_cpu(...)`, is a Python function that
calls `run_chunks(_k, chunks, ...)`. Why not Numba's `prange` (bench/results/runtime.md has
the measurements):
- compile time: Numba compiles a `prange` body a second time as a gufunc and generates machine
  code again for everything linked into it; chunk kernels compile about twice as fast;
- one set of threads: `prange`'s OpenMP threads spin after each parallel region, and while
  they spin they take the cores from the chunk threads. So no CPU kernel uses `prange`.
A hand-off to the threads costs a few microseconds while they spin, and as much as a small
kernel once they sleep, so element-wise work under MIN_PARALLEL items runs as one chunk on the
calling thread.

Which thread runs a chunk, and how many threads there are, never changes a result: chunk `t`
always covers the same work and owns workspace `t`, and thread h of T runs chunks h, h + T, ...
in turn. A kernel that sums over chunks (a weight gradient's parts, batch norm's statistics)
takes its chunk count from its workspace, which the lowering sized by the target's chunks
(`Context.chunks`), not from the thread count: so a step gives the same bits on 1 thread as on
8 (tests/runtime/test_determinism.py). Element-wise kernels, whose chunks sum nothing, take
`split(items)`: one chunk per thread.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable

import numba
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

MIN_PARALLEL = 1 << 15
SPIN_READS = 1 << 18            # ~75 us on the 2-core AMD EPYC of 2026-12-07
SETTLE_READS = 1 << 12          # ~1.2 us there: about as long as dispatching a chunk kernel


def chunk_kernel(function=None, **options):
    """`njit` for a chunk kernel: without the GIL (so chunks run at once), cached on disk, and
    with NumPy's error model (Python's, the default, keeps division from vectorising)."""
    options = {"nogil": True, "cache": True, "error_model": "numpy", **options}
    return njit(**options) if function is None else njit(**options)(function)


@njit(cache=True, inline="always")
def span(t, chunks, n):
    """Chunk t's items [lo, hi) of n items cut into `chunks` chunks."""
    return t * n // chunks, (t + 1) * n // chunks


def _thread_count() -> Callable[[], int]:
    """Numba's thread count for the calling thread, as a function. `numba.get_num_threads()`
    takes two locks on every call (1.2 us quiet, 4.7 us under cProfile, and a step calls it for
    every kernel: 10 % of LeNet's batch-1 inference); once the threading layer is launched, its
    C getter (the same per-thread value, 0.14 us) is enough."""
    numba.get_num_threads()             # launches the threading layer
    from numba.np.ufunc import parallel
    return getattr(parallel, "_get_num_threads", numba.get_num_threads)


threads = _thread_count()


def split(items: int) -> int:
    """How many chunks to cut `items` items of element-wise work into (work whose result does
    not depend on it)."""
    return 1 if items < MIN_PARALLEL else threads()


def cut(items: int, chunks: int) -> int:
    """How many chunks to cut `items` items of work into that the lowering sized for `chunks`
    (work whose result depends on the cut: a GEMM's sums): those, unless the work is too small
    to hand to another thread."""
    return 1 if items < MIN_PARALLEL else chunks


def _int64_at(builder, context, signature, args):
    """The pointer to the int64 at `address` + 8 * index (args[0], args[1])."""
    first = builder.inttoptr(args[0], ir.IntType(64).as_pointer())
    return builder.gep(first, [context.cast(builder, args[1], signature.args[1], types.intp)])


@intrinsic
def _load(typingctx, address, index):
    """The int64 at `address` + 8 * index, read atomically (sequentially consistent): a spin
    loop's read, which the compiler may not hoist out of the loop. Addresses rather than arrays,
    because passing an array from Python makes Numba allocate a wrapper for it."""
    if not (isinstance(address, types.Integer) and isinstance(index, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        return builder.load_atomic(_int64_at(builder, context, signature, args), "seq_cst", 8)

    return types.int64(address, index), codegen


@intrinsic
def _store(typingctx, address, index, value):
    """Write the int64 at `address` + 8 * index atomically (sequentially consistent: no later
    read of this thread is done before it)."""
    if not all(isinstance(a, types.Integer) for a in (address, index, value)):
        return None

    def codegen(context, builder, signature, args):
        number = context.cast(builder, args[2], signature.args[2], types.int64)
        builder.store_atomic(number, _int64_at(builder, context, signature, args), "seq_cst", 8)
        return context.get_dummy_value()

    return types.none(address, index, value), codegen


@njit(nogil=True, cache=True)
def _spin_until_changed(address, index, seen, tries):
    """Whether the int64 at address[index] != seen within `tries` reads, without the GIL."""
    for _ in range(tries):
        if _load(address, index) != seen:
            return True
    return False


@njit(nogil=True, cache=True)
def _all_finished(address, count, target):
    """Whether all `count` int64s from address == target (one read each)."""
    done = True
    for i in range(count):
        done = done and _load(address, i) == target
    return done


@njit(nogil=True, cache=True)
def _spin_until_all(address, count, target, tries):
    """Whether all `count` int64s from address == target within `tries` rounds of reads,
    without the GIL."""
    for _ in range(tries):
        if _all_finished(address, count, target):
            return True
    return False


POSTED, WAKE_CALLER, IDLE = 1, 2, 0     # what a helper's _finish_then_spin saw


@njit(nogil=True, cache=True)
def _finish_then_spin(finished_at, caller_asleep_at, posted_at, h, job, tries, settle):
    """A helper's end of job `job`: marks it finished, then spins for the next post, without
    the GIL. WAKE_CALLER where the caller went to sleep before the mark, POSTED once a new job
    is posted (after `settle` more reads), IDLE after `tries` reads without one."""
    _store(finished_at, h, job)
    if _load(caller_asleep_at, 0):
        return WAKE_CALLER
    if not _spin_until_changed(posted_at, h, job, tries):
        return IDLE
    _spin_until_changed(posted_at, h, _load(posted_at, h), settle)   # posted[h] stays put now
    return POSTED


@njit(nogil=True, cache=True)
def _caller_may_sleep(caller_asleep_at, finished_at, count, job):
    """The caller's side of a sleep: flags it, then whether some helper has not yet finished
    `job` (so that one will see the flag, and wake it). Clears the flag where all have."""
    _store(caller_asleep_at, 0, 1)
    if _all_finished(finished_at, count, job):
        _store(caller_asleep_at, 0, 0)
        return False
    return True


class _Pool:
    """`size - 1` helper threads; the calling thread is thread 0. Thread h runs chunks h,
    h + size, h + 2 size, ... of a job.

    A run posts job number n to every helper (`posted[h] = n`) and waits until each has
    finished it (`finished[h] == n`). Both sides first wait by spinning without the GIL for up
    to SPIN_READS reads: waking a blocked thread costs as much as a small kernel (measured:
    bench/results/runtime.md), and a step runs a dozen or more kernels back to back. Then they
    block on a semaphore, so idle threads cost nothing.

    The hand-off avoids the GIL's own waits, which block too: a thread that asks for the GIL
    while the other holds it sleeps until woken. So a helper marks its job finished from
    compiled code, as the last thing before it spins for the next job, and the caller, spinning
    without the GIL, takes it back without waiting. And a helper that sees a post spins a little
    longer (SETTLE_READS) before it takes the GIL, which by then the caller has let go of to run
    its own chunk. A helper's `asleep` flag is set and read with the GIL held, so a post can
    never miss a helper going to sleep; the caller's flag is a word that it sets before its last
    look at `finished` and that each helper reads after marking its job (both atomic, in that
    order), so either the caller sees the job finished or the helper sees it asleep.
    """

    def __init__(self, size: int):
        self.pid = os.getpid()        # threads do not survive fork(): a child makes its own
        self.size = size
        helpers = size - 1
        self.posted = np.zeros(helpers, np.int64)
        self.finished = np.zeros(helpers, np.int64)
        self.caller_asleep = np.zeros(1, np.int64)
        self.posted_at, self.finished_at = self.posted.ctypes.data, self.finished.ctypes.data
        self.caller_asleep_at = self.caller_asleep.ctypes.data
        self.errors: list[BaseException | None] = [None] * helpers
        self.job: tuple | None = None
        self.asleep = [False] * helpers
        self.wake = [threading.Semaphore(0) for _ in range(helpers)]
        self.caller_wake = threading.Semaphore(0)
        self.runs = 0
        self.busy = threading.Lock()  # one run at a time
        for h in range(helpers):
            threading.Thread(target=self._serve, args=(h,), daemon=True,
                             name=f"cnngraph-chunk-{h + 1}").start()

    def _serve(self, h: int) -> None:
        seen, posted = 0, False
        while True:
            if not posted and not _spin_until_changed(self.posted_at, h, seen, SPIN_READS):
                self.asleep[h] = True
                if self.posted[h] == seen:
                    self.wake[h].acquire()
                self.asleep[h] = False
                continue                 # a wake-up may be stale: look again
            seen = int(self.posted[h])
            kernel, chunks, args = self.job
            try:
                for chunk in range(h + 1, chunks, self.size):
                    kernel(chunk, chunks, *args)
                self.errors[h] = None
            except BaseException as error:   # handed to the caller, which raises it
                self.errors[h] = error
            outcome = _finish_then_spin(self.finished_at, self.caller_asleep_at,
                                        self.posted_at, h, seen, SPIN_READS, SETTLE_READS)
            if outcome == WAKE_CALLER:
                self.caller_wake.release()
            posted = outcome == POSTED

    def run(self, kernel: Callable, chunks: int, args: tuple) -> None:
        with self.busy:
            self.runs += 1
            self.job = (kernel, chunks, args)
            for h in range(self.posted.size):
                self.posted[h] = self.runs
                if self.asleep[h]:
                    self.asleep[h] = False
                    self.wake[h].release()
            failure = None
            try:
                for chunk in range(0, chunks, self.size):
                    kernel(chunk, chunks, *args)
            except BaseException as error:
                failure = error
            # wait for every helper, even after a failure
            while not _spin_until_all(self.finished_at, self.finished.size, self.runs,
                                      SPIN_READS):
                if _caller_may_sleep(self.caller_asleep_at, self.finished_at,
                                     self.finished.size, self.runs):
                    self.caller_wake.acquire()
                    self.caller_asleep[0] = 0
            self.job = None
            failure = failure or next((e for e in self.errors if e is not None), None)
        if failure is not None:
            raise failure


_pools: dict[int, _Pool] = {}
_lock = threading.Lock()


def run_chunks(kernel: Callable, chunks: int, *args) -> None:
    """kernel(t, chunks, *args) for every t in range(chunks), on up to Numba's number of
    threads at once; returns when all are done and re-raises the first error."""
    size = min(chunks, threads())
    if size == 1:
        for chunk in range(chunks):
            kernel(chunk, chunks, *args)
        return
    pool = _pools.get(size)
    if pool is None or pool.pid != os.getpid():
        with _lock:
            pool = _pools.get(size)
            if pool is None or pool.pid != os.getpid():
                pool = _pools[size] = _Pool(size)
    pool.run(kernel, chunks, args)


def run_samples(kernel: Callable, chunks: int, samples: int, *args) -> None:
    """run_chunks for a kernel whose chunk t does samples span(t, chunks, samples) and nothing
    else: a batch of one sample has a single busy chunk (the last), which runs on the calling
    thread; handing it to a helper cost more than LeNet's whole kernels at batch 1 (a third of
    its inference time was the hand-off)."""
    if samples == 1:
        kernel(chunks - 1, chunks, *args)
    else:
        run_chunks(kernel, chunks, *args)
