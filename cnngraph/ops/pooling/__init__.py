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

import numpy as np

from ..base import GLOBAL, Cost, OpDef, ShapeError, Window, numel, object_schema, require_rank
from ..window import INT_OR_PAIR, PADDING, out_hw, padding4, pair, resolve_padding
from .lower import lower_avgpool, lower_global_avgpool, lower_global_maxpool, lower_maxpool


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
        assert not isinstance(a.padding, str), "`resolve` turned `same`/`valid` into numbers"
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


def _winner_margin(windows: np.ndarray, winners: np.ndarray | None):
    """A max window's kink is a tie for its largest value: the distance from it is the value of
    the winner (the windows' argmax, found here when None) less the largest of the rest."""
    if winners is None:
        winners = np.argmax(windows, axis=-1)[..., None]
    best = np.take_along_axis(windows, winners, axis=-1)
    rest = windows.copy()
    np.put_along_axis(rest, winners, -np.inf, axis=-1)
    with np.errstate(invalid="ignore"):
        distance = (best - rest.max(axis=-1, keepdims=True))[..., 0]
    return np.where(np.isfinite(distance), distance, np.inf), winners


def _maxpool_kink(node, x: np.ndarray, winners: np.ndarray | None):
    a = node.attrs
    top, bottom, left, right = a.padding
    padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=-np.inf)
    view = np.lib.stride_tricks.sliding_window_view(padded, a.kernel, axis=(2, 3))
    view = view[:, :, ::a.stride[0], ::a.stride[1]][:, :, :node.shape[1], :node.shape[2]]
    return _winner_margin(view.reshape(*view.shape[:4], -1), winners)


def _global_maxpool_kink(node, x: np.ndarray, winners: np.ndarray | None):
    return _winner_margin(x.reshape(*x.shape[:2], 1, 1, -1), winners)


MAXPOOL = OpDef(
    package=__name__, lower=lower_maxpool,
    name="maxpool", doc=__doc__, schema=_pool_schema({}), attrs=pool_attrs,
    resolve=pool_resolve, shape=pool_shape("maxpool"), window=_window, kink=_maxpool_kink,
    cost=lambda a, ins, out: Cost(ops=numel(out) * (a.kernel[0] * a.kernel[1] - 1)))

AVGPOOL = OpDef(
    package=__name__, lower=lower_avgpool,
    name="avgpool", doc=__doc__,
    schema=_pool_schema({"count_include_pad": {"type": "boolean"}}), attrs=pool_attrs,
    resolve=pool_resolve, shape=pool_shape("avgpool"), window=_window,
    cost=lambda a, ins, out: Cost(ops=numel(out) * a.kernel[0] * a.kernel[1]))

GLOBAL_MAXPOOL = OpDef(
    package=__name__, lower=lower_global_maxpool,
    name="global_maxpool", doc=__doc__, schema=object_schema({}), attrs=lambda args: None,
    shape=global_shape("global_maxpool"), window=lambda a, ins: GLOBAL,
    kink=_global_maxpool_kink,
    cost=lambda a, ins, out: Cost(ops=ins[0][0] * (ins[0][1] * ins[0][2] - 1)))

GLOBAL_AVGPOOL = OpDef(
    package=__name__, lower=lower_global_avgpool,
    name="global_avgpool", doc=__doc__, schema=object_schema({}), attrs=lambda args: None,
    shape=global_shape("global_avgpool"), window=lambda a, ins: GLOBAL,
    cost=lambda a, ins, out: Cost(ops=numel(ins[0])))

OPS = (MAXPOOL, AVGPOOL, GLOBAL_MAXPOOL, GLOBAL_AVGPOOL)
