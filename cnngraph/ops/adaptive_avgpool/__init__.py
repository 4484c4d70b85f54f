"""adaptive_avgpool: average a (C, H, W) map down (or up) to a fixed (C, out_h, out_w), as
PyTorch's `nn.AdaptiveAvgPool2d` / `F.adaptive_avg_pool2d`, whatever the input size.

    - adaptive_avgpool: {out: [7, 7]}     # torchvision's VGG and AlexNet before the classifier
    - adaptive_avgpool: {out: 1}          # the same as global_avgpool

Output index i along an axis of input size n averages the window [floor(i*n/out),
ceil((i+1)*n/out)): the windows tile the input when out divides n, differ in size by one
otherwise, and overlap when out > n (each output then repeats or blends its neighbours).
Cost (full policy): as avgpool, the window's size per output (its adds and one divide), in all
C * sum_i len_h(i) * sum_j len_w(j): C * H * W when the windows tile the input, as
global_avgpool at out 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from ..base import GLOBAL, Cost, OpDef, Window, object_schema, require_rank
from ..window import INT_OR_PAIR, pair
from .lower import lower


@dataclass(frozen=True)
class AdaptiveAvgPoolAttrs:
    out: tuple[int, int]


def bounds(i: int, size: int, out: int) -> tuple[int, int]:
    """The window [start, end) of output index i along an axis of `size` inputs."""
    return i * size // out, -(-(i + 1) * size // out)


def _lengths(size: int, out: int) -> list[int]:
    return [end - start for start, end in (bounds(i, size, out) for i in range(out))]


def shape(a: AdaptiveAvgPoolAttrs, ins):
    require_rank("adaptive_avgpool", ins[0], 3)
    return (ins[0][0], *a.out)


def window(a: AdaptiveAvgPoolAttrs, ins) -> Window | str:
    """Even windows are a pool of kernel = stride = n / out. Uneven ones have no single
    kernel and stride: the largest window (so the field is never understated) and the mean
    stride n / out (exact over the whole axis: out steps cover n inputs; a fraction when
    out > n, as after an upsample). out 1 on both axes sees the whole map: GLOBAL."""
    if a.out == (1, 1):
        return GLOBAL
    (_, h, w), (oh, ow) = ins[0], a.out
    return Window((max(_lengths(h, oh)), max(_lengths(w, ow))), (Fraction(h, oh), Fraction(w, ow)))


def cost(a: AdaptiveAvgPoolAttrs, ins, out) -> Cost:
    (c, h, w), (oh, ow) = ins[0], a.out
    return Cost(ops=c * sum(_lengths(h, oh)) * sum(_lengths(w, ow)))


OP = OpDef(
    package=__name__, lower=lower,
    name="adaptive_avgpool", doc=__doc__,
    schema=object_schema({"out": INT_OR_PAIR}, required=("out",)),
    attrs=lambda args: AdaptiveAvgPoolAttrs(pair(args["out"])),
    shape=shape, window=window, cost=cost,
)
