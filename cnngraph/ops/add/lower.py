"""add's lowering, one for every target: the support kernels `sum_<target>(out, parts)` forward
and, for each input's gradient, `copy_<target>(src, dst)` of dy."""
from __future__ import annotations

from ..lowering import DX, DY, Call, Context, Kernel, Lowering, X, Y

SUM = Kernel("cnngraph.kernels.{target}.support", "sum_{target}")
COPY = Kernel("cnngraph.kernels.{target}.support", "copy_{target}")


def lower(node, ctx: Context) -> Lowering:
    inputs = range(len(node.inputs))
    return Lowering(
        forward=(Call(SUM, {"out": Y, "parts": tuple(X(i) for i in inputs)}),),
        backward=tuple(Call(COPY, {"src": DY, "dst": DX(i)}, only_if_wanted=i) for i in inputs))
