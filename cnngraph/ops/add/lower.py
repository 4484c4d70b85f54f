"""add's lowering, shared by the backends (their support modules' sum and copy kernels)."""
from __future__ import annotations

from ..lowering import IO, Context, TextLowering


def lowering(backend: str):
    """add's lowering for a backend whose support module has `sum_<backend>` and
    `copy_<backend>` (the CPU and CUDA support kernels share these signatures)."""
    def lower(node, ctx: Context) -> TextLowering:
        def forward(io: IO) -> list[str]:
            return [f"sum_{backend}({io.y}, ({', '.join(io.x)},))"]

        def backward(io: IO) -> list[str]:
            return [f"copy_{backend}({io.dy}, {dx})" for dx in io.dx if dx is not None]

        return TextLowering(module=f"cnngraph.kernels.{backend}.support",
                        kernels=(f"sum_{backend}", f"copy_{backend}"), forward=forward,
                        backward=backward)
    return lower

