"""The sizes of the CPU conv algorithms' buffers: pure arithmetic on shapes, without Numba, so
that lowering a conv (and `cnngraph summary`'s memory plan) loads no kernel."""
from __future__ import annotations

XI = 36                                 # Winograd F(4x4, 3x3): transformed values per tile
ROW_VALUES = 2048                       # depthwise rows: values of a group of channels


def winograd_tiles(h: int, w: int) -> tuple[int, int]:
    """Winograd's 4x4 output tiles along the rows and columns of an h x w map (the last ones
    cut by the edge)."""
    return (h + 3) // 4, (w + 3) // 4


def rows_workspace(th: int, tw: int, stack: int) -> int:
    """Values of the Winograd transforms' first workspace for th x tw tiles of `stack` samples:
    6 streams of a slot per tile column of the padded rows 0 .. 4 th + 3
    (ops/conv/cpu/transforms.py)."""
    return 6 * 4 * (th + 1) * stack * tw


def streams_workspace(th: int, tw: int, stack: int) -> int:
    """Values of the Winograd transforms' second workspace: as many streams, and 4 to spare."""
    return rows_workspace(th, tw, stack) + 4


def flat_size(in_hw, out_hw, a) -> tuple[int, int, int]:
    """Flat planes' phases: height, width (row stride), and the columns' length. A
    phase holds the rows the taps read and every input pixel, so spread needs no bounds."""
    (h, w), (oh, ow) = in_hw, out_hw
    (kh, kw), (sh, sw), (dh, dw) = a.kernel, a.stride, a.dilation
    rows = max(oh + (kh - 1) * dh // sh, -(-(h + a.padding[0]) // sh))
    wp = max(ow + (kw - 1) * dw // sw, -(-(w + a.padding[2]) // sw))
    return rows, wp, (oh - 1) * wp + ow


def padded_size(out_hw, kernel, stride, dilation) -> tuple[int, int]:
    """The rows and columns of the padded input that a conv's taps read."""
    (oh, ow), (kh, kw), (sh, sw), (dh, dw) = out_hw, kernel, stride, dilation
    return (oh - 1) * sh + (kh - 1) * dh + 1, (ow - 1) * sw + (kw - 1) * dw + 1


def row_group(channels: int, hw: int, threads: int) -> int:
    """Depthwise rows: channels of hw values a group holds, at most ROW_VALUES values, and at
    least `threads` groups where there are enough channels (the backward chunks cut the
    groups)."""
    return max(1, min(ROW_VALUES // hw, -(-channels // threads)))


def on_input_grid(in_hw, out_hw, stride) -> bool:
    """Depthwise rows: whether every output position lies on the input's grid at stride steps
    (the taps run on that grid)."""
    return all((o - 1) * s < i for i, o, s in zip(in_hw, out_hw, stride, strict=True))
