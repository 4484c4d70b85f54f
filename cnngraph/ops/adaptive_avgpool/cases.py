"""adaptive_avgpool's test cases: windows that tile the input, uneven ones (7 -> 3, and
5 -> 2 and 5 -> 3 on the two axes), an output larger than the input (overlapping windows,
3 -> 5), the int form, out equal to the input, out 1 (global), batch 1, and after a conv, whose
weight gradient reads the spread gradients."""
from __future__ import annotations

from ..base import Case

CASES = [
    Case("- adaptive_avgpool: {out: [3, 2]}", (2, 9, 6)),
    Case("- adaptive_avgpool: {out: 3}", (3, 7, 7)),
    Case("- adaptive_avgpool: {out: [2, 3]}", (2, 5, 5), batch=1),
    Case("- adaptive_avgpool: {out: [5, 4]}", (2, 3, 3)),
    Case("- adaptive_avgpool: {out: [5, 3]}", (2, 5, 3)),
    Case("- adaptive_avgpool: {out: 1}", (3, 5, 4)),
    Case("- conv: {out: 3, kernel: 3}\n- adaptive_avgpool: {out: [2, 3]}", (2, 7, 9)),
]
