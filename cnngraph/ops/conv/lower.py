"""conv's lowering, one for both targets. CUDA runs one set of kernels (cuda.py); the CPU runs
the algorithm `choose.py` picks, each in its module of cpu/. Every kernel is called

    conv<path>_fwd_<target>(x, weight, bias, y, *workspaces, *arguments, act, act_arg)
    conv<path>_bwd_<target>(x, weight, [y,] dy, dx, weight_grad, bias_grad, *workspaces,
                            need_dx, need_dw, *arguments, [act, act_arg])

with the geometry arguments named alike on both targets (stride_h, pad_top, dilation_w, ...).
Without a bias the kernels read none; a flat view of the weight (and of its gradient) stands
in for it, having the right type. The backward kernel computes (and writes) the weight gradient
only when `need_dw`, and the bias gradient only when its `has_bias`: false for a frozen
parameter (`Node.frozen`). A fused activation (`passes/fuse.py`) is applied by the forward
kernel; its derivative, by `pointwise_bwd_<target>` ahead of the backward kernel, or by flat
columns', Winograd's and the depthwise backward kernels themselves (given y and the
activation).

This module loads no kernel: `cnngraph summary` plans memory through it.
"""
from __future__ import annotations

from ..lowering import (
    DX,
    DY,
    Arg,
    Call,
    Context,
    Kernel,
    Lowering,
    Scratch,
    Wants,
    X,
    Y,
    chunk_rows,
    grad,
    param,
    scratch,
)
from ..pointwise.epilogue import Epilogue, epilogue
from .choose import Choice, choose
from .geometry import (
    XI,
    flat_size,
    row_group,
    rows_workspace,
    streams_workspace,
    winograd_tiles,
)

# The lanes of direct_sums' vectors in flat planes' workspace: float32's in AVX2, the most
# (kernels/cpu/direct.py; float64 uses half). A constant here: this module loads no kernel.
LANES = 8


def lower(node, ctx: Context) -> Lowering:
    fused = epilogue(node)
    if ctx.target == "cuda":
        return _lower_cuda(node, ctx.chunks, fused)
    choice = choose(node, ctx.training, ctx.small_batch)
    if choice.algorithm == "winograd":
        return _lower_winograd(node, ctx.chunks, choice.stack, fused)
    if choice.algorithm == "flat":
        return _lower_flat(node, ctx.chunks, fused)
    if choice.algorithm == "depthwise":
        return _lower_depthwise(node, ctx.chunks, fused)
    if choice.algorithm == "depthwise_rows":
        return _lower_depthwise_rows(node, ctx.chunks, fused)
    if choice.algorithm == "depthwise_3x3":
        return _lower_depthwise_3x3(node, ctx.chunks, fused)
    if choice.algorithm == "depthwise_3x3_s2":
        return _lower_depthwise_3x3_s2(node, ctx.chunks, fused)
    return _lower_im2col(node, ctx.chunks, choice, fused)


def _geometry(a, **more: int) -> dict[str, Arg]:
    """The geometry arguments the kernels of both targets share, with `more` of one algorithm's
    own (the CUDA kernels and flat planes need no bottom and right padding)."""
    return {"stride_h": a.stride[0], "stride_w": a.stride[1], "pad_top": a.padding[0],
            "pad_left": a.padding[2], "dilation_h": a.dilation[0], "dilation_w": a.dilation[1],
            **more, "groups": a.groups, "has_bias": a.bias}


def _lowering(node, module: str, path: str, target: str, workspaces: dict[str, Scratch],
              backward_scratch: dict[str, Scratch], arguments: dict[str, Arg], fused: Epilogue,
              derives: bool = False, saved: tuple[str, ...] = ()) -> Lowering:
    """The calls of one algorithm's kernels (see the module's doc). `workspaces` are the
    scratch of both passes (the backward pass's own copies, but for the `saved` ones);
    `backward_scratch` the backward kernel's alone. A kernel that `derives` the fused
    activation itself reads y (the output, or dy standing in without an activation) and the
    activation's arguments."""
    a = node.attrs
    forward = Call(Kernel(module, f"conv{path}_fwd_{target}"), {
        "x": X(), "weight": param("weight"),
        "bias": param("bias") if a.bias else param("weight").flat(), "y": Y,
        **{key: scratch(key) for key in workspaces}, **arguments, **fused.args})
    dy = {"y": Y if node.activation else DY, "dy": DY} if derives else {"dy": fused.dy}
    backward = Call(Kernel(module, f"conv{path}_bwd_{target}"), {
        "x": X(), "weight": param("weight"), **dy, "dx": DX(), "weight_grad": grad("weight"),
        "bias_grad": grad("bias") if a.bias else grad("weight").flat(),
        **{key: scratch(key, backward=key not in saved) for key in workspaces},
        **{key: scratch(key) for key in backward_scratch}, "need_dx": Wants(),
        "need_dw": "weight" not in node.frozen,
        # in the backward kernels `has_bias` gates the bias gradient alone
        **arguments, "has_bias": a.bias and "bias" not in node.frozen,
        **(fused.args if derives else {})})
    before = () if derives else fused.backward
    return Lowering(
        forward=(forward,), backward=(*before, backward),
        scratch={**workspaces, **backward_scratch, **({} if derives else fused.scratch)},
        reads=("input", *fused.reads))


def _lower_cuda(node, chunks: int, fused: Epilogue) -> Lowering:
    """Implicit GEMMs (cuda.py): no workspace but the weight gradient's split-K parts."""
    return _lowering(
        node, "cnngraph.ops.conv.cuda", "", "cuda", {},
        {"parts": Scratch((chunks, *node.params["weight"]), backward_only=True)},
        _geometry(node.attrs), fused)


def _lower_im2col(node, chunks: int, choice: Choice, fused: Epilogue) -> Lowering:
    a = node.attrs
    c, h, w = node.in_shapes[0]
    out_c, oh, ow = node.shape
    rows, hw, stack = c * a.kernel[0] * a.kernel[1], oh * ow, choice.stack
    cols = Scratch((rows, hw), per_sample=True, saved=True) if choice.saved \
        else Scratch((chunks, rows, stack * hw))
    padded = (h + a.padding[0] + a.padding[1]) * (w + a.padding[2] + a.padding[3])
    return _lowering(
        node, "cnngraph.ops.conv.cpu.im2col", "", "cpu",
        {"planes": Scratch((chunks, 2, 1, 1) if choice.direct else (chunks, 2, c, padded)),
         # where pixels' first taps start; for one sample, where its column rows start
         "offsets": Scratch((chunks, max(rows, 1 if choice.direct else hw)), dtype="int32"),
         "cols": cols,
         "stage": Scratch((chunks, out_c, stack * hw) if stack > 1 else (chunks, 1, 1))},
        _grad_parts(node, chunks),
        {"saved": choice.saved, "stack": stack,
         **_geometry(a, pad_bottom=a.padding[1], pad_right=a.padding[3])},
        fused, saved=("cols",) if choice.saved else ())


def _lower_flat(node, chunks: int, fused: Epilogue) -> Lowering:
    a = node.attrs
    c, h, w = node.in_shapes[0]
    out_c, oh, ow = node.shape
    rows, wp, length = flat_size((h, w), (oh, ow), a)
    phases = c * a.stride[0] * a.stride[1]
    taps = c * a.kernel[0] * a.kernel[1]
    return _lowering(
        node, "cnngraph.ops.conv.cpu.flat", "_flat", "cpu",
        {"planes": Scratch((chunks, 2, phases, rows * wp)),   # x, and its gradient
         "offsets": Scratch((chunks, taps), dtype="int32"),   # where each column row starts
         "flat_y": Scratch((chunks, out_c, length))},        # y, or dy
        {"sums": Scratch((chunks, a.groups, taps // a.groups, out_c // a.groups, LANES),
                         backward_only=True),   # the weight gradient's, in vectors
         **_flat_input_gradient(node, chunks, rows * wp, wp, length),
         "raw": Scratch((chunks, *(node.shape if node.activation else (1, 1, 1))),
                        backward_only=True),                    # dy before the activation
         **_grad_parts(node, chunks)},
        _geometry(a, plane_width=wp), fused, derives=True)


def _flat_input_gradient(node, chunks: int, plane: int, wp: int,
                         length: int) -> dict[str, Scratch]:
    """Flat planes' input gradient (cpu/flat.py). With stride 1 a direct convolution: the
    flat gradient between zero margins as wide as the taps reach, and the weights' taps
    transposed with where each reads. Strided, W^T dy's columns."""
    a = node.attrs
    out_c, per_group, kh, kw = node.params["weight"]
    if a.stride != (1, 1):
        return {"cols": Scratch((chunks, per_group * a.groups * kh * kw, length),
                                backward_only=True),
                "margins": Scratch((chunks, 1, 1), backward_only=True),
                "flipped": Scratch((chunks, 1, 1), backward_only=True),
                "flipped_offsets": Scratch((chunks, 1), dtype="int32", backward_only=True)}
    margin = (kh - 1) * a.dilation[0] * wp + (kw - 1) * a.dilation[1]
    taps = kh * kw
    return {"cols": Scratch((chunks, 1, 1), backward_only=True),
            "margins": Scratch((chunks, out_c, margin + plane), backward_only=True),
            "flipped": Scratch((chunks, per_group * a.groups, out_c // a.groups * taps),
                               backward_only=True),
            "flipped_offsets": Scratch((chunks, out_c * taps), dtype="int32",
                                       backward_only=True)}


def _lower_depthwise(node, chunks: int, fused: Epilogue) -> Lowering:
    """Direct loops over each plane's stride phases, flat as flat planes' (cpu/depthwise.py)."""
    a = node.attrs
    _, h, w = node.in_shapes[0]
    _, oh, ow = node.shape
    rows, wp, length = flat_size((h, w), (oh, ow), a)
    return _lowering(
        node, "cnngraph.ops.conv.cpu.depthwise", "_depthwise", "cpu",
        {"planes": Scratch((chunks, 2, a.stride[0] * a.stride[1], rows * wp)),  # x, its grad
         "flat_y": Scratch((chunks, length))},                                 # y, or dy
        {"raw": Scratch((chunks, oh, ow) if node.activation else (chunks, 1, 1),
                        backward_only=True)},                    # dy before the activation
        _geometry(a, plane_width=wp), fused, derives=True)


def _lower_depthwise_rows(node, chunks: int, fused: Epilogue) -> Lowering:
    """Whole samples as rows, a tap an offset along them (cpu/depthwise_rows.py)."""
    a = node.attrs
    c, h, w = node.in_shapes[0]
    _, oh, ow = node.shape
    group = row_group(c, h * w, chunks)
    taps = a.kernel[0] * a.kernel[1]
    return _lowering(
        node, "cnngraph.ops.conv.cpu.depthwise_rows", "_depthwise_rows", "cpu",
        {"expanded": Scratch((taps, c * h * w)),              # the weights along a row
         "grid": Scratch((chunks, group * h * w))},           # y, or dy, on the input's grid
        {"parts": Scratch((chunks, taps + 1, group * h * w), backward_only=True),
         "raw": Scratch((chunks, group * oh * ow) if node.activation else (chunks, 1),
                        backward_only=True)},                    # dy before the activation
        _geometry(a, per_group=group), fused, derives=True)


def _lower_depthwise_3x3(node, chunks: int, fused: Epilogue) -> Lowering:
    """All nine taps in one pass along each plane, scalar weights (cpu/depthwise_3x3.py)."""
    _, h, w = node.in_shapes[0]
    return _lowering(
        node, "cnngraph.ops.conv.cpu.depthwise_3x3", "_depthwise_3x3", "cpu",
        {"grid": Scratch((chunks, h * w)),               # y on the input's grid; dy before
         "padded": Scratch((chunks, (h + 2) * w + 2)),   # the activation; x, or dy, between
         "masks": Scratch((chunks, 2, h * w))},          # zero rows; the edge columns' masks
        {}, _geometry(node.attrs), fused, derives=True)


def _lower_depthwise_3x3_s2(node, chunks: int, fused: Epilogue) -> Lowering:
    """One pass along each plane split into its even and odd columns (cpu/depthwise_3x3_s2.py):
    its buffers hold a plane's values from behind a zero row and one zero to a zero row and one
    zero after."""
    _, h, w = node.in_shapes[0]
    size = (h + 2) * (w // 2) + 2
    return _lowering(
        node, "cnngraph.ops.conv.cpu.depthwise_3x3_s2", "_depthwise_3x3_s2", "cpu",
        {"columns": Scratch((chunks, 3, size)),   # x's even and odd columns and the left
         "flat": Scratch((chunks, size))},         # mask; dy, twice; y on input rows 2i
        {}, _geometry(node.attrs), fused, derives=True)


def _lower_winograd(node, chunks: int, stack: int, fused: Epilogue) -> Lowering:
    c, h, w = node.in_shapes[0]
    out_c = node.shape[0]
    th, tw = winograd_tiles(h, w)
    return _lowering(
        node, "cnngraph.ops.conv.cpu.winograd", "_winograd", "cpu",
        {"filters": Scratch((XI, out_c, c)),
         "rows": Scratch((chunks, rows_workspace(th, tw, stack))),
         "streams": Scratch((chunks, streams_workspace(th, tw, stack))),
         "inputs": Scratch((chunks, XI, c, stack * th * tw)),
         "outputs": Scratch((chunks, XI, out_c, stack * th * tw))},
        {"raw": Scratch((chunks, stack, *node.shape) if node.activation
                        else (chunks, 1, 1, 1, 1), backward_only=True),
         "parts": Scratch((chunks, XI, out_c, c), backward_only=True),
         "bias_parts": chunk_rows(chunks, out_c, backward_only=True)},
        {"stack": stack, "has_bias": node.attrs.bias}, fused, derives=True)


def _grad_parts(node, chunks: int) -> dict[str, Scratch]:
    """Each chunk's shares of the weight gradient, per group transposed (k x og: cols @ dy^T
    ran faster in OpenBLAS than dy @ cols^T at LeNet's and ResNet's shapes,
    bench/results/conv.md), and of the bias gradient (a row per thread, updated every sample)."""
    out_c, in_per_group, kh, kw = node.params["weight"]
    groups = node.attrs.groups
    return {"parts": Scratch((chunks, groups, in_per_group * kh * kw, out_c // groups),
                             backward_only=True),
            "bias_parts": chunk_rows(chunks, out_c, backward_only=True)}
