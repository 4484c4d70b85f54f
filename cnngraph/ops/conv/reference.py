"""PyTorch reference of `conv`, for tests and benchmarks only (tools/torch_reference)."""
from __future__ import annotations

import torch.nn.functional as F


def forward(node, inputs, params, buffers, training, dropout):
    a = node.attrs
    top, bottom, left, right = a.padding
    if top == bottom and left == right:    # PyTorch's own padding: no padded copy
        x, pad = inputs[0], (top, left)
    else:
        x, pad = F.pad(inputs[0], (left, right, top, bottom)), 0
    return F.conv2d(x, params["weight"], params.get("bias"), a.stride, pad, a.dilation, a.groups)
