"""upsample's test cases: both modes at scales 1, 2 (the default) and 3, odd and one-pixel
sizes (bilinear's edge clamps), batch 1, and an upsampled convolution (its weight gradient goes
through the op)."""
from __future__ import annotations

from ..base import Case

CASES = [
    Case("- upsample", (2, 3, 5)),
    Case("- upsample: {scale: 1}", (2, 3, 5)),
    Case("- upsample: {scale: 3, mode: nearest}", (2, 3, 1), batch=1),
    Case("- upsample: {mode: bilinear}", (2, 3, 5)),
    Case("- upsample: {scale: 1, mode: bilinear}", (2, 3, 5)),
    Case("- upsample: {scale: 3, mode: bilinear}", (2, 1, 3), batch=1),
    Case("- upsample: {scale: 3, mode: bilinear}", (1, 4, 2)),
    Case("- conv: {out: 2, kernel: 3, stride: 2}\n- upsample: {mode: bilinear}", (2, 7, 7)),
]
