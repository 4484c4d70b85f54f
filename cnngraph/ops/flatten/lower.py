"""flatten's lowering, shared by the backends (their support modules' copy kernel)."""
from __future__ import annotations

from ..lowering import Context, TextLowering


def lowering(backend: str):
    """flatten's lowering for a backend whose support module has `copy_<backend>`."""
    def lower(node, ctx: Context) -> TextLowering:
        copy = f"copy_{backend}"
        return TextLowering(
            module=f"cnngraph.kernels.{backend}.support", kernels=(copy,),
            forward=lambda io: [f"{copy}({io.x[0]}, {io.y})"],
            backward=lambda io: [f"{copy}({io.dy}, {io.dx[0]})"])
    return lower

