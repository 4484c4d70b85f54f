"""softmax's lowering, shared by the backends: the kernels see (N, C, L) views,
`softmax_fwd_<backend>(x, y)` and `softmax_bwd_<backend>(y, dy, dx)`."""
from __future__ import annotations

from ..lowering import Context, TextLowering


def lowerings(backend: str) -> dict:
    def lower(node, ctx: Context) -> TextLowering:
        c = node.shape[0]

        def view(expr: str) -> str:
            return f"{expr}.reshape({expr}.shape[0], {c}, -1)"

        return TextLowering(
            module=f"{__package__}.{backend}",
            kernels=(f"softmax_fwd_{backend}", f"softmax_bwd_{backend}"), reads=("output",),
            forward=lambda io: [f"softmax_fwd_{backend}({view(io.x[0])}, {view(io.y)})"],
            backward=lambda io: [f"softmax_bwd_{backend}({view(io.y)}, {view(io.dy)}, "
                                 f"{view(io.dx[0])})"])
    return {"softmax": lower}
