"""upsample in PyTorch: `F.interpolate` by the scale factor (bilinear with
align_corners=False)."""
from __future__ import annotations

import torch.nn.functional as F


def forward(node, inputs, params, buffers, training, dropout):
    a = node.attrs
    corners = {"align_corners": False} if a.mode == "bilinear" else {}
    return F.interpolate(inputs[0], scale_factor=a.scale, mode=a.mode, **corners)
