"""Independent PyTorch definitions of the efficient nets in specs/ (test-only): MobileNet,
ShuffleNet, SqueezeNet. Written from the papers and torchvision's definitions."""
from __future__ import annotations

import torch
from torch import nn


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
            act: type[nn.Module] | None = nn.ReLU) -> list[nn.Module]:
    """A bias-free convolution with `kernel // 2` padding, batch norm and an activation."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups,
                                         bias=False), nn.BatchNorm2d(cout)]
    return layers + ([act()] if act else [])


def mobilenet_v1(width: float = 1.0, classes: int = 1000, first_stride: int = 2) -> nn.Module:
    """Howard et al. 2017, Table 1: a 3x3 convolution, 13 depthwise separable layers, global
    average pooling and a classifier; every channel count scaled by `width` (Section 3.3)."""
    def c(n):
        return int(n * width)
    # (out, stride) of each depthwise separable layer
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5,
            (1024, 2), (1024, 1)]
    layers, cin = conv_bn(3, c(32), 3, first_stride), c(32)
    for out, stride in plan:
        layers += conv_bn(cin, cin, 3, stride, groups=cin) + conv_bn(cin, c(out), 1)
        cin = c(out)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(cin, classes))


class InvertedResidual(nn.Module):
    """torchvision's MobileNetV2 block: 1x1 expansion (left out at ratio 1), 3x3 depthwise and a
    linear 1x1 projection, with an identity shortcut where the shape is kept."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers = conv_bn(cin, hidden, 1, act=nn.ReLU6) if expand != 1 else []
        layers += conv_bn(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6)
        self.body = nn.Sequential(*layers, *conv_bn(hidden, cout, 1, act=None))
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


def mobilenet_v2() -> nn.Module:
    """torchvision's mobilenet_v2 at width 1.0 (Sandler et al. 2018, Table 2)."""
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1)]  # expansion t, channels c, repeats n, stride s
    layers, cin = conv_bn(3, 32, 3, 2, act=nn.ReLU6), 32
    for t, c, n, s in settings:
        for i in range(n):
            layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
            cin = c
    layers += conv_bn(cin, 1280, 1, act=nn.ReLU6)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
                         nn.Linear(1280, 1000))


class ShuffleUnitV1(nn.Module):
    """The ShuffleNet unit of the authors' released code (megvii-model/ShuffleNet-Series): grouped
    1x1, channel shuffle, 3x3 depthwise, grouped 1x1; a stride-2 unit concatenates a 3x3 average
    pooled shortcut, so its branch makes `cout - cin` channels."""

    def __init__(self, cin: int, cout: int, stride: int, groups: int, first_groups: int):
        super().__init__()
        mid, branch_out = cout // 4, cout - cin if stride == 2 else cout
        self.branch = nn.Sequential(
            *conv_bn(cin, mid, 1, groups=first_groups), nn.ChannelShuffle(groups),
            *conv_bn(mid, mid, 3, stride, groups=mid, act=None),
            *conv_bn(mid, branch_out, 1, groups=groups, act=None))
        self.shortcut = nn.AvgPool2d(3, 2, 1) if stride == 2 else None

    def forward(self, x):
        if self.shortcut is None:
            return torch.relu(x + self.branch(x))
        return torch.cat([self.shortcut(x), torch.relu(self.branch(x))], 1)


def shufflenet_v1(groups: int = 3, stage_out: tuple[int, ...] = (240, 480, 960),
                  units: tuple[int, ...] = (4, 8, 4)) -> nn.Module:
    """ShuffleNet 1x (Zhang et al. 2017, Table 1); the first 1x1 of stage 2's first unit is not
    grouped (its input has only 24 channels)."""
    layers = [*conv_bn(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1)]
    cin = 24
    for stage, (cout, count) in enumerate(zip(stage_out, units, strict=True)):
        for i in range(count):
            first_groups = 1 if stage == 0 and i == 0 else groups
            layers.append(ShuffleUnitV1(cin, cout, 2 if i == 0 else 1, groups, first_groups))
            cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(cin, 1000, bias=False))


class ShuffleUnitV2(nn.Module):
    """torchvision's ShuffleNetV2 InvertedResidual (Ma et al. 2018, Figure 3c/d): at stride 1
    half the channels pass and the other half go through 1x1, 3x3 depthwise, 1x1; at stride 2
    both halves of the output come from the whole input; then a channel shuffle of 2 groups."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        half = cout // 2
        self.stride = stride
        self.branch1 = nn.Sequential(
            *conv_bn(cin, cin, 3, stride, groups=cin, act=None), *conv_bn(cin, half, 1),
        ) if stride == 2 else None
        self.branch2 = nn.Sequential(
            *conv_bn(cin if stride == 2 else half, half, 1),
            *conv_bn(half, half, 3, stride, groups=half, act=None), *conv_bn(half, half, 1))
        self.shuffle = nn.ChannelShuffle(2)

    def forward(self, x):
        if self.branch1 is None:
            kept, x = x.chunk(2, dim=1)
            return self.shuffle(torch.cat([kept, self.branch2(x)], 1))
        return self.shuffle(torch.cat([self.branch1(x), self.branch2(x)], 1))


def shufflenet_v2(stage_out: tuple[int, ...] = (116, 232, 464), units: tuple[int, ...] = (4, 8, 4),
                  last: int = 1024) -> nn.Module:
    """torchvision's shufflenet_v2_x1_0."""
    layers, cin = [*conv_bn(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1)], 24
    for cout, count in zip(stage_out, units, strict=True):
        for i in range(count):
            layers.append(ShuffleUnitV2(cin, cout, 2 if i == 0 else 1))
            cin = cout
    return nn.Sequential(*layers, *conv_bn(cin, last, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(last, 1000))


class Fire(nn.Module):
    """SqueezeNet's fire module (Iandola et al. 2016): a 1x1 squeeze, then 1x1 and 3x3 expand
    convolutions concatenated, all with ReLU."""

    def __init__(self, cin: int, squeeze: int, expand1: int, expand3: int):
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(cin, squeeze, 1), nn.ReLU())
        self.expand1 = nn.Sequential(nn.Conv2d(squeeze, expand1, 1), nn.ReLU())
        self.expand3 = nn.Sequential(nn.Conv2d(squeeze, expand3, 3, padding=1), nn.ReLU())

    def forward(self, x):
        x = self.squeeze(x)
        return torch.cat([self.expand1(x), self.expand3(x)], 1)


def squeezenet1_1() -> nn.Module:
    """torchvision's squeezenet1_1."""
    return nn.Sequential(
        nn.Conv2d(3, 64, 3, 2), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(64, 16, 64, 64), Fire(128, 16, 64, 64), nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(128, 32, 128, 128), Fire(256, 32, 128, 128), nn.MaxPool2d(3, 2, ceil_mode=True),
        Fire(256, 48, 192, 192), Fire(384, 48, 192, 192), Fire(384, 64, 256, 256),
        Fire(512, 64, 256, 256),
        nn.Dropout(0.5), nn.Conv2d(512, 1000, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def fmnist_mobilenet() -> nn.Module:
    """specs/fmnist-mobilenet.yaml (without its SE gates): a 3x3 stem at 28x28, six depthwise
    separable layers (Howard et al. 2017, Figure 3) with strides to 14 and 7, global average
    pooling and a 10-class classifier."""
    plan = [(48, 1), (96, 2), (96, 1), (192, 2), (192, 1), (192, 1)]  # (out, stride)
    layers, cin = conv_bn(1, 24, 3), 24
    for out, stride in plan:
        layers += conv_bn(cin, cin, 3, stride, groups=cin) + conv_bn(cin, out, 1)
        cin = out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10))


EFFICIENT_REFERENCES: dict = {
    "mobilenet_v1": (mobilenet_v1, (3, 224, 224)),
    "mobilenet_v1_cifar": (lambda: mobilenet_v1(classes=10, first_stride=1), (3, 32, 32)),
    "mobilenet_v2": (mobilenet_v2, (3, 224, 224)),
    "shufflenet_v1_g3": (shufflenet_v1, (3, 224, 224)),
    "shufflenet_v2": (shufflenet_v2, (3, 224, 224)),
    "squeezenet1_1": (squeezenet1_1, (3, 224, 224)),
    "fmnist-mobilenet": (fmnist_mobilenet, (1, 28, 28)),
}
