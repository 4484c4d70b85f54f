"""Which algorithm a conv takes on the CPU (cpu/__init__.py lists them), and how many samples
each GEMM stacks. The thresholds come from LeNet's and ResNet's layers, measured with
bench/conv_layers.py (the figures: bench/results/conv.md).

- Depthwise convs (groups == in == out channels) take direct loops: their GEMMs would have one
  row per group, and im2col's copies cost more than the multiply-adds. Along each plane
  (depthwise.py), or along whole samples as rows (depthwise_rows.py) for input maps of at most
  DEPTHWISE_ROWS_UP_TO pixels (where a plane is too short to vectorise) whose output positions
  lie on the input's grid. Rows were 1.5-3x faster than planes on 16x16 maps and smaller, level
  at 32x32. 3x3 convs padded by 1 take one pass of all nine taps along each plane
  (depthwise_3x3.py) on maps of DEPTHWISE_3X3_FROM pixels and more: 1.2-1.6x faster than rows
  at 16x16, 2x slower at 8x8 (bench/results/conv.md), but on any map for one sample's
  inference: rows rebuild their expanded weights (9x the weights' planes) on every call, which
  a batch shares and one sample does not (MobileNet v2's 960-channel 7x7 layers at batch 1,
  one thread: 0.37 ms by rows, 0.11 by planes). Of those, stride-2 convs on maps of even width
  take one pass along each plane split into its even and odd columns (depthwise_3x3_s2.py),
  which computes half of the grid's values where depthwise_3x3.py computes all: forward
  1.4-2.2x faster at 16x16 and larger at batch 64 (1.4-1.8x at batch 1 from 14x14), backward
  level or faster (bench/results/conv.md); level with rows at 8x8 (the same threshold).
  Grouped convs with several channels per group keep their GEMMs.

- Winograd F(4x4, 3x3) takes the 3x3, stride-1 convs padded by 1 with at least WINOGRAD_FROM
  input and output channels, on maps at least WINOGRAD_MAPS_FROM pixels a side: with fewer
  input channels (ResNet's first conv has 3) its tile transforms cost more than its GEMMs save.
  Inference of a batch smaller than the chunks (batch 1) takes Winograd only on maps of at
  least WINOGRAD_SMALL_BATCH tiles: its transformed filters are 4x the weights, computed and
  read for every call, and one sample's few tiles do too little work per weight read (on
  ResNet-18-CIFAR's 8x8 and 4x4 maps at batch 1 they cost more than im2col's whole GEMMs).
- Flat planes (direct, register-tiled products, cpu/flat.py) take the convs whose windows
  overlap while the dropped positions' extra work stays under FLAT_UP_TO multiply-adds per
  output pixel and column row: that work grows with the output channels. Windows that do not
  overlap (kernel <= stride) take im2col, which then copies each pixel at most once, where flat
  planes hold every stride phase; so do convs with more than FLAT_OUT_UP_TO output channels
  per group, where OpenBLAS's GEMMs on stacked samples catch up (and a code path fewer to
  compile is worth more: ResNet-18 needs no flat-plane kernels). The thresholds were set for
  GEMMs on flat columns; the direct kernels, 2-4x faster on LeNet's layers, have not moved
  them.
- im2col takes the rest. When training, convs with at most SAVE_COLUMNS_UP_TO output channels
  per group keep each sample's columns from the forward pass for the backward pass, which reads
  them and then overwrites them with the input gradient's columns; other convs, and inference,
  rebuild them in a workspace per chunk, which costs no memory per sample.

Small output maps make short GEMMs (ResNet's 4x4 stage: 16 columns), so samples' columns are
stacked side by side into GEMMs of at least STACK_COLUMNS columns (WINOGRAD_COLUMNS tiles:
since the tile transforms vectorise, 128 tiles' stacks, which stay in cache, train ResNet-18,
DenseNet-121 and ResNet-50 3-4 % faster than 256's: bench/results/conv.md).
"""
from __future__ import annotations

from dataclasses import dataclass

from .geometry import flat_size, on_input_grid, winograd_tiles

SAVE_COLUMNS_UP_TO = 32
STACK_COLUMNS, MAX_STACK = 128, 32
FLAT_UP_TO, FLAT_OUT_UP_TO = 6, 32
WINOGRAD_FROM, WINOGRAD_MAPS_FROM, WINOGRAD_COLUMNS = 16, 4, 128
WINOGRAD_SMALL_BATCH = 16
DEPTHWISE_ROWS_UP_TO, DEPTHWISE_3X3_FROM = 256, 144


@dataclass(frozen=True)
class Choice:
    algorithm: str          # "im2col", "flat", "winograd", "depthwise", "depthwise_rows" or
    #                         "depthwise_3x3":
    #                         the module in cpu/
    stack: int = 1          # samples per GEMM
    saved: bool = False     # im2col: the backward pass reads the forward pass's columns
    direct: bool = False    # im2col: no columns at all, the input sample is its own


def choose(node, training: bool, small_batch: bool = False) -> Choice:
    """How the CPU runs conv `node` (in a training step, or inference only; `small_batch`:
    inference of batches smaller than the chunks)."""
    a = node.attrs
    c, h, w = node.in_shapes[0]
    out_c, oh, ow = node.shape
    if a.groups == c == out_c:
        if not on_input_grid((h, w), (oh, ow), a.stride):
            return Choice("depthwise")
        three = a.kernel == (3, 3) and tuple(a.padding) == (1, 1, 1, 1) and a.dilation == (1, 1)
        if three and w >= 2 and (h * w >= DEPTHWISE_3X3_FROM or small_batch):
            return Choice("depthwise_3x3_s2" if a.stride == (2, 2) and w % 2 == 0
                          else "depthwise_3x3")
        return Choice("depthwise_rows" if h * w <= DEPTHWISE_ROWS_UP_TO else "depthwise")
    th, tw = winograd_tiles(h, w)
    if winograd(c, out_c, (h, w), a) and not (small_batch and th * tw < WINOGRAD_SMALL_BATCH):
        return Choice("winograd", stack_size(th * tw, WINOGRAD_COLUMNS))
    pointwise = a.kernel == (1, 1) and a.stride == (1, 1) and not any(a.padding)
    if not pointwise and flat_columns(out_c // a.groups, (h, w), (oh, ow), a):
        return Choice("flat")
    saved = training and out_c // a.groups <= SAVE_COLUMNS_UP_TO and not pointwise
    stack = 1 if saved else stack_size(oh * ow)
    return Choice("im2col", stack, saved, direct=pointwise and stack == 1)


def stack_size(hw: int, columns: int = STACK_COLUMNS) -> int:
    """Samples per GEMM for output maps of hw pixels (or tiles): enough for `columns` columns."""
    return max(1, min(MAX_STACK, -(-columns // hw)))


def flat_columns(out_per_group: int, in_hw, out_hw, a) -> bool:
    """Whether a conv (not 1x1, stride-1 and unpadded) runs on flat planes."""
    (kh, kw), (sh, sw) = a.kernel, a.stride
    if kh <= sh and kw <= sw or out_per_group > FLAT_OUT_UP_TO:
        return False
    _, _, length = flat_size(in_hw, out_hw, a)
    hw = out_hw[0] * out_hw[1]
    return (length - hw) * out_per_group <= FLAT_UP_TO * hw


def winograd(in_c: int, out_c: int, in_hw, a) -> bool:
    """Whether a conv runs by Winograd F(4x4, 3x3)."""
    return a.kernel == (3, 3) and a.stride == (1, 1) and a.dilation == (1, 1) \
        and a.groups == 1 and tuple(a.padding) == (1, 1, 1, 1) \
        and min(in_c, out_c) >= WINOGRAD_FROM and min(in_hw) >= WINOGRAD_MAPS_FROM
