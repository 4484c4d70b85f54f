"""zero_pad: surround a (C, H, W) map with zeros, as PyTorch's `nn.ZeroPad2d` and Keras's
`ZeroPadding2D` (asymmetric padding ahead of a valid conv, as in ShuffleNet and some Inception
ports).

    - zero_pad: {padding: 1}                 # one pixel on every side
    - zero_pad: {padding: [1, 2]}            # [h, w]: 1 above and below, 2 left and right
    - zero_pad: {padding: [0, 1, 0, 1]}      # [top, bottom, left, right]

Output (C, H + top + bottom, W + left + right). No parameters; costs nothing under either
policy (a copy). The receptive field and jump stay as they are.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..base import Cost, OpDef, object_schema, require_rank
from ..window import PADDING_SIZES, padding4
from .lower import lower

PADDING = {"description": "an integer >= 0, [h, w] or [top, bottom, left, right]",
           "anyOf": PADDING_SIZES}


@dataclass(frozen=True)
class ZeroPadAttrs:
    padding: tuple[int, int, int, int]     # top, bottom, left, right


def attrs(args: dict) -> ZeroPadAttrs:
    padding = padding4(args["padding"])
    assert not isinstance(padding, str), "the schema admits numbers only"
    return ZeroPadAttrs(padding)


def shape(a: ZeroPadAttrs, ins):
    require_rank("zero_pad", ins[0], 3)
    channels, h, w = ins[0]
    top, bottom, left, right = a.padding
    return (channels, h + top + bottom, w + left + right)


OP = OpDef(
    package=__name__,
    name="zero_pad", doc=__doc__,
    schema=object_schema({"padding": PADDING}, required=("padding",)),
    attrs=attrs, shape=shape, cost=lambda a, ins, out: Cost(), lower=lower,
)
