"""PyTorch reference of `dropout`, for tests and benchmarks only (tools/torch_reference)."""
from __future__ import annotations

import torch.nn.functional as F


def forward(node, inputs, params, buffers, training, dropout):
    # the identity unless asked: PyTorch's masks cannot match cnngraph's
    return F.dropout(inputs[0], node.attrs.rate, training) if dropout else inputs[0]
