"""locally_connected's test cases: odd sizes, stride 2, every padding form (asymmetric and
`same`), no bias, batch 1, and a window covering the whole map (a (out, 1, 1) output the
head's dense layer reads as a vector)."""
from __future__ import annotations

from ..base import Case

CASES = [
    Case("- locally_connected: {out: 4, kernel: 3}", (3, 7, 5)),
    Case("- locally_connected: {out: 3, kernel: [3, 2], stride: 2, padding: 1}", (2, 7, 6)),
    Case("- locally_connected: {out: 2, kernel: 3, padding: [2, 0, 1, 3], bias: false}",
         (2, 5, 4)),
    Case("- locally_connected: {out: 3, kernel: 2, stride: [2, 1], padding: same}", (2, 5, 5),
         batch=1),
    Case("- locally_connected: {out: 5, kernel: [4, 3], padding: valid}", (2, 4, 3)),
    Case("- conv: {out: 3, kernel: 1}\n- locally_connected: {out: 2, kernel: [1, 3], "
         "stride: [1, 2], padding: [0, 1]}", (2, 3, 6)),
]
