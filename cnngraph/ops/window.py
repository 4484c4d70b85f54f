"""Window arithmetic for convolution and pooling, written once.

Output size along one axis, as in PyTorch and Caffe:
    out = floor((n + pad_lo + pad_hi - dilation*(kernel-1) - 1) / stride) + 1
With `ceil_mode` the division rounds up, but a last window that would start inside the trailing
padding is dropped (PyTorch's rule). `padding: same` follows TensorFlow: out = ceil(n / stride),
the total padding split with the extra pixel at the bottom/right.
"""
from __future__ import annotations

from .base import ShapeError

POSITIVE = {"type": "integer", "minimum": 1}
NON_NEGATIVE = {"type": "integer", "minimum": 0}

INT_OR_PAIR = {
    "description": "a positive integer or a list [h, w] of positive integers",
    "anyOf": [POSITIVE, {"type": "array", "items": POSITIVE, "minItems": 2, "maxItems": 2}],
}
# padding in numbers: all sides, [h, w], or [top, bottom, left, right]
PADDING_SIZES = [
    NON_NEGATIVE,
    {"type": "array", "items": NON_NEGATIVE, "minItems": 2, "maxItems": 2},
    {"type": "array", "items": NON_NEGATIVE, "minItems": 4, "maxItems": 4},
]
PADDING = {
    "description": "an integer >= 0, [h, w], [top, bottom, left, right], `same` or `valid`",
    "anyOf": [*PADDING_SIZES, {"enum": ["same", "valid"]}],
}


def pair(value) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))


def padding4(value) -> tuple[int, int, int, int] | str:
    """Normalise a padding argument to (top, bottom, left, right), keeping `same` symbolic."""
    if value == "same":
        return "same"
    if value == "valid":
        return (0, 0, 0, 0)
    if isinstance(value, int):
        return (value,) * 4
    if len(value) == 2:
        return (value[0], value[0], value[1], value[1])
    return tuple(value)


def same_padding(n: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    out = -(-n // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - n, 0)
    return total // 2, total - total // 2


def resolve_padding(padding, hw: tuple[int, int], kernel, stride, dilation=(1, 1)):
    if padding != "same":
        return padding
    top, bottom = same_padding(hw[0], kernel[0], stride[0], dilation[0])
    left, right = same_padding(hw[1], kernel[1], stride[1], dilation[1])
    return (top, bottom, left, right)


def out_size(n: int, kernel: int, stride: int, dilation: int, pad_lo: int, pad_hi: int,
             ceil_mode: bool = False) -> int:
    span = n + pad_lo + pad_hi - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= n + pad_lo:
        out -= 1
    return out


def out_hw(op: str, hw: tuple[int, int], kernel, stride, dilation, padding,
           ceil_mode: bool = False) -> tuple[int, int]:
    """Output (H, W); raises ShapeError when the window does not fit the padded input."""
    top, bottom, left, right = padding
    h = out_size(hw[0], kernel[0], stride[0], dilation[0], top, bottom, ceil_mode)
    w = out_size(hw[1], kernel[1], stride[1], dilation[1], left, right, ceil_mode)
    if h <= 0 or w <= 0:
        eff = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
        raise ShapeError(
            f"`{op}` output size would be {h}x{w}: the {eff[0]}x{eff[1]} window does not fit "
            f"the {hw[0]}x{hw[1]} input with padding {list(padding)}",
            "use a smaller kernel or stride, add padding, or remove a downsampling layer earlier")
    return h, w
