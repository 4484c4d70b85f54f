"""locally_connected: a convolution whose weights and biases are not shared, one set per output
position (DeepFace's layers L4-L6; Keras' `LocallyConnected2D`).

    - locally_connected: {out: 64, kernel: 3}
    - locally_connected: {out: 16, kernel: [3, 5], stride: 2, padding: same, bias: false}

kernel, stride and padding take conv's forms (no dilation, no groups). Weight layout
(H_out, W_out, out, in, kh, kw): at each output position a conv weight in PyTorch's layout;
bias (out, H_out, W_out), a bias per channel and position (Keras' layout). Initialised as a
conv is, each position's weight by the network's scheme with a conv's fans (fan_in =
in * kh * kw); the bias starts at 0.
Cost: MACs = H_out * W_out * out * in * kh * kw, as conv's (the paper policy counts them); the
full policy adds one op per output element for the bias. Receptive field: conv's.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..base import Cost, OpDef, Window, numel, object_schema, require_rank
from ..window import INT_OR_PAIR, PADDING, POSITIVE, out_hw, padding4, pair, resolve_padding
from .lower import lower

NO_DILATION = (1, 1)


@dataclass(frozen=True)
class LocallyConnectedAttrs:
    out: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] | str = (0, 0, 0, 0)
    bias: bool = True


def attrs(args: dict) -> LocallyConnectedAttrs:
    return LocallyConnectedAttrs(
        out=args["out"], kernel=pair(args["kernel"]), stride=pair(args.get("stride", 1)),
        padding=padding4(args.get("padding", 0)), bias=args.get("bias", True))


def resolve(a: LocallyConnectedAttrs, ins) -> LocallyConnectedAttrs:
    if len(ins[0]) != 3:
        return a
    return replace(a, padding=resolve_padding(a.padding, ins[0][1:], a.kernel, a.stride))


def shape(a: LocallyConnectedAttrs, ins):
    require_rank("locally_connected", ins[0], 3)
    return (a.out, *out_hw("locally_connected", ins[0][1:], a.kernel, a.stride, NO_DILATION,
                           a.padding))


def params(a: LocallyConnectedAttrs, ins):
    _, oh, ow = shape(a, ins)
    weight = (oh, ow, a.out, ins[0][0], *a.kernel)
    return {"weight": weight, "bias": (a.out, oh, ow)} if a.bias else {"weight": weight}


def cost(a: LocallyConnectedAttrs, ins, out):
    per_output = ins[0][0] * a.kernel[0] * a.kernel[1]
    return Cost(macs=numel(out) * per_output, ops=numel(out) if a.bias else 0)


OP = OpDef(
    package=__name__,
    name="locally_connected", doc=__doc__,
    schema=object_schema({
        "out": POSITIVE, "kernel": INT_OR_PAIR, "stride": INT_OR_PAIR, "padding": PADDING,
        "bias": {"type": "boolean"},
    }, required=("out", "kernel")),
    attrs=attrs, resolve=resolve, shape=shape, params=params, cost=cost,
    window=lambda a, ins: Window(a.kernel, a.stride, NO_DILATION),
    init=lambda a, default: {"weight": default}, lower=lower,
)
