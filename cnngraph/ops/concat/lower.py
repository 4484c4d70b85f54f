"""concat's lowering, one for every target: `concat_copy_<target>(src, dst, first, count,
dst_first, step, to_dst, clear)` copies `count` channels of an input from channel `first` into
the output's channels `dst_first`, `dst_first + step`, ... (or, for its gradient, back out of
them), on (N, C, elements per channel) views. One call per run of channels that land `step`
apart: a plain concat has one run per input, at step 1; with a shuffle of g groups folded in
(`ConcatAttrs`), the joined channel k goes to (k mod C/g) * g + k div C/g, one run per group an
input spans, at step g. The gradient of an input read in part clears its other channels, unless
other consumers write them (`Alone`)."""
from __future__ import annotations

from ..base import numel
from ..lowering import DX, DY, Alone, Call, Context, Kernel, Lowering, X, Y

COPY = Kernel("cnngraph.ops.concat.{target}", "concat_copy_{target}")


def runs(attrs, in_shapes, channels: int) -> list[tuple[int, int, int, int, int]]:
    """(input, first channel read, count, first output channel, output step) of every run."""
    per_group = channels // attrs.shuffle
    found, joined = [], 0
    reads = attrs.reads or (None,) * len(in_shapes)
    for i, (width, read) in enumerate(zip(attrs.widths(in_shapes), reads, strict=True)):
        first = 0 if read is None else read[0]
        k = joined
        while k < joined + width:
            count = min(joined + width, (k // per_group + 1) * per_group) - k
            found.append((i, first + k - joined, count,
                          k % per_group * attrs.shuffle + k // per_group, attrs.shuffle))
            k += count
        joined += width
    return found


def lower(node, ctx: Context) -> Lowering:
    channels = node.shape[0]
    per_channel = numel(node.shape[1:])
    widths = node.attrs.widths(node.in_shapes)
    forward, backward = [], []
    for i, first, count, dst_first, step in runs(node.attrs, node.in_shapes, channels):
        place = {"first": first, "count": count, "dst_first": dst_first, "step": step}
        part = widths[i] < node.in_shapes[i][0]   # then this is its only run (passes/fuse.py)
        forward.append(Call(COPY, {"src": X(i).view(-1, node.in_shapes[i][0], per_channel),
                                   "dst": Y.view(-1, channels, per_channel), **place,
                                   "to_dst": True, "clear": False}))
        backward.append(Call(COPY, {"src": DX(i).view(-1, node.in_shapes[i][0], per_channel),
                                    "dst": DY.view(-1, channels, per_channel), **place,
                                    "to_dst": False, "clear": Alone(i) if part else False},
                             only_if_wanted=i))
    return Lowering(forward=tuple(forward), backward=tuple(backward))
