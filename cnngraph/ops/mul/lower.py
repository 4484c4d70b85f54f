"""mul's lowering, shared by the backends: the kernels see (N, C, H, W) tensors, vectors as
(N, F, 1, 1); `mul_fwd_<backend>(a, b, y)` and `mul_bwd_<backend>(other, dy, dx)`, the
gradient of one factor."""
from __future__ import annotations

from ..lowering import IO, Context, TextLowering


def _four_d(expr: str, shape) -> str:
    return expr if len(shape) == 3 else f"{expr}.reshape({expr}.shape[0], -1, 1, 1)"


def lowerings(backend: str) -> dict:
    def lower(node, ctx: Context) -> TextLowering:
        shapes = node.in_shapes

        def forward(io: IO) -> list[str]:
            a, b = (_four_d(x, s) for x, s in zip(io.x, shapes, strict=True))
            return [f"mul_fwd_{backend}({a}, {b}, {_four_d(io.y, node.shape)})"]

        def backward(io: IO) -> list[str]:
            lines = []
            dy = _four_d(io.dy, node.shape)
            for k, dx in enumerate(io.dx):
                if dx is not None:
                    other = _four_d(io.x[1 - k], shapes[1 - k])
                    lines.append(f"mul_bwd_{backend}({other}, {dy}, {_four_d(dx, shapes[k])})")
            return lines

        return TextLowering(module=f"{__package__}.{backend}",
                        kernels=(f"mul_fwd_{backend}", f"mul_bwd_{backend}"), forward=forward,
                        backward=backward, reads=("input",))
    return {"mul": lower}
