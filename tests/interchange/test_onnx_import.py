"""ONNX import (cnngraph/interchange/onnx_import.py and each op's ops/<op>/onnx.py IMPORTS):
what PyTorch's exporter writes, what cnngraph exports, and the Caffe2-era models the onnx
package ships (opset 9: n-ary Sum, batch norm as Mul/Add of Unsqueezed constants, weights made
by ConstantOfShape, initializers listed as inputs) become specs whose logits match onnxruntime's;
and what cannot be imported is refused with nothing written."""
import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from onnx import helper, numpy_helper
from torch import nn

import cnngraph
from cnngraph.interchange.onnx_export import export
from cnngraph.interchange.onnx_import import import_onnx
from cnngraph.passes.init import initial_values
from cnngraph.train.runner import load_for_inference

import reference_efficient
import reference_models
from helpers import CIFAR_SIZED_VGGS, ROOT, SPECS

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def onnxruntime_output(model, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(model if isinstance(model, bytes) else str(model),
                                           providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def imported_matches(path: Path, out: Path, batch: int = 2, tolerance: float = 1e-4,
                     flat: bool = False):
    """Import the file, run the spec with the imported checkpoint as `predict` would (its
    identity normaliser), and compare with onnxruntime on the file: the largest difference
    within `tolerance` of the largest logit. Returns the imported network."""
    _, weights, net, _ = import_onnx(path, out, flat)
    model, normalizer, meta = load_for_inference(net, weights)
    assert meta["normalizer"]["std"] == [1.0] * net.input_shape[0]
    x = np.random.default_rng(0).standard_normal((batch, *net.input_shape)).astype(np.float32)
    theirs = onnxruntime_output(path, x)
    assert np.ptp(theirs) > 0                 # the logits differ: the comparison means something
    ours = model.forward(normalizer(x))
    difference = np.abs(ours - theirs.reshape(ours.shape)).max()
    assert difference <= tolerance * np.abs(theirs).max(), difference
    return net


def layer_table(net):
    return [(n.name, n.op, n.shape, n.params, n.buffers, n.cost) for n in net.nodes
            if n.op != "dropout"]


@pytest.mark.parametrize("spec", ["lenet-bn.yaml", "resnet18-cifar.yaml", "googlenet.yaml",
                                  "mobilenet_v1_cifar.yaml", "squeezenet1_1.yaml",
                                  "../bench/specs/shufflenet_v2_cifar.yaml"])
def test_round_trip_gives_the_same_network_and_logits(spec, tmp_path):
    """Export, import: the same layers under the same names, shapes, parameters and costs,
    and logits within 1e-5."""
    net = cnngraph.load(SPECS / spec).for_output()
    rng = np.random.default_rng(1)
    params, buffers = initial_values(net, 1)
    params = {k: (v + 0.05 * rng.standard_normal(v.shape)).astype(np.float32)
              for k, v in params.items()}     # (the zero-initialised heads would give all 0)
    buffers = {k: rng.uniform(0.5, 1.5, v.shape).astype(np.float32) for k, v in buffers.items()}
    path = tmp_path / "exported.onnx"
    path.write_bytes(export(net, params, buffers).SerializeToString())
    imported = imported_matches(path, tmp_path / "imported", tolerance=1e-5, flat=True)
    assert layer_table(imported) == layer_table(net)


@pytest.mark.parametrize("spec", ["densenet121.yaml", "inception_v3.yaml", "se_resnet50.yaml",
                                  "mobilenet_v2.yaml", "resnext50_32x4d.yaml",
                                  "shufflenet_v1_g3.yaml", "nin.yaml"])
def test_round_trip_of_the_larger_specs_gives_the_same_layers(spec, tmp_path):
    net = cnngraph.load(SPECS / spec).for_output()
    zeros = [{k: np.zeros(s, np.float32) for k, s in shapes.items()}
             for shapes in (net.param_shapes(), net.buffer_shapes())]
    path = tmp_path / "exported.onnx"
    path.write_bytes(export(net, *zeros).SerializeToString())
    assert layer_table(import_onnx(path, tmp_path, flat=True)[2]) == layer_table(net)


class TorchvisionShuffle(nn.Module):
    """torchvision's channel_shuffle: view, transpose, view (what its ONNX export holds)."""

    def forward(self, x):
        batch, channels, height, width = x.size()
        x = x.view(batch, 2, channels // 2, height, width)
        return torch.transpose(x, 1, 2).contiguous().view(batch, -1, height, width)


def shufflenet_v2():
    net = reference_efficient.shufflenet_v2()
    for module in net.modules():
        if hasattr(module, "shuffle"):
            module.shuffle = TorchvisionShuffle()
    return net


def small_se_net():
    return nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU(),
                         reference_models.SqueezeExcite(16, 4), nn.Conv2d(16, 32, 3, 2, 1),
                         nn.BatchNorm2d(32), nn.Hardswish(), reference_models.SqueezeExcite(32, 8),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


def googlenet():
    """torchvision's GoogLeNet has no LRN (PyTorch exports LRN as a decomposition with an
    If node, not ONNX's LRN): the paper's network without it."""
    net = reference_models.googlenet()
    return nn.Sequential(*(nn.Identity() if isinstance(m, nn.LocalResponseNorm) else m
                           for m in net))


PYTORCH = {"resnet18": reference_models.REFERENCES["resnet18"][0],
           "mobilenet_v2": reference_efficient.mobilenet_v2,
           "squeezenet1_1": reference_efficient.squeezenet1_1,
           "densenet121": reference_models.densenet121, "googlenet": googlenet,
           "shufflenet_v2": shufflenet_v2, "small_se": small_se_net}


def randomised(net: nn.Module) -> nn.Module:
    """Batch-norm statistics and affine maps away from their initial 0 and 1."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.BatchNorm2d):
                for tensor in (module.running_var, module.weight):
                    tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
                for tensor in (module.running_mean, module.bias):
                    tensor.copy_(0.1 * torch.randn(tensor.shape, generator=generator))
    return net.eval()


@pytest.mark.parametrize("name, opset", [(name, 17) for name in PYTORCH]
                         + [("resnet18", 13), ("shufflenet_v2", 13), ("small_se", 13)])
def test_pytorch_exports_import_with_their_logits(name, opset, tmp_path):
    """torch.onnx.export (TorchScript exporter) of torchvision-equivalent networks. At opset 17
    with a dynamic batch and batch norm kept (no constant folding): PyTorch's parameter count.
    At opset 13 with a fixed batch and the exporter's constant folding (batch norm folded into
    the convs). Both: onnxruntime's logits to 1e-4."""
    torch.manual_seed(0)
    net = randomised(PYTORCH[name]())
    size = 64 if name == "small_se" else 224
    buffer = io.BytesIO()
    dynamic = {"x": {0: "batch"}} if opset == 17 else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.randn(2, 3, size, size),), buffer, dynamo=False,
                          opset_version=opset, input_names=["x"], dynamic_axes=dynamic,
                          do_constant_folding=opset == 13)
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(buffer.getvalue())
    imported = imported_matches(path, tmp_path / "imported")
    if opset == 17:
        assert sum(np.prod(s, dtype=int) for s in imported.param_shapes().values()) == sum(
            p.numel() for p in net.parameters())


@pytest.mark.parametrize("name", ["shufflenet_v2", "mobilenet_v2", "small_se"])
def test_the_dynamo_exporters_files_import_with_their_logits(name, tmp_path):
    """torch.onnx.export(dynamo=True) (needs onnxscript): its opset, a dynamic batch from
    torch.export, batch norm folded by its optimiser, ReduceMean for global pooling."""
    torch.manual_seed(0)
    net = randomised(PYTORCH[name]())
    size = 64 if name == "small_se" else 224
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(net, (torch.randn(2, 3, size, size),), dynamo=True,
                                    dynamic_shapes=({0: torch.export.Dim("batch")},))
    path = tmp_path / f"{name}.onnx"
    program.save(path)
    imported_matches(path, tmp_path / "imported")


def caffe2_model_with_random_weights(name: str, folder: Path) -> Path:
    """A light model of the onnx package with each weight its ConstantOfShape fills with one
    value replaced by random values of that shape (a constant weight makes every logit equal),
    and without its final Softmax (which would hide the differences)."""
    model = onnx.load(LIGHT / f"light_{name}.onnx")
    model.ir_version = max(model.ir_version, 4)    # initializers that are not inputs
    constants = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    rng = np.random.default_rng(0)
    nodes = []
    for node in model.graph.node:
        if node.op_type != "ConstantOfShape":
            nodes.append(node)
            continue
        shape = tuple(int(d) for d in constants[node.input[0]])
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        values = (rng.standard_normal(shape) * np.sqrt(2 / fan_in) if len(shape) > 1
                  else rng.uniform(0.5, 1.5, shape))
        model.graph.initializer.append(numpy_helper.from_array(values.astype(np.float32),
                                                               node.output[0]))
    if nodes[-1].op_type == "Softmax":
        softmax = nodes.pop()
        model.graph.output[0].name = softmax.input[0]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    path = folder / f"{name}.onnx"
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("name", ["bvlc_alexnet", "densenet121", "inception_v1", "inception_v2",
                                  "resnet50", "shufflenet", "squeezenet"])
def test_caffe2_era_models_of_the_onnx_package(name, tmp_path):
    """(vgg19 and zfnet512 are left out: alexnet has their ops, and their 143 M and 87 M
    parameters would cost half a minute of the suite.)"""
    path = caffe2_model_with_random_weights(name, tmp_path)
    imported_matches(path, tmp_path / "imported", batch=1)


def unnamed(net):
    """The layers without their names: what folding into blocks keeps."""
    return [(n.op, n.shape, tuple(n.params.values()), tuple(n.buffers.values()), n.cost)
            for n in net.nodes if n.op != "dropout"]


@pytest.mark.parametrize("spec, blocks, lines, repeats", [
    ("resnet50.yaml", ["residual1", "residual2"], 40, True),
    ("densenet121.yaml", ["mixed1"], 60, True),
    ("googlenet.yaml", ["mixed1"], 60, False),
    ("shufflenet_v2.yaml", ["mixed1", "mixed2"], 40, True),
    ("vgg16.yaml", ["unit1", "unit2", "unit3"], 20, True),
    ("mobilenet_v1_cifar.yaml", ["unit1"], 35, True)])
def test_repeated_units_fold_into_blocks(spec, blocks, lines, repeats, tmp_path):
    """An imported ResNet-50 is its stem, two blocks (with and without a projection) used
    in repeats, and its head; GoogLeNet's nine Inception modules are one block with six
    parameters; VGG-16's stages two blocks (two and three convolutions) and MobileNet's
    separable layers one; the folded spec expands to the flat network, layer for layer."""
    net = cnngraph.load(SPECS / spec, input_shape=CIFAR_SIZED_VGGS.get(spec)).for_output()
    zeros = [{k: np.zeros(s, np.float32) for k, s in shapes.items()}
             for shapes in (net.param_shapes(), net.buffer_shapes())]
    path = tmp_path / "exported.onnx"
    path.write_bytes(export(net, *zeros).SerializeToString())
    spec_path, weights, imported, notes = import_onnx(path, tmp_path / "out")
    text = spec_path.read_text()
    layers = text[text.index("\nlayers:"):].splitlines()
    assert all(f"\n  {name}:" in text for name in blocks), text
    assert ("  - repeat: " in text) == repeats, text
    assert len(layers) < lines, text
    assert unnamed(imported) == unnamed(net) and not notes
    stored = np.load(weights)
    assert {k.partition("/")[2] for k in stored.files if "/" in k} == set(
        imported.param_shapes()) | set(imported.buffer_shapes())


def test_folded_resnet_keeps_its_logits_and_flat_keeps_every_layer(tmp_path, cli):
    net = cnngraph.load(SPECS / "resnet18-cifar.yaml")
    params, buffers = initial_values(net, 0)
    rng = np.random.default_rng(0)
    params = {k: (v + 0.05 * rng.standard_normal(v.shape)).astype(np.float32)
              for k, v in params.items()}
    path = tmp_path / "resnet.onnx"
    path.write_bytes(export(net, params, buffers).SerializeToString())
    folded = imported_matches(path, tmp_path / "folded", tolerance=1e-5)
    assert unnamed(folded) == unnamed(net)
    result = cli("import", path, "-o", tmp_path / "flat", "--flat")
    assert result.exit_code == 0, result.output
    assert "blocks:" not in (tmp_path / "flat" / "resnet.yaml").read_text()
    assert f"({len(net.nodes)} layers" in result.stdout


def test_an_imported_spec_reads_like_a_written_one(tmp_path, cli):
    """... and `check`, `summary` and `predict` take it with its checkpoint."""
    net = cnngraph.load(SPECS / "resnet18-cifar.yaml")
    path = tmp_path / "resnet.onnx"
    path.write_bytes(export(net, *initial_values(net, 0)).SerializeToString())
    spec, weights, imported, _ = import_onnx(path, tmp_path / "out", flat=True)
    assert cli("check", spec).exit_code == 0 and cli("summary", spec).exit_code == 0
    np.savez(tmp_path / "x.npz", x=np.random.default_rng(0).random((2, 3, 32, 32)))
    predicted = cli("predict", spec, "--weights", weights, tmp_path / "x.npz", "--json")
    assert predicted.exit_code == 0, predicted.output
    text = spec.read_text()
    assert spec.name == "resnet.yaml" and weights.name == "resnet.npz"
    assert "  - conv: {out: 64, kernel: 3, padding: 1, bias: false}" in text
    assert "# 64x32x32" in text and "    id: layer1.basic1.branch1.conv1" in text
    assert "    from: [layer1.basic1.branch1.batchnorm2, relu1]" in text


def write(model, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def tiny_model(op_type: str, **attributes):
    """(1, 2, 4, 4) -> one node -> output, opset 17."""
    graph = helper.make_graph(
        [helper.make_node(op_type, ["x"], ["y"], name="the_node", **attributes)], "tiny",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("model, message", [
    (tiny_model("Softplus"), "node `the_node` (Softplus): cnngraph has no layer for ONNX's "
                             "Softplus"),
    (tiny_model("LRN", size=4), "ONNX centres an even LRN window"),
    (tiny_model("Transpose", perm=[0, 1, 3, 2]), "transposes only the group axes"),
    (tiny_model("Flatten", axis=2), "everything after the batch axis"),
])
def test_what_cannot_be_imported_is_refused_naming_the_node(model, message, tmp_path, cli):
    path = write(model, tmp_path / "model.onnx")
    result = cli("import", path, "-o", tmp_path / "out")
    assert result.exit_code == 1 and message in result.stderr, result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_files_that_are_not_whole_onnx_models(tmp_path, cli):
    net = cnngraph.load(SPECS / "lenet.yaml")
    whole = export(net, *initial_values(net, 0)).SerializeToString()
    (tmp_path / "truncated.onnx").write_bytes(whole[:len(whole) // 2])
    (tmp_path / "text.onnx").write_text("version: 1\n")
    for name in ("truncated.onnx", "text.onnx"):
        result = cli("import", tmp_path / name, "-o", tmp_path / "out")
        assert result.exit_code == 1 and "not an ONNX model" in result.stderr, result.output
    model = tiny_model("Conv", kernel_shape=[1, 1])
    model.graph.node[0].input.append("w")
    weight = numpy_helper.from_array(np.ones((2, 2, 1, 1), np.float32), "w")
    (tmp_path / "elsewhere.bin").write_bytes(weight.raw_data)
    onnx.external_data_helper.set_external_data(weight, location="../elsewhere.bin")
    weight.ClearField("raw_data")
    model.graph.initializer.append(weight)
    (tmp_path / "inner").mkdir()
    result = cli("import", write(model, tmp_path / "inner" / "m.onnx"), "-o", tmp_path / "out")
    assert result.exit_code == 1 and "outside the model's folder" in result.stderr, result.output
    assert not (tmp_path / "out").exists()


def test_without_the_onnx_extra_import_says_how_to_install_it(tmp_path, cli, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "onnx", None)
    result = cli("import", ROOT / "README.md", "-o", tmp_path / "out")
    assert result.exit_code == 1 and "pip install 'cnngraph[onnx]'" in result.stderr


def test_the_op_types_the_issue_names_have_import_rules():
    from cnngraph.interchange.onnx_import import import_rules
    assert {"Conv", "Gemm", "MatMul", "Add", "Sum", "BatchNormalization", "Relu", "LeakyRelu",
            "Sigmoid", "Tanh", "Clip", "HardSwish", "HardSigmoid", "PRelu", "Elu", "Gelu", "Mul",
            "MaxPool", "AveragePool", "GlobalAveragePool", "LRN", "Concat", "Flatten",
            "Reshape", "Dropout", "Softmax", "Pad", "Identity", "Transpose", "Split", "Slice",
            "ReduceMean", "Resize", "Upsample"} <= set(import_rules())
