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


def test_init_from_copies_what_matches_and_reports_the_rest(tmp_path):
    """A LeNet-BN whose head has 5 outputs starts from a 10-class one: everything but the last
    dense layer is copied bitwise; the report names the two tensors skipped for shape."""
    net = cnngraph.load(SPECS / "lenet-bn.yaml")
    source = cnngraph.compile(net, seed=3)
    source.save_weights(tmp_path / "base.safetensors")
    text = (SPECS / "lenet-bn.yaml").read_text().replace("dense: {out: 10}", "dense: {out: 5}")
    (tmp_path / "five.yaml").write_text(text)
    five = cnngraph.compile(cnngraph.load(tmp_path / "five.yaml"), seed=4)
    report = weights.initialise_from(five, tmp_path / "base.safetensors", [])
    head = [n.name for n in five.net.nodes if n.op == "dense"][-1]
    assert [name for name, _, _ in report.other_shape] == [f"{head}.weight", f"{head}.bias"]
    assert not report.missing and not report.unused
    for name in report.copied:
        np.testing.assert_array_equal(five.host_params().get(name, five.host_buffers().get(name)),
                                      {**source.host_params(), **source.host_buffers()}[name])
    lines = report.lines("base.safetensors")
    assert lines[0] == f"init from base.safetensors: copied {len(report.copied)} of " \
        f"{len(report.copied) + 2} tensors"
    assert f"  skipped for shape: {head}.weight (10, 84) in the file, (5, 84) here" in lines


def test_init_from_an_onnx_file_and_with_renames(tmp_path):
    net = cnngraph.load(SPECS / "lenet.yaml")
    source = cnngraph.compile(net, seed=3)
    source.export_onnx(tmp_path / "lenet.onnx")
    target = cnngraph.compile(net, seed=4)
    report = weights.initialise_from(target, tmp_path / "lenet.onnx", [])
    assert len(report.copied) == len(net.param_shapes())
    np.testing.assert_array_equal(target.host_params()["conv1.weight"],
                                  source.host_params()["conv1.weight"])
    np.savez(tmp_path / "renamed.npz", **{"stem.weight": source.host_params()["conv1.weight"]})
    report = weights.initialise_from(target, tmp_path / "renamed.npz", ["stem=conv1"])
    assert report.copied == ["conv1.weight"] and "dense1.weight" in report.missing


def test_init_from_a_file_that_matches_nothing_is_refused(tmp_path, setup, cli):
    """From the command line: nothing trained, nothing written."""
    net, text, data, _ = setup
    np.savez(tmp_path / "other.npz", **{"conv1.weight": np.zeros((7, 7), np.float32)})
    out = tmp_path / "refused"
    result = cli("train", tmp_path / "spec.yaml", "--data", data, "--out", out, "--epochs", "1",
                 "--init-from", tmp_path / "other.npz")
    assert result.exit_code == 1 and "no tensor matches the network" in result.stderr
    assert "skipped for shape: conv1.weight (7, 7) in the file" in result.stderr
    assert not (out / "last.npz").exists() and "Traceback" not in result.output


def test_train_init_from_starts_from_a_run_with_another_head(tmp_path, setup, cli):
    net, text, data, _ = setup
    spec = tmp_path / "spec.yaml"
    assert cli("train", spec, "--data", data, "--out", tmp_path / "base", "--epochs",
               "1").exit_code == 0
    wider = tmp_path / "wider.yaml"
    wider.write_text(text.replace("dense: {out: 4}", "dense: {out: 6}"))
    result = cli("train", wider, "--data", data, "--out", tmp_path / "tuned", "--epochs", "1",
                 "--init-map", "nothing=here", "--init-from", tmp_path / "base" / "last.npz")
    assert result.exit_code == 0, result.output
    assert "init from" in result.stderr and "skipped for shape: dense1.weight (4, 64) in the " \
        "file, (6, 64) here" in result.stderr
    keyed = tmp_path / "keyed.yaml"            # the same from the spec's train section
    keyed.write_text(text.replace("train:\n", f"train:\n  init_from: {tmp_path}/base/last.npz\n"))
    result = cli("train", keyed, "--data", data, "--out", tmp_path / "keyed", "--epochs", "1")
    assert result.exit_code == 0 and "init from" in result.stderr, result.output

