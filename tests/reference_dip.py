"""An independent PyTorch definition of specs/dip-denoise.yaml (test-only): the `skip`
network of Deep Image Prior (Ulyanov, Vedaldi and Lempitsky 2018; their code's models/skip.py),
written from the paper's supplementary description: each level's input goes down through two
3x3 convolutions (the first with stride 2) and across through a 1x1 skip; the decoder joins
the skip with the bilinearly upsampled deeper level, normalises, and applies a 3x3 then a 1x1
convolution; batch norm and LeakyReLU(0.2) after every convolution, a sigmoid at the end."""
from __future__ import annotations

import torch
from torch import nn


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel, stride, kernel // 2), nn.BatchNorm2d(cout),
            nn.LeakyReLU(0.2)]


class SkipNet(nn.Module):
    def __init__(self, cin: int = 32, width: int = 32, skip: int = 4, levels: int = 4,
                 colours: int = 3):
        super().__init__()
        ins = [cin] + [width] * (levels - 1)
        self.skips = nn.ModuleList(nn.Sequential(*_conv_bn(c, skip, 1)) for c in ins)
        self.downs = nn.ModuleList(
            nn.Sequential(*_conv_bn(c, width, 3, 2), *_conv_bn(width, width, 3)) for c in ins)
        self.decodes = nn.ModuleList(
            nn.Sequential(nn.BatchNorm2d(skip + width), *_conv_bn(skip + width, width, 3),
                          *_conv_bn(width, width, 1)) for _ in ins)
        self.up = nn.Upsample(scale_factor=2, mode="bilinear")
        self.out = nn.Conv2d(width, colours, 1)

    def forward(self, x):
        across = []
        for skip, down in zip(self.skips, self.downs, strict=True):
            across.append(skip(x))
            x = down(x)
        for level in reversed(range(len(across))):
            x = self.decodes[level](torch.cat([across[level], self.up(x)], 1))
        return torch.sigmoid(self.out(x))


DIP_REFERENCES: dict = {"dip-denoise": (SkipNet, (32, 128, 128))}
