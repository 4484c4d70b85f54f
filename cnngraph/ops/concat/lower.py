"""concat's lowering, shared by the backends: `concat_slice_<backend>(src, dst, offset,
to_dst)` copies an input into (or out of) its channel range."""
from __future__ import annotations

from ..lowering import IO, Context, TextLowering


def lowering(backend: str):
    kernel = f"concat_slice_{backend}"

    def lower(node, ctx: Context) -> TextLowering:
        offsets, total = [], 0
        for shape in node.in_shapes:
            offsets.append(total)
            total += shape[0]

        def forward(io: IO) -> list[str]:
            return [f"{kernel}({x}, {io.y}, {o}, True)"
                    for x, o in zip(io.x, offsets, strict=True)]

        def backward(io: IO) -> list[str]:
            return [f"{kernel}({dx}, {io.dy}, {o}, False)"
                    for dx, o in zip(io.dx, offsets, strict=True) if dx is not None]

        return TextLowering(module=f"{__package__}.{backend}", kernels=(kernel,), forward=forward,
                        backward=backward)
    return lower


