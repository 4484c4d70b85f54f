"""prelu's test cases: a slope per channel and one shared, on maps and on vectors (features as
channels), its own `init` (negative too, as PyTorch allows), batch 1, and after a conv, whose
gradients flow back through it."""
from __future__ import annotations

from ..base import Case

CASES = [
    Case("- prelu", (3, 5, 7)),
    Case("- prelu: {init: 0.1}", (2, 3, 5), batch=1),
    Case("- prelu: {shared: true}", (3, 5, 3)),
    Case("- conv: {out: 4, kernel: 3}\n- prelu: {init: -0.5}", (3, 7, 5)),
    Case("- dense: {out: 5}\n- prelu\n- dense: {out: 3}", (7,), head=False),
    Case("- dense: {out: 5}\n- prelu: {shared: true, init: 0.5}\n- dense: {out: 3}", (7,),
         head=False, batch=1),
]
