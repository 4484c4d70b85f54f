"""ONNX form of `upsample`: Resize by the scale, with the coordinate mapping of PyTorch's
`interpolate`: nearest takes floor(out / scale) ("asymmetric", "floor"), bilinear samples at
pixel centres without corner alignment ("half_pixel")."""
from __future__ import annotations

import numpy as np


def export(node, inputs, graph):
    a = node.attrs
    scales = graph.constant(f"{node.name}/scales", [1, 1, a.scale, a.scale], np.float32)
    if a.mode == "nearest":
        form = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                "nearest_mode": "floor"}
    else:
        form = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    return graph.add("Resize", inputs + ["", scales], node.name, **form)


def import_resize(g):
    """Resize (or the older Upsample) of H and W by one integer factor: nearest (floor of
    out / scale, which the half-pixel mapping with round_prefer_floor equals at integer scales)
    or bilinear at pixel centres."""
    before, after = g.shape(), g.out_shape()
    if len(before) != 4 or None in before[1:] or None in after[1:]:
        g.fail("cnngraph resizes (N, C, H, W) maps of known size")
    factors = {after[2] / before[2], after[3] / before[3]}
    scale = factors.pop()
    if factors or after[1] != before[1] or scale != int(scale) or scale < 1:
        g.fail(f"cnngraph upsamples H and W by one integer factor ({before} to {after})")
    mode = g.attr("mode", "nearest")
    transform = g.attr("coordinate_transformation_mode",
                       "half_pixel" if g.node.op_type == "Resize" else "asymmetric")
    if mode == "nearest" and (transform, g.attr("nearest_mode", "round_prefer_floor")) in (
            ("asymmetric", "floor"), ("half_pixel", "round_prefer_floor"),
            ("pytorch_half_pixel", "round_prefer_floor")) or \
            g.node.op_type == "Upsample" and mode == "nearest":
        return g.layer("upsample", {"scale": int(scale)} if scale != 2 else {}, [g.tensor(0)])
    if mode in ("linear", "bilinear") and transform in ("half_pixel", "pytorch_half_pixel"):
        args = {"scale": int(scale), "mode": "bilinear"}
        return g.layer("upsample", args, [g.tensor(0)])
    g.fail(f"cnngraph upsamples by nearest (floor) or bilinear (half-pixel), not {mode} "
           f"with {transform}")


IMPORTS = {"Resize": import_resize, "Upsample": import_resize}
