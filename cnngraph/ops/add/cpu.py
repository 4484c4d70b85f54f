"""add on the CPU: the sum kernel forward; its gradient is dy for every input (copied)."""
from __future__ import annotations

from ...lowering import IO, Lowering

SUPPORT = "cnngraph.kernels.cpu.support"


def lower(node, threads: int) -> Lowering:
    def forward(io: IO) -> list[str]:
        return [f"sum_cpu({io.y}, ({', '.join(io.x)},))"]

    def backward(io: IO) -> list[str]:
        return [f"copy_cpu({io.dy}, {dx})" for dx in io.dx if dx is not None]

    return Lowering(module=SUPPORT, kernels=("sum_cpu", "copy_cpu"), forward=forward,
                    backward=backward)


LOWER = {"add": lower}
