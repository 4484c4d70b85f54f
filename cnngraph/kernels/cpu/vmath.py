"""`sigmoid` and `tanh` for CPU kernels: in float32 a form that vectorises, in float64 libm's;
and `select`, a branch-free choice.

`math.exp` and `math.tanh` compile to calls into libm, which LLVM does not vectorise with the pip
llvmlite (it has no SVML), so a float32 sigmoid pass ran at ~0.7 Gelem/s. In float32,
tanh(x) = x P(x^2) / Q(x^2) on |x| <= 9 (beyond it float32 tanh is +-1), and
sigmoid(x) = (1 + tanh(x / 2)) / 2: both vectorise. The rational function was fitted for
cnngraph by Lawson-weighted least squares on the relative error; evaluated in float32 its error
is below 3.6e-7, absolute and relative, over [-12, 12] (tests/kernels/test_vmath.py). Float64
keeps libm, so the float64 gradient checks see the exact functions.
"""
from __future__ import annotations

import math

import numpy as np
from numba import types
from numba.extending import intrinsic, overload, register_jitable

# LLVM's fast-math flags for kernels that use these: all but 'nnan' and 'ninf', under which a
# NaN input came out of sigmoid as 1 and hid a diverging run (measured); as fast.
FAST = {"contract", "arcp", "nsz", "afn", "reassoc"}
LIMIT = np.float32(9.0)
P = tuple(np.float32(c) for c in (0.9999999412401482, 0.12919225030685186,
                                  0.002920757871686358, 9.267380092209991e-06,
                                  -1.2780307578281044e-08, 1.8254897000832878e-11))
Q = tuple(np.float32(c) for c in (1.0, 0.46252508912982254, 0.023763153212305075,
                                  0.00022809961744421178))
P0, P1, P2, P3, P4, P5 = P
Q0, Q1, Q2, Q3 = Q
HALF = np.float32(0.5)


def tanh(x):
    return math.tanh(x)


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


@register_jitable
def _tanh32(x):
    v = LIMIT if x > LIMIT else x       # so written, NaN passes through
    v = -LIMIT if v < -LIMIT else v
    s = v * v
    p = ((((P5 * s + P4) * s + P3) * s + P2) * s + P1) * s + P0
    q = ((Q3 * s + Q2) * s + Q1) * s + Q0
    return v * p / q


@overload(tanh)
def _tanh_overload(x):
    if x == types.float32:
        return _tanh32
    return lambda x: math.tanh(x)


@overload(sigmoid)
def _sigmoid_overload(x):
    if x == types.float32:
        return lambda x: HALF + HALF * _tanh32(HALF * x)
    return lambda x: 1.0 / (1.0 + math.exp(-x))


@intrinsic
def select(typingctx, condition, if_true, if_false):
    """`if_true if condition else if_false` as one LLVM select, for both operands of one type.
    Numba lowers the conditional expression to branches, which mispredict on data-dependent
    conditions (max pooling's comparisons on real activations) and which, in a loop, LLVM
    vectorised with masked stores, microcoded on AMD's Zen 3: a max-pooling row pass so written
    ran there at 0.5-0.9 ns an element, with selects at 0.17 (bench/results/kernels.md)."""
    if not isinstance(condition, types.Boolean) or if_true != if_false:
        return None

    def codegen(context, builder, signature, args):
        return builder.select(*args)
    return if_true(condition, if_true, if_false), codegen
