"""add on CUDA: the sum kernel forward; its gradient is dy for every input (copied)."""
from __future__ import annotations

from ...lowering import IO, Lowering

SUPPORT = "cnngraph.kernels.cuda.support"


def lower(node, threads: int) -> Lowering:
    def forward(io: IO) -> list[str]:
        return [f"sum_cuda({io.y}, ({', '.join(io.x)},))"]

    def backward(io: IO) -> list[str]:
        return [f"copy_cuda({io.dy}, {dx})" for dx in io.dx if dx is not None]

    return Lowering(module=SUPPORT, kernels=("sum_cuda", "copy_cuda"), forward=forward,
                    backward=backward)


LOWER = {"add": lower}
