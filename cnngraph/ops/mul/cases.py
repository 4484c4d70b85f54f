"""mul's test cases: a (C, 1, 1) gate broadcast over maps, two maps of one shape, and two
vectors."""
from ..base import Case

CASES = [
    Case("- parallel:\n    - []\n    - [global_avgpool, conv: {out: 3, kernel: 1}, sigmoid]\n"
         "  merge: mul", (3, 5, 6)),
    Case("- parallel:\n    - [conv: {out: 3, kernel: 1}]\n    - [tanh]\n  merge: mul",
         (3, 5, 6)),
    Case("- parallel:\n    - [dense: {out: 3}]\n    - [dense: {out: 3}, sigmoid]\n  merge: mul",
         (4,), head=False),
]
