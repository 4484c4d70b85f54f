"""upsample: enlarge a (C, H, W) map by an integer factor to (C, H * scale, W * scale), as
PyTorch's `F.interpolate(scale_factor=scale)`.

    - upsample                                   # scale 2, nearest
    - upsample: {scale: 3, mode: bilinear}

`nearest` repeats each pixel in a scale x scale block. `bilinear` is `align_corners=False`:
output index d reads the source position src = (d + 0.5) / scale - 0.5, clamped at 0, and
blends its two neighbours floor(src) and floor(src) + 1 (clamped at the edge) along each axis.
Cost (full policy), per output element: nearest 0 (a copy); bilinear 7 (the four neighbours
times their weights, and three adds).
Receptive field: nearest leaves it as it is; bilinear adds one input step (two neighbours).
The jump (cumulative stride) divides by the scale: its window's stride is 1 / scale.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from ..base import Cost, OpDef, Window, numel, object_schema, require_rank
from ..window import POSITIVE
from .lower import lower

MODES = ("nearest", "bilinear")


@dataclass(frozen=True)
class UpsampleAttrs:
    scale: int = 2
    mode: str = "nearest"


def shape(a: UpsampleAttrs, ins):
    require_rank("upsample", ins[0], 3)
    channels, h, w = ins[0]
    return (channels, h * a.scale, w * a.scale)


def window(a: UpsampleAttrs, ins) -> Window:
    taps = 2 if a.mode == "bilinear" and a.scale > 1 else 1
    return Window((taps, taps), (Fraction(1, a.scale), Fraction(1, a.scale)))


OP = OpDef(
    package=__name__,
    name="upsample", doc=__doc__,
    schema=object_schema({"scale": {**POSITIVE, "description": "an integer factor >= 1 "
                                                              "(the output is whole pixels)"},
                          "mode": {"enum": list(MODES)}}),
    attrs=lambda args: UpsampleAttrs(args.get("scale", 2), args.get("mode", "nearest")),
    shape=shape, window=window,
    cost=lambda a, ins, out: Cost(ops=7 * numel(out) if a.mode == "bilinear" else 0),
    lower=lower,
)
