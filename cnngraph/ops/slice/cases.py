"""slice's test cases: a map and a vector (after a dense layer, whose weight gradient goes
through it), negative start and stop, stop left out, batch 1, and ShuffleNet v2's channel split,
where the split map feeds two slices, and a slice beside the identity, so each gradient is a sum
over consumers; three slices that partition the input's channels, whose gradients go into one
buffer without a sum, and two that leave a channel out, which are summed; a concat that reads
both halves of its input in place (its two gradients share one buffer), and one that reads two
overlapping ranges (each clears the rest of its own, then they are summed)."""
from __future__ import annotations

from ..base import Case

CASES = [
    Case("- slice: {start: 1, stop: 4}", (5, 3, 4)),
    Case("- dense: {out: 7}\n- slice: {start: 2, stop: 6}", (5,), head=False),
    Case("- slice: {start: -2}", (5, 2, 3), batch=1),
    Case("- slice: {start: -4, stop: -1}", (6,)),
    Case("- slice: {start: 3}", (4, 1, 5)),
    Case("- conv: {out: 4, kernel: 1}\n- parallel:\n    - [slice: {stop: 2}]\n"
         "    - [slice: {start: 2}, conv: {out: 2, kernel: 1}]\n  merge: concat\n"
         "- channel_shuffle: {groups: 2}", (3, 3, 5)),
    Case("- parallel:\n    - [slice: {start: 1, stop: 3}]\n    - []\n  merge: concat",
         (4, 3, 3), batch=1),
    Case("- parallel:\n    - [slice: {stop: 1}]\n"
         "    - [slice: {start: 1, stop: 3}, conv: {out: 2, kernel: 1}]\n"
         "    - [slice: {start: 3}, tanh]\n  merge: concat", (5, 3, 3)),
    Case("- parallel:\n    - [slice: {stop: 2}, tanh]\n    - [slice: {start: 3}]\n  merge: concat",
         (5, 3, 3)),
    Case("- parallel:\n    - [slice: {start: 2}]\n    - [slice: {stop: 2}]\n  merge: concat",
         (5, 3, 3)),
    Case("- parallel:\n    - [slice: {stop: 3}]\n    - [slice: {start: 1}]\n  merge: concat",
         (5, 3, 3), batch=2),
]
