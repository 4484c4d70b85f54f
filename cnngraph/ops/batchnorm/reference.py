"""PyTorch reference of `batchnorm`, for tests and benchmarks only (tools/torch_reference)."""
from __future__ import annotations

import torch.nn.functional as F


def forward(node, inputs, params, buffers, training, dropout):
    # in training, updates the running statistics in `buffers` in place, as cnngraph does;
    # frozen statistics (fine-tuning's `train.bn: frozen`) normalise as in evaluation
    a = node.attrs
    batch_statistics = training and "running_mean" not in node.frozen
    return F.batch_norm(inputs[0], buffers["running_mean"], buffers["running_var"],
                        params["weight"], params["bias"], batch_statistics, a.momentum, a.eps)
