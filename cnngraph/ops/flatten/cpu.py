"""flatten on the CPU: a copy in each direction (the memory order is already C, H, W)."""
from __future__ import annotations

from ...lowering import Lowering


def lowering(backend: str):
    """flatten's lowering for a backend whose support module has `copy_<backend>`."""
    def lower(node, threads: int) -> Lowering:
        copy = f"copy_{backend}"
        return Lowering(
            module=f"cnngraph.kernels.{backend}.support", kernels=(copy,),
            forward=lambda io: [f"{copy}({io.x[0]}, {io.y})"],
            backward=lambda io: [f"{copy}({io.dy}, {io.dx[0]})"])
    return lower


LOWER = {"flatten": lowering("cpu")}
