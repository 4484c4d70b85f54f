"""add's test cases: a residual merge, and fan-out of one node into three consumers (two adds
of two and three inputs, one of them the network's input); with a fused activation
(passes/fuse.py), a residual merge -> relu and three inputs -> tanh."""
from ..base import Case

CASES = [
    Case("- parallel:\n    - [conv: {out: 3, kernel: 3, padding: 1}]\n    - []\n  merge: add",
         (3, 5, 6)),
    Case("- conv: {out: 3, kernel: 1}\n  id: a\n- relu:\n  id: b\n- add:\n  from: [a, b]\n"
         "  id: c\n- add:\n  from: [c, a, input]", (3, 5, 6)),
    Case("- parallel:\n    - [conv: {out: 3, kernel: 3, padding: 1}]\n    - []\n  merge: add\n"
         "- relu", (3, 5, 6)),
    Case("- conv: {out: 3, kernel: 1}\n  id: a\n- sigmoid:\n  id: b\n- add:\n"
         "  from: [a, input, b]\n- tanh", (3, 4, 5)),
]
