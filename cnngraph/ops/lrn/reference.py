"""PyTorch reference of `lrn`, for tests and benchmarks only (tools/torch_reference)."""
from __future__ import annotations

import torch.nn.functional as F


def forward(node, inputs, params, buffers, training, dropout):
    a = node.attrs
    return F.local_response_norm(inputs[0], a.size, a.alpha, a.beta, a.k)
