"""mul's lowering, one for every target: the kernels see (N, C, H, W) tensors, vectors as
(N, F, 1, 1); `mul_fwd_<target>(a, b, y)`, and `mul_bwd_<target>(other, dy, dx)` for the
gradient of each factor wanted."""
from __future__ import annotations

from ..lowering import BATCH, DX, DY, Call, Context, Kernel, Lowering, Ref, X, Y

FORWARD = Kernel("cnngraph.ops.mul.{target}", "mul_fwd_{target}")
BACKWARD = Kernel("cnngraph.ops.mul.{target}", "mul_bwd_{target}")


def _four_d(tensor: Ref, shape) -> Ref:
    return tensor if len(shape) == 3 else tensor.view(BATCH, -1, 1, 1)


def lower(node, ctx: Context) -> Lowering:
    shapes = node.in_shapes
    y, dy = _four_d(Y, node.shape), _four_d(DY, node.shape)
    return Lowering(
        forward=(Call(FORWARD, {"a": _four_d(X(0), shapes[0]), "b": _four_d(X(1), shapes[1]),
                                "y": y}),),
        backward=tuple(Call(BACKWARD, {"other": _four_d(X(1 - k), shapes[1 - k]), "dy": dy,
                                       "dx": _four_d(DX(k), shapes[k])}, only_if_wanted=k)
                       for k in range(2)),
        reads=("input",))
