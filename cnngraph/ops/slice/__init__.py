"""slice: keep the channels [start, stop) of a (C, H, W) map, or the features [start, stop) of
a (features,) vector, as PyTorch's `x.narrow(1, start, stop - start)` and ONNX's `Slice` on
axis 1 (ShuffleNet v2's channel split, torch's `x.chunk(2, dim=1)`).

    - parallel:
        - [slice: {stop: 58}]                              # the first 58 channels
        - [slice: {start: 58}, conv: {out: 58, kernel: 1}] # the rest
      merge: concat
    - slice: {start: -10}                                  # the last 10 channels

`start` (0) and `stop` (the end) read as in Python: negative values count from the end. Both
must lie within the channels and the range must hold at least one. Output (stop - start, H, W)
or (stop - start,). No parameters; costs nothing under either policy (a copy). Pointwise in
space: the receptive field and jump stay as they are.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..base import Cost, OpDef, ShapeError, object_schema
from .lower import lower

INDEX = {"description": "a channel index; negative counts from the end", "type": "integer"}


@dataclass(frozen=True)
class SliceAttrs:
    start: int = 0
    stop: int | None = None       # None: the end

    def bounds(self, channels: int) -> tuple[int, int]:
        """[start, stop) as channel indices of `channels` channels, negatives counted from the
        end as in Python (not clamped: the shape rule rejects what lies outside)."""
        stop = channels if self.stop is None else self.stop
        return (self.start + channels if self.start < 0 else self.start,
                stop + channels if stop < 0 else stop)


def shape(a: SliceAttrs, ins):
    channels = ins[0][0]
    what = "channels" if len(ins[0]) == 3 else "features"
    for key, value in (("start", a.start), ("stop", a.stop)):
        if value is not None and not -channels <= value <= channels:
            raise ShapeError(f"`slice` {key}={value} is outside the {channels} input {what}",
                             f"start and stop lie in [-{channels}, {channels}]; negative "
                             "values count from the end, and leaving stop out means the end")
    start, stop = a.bounds(channels)
    if start >= stop:
        given = f"start={a.start}" + ("" if a.stop is None else f" stop={a.stop}")
        raise ShapeError(f"`slice` {given} selects no channel",
                         f"it reads [start, stop) of the {channels} input {what}, here "
                         f"[{start}, {stop}): start must come before stop")
    return (stop - start, *ins[0][1:])


OP = OpDef(
    package=__name__,
    name="slice", doc=__doc__,
    schema=object_schema({"start": INDEX, "stop": INDEX}),
    attrs=lambda args: SliceAttrs(args.get("start", 0), args.get("stop")),
    shape=shape, cost=lambda a, ins, out: Cost(), lower=lower,
    channels_read=lambda a, ins, i: a.bounds(ins[0][0]),
)
