"""PyTorch reference of the pooling ops, for tests and benchmarks only (tools/torch_reference)."""
from __future__ import annotations

import torch.nn.functional as F


def _padding(a):
    top, bottom, left, right = a.padding
    assert top == bottom and left == right, "PyTorch pools pad symmetrically"
    return (top, left)


ROWS = {
    "maxpool": lambda x, a: F.max_pool2d(x, a.kernel, a.stride, _padding(a),
                                         ceil_mode=a.ceil_mode),
    "avgpool": lambda x, a: F.avg_pool2d(x, a.kernel, a.stride, _padding(a), a.ceil_mode,
                                         a.count_include_pad),
    "global_avgpool": lambda x, a: F.adaptive_avg_pool2d(x, 1),
    "global_maxpool": lambda x, a: F.adaptive_max_pool2d(x, 1),
}


def forward(node, inputs, params, buffers, training, dropout):
    return ROWS[node.op](inputs[0], node.attrs)
