"""lrn's lowering, shared by the backends: `lrn_fwd_<backend>(x, y, size, alpha, beta, k)`
and `lrn_bwd_<backend>(x, y, dy, dx, size, alpha, beta, k)`."""
from __future__ import annotations

from ..lowering import Context, TextLowering


def lowerings(backend: str) -> dict:
    def lower(node, ctx: Context) -> TextLowering:
        a = node.attrs
        args = f"{a.size}, {a.alpha}, {a.beta}, {a.k}"
        return TextLowering(
            module=f"{__package__}.{backend}",
            kernels=(f"lrn_fwd_{backend}", f"lrn_bwd_{backend}"), reads=("input", "output"),
            forward=lambda io: [f"lrn_fwd_{backend}({io.x[0]}, {io.y}, {args})"],
            backward=lambda io: [f"lrn_bwd_{backend}({io.x[0]}, {io.y}, {io.dy}, {io.dx[0]}, "
                                 f"{args})"])
    return {"lrn": lower}
