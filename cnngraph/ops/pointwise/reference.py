"""PyTorch reference of the pointwise ops, for tests and benchmarks only (tools/torch_reference)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

ROWS = {
    "relu": lambda x, a: F.relu(x),
    "leaky_relu": lambda x, a: F.leaky_relu(x, a.slope),
    "sigmoid": lambda x, a: torch.sigmoid(x),
    "tanh": lambda x, a: torch.tanh(x),
    "identity": lambda x, a: x,
    "relu6": lambda x, a: F.relu6(x),
    "elu": lambda x, a: F.elu(x, a.alpha),
    "gelu": lambda x, a: F.gelu(x, approximate=a.approximate),
    "silu": lambda x, a: F.silu(x),
    "swish": lambda x, a: F.silu(x),
    "hardswish": lambda x, a: F.hardswish(x),
    # F.hardsigmoid's own backward scales by float32(1/6) even in float64; this is its forward,
    # with the exact slope (and relu6's zero slope at -3 and 3, as F.hardsigmoid has).
    "hardsigmoid": lambda x, a: F.relu6(x + 3) / 6,
}


def forward(node, inputs, params, buffers, training, dropout):
    return ROWS[node.op](inputs[0], node.attrs)
