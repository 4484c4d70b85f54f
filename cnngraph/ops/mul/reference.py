"""PyTorch reference of `mul`, for tests and benchmarks only (tools/torch_reference)."""
from __future__ import annotations

import torch


def forward(node, inputs, params, buffers, training, dropout):
    return torch.mul(inputs[0], inputs[1])
