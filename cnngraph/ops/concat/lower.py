"""concat's lowering, one for every target: `concat_copy_<target>(src, dst, first, count,
dst_first, step, to_dst, clear)` copies `count` channels of an input from channel `first` into
the output's channels `dst_first`, `dst_first + step`, ... (or, for its gradient, back out of
them), on (N, C, elements per channel) views. One call per run of channels that land `step`
apart (`ConcatAttrs.runs`: one per input without a folded shuffle). The gradient of an input
read in part clears its other channels, unless other consumers write them (`Alone`)."""
from __future__ import annotations

from ..base import numel
from ..lowering import DX, DY, Alone, Call, Context, Kernel, Lowering, X, Y

COPY = Kernel("cnngraph.ops.concat.{target}", "concat_copy_{target}")


def lower(node, ctx: Context) -> Lowering:
    channels = node.shape[0]
    per_channel = numel(node.shape[1:])
    ranges = node.attrs.ranges(node.in_shapes)
    forward, backward = [], []
    for i, first, count, dst_first, step in node.attrs.runs(node.in_shapes):
        place = {"first": first, "count": count, "dst_first": dst_first, "step": step}
        start, stop = ranges[i]
        part = stop - start < node.in_shapes[i][0]   # then this is its only run (fuse.py)
        forward.append(Call(COPY, {"src": X(i).view(-1, node.in_shapes[i][0], per_channel),
                                   "dst": Y.view(-1, channels, per_channel), **place,
                                   "to_dst": True, "clear": False}))
        backward.append(Call(COPY, {"src": DX(i).view(-1, node.in_shapes[i][0], per_channel),
                                    "dst": DY.view(-1, channels, per_channel), **place,
                                    "to_dst": False, "clear": Alone(i) if part else False},
                             only_if_wanted=i))
    return Lowering(forward=tuple(forward), backward=tuple(backward))
