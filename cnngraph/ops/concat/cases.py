"""concat's test cases: three branches of maps (one the identity), and two of vectors; then
the folds of compiling (passes/fuse.py): a split map joined and shuffled in 3 groups, its
first part read in place and its second spanning two groups (two runs of channels), and a slice
that spans two groups, which stays a copy of its own."""
from ..base import Case

CASES = [
    Case("- parallel:\n    - [conv: {out: 2, kernel: 1}]\n    - []\n"
         "    - [maxpool: {kernel: 3, stride: 1, padding: 1}]\n  merge: concat", (3, 5, 6)),
    Case("- parallel:\n    - [dense: {out: 3}]\n    - [dense: {out: 2}]\n  merge: concat\n"
         "- dense: {out: 3}", (4,), head=False),
    Case("- conv: {out: 6, kernel: 1}\n- parallel:\n    - [slice: {stop: 2}]\n"
         "    - [slice: {start: 2}, conv: {out: 4, kernel: 1}]\n  merge: concat\n"
         "- channel_shuffle: {groups: 3}", (3, 3, 4)),
    Case("- parallel:\n    - [slice: {start: 1, stop: 4}]\n    - [conv: {out: 3, kernel: 1}]\n"
         "  merge: concat\n- channel_shuffle: {groups: 3}", (5, 3, 3), batch=2),
]
