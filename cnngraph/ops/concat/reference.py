"""PyTorch reference of `concat`, for tests and benchmarks only (tools/torch_reference)."""
from __future__ import annotations

import torch


def forward(node, inputs, params, buffers, training, dropout):
    return torch.cat(inputs, 1)
