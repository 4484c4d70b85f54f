"""Weights in and out (cnngraph/interchange/weights.py, `cnngraph import-weights`): a
torchvision ResNet-18 state dict onto specs/resnet18.yaml gives torchvision's logits; cnngraph's
own files round-trip by name; what cannot be matched is refused."""
import numpy as np
import pytest
import torch
from torch import nn

import cnngraph
from cnngraph.errors import DataError
from cnngraph.interchange import weights
from cnngraph.train.runner import load_for_inference

from helpers import SPECS


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock, under its module names."""

    def __init__(self, cin, width, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = None
        if stride != 1 or cin != width:
            self.downsample = nn.Sequential(nn.Conv2d(cin, width, 1, stride, bias=False),
                                            nn.BatchNorm2d(width))

    def forward(self, x):
        y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class ResNet18(nn.Module):
    """torchvision.models.resnet18's modules and names, so its state dict is torchvision's."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, width in enumerate((64, 128, 256, 512)):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, width, stride),
                                                         BasicBlock(width, width, 1)))
            cin = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, 1000)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(4):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


@pytest.fixture(scope="module")
def torchvision_resnet18(tmp_path_factory):
    """A ResNet-18 with random weights and batch-norm statistics, and its saved state dict."""
    torch.manual_seed(0)
    net = ResNet18().eval()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
    path = tmp_path_factory.mktemp("torchvision") / "resnet18.pth"
    torch.save(net.state_dict(), path)
    return net, path


def test_torchvision_resnet18_state_dict_gives_torchvision_logits(torchvision_resnet18, cli,
                                                                     tmp_path):
    net, path = torchvision_resnet18
    out = tmp_path / "resnet18.npz"
    result = cli("import-weights", SPECS / "resnet18.yaml", path, "-o", out)
    assert result.exit_code == 0, result.output
    assert "102 tensors matched by order" in result.stdout
    assert "layer2.basic1.branch2.conv1.weight <- layer2.0.downsample.0.weight" in \
        " ".join(result.stdout.split())
    assert "unused" not in result.stdout         # only num_batches_tracked, which is dropped
    spec = cnngraph.load(SPECS / "resnet18.yaml")
    model, normalizer, _ = load_for_inference(spec, out)
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    ours = model.forward(normalizer(x))
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_a_shape_mismatch_is_refused(torchvision_resnet18, cli, tmp_path):
    _, path = torchvision_resnet18
    result = cli("import-weights", SPECS / "resnet34.yaml", path, "-o", tmp_path / "x.npz")
    assert result.exit_code == 1 and "no tensors in the source match" in result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "x.npz").exists()


def test_map_renames_source_tensors_before_matching():
    tensors = {"features.0.weight": np.zeros(1), "features.01.bias": np.zeros(1),
               "classifier.weight": np.zeros(1)}
    renamed = weights.renamed(tensors, weights.parse_rules(["features.0=conv1",
                                                            "classifier=fc1"]))
    assert set(renamed) == {"conv1.weight", "features.01.bias", "fc1.weight"}
    with pytest.raises(DataError, match="old.prefix=new.prefix"):
        weights.parse_rules(["nothing"])


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_save_and_load_weights_round_trip_by_name(tmp_path, suffix, cli):
    net = cnngraph.load(SPECS / "lenet-bn.yaml")
    trained = cnngraph.compile(net, seed=1)
    x = np.random.default_rng(0).standard_normal((8, *net.input_shape)).astype(np.float32)
    trained.loss_and_grad(x, np.arange(8) % 10)        # batch-norm statistics move
    path = tmp_path / f"lenet{suffix}"
    trained.save_weights(path)
    fresh = cnngraph.compile(net, seed=2)
    fresh.load_weights(path)
    np.testing.assert_array_equal(fresh.forward(x), trained.forward(x))
    other = tmp_path / "again.npz"
    result = cli("import-weights", SPECS / "lenet-bn.yaml", path, "-o", other)
    assert result.exit_code == 0 and "matched by name" in result.stdout
    model, normalizer, meta = load_for_inference(net, other)
    assert meta["normalizer"]["std"] == [1.0] and meta["imported_from"] == path.name
    np.testing.assert_array_equal(model.forward(normalizer(x)), trained.forward(x))


def test_load_weights_is_strict_by_name(tmp_path):
    net = cnngraph.load(SPECS / "lenet.yaml")
    model = cnngraph.compile(net)
    np.savez(tmp_path / "partial.npz", **{"conv1.weight": np.zeros((6, 1, 5, 5), np.float32)})
    with pytest.raises(DataError, match="import-weights"):
        model.load_weights(tmp_path / "partial.npz")
    with pytest.raises(DataError, match="weights are read from"):
        model.load_weights(SPECS / "lenet.yaml")
