"""An independent PyTorch definition of the locally connected example spec (test-only).
PyTorch has no locally connected layer: `LocallyConnected2d` is written here from DeepFace's
description (Taigman et al. 2014) and Keras' `LocallyConnected2D`."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LocallyConnected2d(nn.Module):
    """A convolution without weight sharing: a (out, in, k, k) filter bank and an out-channel
    bias of its own at each of the H_out x W_out output positions (unpadded, stride 1)."""

    def __init__(self, cin: int, cout: int, kernel: int, in_hw: tuple[int, int]):
        super().__init__()
        self.kernel = kernel
        self.out_hw = (in_hw[0] - kernel + 1, in_hw[1] - kernel + 1)
        self.weight = nn.Parameter(torch.empty(*self.out_hw, cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.empty(cout, *self.out_hw))

    def forward(self, x):
        patches = F.unfold(x, self.kernel).unflatten(2, self.out_hw)   # n, cin*k*k, h, w
        return torch.einsum("nkhw,hwok->nohw", patches, self.weight.flatten(3)) + self.bias

    def contraction(self, output) -> tuple[str, tuple[int, ...], int]:
        """Every position's weights once per sample: out * in * k * k MACs per output pixel."""
        per_output = self.weight[0, 0, 0].numel()
        return ("locally_connected", tuple(output.shape[1:]), output.numel() * per_output)


def fmnist_locally_connected() -> nn.Module:
    def conv_bn_relu(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(
        *conv_bn_relu(1, 32), nn.MaxPool2d(2), *conv_bn_relu(32, 64), nn.MaxPool2d(2),
        LocallyConnected2d(64, 64, 3, (7, 7)), nn.ReLU(), nn.Flatten(), nn.Dropout(0.5),
        nn.Linear(64 * 5 * 5, 10))


LOCAL_REFERENCES: dict = {
    "fmnist-locally-connected": (fmnist_locally_connected, (1, 28, 28)),
}
