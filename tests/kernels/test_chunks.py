"""run_chunks: every chunk runs once, Numba's threads share the chunks out, errors reach the
caller, and a forked child gets threads of its own."""
import multiprocessing
import threading
import time

import numba
import numpy as np
import pytest
from numba import njit

from cnngraph.kernels.cpu.chunks import chunk_kernel, run_chunks, span


@chunk_kernel
def _mark(t, chunks, counts, items):
    lo, hi = span(t, chunks, items.size)
    counts[t] += 1
    for i in range(lo, hi):
        items[i] += 1


@chunk_kernel
def _fail_in_last(t, chunks, counts):
    counts[t] += 1
    if t == chunks - 1:
        raise ValueError("chunk failed")


@pytest.mark.parametrize("chunks", [1, 2, 3, 5])
@pytest.mark.parametrize("n", [0, 1, 7, 64])
def test_every_chunk_runs_once_and_the_spans_tile_the_items(chunks, n):
    counts, items = np.zeros(chunks, np.int64), np.zeros(n, np.int64)
    run_chunks(_mark, chunks, counts, items)
    assert list(counts) == [1] * chunks and list(items) == [1] * n


def _threads_of_chunks(chunks: int) -> dict[int, int]:
    seen = {}

    def record(t, chunks):
        seen[t] = threading.get_ident()

    run_chunks(record, chunks)
    return seen


def test_the_threads_share_the_chunks_out_in_turn():
    threads = numba.get_num_threads()
    assert threads >= 2, "the machines here have two cores or more"
    seen = _threads_of_chunks(2 * threads + 1)
    assert sorted(seen) == list(range(2 * threads + 1))
    assert seen[0] == threading.get_ident()              # the caller is thread 0
    assert len(set(seen.values())) == threads            # no more threads than Numba's
    assert all(seen[t] == seen[t % threads] for t in seen)   # thread h: chunks h, h + T, ...


def test_one_thread_runs_every_chunk_itself():
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        seen = _threads_of_chunks(5)
    finally:
        numba.set_num_threads(threads)
    assert sorted(seen) == list(range(5)) and set(seen.values()) == {threading.get_ident()}


def test_an_error_in_any_chunk_reaches_the_caller_after_all_chunks_ran():
    counts = np.zeros(3, np.int64)
    with pytest.raises(ValueError, match="chunk failed"):
        run_chunks(_fail_in_last, 3, counts)
    assert list(counts) == [1, 1, 1]
    items = np.zeros(5, np.int64)
    run_chunks(_mark, 3, np.zeros(3, np.int64), items)      # the threads still serve
    assert list(items) == [1] * 5


def test_threads_that_went_to_sleep_are_woken():
    """Helpers spin for a while after a run, then block; the caller does the same while a
    helper's chunk is still running. Both must be woken, not wait forever."""
    def slow_helper(t, chunks, counts):
        if t == 1:
            time.sleep(0.05)         # the caller gives up spinning and blocks
        counts[t] += 1

    for _ in range(3):
        counts = np.zeros(2, np.int64)
        run_chunks(slow_helper, 2, counts)
        assert list(counts) == [1, 1]
        time.sleep(0.05)             # the helper gives up spinning and blocks
        items = np.zeros(6, np.int64)
        run_chunks(_mark, 2, np.zeros(2, np.int64), items)
        assert list(items) == [1] * 6


def test_no_wake_up_is_lost_when_a_side_falls_asleep_as_the_other_signals():
    """Stress the two sleeps' races: helpers' chunks that take about as long as the caller
    spins before it sleeps, and pauses between runs about as long as the helpers spin, with
    and without the GIL held. A lost wake-up would leave a run waiting forever."""
    rng = np.random.default_rng(0)
    durations = rng.choice([0.0, 2e-5, 6e-5, 8e-5, 1e-4, 3e-4], size=(300, 2))
    gil = rng.random(300) < 0.5
    counts = np.zeros(2, np.int64)
    runners = set()

    def wait(seconds, hold_gil):
        if hold_gil:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                pass
        elif seconds:
            time.sleep(seconds)

    def uneven(t, chunks, i):
        if t == 1:
            wait(durations[i, 0], gil[i])
        counts[t] += 1
        runners.add(threading.get_ident())

    def runs():
        for i in range(len(durations)):
            run_chunks(uneven, 2, i)
            wait(durations[i, 1], not gil[i])

    worker = threading.Thread(target=runs, daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "a run never returned: a wake-up was lost"
    assert list(counts) == [len(durations)] * 2
    assert len(runners) == 2, "the chunks ran on one thread: nothing was handed off"


def _in_child(queue):
    items = np.zeros(10, np.int64)
    run_chunks(_mark, 2, np.zeros(2, np.int64), items)
    queue.put(int(items.sum()))


def test_a_forked_child_makes_its_own_threads():
    run_chunks(_mark, 2, np.zeros(2, np.int64), np.zeros(4, np.int64))   # the parent's pool
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_in_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0 and queue.get(timeout=5) == 10


@njit(cache=True)
def _spans(chunks, n):
    out = np.zeros((chunks, 2), np.int64)
    for t in range(chunks):
        out[t, 0], out[t, 1] = span(t, chunks, n)
    return out


def test_spans_are_contiguous_and_balanced():
    spans = _spans(4, 10)
    assert spans[0, 0] == 0 and spans[-1, 1] == 10
    assert all(spans[t, 1] == spans[t + 1, 0] for t in range(3))
    assert set(spans[:, 1] - spans[:, 0]) <= {2, 3}
