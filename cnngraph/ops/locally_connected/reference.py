"""locally_connected in PyTorch, which has no such layer: the patches of `F.unfold`, each
position's against its own weight by `einsum` (tests and benchmarks only)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def forward(node, inputs, params, buffers, training, dropout):
    a = node.attrs
    top, bottom, left, right = a.padding
    x = F.pad(inputs[0], (left, right, top, bottom))
    oh, ow, out = params["weight"].shape[:3]
    patches = F.unfold(x, a.kernel, stride=a.stride).unflatten(2, (oh, ow))  # n, c*kh*kw, oh, ow
    y = torch.einsum("nkhw,hwok->nohw", patches, params["weight"].flatten(3))
    return y + params["bias"] if "bias" in params else y
