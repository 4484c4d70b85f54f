"""conv: 2-D convolution, with stride, padding, dilation and groups (grouped and depthwise).

    - conv: {out: 64, kernel: 3, stride: 1, padding: 1, bias: false}
    - conv: {out: 32, kernel: 3, groups: 32}          # depthwise, on 32 input channels
    - conv: {out: 64, kernel: [1, 7], padding: same}

Weight layout (out, in/groups, kh, kw) and bias (out,), as PyTorch and ONNX.
Cost: MACs = H_out * W_out * out * (in/groups) * kh * kw; the full policy adds one op per
output element for the bias.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..base import Cost, OpDef, ShapeError, Window, numel, object_schema, require_rank
from ..inits import INITS, weight_init
from ..window import INT_OR_PAIR, PADDING, POSITIVE, out_hw, padding4, pair, resolve_padding
from .lower import lower


@dataclass(frozen=True)
class ConvAttrs:
    out: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] | str = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    bias: bool = True
    init: str | None = None


def attrs(args: dict) -> ConvAttrs:
    return ConvAttrs(
        out=args["out"], kernel=pair(args["kernel"]), stride=pair(args.get("stride", 1)),
        padding=padding4(args.get("padding", 0)), dilation=pair(args.get("dilation", 1)),
        groups=args.get("groups", 1), bias=args.get("bias", True), init=args.get("init"))


def resolve(a: ConvAttrs, ins) -> ConvAttrs:
    if len(ins[0]) != 3:
        return a
    return replace(a, padding=resolve_padding(a.padding, ins[0][1:], a.kernel, a.stride,
                                              a.dilation))


def shape(a: ConvAttrs, ins):
    require_rank("conv", ins[0], 3)
    c, h, w = ins[0]
    if c % a.groups:
        raise ShapeError(f"`conv` groups={a.groups} does not divide the {c} input channels",
                         "groups must divide both the input and the output channels")
    if a.out % a.groups:
        raise ShapeError(f"`conv` groups={a.groups} does not divide out={a.out}",
                         "groups must divide both the input and the output channels")
    return (a.out, *out_hw("conv", (h, w), a.kernel, a.stride, a.dilation, a.padding))


def params(a: ConvAttrs, ins):
    weight = (a.out, ins[0][0] // a.groups, *a.kernel)
    return {"weight": weight, "bias": (a.out,)} if a.bias else {"weight": weight}


def cost(a: ConvAttrs, ins, out):
    per_output = ins[0][0] // a.groups * a.kernel[0] * a.kernel[1]
    return Cost(macs=numel(out) * per_output, ops=numel(out) if a.bias else 0)


OP = OpDef(
    package=__name__,
    name="conv", doc=__doc__,
    schema=object_schema({
        "out": POSITIVE, "kernel": INT_OR_PAIR, "stride": INT_OR_PAIR, "padding": PADDING,
        "dilation": INT_OR_PAIR, "groups": POSITIVE, "bias": {"type": "boolean"},
        "init": {"enum": INITS},
    }, required=("out", "kernel")),
    attrs=attrs, resolve=resolve, shape=shape, params=params, cost=cost,
    window=lambda a, ins: Window(a.kernel, a.stride, a.dilation),
    init=weight_init, fuses_activation=True, backward_compiles_slowly=True, lower=lower,
)
