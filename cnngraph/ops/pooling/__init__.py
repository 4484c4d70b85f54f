"""maxpool, avgpool, global_maxpool, global_avgpool: spatial pooling, one row per op.

    - maxpool: {kernel: 3, stride: 2, padding: 1}
    - maxpool: {kernel: 3, stride: 2, ceil_mode: true}
    - avgpool: {kernel: 2}                       # stride defaults to the kernel
    - global_avgpool                             # (C, H, W) -> (C, 1, 1)

Padding follows PyTorch: at most half the kernel; max pooling pads with -inf, average pooling
counts padded zeros unless `count_include_pad: false`.
Cost (full policy): max pooling kh*kw - 1 comparisons per output, average pooling kh*kw
(adds and one scale); global pooling the same with the whole H x W as the window.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..base import GLOBAL, Cost, OpDef, ShapeError, Window, numel, object_schema, require_rank
from ..window import INT_OR_PAIR, PADDING, out_hw, padding4, pair, resolve_padding


@dataclass(frozen=True)
class PoolAttrs:
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int] | str = (0, 0, 0, 0)
    ceil_mode: bool = False
    count_include_pad: bool = True


def pool_attrs(args: dict) -> PoolAttrs:
    kernel = pair(args["kernel"])
    return PoolAttrs(kernel=kernel, stride=pair(args.get("stride", kernel)),
                     padding=padding4(args.get("padding", 0)),
                     ceil_mode=args.get("ceil_mode", False),
                     count_include_pad=args.get("count_include_pad", True))


def pool_resolve(a: PoolAttrs, ins) -> PoolAttrs:
    if len(ins[0]) != 3:
        return a
    return replace(a, padding=resolve_padding(a.padding, ins[0][1:], a.kernel, a.stride))


def pool_shape(name: str):
    def shape(a: PoolAttrs, ins):
        require_rank(name, ins[0], 3)
        top, bottom, left, right = a.padding
        if max(top, bottom) > a.kernel[0] // 2 or max(left, right) > a.kernel[1] // 2:
            raise ShapeError(f"`{name}` padding {list(a.padding)} is more than half the kernel "
                             f"{list(a.kernel)}",
                             "a window made mostly of padding has no meaning; pad less")
        return (ins[0][0], *out_hw(name, ins[0][1:], a.kernel, a.stride, (1, 1), a.padding,
                                   a.ceil_mode))
    return shape


def global_shape(name: str):
    def shape(a, ins):
        require_rank(name, ins[0], 3)
        return (ins[0][0], 1, 1)
    return shape


def _pool_schema(extra: dict) -> dict:
    return object_schema({"kernel": INT_OR_PAIR, "stride": INT_OR_PAIR, "padding": PADDING,
                          "ceil_mode": {"type": "boolean"}, **extra}, required=("kernel",))


def _window(a: PoolAttrs, ins):
    return Window(a.kernel, a.stride)


MAXPOOL = OpDef(
    package=__name__,
    name="maxpool", doc=__doc__, schema=_pool_schema({}), attrs=pool_attrs,
    resolve=pool_resolve, shape=pool_shape("maxpool"), window=_window,
    cost=lambda a, ins, out: Cost(ops=numel(out) * (a.kernel[0] * a.kernel[1] - 1)))

AVGPOOL = OpDef(
    package=__name__,
    name="avgpool", doc=__doc__,
    schema=_pool_schema({"count_include_pad": {"type": "boolean"}}), attrs=pool_attrs,
    resolve=pool_resolve, shape=pool_shape("avgpool"), window=_window,
    cost=lambda a, ins, out: Cost(ops=numel(out) * a.kernel[0] * a.kernel[1]))

GLOBAL_MAXPOOL = OpDef(
    package=__name__,
    name="global_maxpool", doc=__doc__, schema=object_schema({}), attrs=lambda args: None,
    shape=global_shape("global_maxpool"), window=lambda a, ins: GLOBAL,
    cost=lambda a, ins, out: Cost(ops=ins[0][0] * (ins[0][1] * ins[0][2] - 1)))

GLOBAL_AVGPOOL = OpDef(
    package=__name__,
    name="global_avgpool", doc=__doc__, schema=object_schema({}), attrs=lambda args: None,
    shape=global_shape("global_avgpool"), window=lambda a, ins: GLOBAL,
    cost=lambda a, ins, out: Cost(ops=numel(ins[0])))

OPS = (MAXPOOL, AVGPOOL, GLOBAL_MAXPOOL, GLOBAL_AVGPOOL)
