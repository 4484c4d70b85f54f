"""The disk cache's locator of cnngraph's kernels (cnngraph/kernels/__init__.py)."""
import math

import pytest
from numba.core.errors import NumbaWarning

from cnngraph.jit import load_module

UNCACHEABLE = '''
import ctypes
import ctypes.util
from numba import njit

cos = ctypes.CDLL(ctypes.util.find_library("m")).cos
cos.restype, cos.argtypes = ctypes.c_double, [ctypes.c_double]


@njit(cache=True)
def through_a_pointer(x):
    return cos(x)
'''


def test_a_kernel_numba_cannot_cache_runs_with_numbas_warning():
    """A kernel that calls through a ctypes pointer cannot go to the disk cache: Numba says so
    in a warning that names the kernel's file, which the locator used to lack (an
    AttributeError instead of the kernel)."""
    module = load_module(UNCACHEABLE, "test_uncacheable")
    with pytest.warns(NumbaWarning, match="Cannot cache compiled function"):
        assert module.through_a_pointer(0.5) == math.cos(0.5)
