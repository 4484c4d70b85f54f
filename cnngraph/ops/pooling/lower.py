"""The pooling ops' lowerings, one for every target. The window's geometry reaches the kernels
as its size, stride and padding (max pooling needs only the top and left padding); max pooling
keeps the flat index of each window's maximum in `argmax` for its backward pass.

The CPU's backward passes scatter along each window, the CUDA's gather (each input element's
thread visits the windows that contain it, so max pooling's needs the geometry too); on the
CPU, average pooling sums rows of its input in `rows`, a row per chunk."""
from __future__ import annotations

from ..lowering import DX, DY, Call, Context, Kernel, Lowering, Scratch, X, Y, chunk_rows, scratch


def _kernels(op: str) -> tuple[Kernel, Kernel]:
    """The op's forward and backward kernels."""
    module = "cnngraph.ops.pooling.{target}"
    return Kernel(module, op + "_fwd_{target}"), Kernel(module, op + "_bwd_{target}")


MAXPOOL, AVGPOOL = _kernels("maxpool"), _kernels("avgpool")
GLOBAL_MAXPOOL, GLOBAL_AVGPOOL = _kernels("global_maxpool"), _kernels("global_avgpool")


def _window(a) -> dict:
    return {"kernel_h": a.kernel[0], "kernel_w": a.kernel[1], "stride_h": a.stride[0],
            "stride_w": a.stride[1]}


def lower_maxpool(node, ctx: Context) -> Lowering:
    a = node.attrs
    window = {**_window(a), "pad_top": a.padding[0], "pad_left": a.padding[2]}
    backward = {"dy": DY, "argmax": scratch("argmax"), "dx": DX()}
    if ctx.target == "cuda":
        backward.update(window)
    return Lowering(
        forward=(Call(MAXPOOL[0], {"x": X(), "y": Y, "argmax": scratch("argmax"), **window}),),
        backward=(Call(MAXPOOL[1], backward),),
        scratch={"argmax": Scratch(node.shape, per_sample=True, dtype="int32", saved=True)})


def lower_avgpool(node, ctx: Context) -> Lowering:
    a = node.attrs
    top, bottom, left, right = a.padding
    window = {**_window(a), "pad_top": top, "pad_bottom": bottom, "pad_left": left,
              "pad_right": right, "include_pad": a.count_include_pad}
    forward = {"x": X(), "y": Y, **window}
    backward = {"dy": DY, "dx": DX(), **window}
    workspaces = {}
    if ctx.target == "cpu":
        forward["rows"] = scratch("rows")
        backward["rows"] = scratch("rows", backward=True)
        workspaces["rows"] = chunk_rows(ctx.chunks, node.in_shapes[0][2])
    return Lowering(forward=(Call(AVGPOOL[0], forward),), backward=(Call(AVGPOOL[1], backward),),
                    scratch=workspaces)


def lower_global_maxpool(node, ctx: Context) -> Lowering:
    return Lowering(
        forward=(Call(GLOBAL_MAXPOOL[0], {"x": X(), "y": Y, "argmax": scratch("argmax")}),),
        backward=(Call(GLOBAL_MAXPOOL[1], {"dy": DY, "argmax": scratch("argmax"), "dx": DX()}),),
        scratch={"argmax": Scratch((node.shape[0],), per_sample=True, dtype="int32",
                                   saved=True)})


def lower_global_avgpool(node, ctx: Context) -> Lowering:
    return Lowering(forward=(Call(GLOBAL_AVGPOOL[0], {"x": X(), "y": Y}),),
                    backward=(Call(GLOBAL_AVGPOOL[1], {"dy": DY, "dx": DX()}),))
