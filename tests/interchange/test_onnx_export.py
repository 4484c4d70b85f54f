"""ONNX export (cnngraph/interchange/onnx_export.py and each op's ops/<op>/onnx.py): every case
of every op runs in onnxruntime as PyTorch runs it, at the oldest, the default and the newest
opset; whole specs match cnngraph's own forward; and the file's names, metadata and options are
what the export promises."""
import importlib
import sys

import numpy as np
import onnx
import pytest
import torch

import cnngraph
from cnngraph.interchange import onnx_export
from cnngraph.interchange.onnx_export import ExportError, export, run_onnxruntime, verify
from cnngraph.ops import REGISTRY
from cnngraph.passes.init import initial_values
from cnngraph.tools.torch_reference import run
from cnngraph.train.checkpoint import restore
from cnngraph.train.loader import Normalizer
from cnngraph.train.runner import load_for_inference

from helpers import CIFAR_SIZED_VGGS, SPECS, build, over

CASES = [case for package in sorted({op.package for op in REGISTRY.values()})
         for case in importlib.import_module(package + ".cases").CASES]
OPSETS = (onnx_export.FIRST_OPSET, onnx_export.DEFAULT_OPSET, onnx_export.LAST_OPSET)


def weights(net, seed: int = 1):
    """Parameters and buffers away from their initial constants (batch norm's 1 and 0, PReLU's
    0.25), so that every one of them changes the output."""
    rng = np.random.default_rng(seed)
    params, buffers = initial_values(net, seed)
    params = {k: (v + 0.2 * rng.standard_normal(v.shape)).astype(np.float32)
              for k, v in params.items()}
    buffers = {k: (rng.uniform(0.5, 2.0, v.shape) if k.endswith("running_var")
                   else rng.standard_normal(v.shape)).astype(np.float32)
               for k, v in buffers.items()}
    return params, buffers


def torch_forward(net, params, buffers, x):
    with torch.no_grad():
        return run(net, {k: torch.from_numpy(v) for k, v in params.items()},
                   {k: torch.from_numpy(v) for k, v in buffers.items()}, torch.from_numpy(x),
                   training=False).numpy()


def compiled(net, params, buffers):
    """cnngraph's model of `net` with these weights."""
    model = cnngraph.compile(net)
    restore(model, params, buffers, SPECS)
    return model


def test_every_op_has_an_export_rule():
    assert [name for name, op in REGISTRY.items() if onnx_export.rule(name) is None] == []


@pytest.mark.parametrize("opset", OPSETS)
@over(CASES)
def test_op_case_runs_in_onnxruntime_as_in_pytorch(tmp_path, case, opset):
    net = build(tmp_path, case)
    params, buffers = weights(net)
    model = export(net, params, buffers, opset=opset)
    onnx.checker.check_model(model, full_check=True)
    x = np.random.default_rng(2).standard_normal((case.batch, *case.input)).astype(np.float32)
    np.testing.assert_allclose(run_onnxruntime(model, x), torch_forward(net, params, buffers, x),
                               rtol=2e-5, atol=2e-5)


def zeros(net):
    return ({k: np.zeros(s, np.float32) for k, s in net.param_shapes().items()},
            {k: np.zeros(s, np.float32) for k, s in net.buffer_shapes().items()})


@pytest.mark.parametrize("spec", sorted(p.name for p in SPECS.glob("*.yaml")))
def test_every_spec_exports_under_its_own_names(spec):
    """A valid file whose initializers are exactly the main output's parameters and buffers,
    whose nodes are named by the layers (dropout left out, batch norm kept) and whose batch
    dimension is free. (Zero weights: the values are the op cases' and the nets' tests.)"""
    net = cnngraph.load(SPECS / spec, input_shape=CIFAR_SIZED_VGGS.get(spec)).for_output()
    model = export(net, *zeros(net))
    onnx.checker.check_model(model, full_check=True)
    named = {i.name for i in model.graph.initializer if "/" not in i.name}
    assert named == set(net.param_shapes()) | set(net.buffer_shapes())
    nodes = {node.name: node.op_type for node in model.graph.node}
    for layer in net.nodes:
        assert (layer.name in nodes) == (layer.op != "dropout"), layer.name
    assert "Dropout" not in nodes.values()
    assert sum(t == "BatchNormalization" for t in nodes.values()) == sum(
        layer.op == "batchnorm" for layer in net.nodes)
    (batch, *shape), = [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
                        for i in model.graph.input]
    assert batch == "batch" and tuple(shape) == net.input_shape


@pytest.mark.parametrize("spec", ["lenet.yaml", "resnet18-cifar.yaml", "googlenet.yaml"])
def test_classic_nets_run_in_onnxruntime_as_in_cnngraph(spec):
    """At batch 1 and 3, within 1e-5 of the largest logit (GoogLeNet without its aux heads)."""
    net = cnngraph.load(SPECS / spec)
    params, buffers = weights(net)
    model = export(net, params, buffers)
    ours = compiled(net.for_output(), params, buffers)
    for batch in (1, 3):
        difference, relative = verify(model, ours, batch=batch)
        assert relative <= 1e-5, (batch, difference)


def test_gemm_takes_the_dense_weight_as_stored():
    net = cnngraph.load(SPECS / "lenet.yaml")
    params, buffers = weights(net)
    model = export(net, params, buffers)
    dense = [n for n in net.nodes if n.op == "dense"][-1]
    gemm, = [n for n in model.graph.node if n.name == dense.name]
    assert gemm.op_type == "Gemm" and list(gemm.input[1:]) == [f"{dense.name}.weight",
                                                               f"{dense.name}.bias"]
    assert onnx.helper.get_attribute_value(gemm.attribute[0]) == 1      # transB
    stored, = [i for i in model.graph.initializer if i.name == f"{dense.name}.weight"]
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(stored),
                                  params[f"{dense.name}.weight"])


def test_heads_other_than_the_exported_output_are_dropped():
    net = cnngraph.load(SPECS / "googlenet.yaml")
    assert len(net.outputs) > 1
    params, buffers = zeros(net)
    main = export(net, params, buffers)
    aux = net.outputs[1]
    head = export(net, params, buffers, output=aux.name)
    names = {"main": {i.name for i in main.graph.initializer},
             "aux": {i.name for i in head.graph.initializer}}
    assert not any(n.startswith(aux.node.split(".")[0]) for n in names["main"])
    assert set(net.for_output(aux.name).param_shapes()) <= names["aux"]
    assert main.graph.output[0].type.tensor_type.shape.dim[1].dim_value == net.output_shape[0]


def test_fold_bn_folds_each_batch_norm_into_the_conv_before_it():
    """LeNet-BN's two conv batch norms go; those after its dense layers stay."""
    net = cnngraph.load(SPECS / "lenet-bn.yaml")
    params, buffers = weights(net)
    model = export(net, params, buffers, fold_bn=True)
    onnx.checker.check_model(model, full_check=True)
    after_conv = [n.name for n in net.nodes if n.op == "batchnorm"
                  and net.node(n.inputs[0]).op == "conv"]
    kept = [n.name for n in model.graph.node if n.op_type == "BatchNormalization"]
    assert len(after_conv) == 2 and len(kept) == 2 and not set(after_conv) & set(kept)
    assert not any(i.name.startswith(tuple(after_conv)) for i in model.graph.initializer)
    conv = net.node(net.node(after_conv[0]).inputs[0]).name
    node, = [n for n in model.graph.node if n.name == conv]
    assert list(node.input[1:]) == [f"{conv}.weight", f"{conv}.bias"]
    assert list(node.output) == [after_conv[0]]
    difference, relative = verify(model, compiled(net, params, buffers))
    assert relative <= 1e-5, difference
    assert json_props(model)["batch_norm"].startswith("folded")


def json_props(model):
    return {p.key: p.value for p in model.metadata_props}


def test_normalisation_goes_into_the_metadata_or_in_front_of_the_graph():
    net = cnngraph.load(SPECS / "lenet-bn.yaml")
    params, buffers = weights(net)
    normalizer = Normalizer((0.3,), (0.4,), 255.0)
    plain = export(net, params, buffers, normalizer=normalizer)
    props = json_props(plain)
    assert props["cnngraph.spec"] == net.name and props["input_layout"] == "NCHW"
    assert props["normalizer"] == '{"mean": [0.3], "std": [0.4], "scale": 255.0}'
    assert props["normalizer_applied"].startswith("no")
    assert plain.graph.node[0].input[0] == "input" and plain.graph.node[0].name != "normalizer"
    raw = export(net, params, buffers, normalizer=normalizer, with_normalization=True)
    assert json_props(raw)["normalizer_applied"] == "in the graph"
    difference, relative = verify(raw, compiled(net, params, buffers), normalizer,
                                  with_normalization=True, batch=4)
    assert relative <= 1e-5, difference


def test_a_float64_model_exports_in_float64():
    """(onnxruntime has no float64 Conv on the CPU: the file is checked, not run.)"""
    net = cnngraph.load(SPECS / "lenet-bn.yaml")
    model = cnngraph.compile(net, dtype="float64")
    exported = export(net, model.host_params(), model.host_buffers())
    onnx.checker.check_model(exported, full_check=True)
    double = onnx.TensorProto.DOUBLE
    assert exported.graph.input[0].type.tensor_type.elem_type == double
    assert {i.data_type for i in exported.graph.initializer if "/" not in i.name} == {double}


def test_what_cannot_be_exported_is_an_error_naming_it(monkeypatch):
    net = cnngraph.load(SPECS / "lenet.yaml")
    params, buffers = zeros(net)
    for opset in (onnx_export.FIRST_OPSET - 1, onnx_export.LAST_OPSET + 1):
        with pytest.raises(ExportError, match=f"opset {opset} is not supported"):
            export(net, params, buffers, opset=opset)
    with pytest.raises(ExportError, match="needs the normaliser of a trained checkpoint"):
        export(net, params, buffers, with_normalization=True)
    rule = onnx_export.rule
    monkeypatch.setattr(onnx_export, "rule", lambda op: None if op == "avgpool" else rule(op))
    first = next(n for n in net.nodes if n.op == "avgpool")
    with pytest.raises(ExportError, match=f"layer `{first.name}` \\(avgpool\\) has no ONNX"):
        export(net, params, buffers)


def test_model_export_onnx_writes_a_checked_file(tmp_path):
    net = cnngraph.load(SPECS / "lenet.yaml")
    model = cnngraph.compile(net)
    proto = model.export_onnx(tmp_path / "lenet.onnx", opset=13)
    assert onnx.load(tmp_path / "lenet.onnx") == proto and proto.opset_import[0].version == 13
    x = np.random.default_rng(0).standard_normal((2, *net.input_shape)).astype(np.float32)
    np.testing.assert_allclose(run_onnxruntime(proto, x), model.forward(x), rtol=1e-5,
                               atol=1e-6)


def test_cli_exports_a_trained_checkpoint_that_takes_raw_pixels(setup, cli, tmp_path):
    net, text, data, _ = setup
    spec, out = tmp_path / "spec.yaml", tmp_path / "run"
    assert cli("train", spec, "--data", data, "--out", out, "--epochs", "1").exit_code == 0
    path = tmp_path / "tiny.onnx"
    result = cli("export", spec, "--weights", out / "last.npz", "-o", path,
                 "--with-normalization", "--verify", "--opset", "13")
    assert result.exit_code == 0, result.output
    assert f"wrote {path}: opset 13" in result.stdout and "verify: onnxruntime" in result.stdout
    model = onnx.load(path)
    x = np.load(f"{data}/test.npz")["x"][:5].astype(np.float32)      # pixels, 0-255
    trained, normalizer, _ = load_for_inference(net, out / "last.npz")
    np.testing.assert_allclose(run_onnxruntime(model, x), trained.forward(normalizer(x)),
                               rtol=1e-5, atol=1e-5)
    assert json_props(model)["normalizer"].startswith('{"mean": [')


def test_cli_export_errors(setup, cli, tmp_path, monkeypatch):
    net, text, data, _ = setup
    spec = tmp_path / "spec.yaml"
    initial = cli("export", spec, "-o", tmp_path / "a.onnx")
    assert initial.exit_code == 0 and "the initial weights (seed 0)" in initial.stderr
    bad = cli("export", spec, "-o", tmp_path / "b.onnx", "--opset", "9")
    assert bad.exit_code == 1 and "opset 9 is not supported" in bad.stderr
    assert "Traceback" not in bad.output and not (tmp_path / "b.onnx").exists()
    raw = cli("export", spec, "-o", tmp_path / "c.onnx", "--with-normalization")
    assert raw.exit_code == 1 and "pass --weights" in raw.stderr
    monkeypatch.setitem(sys.modules, "onnx", None)
    missing = cli("export", spec, "-o", tmp_path / "d.onnx")
    assert missing.exit_code == 1 and "pip install 'cnngraph[onnx]'" in missing.stderr
