"""slice's lowering, one for every target, on the tensors viewed as (N, elements per sample):
a sample's channels [start, stop) are one contiguous run of its elements, from `offset`.
`slice_fwd_<target>(x, y, offset)` copies that run into y; `slice_bwd_<target>(dy, dx,
offset, clear)` writes dy into the run of dx and, where `clear`, zeros around it (kernels
overwrite their outputs: where x has other consumers, the backward schedule sums their
gradients, unless the consumers' ranges partition x's channels: then each writes its own range
of the one buffer, and none clears)."""
from __future__ import annotations

from ..base import numel
from ..lowering import DX, DY, Alone, Call, Context, Kernel, Lowering, X, Y

FORWARD = Kernel("cnngraph.ops.slice.{target}", "slice_fwd_{target}")
BACKWARD = Kernel("cnngraph.ops.slice.{target}", "slice_bwd_{target}")


def lower(node, ctx: Context) -> Lowering:
    whole, part = numel(node.in_shapes[0]), numel(node.shape)
    start, _ = node.attrs.bounds(node.in_shapes[0][0])
    offset = start * numel(node.shape[1:])
    return Lowering(
        forward=(Call(FORWARD, {"x": X().view(-1, whole), "y": Y.view(-1, part),
                                "offset": offset}),),
        backward=(Call(BACKWARD, {"dy": DY.view(-1, part), "dx": DX().view(-1, whole),
                                  "offset": offset, "clear": Alone(0)}),))
