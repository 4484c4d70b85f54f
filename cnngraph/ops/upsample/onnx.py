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
