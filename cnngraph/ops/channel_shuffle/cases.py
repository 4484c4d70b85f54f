"""channel_shuffle's test cases: groups 1, 2, 3 and C, odd plane sizes, batch 1, and a shuffle
of a grouped convolution's output (ShuffleNet's unit), whose weight gradient goes through it."""
from __future__ import annotations

from ..base import Case

CASES = [
    Case("- channel_shuffle: {groups: 1}", (3, 5, 7)),
    Case("- channel_shuffle: {groups: 2}", (6, 5, 7)),
    Case("- channel_shuffle: {groups: 3}", (6, 3, 1), batch=1),
    Case("- channel_shuffle: {groups: 6}", (6, 1, 3)),
    Case("- conv: {out: 6, kernel: 1, groups: 2}\n- channel_shuffle: {groups: 2}", (4, 3, 5)),
]
