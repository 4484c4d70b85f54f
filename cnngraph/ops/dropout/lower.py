"""dropout's lowering, shared by the backends: `dropout_fwd_<backend>(x, y, mask, rate,
threshold, seed, salt, training)` and `dropout_bwd_<backend>(dy, mask, dx)`."""
from __future__ import annotations

import math
import zlib

from ..lowering import Context, Scratch, TextLowering


def threshold(rate: float) -> int:
    """Keep an element when the top 53 bits of its hash reach this: "uniform >= rate"."""
    return math.ceil(rate * 2.0 ** 53)


def lowerings(backend: str) -> dict:
    def lower(node, ctx: Context) -> TextLowering:
        salt = zlib.crc32(node.name.encode())
        rate = node.attrs.rate
        return TextLowering(
            module=f"{__package__}.{backend}",
            kernels=(f"dropout_fwd_{backend}", f"dropout_bwd_{backend}"),
            forward=lambda io: [f"dropout_fwd_{backend}({io.x[0]}, {io.y}, "
                                f"{io.scratch('mask')}, {rate}, {threshold(rate)}, seed, "
                                f"{salt}, training)"],
            backward=lambda io: [f"dropout_bwd_{backend}({io.dy}, {io.scratch('mask')}, "
                                 f"{io.dx[0]})"],
            scratch={"mask": Scratch(node.shape, per_sample=True, saved=True)})
    return {"dropout": lower}
