"""concat: join tensors along channels (or features, for vectors).

    - parallel: [[conv: {out: 64, kernel: 1}], [conv: {out: 32, kernel: 3, padding: 1}]]
      merge: concat

Spatial sizes must agree. Costs nothing under either policy (a copy).

When compiling, a slice whose only consumer is a concat, and a channel shuffle that is a
concat's only consumer, are folded into the concat (`passes/fuse.py`), so ShuffleNet's split,
join and shuffle copy each value once: the concat then reads a channel range of its input and
writes its channels in shuffled order (`ConcatAttrs`).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..base import Cost, OpDef, ShapeError, fmt_shape, object_schema
from .lower import lower


@dataclass(frozen=True)
class ConcatAttrs:
    """What fusion folds into a concat; a spec sets neither. `reads[i]`: the channels
    [start, stop) of input i that are joined (a slice it absorbed), None for all of them;
    `shuffle`: the groups of a channel shuffle applied to the joined channels (1: none)."""

    reads: tuple[tuple[int, int] | None, ...] | None = None
    shuffle: int = 1

    def ranges(self, ins) -> list[tuple[int, int]]:
        """The channels [start, stop) of each input that are joined."""
        reads = self.reads or (None,) * len(ins)
        return [(0, s[0]) if r is None else r for s, r in zip(ins, reads, strict=True)]

    def runs(self, ins) -> list[tuple[int, int, int, int, int]]:
        """(input, first channel read, count, first output channel, output step) of each run of
        channels that land `step` apart in the output: with a shuffle of g groups, joined
        channel k goes to (k mod C/g) * g + k div C/g, so an input makes one run per group it
        spans; without one, one run at step 1."""
        ranges = self.ranges(ins)
        per_group = sum(stop - start for start, stop in ranges) // self.shuffle
        found, joined = [], 0
        for i, (start, stop) in enumerate(ranges):
            k = joined
            while k < joined + stop - start:
                count = min(joined + stop - start, (k // per_group + 1) * per_group) - k
                found.append((i, start + k - joined, count,
                              k % per_group * self.shuffle + k // per_group, self.shuffle))
                k += count
            joined += stop - start
        return found


def shape(a: ConcatAttrs, ins):
    ranks = {len(s) for s in ins}
    if len(ranks) > 1 or any(s[1:] != ins[0][1:] for s in ins):
        raise ShapeError("`concat` needs inputs with equal spatial size, received "
                         + ", ".join(fmt_shape(s) for s in ins),
                         "use the same strides and padding in every branch")
    return (sum(stop - start for start, stop in a.ranges(ins)), *ins[0][1:])


OP = OpDef(
    package=__name__,
    name="concat", doc=__doc__, schema=object_schema({}), attrs=lambda args: ConcatAttrs(),
    arity=None, shape=shape, cost=lambda a, ins, out: Cost(), lower=lower,
    channels_read=lambda a, ins, i: a.reads[i] if a.reads else None,
)
