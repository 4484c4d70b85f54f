"""Pointwise ops on CUDA: kernels generated from the rows' expressions, one thread per element
(grid-stride); `pointwise_fwd_cuda(name, ...)` launches the row's kernel for the array's dtype.

The rows also give `activate`, the device function with which conv, dense and batch norm apply
a fused activation (`cnngraph.passes.fuse`, `pointwise/lower.py`) in their output loops.
"""
from __future__ import annotations

from ...kernels.cuda.launch import blocks, instantiate, run
from ..lowering import IO, Context, TextLowering
from . import ROWS
from .lower import CODES

# The functions the rows' expressions call, on the device (CUDA's own expf and tanhf).
MATH = '''
@cuda.jit(device=True, inline=True)
def sigmoid(x):
    return F(1) / (F(1) + math.exp(-x))


@cuda.jit(device=True, inline=True)
def tanh(x):
    return math.tanh(x)
'''

ACTIVATE = MATH + "\n".join([
    "", "@cuda.jit(device=True, inline=True)", "def activate(x, act, a):", "    zero = F(0)",
    "    one = F(1)",
    *(f"    if act == {CODES[row.name]}:\n        return {row.forward}" for row in ROWS),
    "    return x", ""])


_TEMPLATE = '''
@cuda.jit(cache=True)
def {name}_fwd(xs, ys, a):
    zero = F(0)
    one = F(1)
    for i in range(cuda.grid(1), xs.size, cuda.gridsize(1)):
        x = xs[i]
        ys[i] = {forward}


@cuda.jit(cache=True)
def {name}_bwd(xs, ys, dys, dxs, a):
    zero = F(0)
    one = F(1)
    for i in range(cuda.grid(1), xs.size, cuda.gridsize(1)):
        x = xs[i]
        y = ys[i]
        dy = dys[i]
        dxs[i] = {backward}
'''

KERNELS = instantiate(MATH + "".join(_TEMPLATE.format(name=r.name, forward=r.forward,
                                               backward=r.backward) for r in ROWS), "pointwise")


def _flat(a):
    return a.reshape(a.size)


def pointwise_fwd_cuda(name: str, x, y, a: float) -> None:
    kernel = getattr(KERNELS[x.dtype], f"{name}_fwd")
    run(kernel, blocks(x.size), _flat(x), _flat(y), x.dtype.type(a))


def pointwise_bwd_cuda(name: str, x, y, dy, dx, a: float) -> None:
    kernel = getattr(KERNELS[x.dtype], f"{name}_bwd")
    run(kernel, blocks(x.size), _flat(x), _flat(y), _flat(dy), _flat(dx), x.dtype.type(a))


def _lower(row):
    def lower(node, ctx: Context) -> TextLowering:
        a = getattr(node.attrs, row.argument) if row.argument else 0.0

        def forward(io: IO) -> list[str]:
            return [f"pointwise_fwd_cuda({row.name!r}, {io.x[0]}, {io.y}, {a})"]

        def backward(io: IO) -> list[str]:
            return [f"pointwise_bwd_cuda({row.name!r}, {io.x[0]}, {io.y}, {io.dy}, {io.dx[0]}, "
                    f"{a})"]

        return TextLowering(module=__name__, kernels=("pointwise_fwd_cuda", "pointwise_bwd_cuda"),
                        forward=forward, backward=backward, reads=row.reads)
    return lower


LOWER = {row.name: _lower(row) for row in ROWS}
