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

    def widths(self, ins) -> list[int]:
        """The channels each input contributes."""
        reads = self.reads or (None,) * len(ins)
        return [s[0] if r is None else r[1] - r[0] for s, r in zip(ins, reads, strict=True)]


def shape(a: ConcatAttrs, ins):
    ranks = {len(s) for s in ins}
    if len(ranks) > 1 or any(s[1:] != ins[0][1:] for s in ins):
        raise ShapeError("`concat` needs inputs with equal spatial size, received "
                         + ", ".join(fmt_shape(s) for s in ins),
                         "use the same strides and padding in every branch")
    return (sum(a.widths(ins)), *ins[0][1:])


OP = OpDef(
    package=__name__,
    name="concat", doc=__doc__, schema=object_schema({}), attrs=lambda args: ConcatAttrs(),
    arity=None, shape=shape, cost=lambda a, ins, out: Cost(), lower=lower,
    channels_read=lambda a, ins, i: a.reads[i] if a.reads else None,
)
