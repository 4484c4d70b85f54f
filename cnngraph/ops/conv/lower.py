"""What conv's lowerings share across backends: the geometry arguments of its kernels and the
bias expressions (without a bias, the kernels ignore that argument; it only needs the right
type, so a flat view of the weight stands in)."""
from __future__ import annotations

from ..lowering import IO


def geometry(a) -> str:
    """stride, padding (top, bottom, left, right), dilation, groups and whether there is a bias."""
    return (f"{a.stride[0]}, {a.stride[1]}, {a.padding[0]}, {a.padding[1]}, {a.padding[2]}, "
            f"{a.padding[3]}, {a.dilation[0]}, {a.dilation[1]}, {a.groups}, {a.bias}")


def bias(io: IO, a) -> str:
    return io.param("bias") if a.bias else f"{io.param('weight')}.reshape(-1)"


def bias_grad(io: IO, a) -> str:
    return io.grad("bias") if a.bias else f"{io.grad('weight')}.reshape(-1)"
