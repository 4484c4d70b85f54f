"""PyTorch reference of `dense`, for tests and benchmarks only (tools/torch_reference)."""
from __future__ import annotations

import torch.nn.functional as F


def forward(node, inputs, params, buffers, training, dropout):
    return F.linear(inputs[0], params["weight"], params.get("bias"))
