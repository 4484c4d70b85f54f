"""How cnngraph runs Numba's CUDA simulator (cnngraph/kernels/cuda/launch.py): a block's
threads meet at syncthreads through a barrier, not the simulator's polling loop."""
import threading

import numpy as np
import pytest
from numba import cuda, float64

from cnngraph.kernels.cuda import launch

pytestmark = pytest.mark.skipif(not launch.SIMULATOR, reason="checks the simulator itself")


@cuda.jit
def _block_sums(x, out):
    """A tree reduction in shared memory: every step needs all threads past syncthreads."""
    shared = cuda.shared.array(16, float64)
    t = cuda.threadIdx.x
    shared[t] = x[cuda.blockIdx.x * 16 + t]
    cuda.syncthreads()
    step = 8
    while step:
        if t < step:
            shared[t] += shared[t + step]
        cuda.syncthreads()
        step //= 2
    if t == 0:
        out[cuda.blockIdx.x] = shared[0]


@cuda.jit
def _half_leave(counts):
    """Half the threads end before syncthreads; the others meet without them."""
    t = cuda.threadIdx.x
    if t >= 4:
        return
    cuda.syncthreads()
    counts[t] = cuda.syncthreads_count(1)


@cuda.jit
def _one_fails(x):
    cuda.syncthreads()
    if cuda.threadIdx.x == 3:
        x[100] = 1.0          # out of bounds: raises in the simulator
    cuda.syncthreads()


def test_threads_meet_at_every_syncthreads():
    x = np.random.default_rng(0).standard_normal(48)
    out = np.zeros(3)
    _block_sums[3, 16](x, out)
    np.testing.assert_allclose(out, x.reshape(3, 16).sum(axis=1))


def test_threads_that_ended_leave_the_barrier():
    counts = np.zeros(8)
    _half_leave[1, 8](counts)
    assert counts.tolist() == [4, 4, 4, 4, 0, 0, 0, 0]


def test_a_failing_thread_fails_the_launch_and_frees_the_waiting_ones():
    before = set(threading.enumerate())
    with pytest.raises(IndexError, match=r"tid=\[3, 0, 0\]"):
        _one_fails[1, 8](np.zeros(8))
    started = set(threading.enumerate()) - before
    for thread in started:                    # the others end, none left at the barrier
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in started)
