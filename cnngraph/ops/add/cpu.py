"""add on the CPU: `add_fwd_cpu` sums the inputs and applies a fused activation (a residual
block's add -> relu, passes/fuse.py) block by block, each block's sum still in cache when the
activation runs over it; `add_bwd_cpu` writes the gradient (through the activation's
derivative, from the output) into the first wanted input's gradient and copies it into the
others, block by block. Unfused, the add and the relu read and wrote the tensor five times
forward and seven times backward (the relu's derivative, then a copy for each input); fused,
three and four times. The kernels see flat views: every shape shares one compiled
signature."""
from __future__ import annotations

from ...kernels.cpu.chunks import chunk_kernel, run_chunks, span, split
from ...kernels.cpu.support import sum_range
from ..conv.cpu.gradients import before_activation
from ..pointwise.cpu import activate_all

BLOCK = 4096        # values a block: its arrays stay in L1 or L2 between the two passes


@chunk_kernel
def _sum_activate(t, chunks, out_all, parts, act, act_arg):
    """Chunk t of out = act(the sum of parts), block by block."""
    lo, hi = span(t, chunks, out_all.size)
    for start in range(lo, hi, BLOCK):
        end = min(start + BLOCK, hi)
        sum_range(out_all, parts, start, end)
        if act != 0:
            activate_all(out_all[start:end], act, act_arg)


@chunk_kernel
def _spread_gradient(t, chunks, dy_all, y_all, dxs, wants, act, act_arg):
    """Chunk t of each wanted input's gradient (`wants[k]`): dy through the activation's
    derivative (from the output y), computed into the first and copied into the others."""
    lo, hi = span(t, chunks, dy_all.size)
    for start in range(lo, hi, BLOCK):
        end = min(start + BLOCK, hi)
        dy = dy_all[start:end]
        first = -1
        for k in range(len(dxs)):
            if not wants[k]:
                continue
            dx = dxs[k][start:end]
            if first < 0:
                before_activation(dx, dy, y_all[start:end], act, act_arg)
                first = k
                continue
            source = dxs[first][start:end]
            for i in range(dx.size):
                dx[i] = source[i]


def add_fwd_cpu(out, parts, act, act_arg) -> None:
    run_chunks(_sum_activate, split(out.size), out.reshape(-1),
               tuple(part.reshape(-1) for part in parts), act, act_arg)


def add_bwd_cpu(dy, y, dxs, wants, act, act_arg) -> None:
    """y is read only with a fused activation (act != 0); dxs[k] is written where wants[k]."""
    run_chunks(_spread_gradient, split(dy.size), dy.reshape(-1), y.reshape(-1),
               tuple(dx.reshape(-1) for dx in dxs), wants, act, act_arg)
