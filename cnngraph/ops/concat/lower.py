"""concat's lowering, one for every target: `concat_slice_<target>(src, dst, offset, to_dst)`
copies an input into (or, for its gradient, out of) its channel range of the output."""
from __future__ import annotations

from ..lowering import DX, DY, Call, Context, Kernel, Lowering, X, Y

SLICE = Kernel("cnngraph.ops.concat.{target}", "concat_slice_{target}")


def lower(node, ctx: Context) -> Lowering:
    offsets, total = [], 0
    for shape in node.in_shapes:
        offsets.append(total)
        total += shape[0]
    return Lowering(
        forward=tuple(Call(SLICE, {"src": X(i), "dst": Y, "offset": o, "to_dst": True})
                      for i, o in enumerate(offsets)),
        backward=tuple(Call(SLICE, {"src": DX(i), "dst": DY, "offset": o, "to_dst": False},
                            only_if_wanted=i)
                       for i, o in enumerate(offsets)))
