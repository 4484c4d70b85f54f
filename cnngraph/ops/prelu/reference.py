"""prelu in PyTorch: `F.prelu`, as `nn.PReLU` (tests and benchmarks only)."""
from __future__ import annotations

import torch.nn.functional as F


def forward(node, inputs, params, buffers, training, dropout):
    return F.prelu(inputs[0], params["weight"])
