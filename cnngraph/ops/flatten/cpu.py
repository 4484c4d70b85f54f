"""flatten on the CPU: a copy in each direction (the memory order is already C, H, W)."""
from __future__ import annotations

from ...lowering import Lowering

SUPPORT = "cnngraph.kernels.cpu.support"


def lower(node, threads: int) -> Lowering:
    return Lowering(
        module=SUPPORT, kernels=("copy_cpu",),
        forward=lambda io: [f"copy_cpu({io.x[0]}, {io.y})"],
        backward=lambda io: [f"copy_cpu({io.dy}, {io.dx[0]})"])


LOWER = {"flatten": lower}
