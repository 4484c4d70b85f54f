"""channel_shuffle's lowering, one for every target:
`channel_shuffle_<target>(src, dst, groups, inverse)` shuffles the channels of src (N, C, H*W)
into dst; the backward pass applies the inverse permutation to the gradient."""
from __future__ import annotations

from ..lowering import DX, DY, Call, Context, Kernel, Lowering, X, Y

SHUFFLE = Kernel("cnngraph.ops.channel_shuffle.{target}", "channel_shuffle_{target}")


def lower(node, ctx: Context) -> Lowering:
    channels, h, w = node.shape

    def planes(ref):
        return ref.view(-1, channels, h * w)

    groups = node.attrs.groups
    return Lowering(
        forward=(Call(SHUFFLE, {"src": planes(X()), "dst": planes(Y), "groups": groups,
                                "inverse": False}),),
        backward=(Call(SHUFFLE, {"src": planes(DY), "dst": planes(DX()), "groups": groups,
                                 "inverse": True}),))
