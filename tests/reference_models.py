"""Independent PyTorch definitions of the architectures in specs/ (test-only).

Written from the papers and torchvision's definitions, not translated from cnngraph's IR, so that
parameter counts, MACs and shapes are checked against a second implementation.
"""
from __future__ import annotations

import torch
from torch import nn


def lenet(bn: bool = False) -> nn.Module:
    def norm(n, kind):
        return [kind(n)] if bn else []
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), *norm(6, nn.BatchNorm2d), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, 5), *norm(16, nn.BatchNorm2d), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        nn.Flatten(), nn.Linear(400, 120), *norm(120, nn.BatchNorm1d), nn.Sigmoid(),
        nn.Linear(120, 84), *norm(84, nn.BatchNorm1d), nn.Sigmoid(), nn.Linear(84, 10))


def alexnet(groups: int = 2) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, 4), nn.ReLU(), nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0),
        nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2, groups=groups), nn.ReLU(),
        nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, 3, padding=1, groups=groups), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1, groups=groups), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 1000))


VGG_CONFIGS = {"vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
               "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
               "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                         512, 512, 512, "M"],
               "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512,
                         512, "M", 512, 512, 512, 512, "M"]}


def vgg(name: str) -> nn.Module:
    layers, c = [], 3
    for v in VGG_CONFIGS[name]:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU()]
            c = v
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(512 * 7 * 7, 4096), nn.ReLU(),
                         nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(),
                         nn.Linear(4096, 1000))


def nin() -> nn.Module:
    def block(cin, cout, k, s, p):
        return [nn.Conv2d(cin, cout, k, s, p), nn.ReLU(), nn.Conv2d(cout, cout, 1), nn.ReLU(),
                nn.Conv2d(cout, cout, 1), nn.ReLU()]
    return nn.Sequential(*block(3, 96, 11, 4, 0), nn.MaxPool2d(3, 2), *block(96, 256, 5, 1, 2),
                         nn.MaxPool2d(3, 2), *block(256, 384, 3, 1, 1), nn.MaxPool2d(3, 2),
                         nn.Dropout(0.5), *block(384, 1000, 3, 1, 1), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten())


class Inception(nn.Module):
    def __init__(self, cin, c1, c3r, c3, c5r, c5, pp):
        super().__init__()
        self.b1 = nn.Sequential(nn.Conv2d(cin, c1, 1), nn.ReLU())
        self.b2 = nn.Sequential(nn.Conv2d(cin, c3r, 1), nn.ReLU(), nn.Conv2d(c3r, c3, 3, padding=1),
                                nn.ReLU())
        self.b3 = nn.Sequential(nn.Conv2d(cin, c5r, 1), nn.ReLU(), nn.Conv2d(c5r, c5, 5, padding=2),
                                nn.ReLU())
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), nn.Conv2d(cin, pp, 1),
                                nn.ReLU())

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


def googlenet() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 64, 7, 2, 3), nn.ReLU(), nn.MaxPool2d(3, 2, ceil_mode=True),
        nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0), nn.Conv2d(64, 64, 1), nn.ReLU(),
        nn.Conv2d(64, 192, 3, padding=1), nn.ReLU(), nn.LocalResponseNorm(5, 1e-4, 0.75, 1.0),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        Inception(192, 64, 96, 128, 16, 32, 32), Inception(256, 128, 128, 192, 32, 96, 64),
        nn.MaxPool2d(3, 2, ceil_mode=True),
        Inception(480, 192, 96, 208, 16, 48, 64), Inception(512, 160, 112, 224, 24, 64, 64),
        Inception(512, 128, 128, 256, 24, 64, 64), Inception(512, 112, 144, 288, 32, 64, 64),
        Inception(528, 256, 160, 320, 32, 128, 128), nn.MaxPool2d(3, 2, ceil_mode=True),
        Inception(832, 256, 160, 320, 32, 128, 128), Inception(832, 384, 192, 384, 48, 128, 128),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.4), nn.Linear(1024, 1000))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, width, stride=1, paper_stride=False):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.down = None
        if stride != 1 or cin != width:
            self.down = nn.Sequential(nn.Conv2d(cin, width, 1, stride, bias=False),
                                      nn.BatchNorm2d(width))

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + (self.down(x) if self.down is not None else x))


class PlainBlock(BasicBlock):
    """A basic block without its shortcut (the plain network of He et al. and Li et al.)."""

    def __init__(self, cin, width, stride=1, paper_stride=False):
        super().__init__(cin, width, stride, paper_stride)
        self.down = None

    def forward(self, x):
        return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, width, stride=1, paper_stride=False):
        super().__init__()
        out = width * 4
        self.conv1 = nn.Conv2d(cin, width, 1, stride if paper_stride else 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1 if paper_stride else stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.down = None
        if stride != 1 or cin != out:
            self.down = nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False),
                                      nn.BatchNorm2d(out))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return torch.relu(y + (self.down(x) if self.down is not None else x))


def resnet(block, counts, classes=1000, cifar=False, widths=(64, 128, 256, 512), in_ch=3,
           paper_stride=False) -> nn.Module:
    stem_width = widths[0]
    if cifar:
        stem = [nn.Conv2d(in_ch, stem_width, 3, 1, 1, bias=False), nn.BatchNorm2d(stem_width),
                nn.ReLU()]
    else:
        stem = [nn.Conv2d(in_ch, stem_width, 7, 2, 3, bias=False), nn.BatchNorm2d(stem_width),
                nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    layers, cin = [], stem_width
    for i, (width, n) in enumerate(zip(widths, counts, strict=True)):
        for j in range(n):
            stride = 2 if i > 0 and j == 0 else 1
            layers.append(block(cin, width, stride, paper_stride))
            cin = width * block.expansion
    return nn.Sequential(*stem, *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(cin, classes))


class DenseLayer(nn.Module):
    def __init__(self, cin, growth, bn_size):
        super().__init__()
        self.f = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, bn_size * growth, 1,
                                                                         bias=False),
                               nn.BatchNorm2d(bn_size * growth), nn.ReLU(),
                               nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False))

    def forward(self, x):
        return torch.cat([x, self.f(x)], 1)


def densenet121() -> nn.Module:
    layers, c = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                 nn.MaxPool2d(3, 2, 1)], 64
    for i, n in enumerate((6, 12, 24, 16)):
        for _ in range(n):
            layers.append(DenseLayer(c, 32, 4))
            c += 32
        if i < 3:
            layers += [nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1, bias=False),
                       nn.AvgPool2d(2, 2)]
            c //= 2
    return nn.Sequential(*layers, nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(c, 1000))


class SqueezeExcite(nn.Module):
    def __init__(self, c, reduction):
        super().__init__()
        self.f = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c // reduction, 1), nn.ReLU(),
                               nn.Conv2d(c // reduction, c, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.f(x)


def fmnist_vgg() -> nn.Module:
    layers, c = [], 1
    for width in (32, 64, 128):
        for _ in range(2):
            layers += [nn.Conv2d(c, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU()]
            c = width
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers, SqueezeExcite(128, 8), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Dropout(0.3), nn.Linear(128, 10))


def fmnist_resnet() -> nn.Module:
    net = resnet(BasicBlock, (2, 2, 2), classes=10, cifar=True, widths=(32, 64, 128), in_ch=1)
    return net


class ResNeXtBottleneck(nn.Module):
    """torchvision's Bottleneck with groups (Xie et al. 2016, Figure 3c): a grouped 3x3 that
    carries the stride, between 1x1 convolutions of width int(planes * base_width / 64) * groups
    and planes * 4."""
    expansion = 4

    def __init__(self, cin, planes, stride=1, paper_stride=False, groups=32, base_width=4):
        super().__init__()
        width, out = int(planes * base_width / 64) * groups, planes * 4
        self.f = nn.Sequential(
            nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False),
            nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, out, 1, bias=False), nn.BatchNorm2d(out))
        self.down = None
        if stride != 1 or cin != out:
            self.down = nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False),
                                      nn.BatchNorm2d(out))

    def forward(self, x):
        return torch.relu(self.f(x) + (self.down(x) if self.down is not None else x))


class SEBottleneck(Bottleneck):
    """SE-ResNet's bottleneck (Hu et al. 2017, Figure 3): squeeze-and-excitation with reduction
    16 on the residual branch, after its last batch norm and before the addition."""

    def __init__(self, cin, width, stride=1, paper_stride=False):
        super().__init__(cin, width, stride, paper_stride)
        self.se = SqueezeExcite(width * 4, 16)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.se(self.bn3(self.conv3(y)))
        return torch.relu(y + (self.down(x) if self.down is not None else x))


class SqueezeExciteDense(nn.Module):
    """The paper's form of the gate: two fully connected layers on the pooled vector."""

    def __init__(self, c, reduction):
        super().__init__()
        self.f = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, c // reduction),
                               nn.ReLU(), nn.Linear(c // reduction, c), nn.Sigmoid())

    def forward(self, x):
        return x * self.f(x)[:, :, None, None]


def basic_conv2d(cin, cout, kernel, stride=1, padding=0) -> nn.Sequential:
    """torchvision's BasicConv2d of Inception v3."""
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding, bias=False),
                         nn.BatchNorm2d(cout, eps=0.001), nn.ReLU())


class Branches(nn.Module):
    """Branches fed the same input, concatenated along channels."""

    def __init__(self, *branches):
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x):
        return torch.cat([b(x) for b in self.branches], 1)


def avgpool_3x3() -> nn.AvgPool2d:
    return nn.AvgPool2d(3, 1, 1)      # count_include_pad=True, as F.avg_pool2d's default


def inception_a(cin, pool_features):
    return Branches(basic_conv2d(cin, 64, 1),
                    nn.Sequential(basic_conv2d(cin, 48, 1), basic_conv2d(48, 64, 5, padding=2)),
                    nn.Sequential(basic_conv2d(cin, 64, 1), basic_conv2d(64, 96, 3, padding=1),
                                  basic_conv2d(96, 96, 3, padding=1)),
                    nn.Sequential(avgpool_3x3(), basic_conv2d(cin, pool_features, 1)))


def inception_b(cin):
    return Branches(basic_conv2d(cin, 384, 3, stride=2),
                    nn.Sequential(basic_conv2d(cin, 64, 1), basic_conv2d(64, 96, 3, padding=1),
                                  basic_conv2d(96, 96, 3, stride=2)),
                    nn.MaxPool2d(3, 2))


def inception_c(cin, c7):
    return Branches(
        basic_conv2d(cin, 192, 1),
        nn.Sequential(basic_conv2d(cin, c7, 1), basic_conv2d(c7, c7, (1, 7), padding=(0, 3)),
                      basic_conv2d(c7, 192, (7, 1), padding=(3, 0))),
        nn.Sequential(basic_conv2d(cin, c7, 1), basic_conv2d(c7, c7, (7, 1), padding=(3, 0)),
                      basic_conv2d(c7, c7, (1, 7), padding=(0, 3)),
                      basic_conv2d(c7, c7, (7, 1), padding=(3, 0)),
                      basic_conv2d(c7, 192, (1, 7), padding=(0, 3))),
        nn.Sequential(avgpool_3x3(), basic_conv2d(cin, 192, 1)))


def inception_d(cin):
    return Branches(
        nn.Sequential(basic_conv2d(cin, 192, 1), basic_conv2d(192, 320, 3, stride=2)),
        nn.Sequential(basic_conv2d(cin, 192, 1), basic_conv2d(192, 192, (1, 7), padding=(0, 3)),
                      basic_conv2d(192, 192, (7, 1), padding=(3, 0)),
                      basic_conv2d(192, 192, 3, stride=2)),
        nn.MaxPool2d(3, 2))


def inception_e(cin):
    def split(c):       # 1x3 and 3x1 side by side
        return Branches(basic_conv2d(c, 384, (1, 3), padding=(0, 1)),
                        basic_conv2d(c, 384, (3, 1), padding=(1, 0)))
    return Branches(basic_conv2d(cin, 320, 1),
                    nn.Sequential(basic_conv2d(cin, 384, 1), split(384)),
                    nn.Sequential(basic_conv2d(cin, 448, 1), basic_conv2d(448, 384, 3, padding=1),
                                  split(384)),
                    nn.Sequential(avgpool_3x3(), basic_conv2d(cin, 192, 1)))


def inception_v3() -> nn.Module:
    """torchvision's Inception3 without the auxiliary classifier (299x299)."""
    return nn.Sequential(
        basic_conv2d(3, 32, 3, stride=2), basic_conv2d(32, 32, 3),
        basic_conv2d(32, 64, 3, padding=1), nn.MaxPool2d(3, 2),
        basic_conv2d(64, 80, 1), basic_conv2d(80, 192, 3), nn.MaxPool2d(3, 2),
        inception_a(192, 32), inception_a(256, 64), inception_a(288, 64), inception_b(288),
        inception_c(768, 128), inception_c(768, 160), inception_c(768, 160),
        inception_c(768, 192), inception_d(768), inception_e(1280), inception_e(2048),
        nn.AdaptiveAvgPool2d(1), nn.Dropout(0.5), nn.Flatten(), nn.Linear(2048, 1000))


def inception_aux(cin=768, classes=1000) -> nn.Module:
    """torchvision's InceptionAux, on the 17x17 output of Mixed_6e."""
    return nn.Sequential(nn.AvgPool2d(5, 3), basic_conv2d(cin, 128, 1),
                         basic_conv2d(128, 768, 5), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(768, classes))


REFERENCES = {
    "lenet": (lenet, (1, 28, 28)),
    "lenet-bn": (lambda: lenet(bn=True), (1, 28, 28)),
    "alexnet": (alexnet, (3, 227, 227)),
    "vgg11": (lambda: vgg("vgg11"), (3, 224, 224)),
    "vgg13": (lambda: vgg("vgg13"), (3, 224, 224)),
    "vgg16": (lambda: vgg("vgg16"), (3, 224, 224)),
    "vgg19": (lambda: vgg("vgg19"), (3, 224, 224)),
    "nin": (nin, (3, 224, 224)),
    "googlenet": (googlenet, (3, 224, 224)),
    "resnet18": (lambda: resnet(BasicBlock, (2, 2, 2, 2)), (3, 224, 224)),
    "resnet34": (lambda: resnet(BasicBlock, (3, 4, 6, 3)), (3, 224, 224)),
    "resnet50": (lambda: resnet(Bottleneck, (3, 4, 6, 3)), (3, 224, 224)),
    "resnet101": (lambda: resnet(Bottleneck, (3, 4, 23, 3)), (3, 224, 224)),
    "resnet152": (lambda: resnet(Bottleneck, (3, 8, 36, 3)), (3, 224, 224)),
    "resnet18-cifar": (lambda: resnet(BasicBlock, (2, 2, 2, 2), classes=10, cifar=True),
                       (3, 32, 32)),
    "densenet121": (densenet121, (3, 224, 224)),
    "resnext50_32x4d": (lambda: resnet(ResNeXtBottleneck, (3, 4, 6, 3)), (3, 224, 224)),
    "se_resnet50": (lambda: resnet(SEBottleneck, (3, 4, 6, 3)), (3, 224, 224)),
    "inception_v3": (inception_v3, (3, 299, 299)),
    "fmnist-vgg": (fmnist_vgg, (1, 28, 28)),
    "fmnist-resnet": (fmnist_resnet, (1, 28, 28)),
}


def profile(model: nn.Module, input_shape) -> dict:
    """Parameter and buffer counts, and per-contraction (kind, output shape, MACs) in execution
    order, measured by running the model on the meta device (no arithmetic is done)."""
    contractions = []

    def hook(module, inputs, output):
        if hasattr(module, "contraction"):    # a layer torch lacks (tests/reference_*.py)
            contractions.append(module.contraction(output))
        elif isinstance(module, nn.Conv2d):
            per_output = module.in_channels // module.groups * module.kernel_size[0] \
                * module.kernel_size[1]
            contractions.append(("conv", tuple(output.shape[1:]), output.numel() * per_output))
        else:
            contractions.append(("dense", tuple(output.shape[1:]), module.in_features
                                 * module.out_features))

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear)) or hasattr(m, "contraction")]
    model.eval()
    with torch.no_grad():
        out = model(torch.empty((1, *input_shape), device="meta"))
    for h in handles:
        h.remove()
    buffers = sum(b.numel() for name, b in model.named_buffers()
                  if not name.endswith("num_batches_tracked"))
    return {"params": sum(p.numel() for p in model.parameters()), "buffers": buffers,
            "output_shape": tuple(out.shape[1:]), "contractions": contractions,
            "macs": sum(c[2] for c in contractions)}


def _more_references() -> None:
    """The efficient nets, the locally connected example and Deep Image Prior's network live
    in their own modules."""
    from reference_dip import DIP_REFERENCES
    from reference_efficient import EFFICIENT_REFERENCES
    from reference_local import LOCAL_REFERENCES
    REFERENCES.update(EFFICIENT_REFERENCES)
    REFERENCES.update(LOCAL_REFERENCES)
    REFERENCES.update(DIP_REFERENCES)


_more_references()


def build(name: str) -> nn.Module:
    with torch.device("meta"):
        return REFERENCES[name][0]()
