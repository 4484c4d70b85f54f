"""The CPU kernels' sigmoid and tanh: float32 accuracy, float64 exactness, NaN and infinities,
and that the float32 loop compiles to vector code (the reason they exist)."""
import math
import re

import numpy as np
import pytest
from numba import njit

from cnngraph.kernels.cpu.vmath import FAST, sigmoid, tanh


@njit(fastmath=FAST, error_model="numpy")   # not cached: cached code cannot be inspected
def _tanh_loop(xs, ys):
    for i in range(xs.size):
        ys[i] = tanh(xs[i])


@njit(fastmath=FAST, error_model="numpy")   # not cached: cached code cannot be inspected
def _sigmoid_loop(xs, ys):
    for i in range(xs.size):
        ys[i] = sigmoid(xs[i])


def _apply(loop, x):
    y = np.empty_like(x)
    loop(x, y)
    return y


GRID = np.concatenate([np.linspace(-12, 12, 400_001), np.geomspace(1e-30, 12, 20_001),
                       -np.geomspace(1e-30, 12, 20_001)]).astype(np.float32)


def test_float32_tanh_is_within_a_few_ulp_absolute_and_relative():
    exact = np.tanh(GRID.astype(np.float64))
    error = np.abs(_apply(_tanh_loop, GRID) - exact)
    assert error.max() < 4e-7
    nonzero = exact != 0
    assert (error[nonzero] / np.abs(exact[nonzero])).max() < 4e-7


def test_float32_sigmoid_is_within_2e_7_absolute():
    exact = 1 / (1 + np.exp(-GRID.astype(np.float64)))
    assert np.abs(_apply(_sigmoid_loop, GRID) - exact).max() < 2e-7


def test_float64_is_libm():
    x = np.linspace(-40, 40, 10_001)
    assert np.array_equal(_apply(_tanh_loop, x), [math.tanh(v) for v in x])
    assert np.array_equal(_apply(_sigmoid_loop, x), [1 / (1 + math.exp(-v)) for v in x])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_passes_through_and_infinities_saturate(dtype):
    x = np.array([np.nan, np.inf, -np.inf, 0.0] * 8, dtype)
    t = _apply(_tanh_loop, x)
    s = _apply(_sigmoid_loop, x)
    assert np.isnan(t[0]) and np.isnan(s[0])
    assert list(t[1:4]) == [1, -1, 0] and list(s[1:4]) == [1, 0, 0.5]


def test_float32_loops_compile_to_vector_code():
    """Packed single-precision division (x86 `divps`) in the loop, and no libm call."""
    x = np.zeros(64, np.float32)
    for loop in (_tanh_loop, _sigmoid_loop):
        _apply(loop, x)
        asm = loop.inspect_asm(loop.signatures[0])
        assert re.search(r"\bv?divps\b", asm) and "tanhf" not in asm and "expf" not in asm
