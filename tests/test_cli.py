import json
import subprocess
import sys

import pytest

import cnngraph

from helpers import ROOT, SPECS

ALL_SPECS = sorted(SPECS.glob("*.yaml"))


def test_version_and_help(cli):
    assert cli("--version").output.strip() == f"cnngraph, version {cnngraph.__version__}"
    for command in ("check", "summary", "expand"):
        result = cli(command, "--help")
        assert result.exit_code == 0 and "Example" in result.output


def test_check_all_shipped_specs(cli):
    result = cli("check", *ALL_SPECS)
    assert result.exit_code == 0, result.output
    assert result.output.count(": ok (") == len(ALL_SPECS)


def test_check_mixed_valid_and_invalid_reports_both(cli):
    result = cli("check", SPECS / "lenet.yaml", ROOT / "tests/specs/invalid/unknown_op.yaml")
    assert result.exit_code == 1
    assert "lenet.yaml: ok" in result.output and "unknown op or block `convv`" in result.output


@pytest.mark.parametrize("args", [
    ["check"], ["check", "does-not-exist.yaml"], ["check", "specs"], ["summary", "--batch", "0",
                                                                     "specs/lenet.yaml"],
    ["summary", "--input", "3,x,4", "specs/lenet.yaml"], ["nosuchcommand"],
])
def test_usage_errors_exit_2(cli, args, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = cli(*args)
    assert result.exit_code == 2, result.output


def test_console_script_prints_no_traceback_for_broken_files(tmp_path):
    cases = {"binary.yaml": b"\x7fELF\x00\x01", "empty.yaml": b"", "bad.yaml": b"a: [",
             "list.yaml": b"- 1\n- 2\n", "scalar.yaml": b"42\n"}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), "check",
                           *sorted(str(tmp_path / n) for n in cases)],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.count(": error: ") == len(cases)


def test_summary_text_and_json(cli):
    text = cli("summary", SPECS / "resnet18.yaml", "--depth", "2", "--batch", "8")
    assert text.exit_code == 0 and "11,689,512 trainable" in text.output
    data = json.loads(cli("summary", SPECS / "resnet18.yaml", "--json").output)
    assert data["totals"]["params"] == 11_689_512 and data["totals"]["macs"] == 1_814_073_344
    full = json.loads(cli("summary", SPECS / "resnet18.yaml", "--json", "--policy", "full").output)
    assert full["totals"]["flops"] > data["totals"]["flops"]


def test_summary_input_override(cli):
    data = json.loads(cli("summary", SPECS / "resnet18-cifar.yaml", "--input", "3,64,64",
                          "--json").output)
    assert data["input_shape"] == [3, 64, 64]
    assert data["totals"]["macs"] == 4 * 555_422_720 - 3 * 512 * 10


def test_summary_of_an_invalid_spec_fails_cleanly(cli):
    result = cli("summary", ROOT / "tests/specs/invalid/add_unequal.yaml")
    assert result.exit_code == 1 and "`add` needs inputs of equal shape" in result.output


@pytest.mark.parametrize("spec", ALL_SPECS, ids=[p.stem for p in ALL_SPECS])
def test_expand_round_trips(spec, cli, tmp_path):
    flat = tmp_path / "flat.yaml"
    result = cli("expand", spec)
    assert result.exit_code == 0
    flat.write_text(result.output)
    assert "include" not in result.output and "repeat" not in result.output
    assert cli("check", flat).exit_code == 0
    original = json.loads(cli("summary", spec, "--json").output)
    again = json.loads(cli("summary", flat, "--json").output)
    assert again["layers"] == original["layers"]
    assert again["totals"] == original["totals"]


def test_compile_emits_readable_step_code_and_kernels(cli, tmp_path):
    result = cli("compile", SPECS / "lenet-bn.yaml", "--batch", "4", "--emit", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "planned memory at batch 4" in result.output
    train = (tmp_path / "out" / "step_train.py").read_text()
    assert "def forward(v, p, s, training, seed, first, shards):" in train
    assert "def loss_and_backward(" in train and "conv_flat_bwd_cpu(" in train
    assert "# conv1: conv(input) -> (6, 28, 28)" in train
    kernels = {p.name for p in (tmp_path / "out" / "kernels").iterdir()}
    assert "cnngraph.ops.conv.cpu.flat.py" in kernels and "cnngraph.ops.batchnorm.cpu.py" in kernels
    assert any(k.startswith("cnngraph_gen_pointwise_") for k in kernels)
    infer = (tmp_path / "out" / "step_infer.py").read_text()
    assert "loss_and_backward" not in infer
    # batch norm folded into the two convs (not the dense layers'); for batches smaller than
    # the chunks (batch 1) not into the second conv, with more weights than outputs a sample
    small = (tmp_path / "out" / "step_infer_small_batch.py").read_text()
    assert infer.count("batchnorm_fwd_cpu(") == 2 and small.count("batchnorm_fwd_cpu(") == 3
    assert "loss_and_backward" not in small


def test_check_grad_reports_every_parameterised_layer(cli):
    result = cli("check", "--grad", SPECS / "lenet.yaml")
    assert result.exit_code == 0, result.output
    for layer in ("input", "conv1", "conv2", "dense1", "dense2", "dense3"):
        assert any(line.split()[:1] == [layer] and line.endswith("ok")
                   for line in result.output.splitlines()), layer


def test_check_grad_catches_a_wrong_backward_pass(cli, monkeypatch, write_spec):
    from dataclasses import replace

    from cnngraph.ops import REGISTRY
    from cnngraph.ops.lowering import Call, Kernel, grad
    dense = REGISTRY["dense"]
    doubled = Call(Kernel("cnngraph.kernels.{target}.support", "sum_{target}"),
                   {"out": grad("weight"), "parts": (grad("weight"), grad("weight"))})

    def broken(node, ctx):
        lowering = dense.lower(node, ctx)
        return replace(lowering, backward=(*lowering.backward, doubled))

    monkeypatch.setitem(REGISTRY, "dense", replace(dense, lower=broken))
    spec = write_spec("version: 1\ninput: [5]\nlayers: [dense: {out: 4}, tanh, dense: {out: 3}]\n")
    result = cli("check", "--grad", spec)
    assert result.exit_code == 1
    assert "FAIL" in result.output and "dense1" in result.output


def test_gradient_check_relative_error_floor():
    from cnngraph.tools.gradcheck import relative_error
    assert relative_error(1.0, 1.0 + 1e-9) < 1e-8
    assert relative_error(0.0, 3e-10) < 1e-5          # round-off on a true zero gradient
    assert relative_error(1e-3, 2e-3) == 0.5          # a wrong small gradient is still caught


def test_bench_reports_every_layer(cli, write_spec):
    spec = write_spec("version: 1\ninput: [2, 8, 8]\nlayers:\n  - conv: {out: 4, kernel: 3}\n"
                      "  - relu\n  - maxpool: {kernel: 2}\n  - flatten\n  - dense: {out: 3}\n")
    result = cli("bench", spec, "--batch", "8", "--repeat", "2")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()
            if line.split() and line.split()[0] in ("conv1", "maxpool1", "flatten1", "dense1")}
    assert set(rows) == {"conv1", "maxpool1", "flatten1", "dense1"}
    assert rows["conv1"][1] == "conv+relu"          # the relu runs inside the conv kernel
    assert rows["conv1"][-1].endswith("%") and rows["maxpool1"][-1] == "-"
    assert "peak" in result.output and "one sgemm per core, measured" in result.output
    assert "images/s" in result.output
    on_gpu = cli("bench", spec, "--batch", "2", "--repeat", "1", "--backend", "cuda")
    assert on_gpu.exit_code == 0, on_gpu.output
    assert "batch 2, cuda" in on_gpu.output and "dense1" in on_gpu.output


def test_profile_times_add_up(write_spec):
    from cnngraph.tools.profile import profile_step
    net = cnngraph.load(write_spec("version: 1\ninput: [2, 8, 8]\nlayers:\n"
                                   "  - conv: {out: 4, kernel: 3}\n  - flatten\n"
                                   "  - dense: {out: 3}\n"))
    data = profile_step(cnngraph.compile(net), batch=8, repeat=2)
    assert all(r["forward_s"] > 0 and r["backward_s"] > 0 for r in data["layers"])
    assert data["layers"][0]["forward_gflops"] > 0 and data["layers"][1]["forward_gflops"] is None
    parts = sum(r["forward_s"] + r["backward_s"] for r in data["layers"]) + data["loss_s"] + \
        data["sums_s"]
    assert abs(parts - data["profiled_s"]) < 1e-9 and data["peak_gflops"] > 0


def test_features_are_the_layers_activations(tmp_path, setup, cli):
    """`cnngraph features` on an .npz and on a dataset: the layer's eval-mode outputs as
    PyTorch computes them from the checkpoint's weights and normaliser."""
    import numpy as np
    import torch

    from cnngraph.tools.torch_reference import run
    from cnngraph.train import checkpoint
    from cnngraph.train.runner import load_for_inference
    net, text, data, _ = setup
    spec, base = tmp_path / "spec.yaml", tmp_path / "base"
    assert cli("train", spec, "--data", data, "--out", base, "--epochs", "1").exit_code == 0
    result = cli("features", spec, f"{data}/test.npz", "--weights", base / "last.npz",
                 "--layer", "maxpool1", "-o", tmp_path / "f.npz")
    assert result.exit_code == 0, result.output
    params, buffers, _, _ = checkpoint.load(base / "last.npz")
    _, normalizer, _ = load_for_inference(net, base / "last.npz")
    x = np.load(f"{data}/test.npz")["x"]
    with torch.no_grad():
        expected = run(net.up_to("maxpool1"), {k: torch.from_numpy(v) for k, v in params.items()},
                       {k: torch.from_numpy(v) for k, v in buffers.items()},
                       torch.from_numpy(normalizer(x)), training=False).numpy()
    stored = np.load(tmp_path / "f.npz")
    assert str(stored["layer"]) == "maxpool1" and stored["features"].shape == (48, 4, 4, 4)
    np.testing.assert_allclose(stored["features"], expected, rtol=1e-5, atol=1e-6)
    from_dataset = cli("features", spec, data, "--weights", base / "last.npz", "--layer",
                       "maxpool1", "-o", tmp_path / "g.npz")
    assert from_dataset.exit_code == 0 and "labels (48,)" in from_dataset.stdout
    np.testing.assert_array_equal(np.load(tmp_path / "g.npz")["features"], stored["features"])
    wrong = cli("features", spec, data, "--weights", base / "last.npz", "--layer", "relu",
                "-o", tmp_path / "h.npz")
    assert wrong.exit_code == 2 and "did you mean `relu1`" in wrong.output
