"""Pointwise ops on CUDA: kernels generated from the rows' expressions, one thread per element
(grid-stride); `pointwise_fwd_cuda(op, ...)` launches row `op`'s kernel for the array's dtype.

The rows also give `activate`, the device function with which conv, dense and batch norm apply
a fused activation (`cnngraph.passes.fuse`, `pointwise/epilogue.py`) in their output loops.
"""
from __future__ import annotations

from ...kernels.cuda.launch import blocks, instantiate, run
from . import CONSTANTS, ROWS
from .epilogue import CODES, FUSED

# The functions the rows' expressions call, on the device (CUDA's own expf, tanhf, erff...).
MATH = '''
@cuda.jit(device=True, inline=True)
def sigmoid(x):
    return F(1) / (F(1) + math.exp(-x))


@cuda.jit(device=True, inline=True)
def tanh(x):
    return math.tanh(x)


@cuda.jit(device=True, inline=True)
def exp(x):
    return math.exp(x)


@cuda.jit(device=True, inline=True)
def expm1(x):
    return math.expm1(x)


@cuda.jit(device=True, inline=True)
def erf(x):
    return math.erf(x)
'''
CONSTANTS_F = "".join(f"    {name} = F({value!r})\n" for name, value in CONSTANTS.items())

ACTIVATE = MATH + "\n".join([
    "", "@cuda.jit(device=True, inline=True)", "def activate(x, act, a):", CONSTANTS_F,
    *(f"    if act == {CODES[row.name]}:\n        return {row.forward}" for row in FUSED),
    "    return x", ""])


_TEMPLATE = '''
@cuda.jit(cache=True)
def {name}_fwd(xs, ys, a):
{constants}    for i in range(cuda.grid(1), xs.size, cuda.gridsize(1)):
        x = xs[i]
        ys[i] = {forward}


@cuda.jit(cache=True)
def {name}_bwd(xs, ys, dys, dxs, a):
{constants}    for i in range(cuda.grid(1), xs.size, cuda.gridsize(1)):
        x = xs[i]
        y = ys[i]
        dy = dys[i]
        dxs[i] = {backward}
'''

KERNELS = instantiate(MATH + "".join(_TEMPLATE.format(name=r.name, forward=r.forward,
                                                      backward=r.backward, constants=CONSTANTS_F)
                                     for r in ROWS), "pointwise")


def _flat(a):
    return a.reshape(a.size)


def pointwise_fwd_cuda(op: str, x, y, argument: float) -> None:
    kernel = getattr(KERNELS[x.dtype], f"{op}_fwd")
    run(kernel, blocks(x.size), _flat(x), _flat(y), x.dtype.type(argument))


def pointwise_bwd_cuda(op: str, x, y, dy, dx, argument: float) -> None:
    kernel = getattr(KERNELS[x.dtype], f"{op}_bwd")
    run(kernel, blocks(x.size), _flat(x), _flat(y), _flat(dy), _flat(dx),
        x.dtype.type(argument))

