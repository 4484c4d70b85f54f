"""zero_pad's test cases: every padding form, asymmetric and zero sides, batch 1, and padding
ahead of a valid conv, whose weight gradient reads the zeros."""
from __future__ import annotations

from ..base import Case

CASES = [
    Case("- zero_pad: {padding: 1}", (3, 5, 7)),
    Case("- zero_pad: {padding: [2, 1]}", (2, 4, 3)),
    Case("- zero_pad: {padding: [0, 2, 3, 1]}", (2, 3, 5), batch=1),
    Case("- zero_pad: {padding: 0}", (2, 3, 3)),
    Case("- zero_pad: {padding: [0, 1, 0, 1]}\n- conv: {out: 4, kernel: 3, stride: 2}",
         (3, 6, 6)),
]
