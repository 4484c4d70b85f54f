"""Networks with several outputs, each trained by its own weighted loss: the step against
PyTorch and finite differences on the CPU and in the CUDA simulator, the targets each loss
takes, inference of any output, and the spec errors around heads."""
import json

import numpy as np
import pytest

import cnngraph
from cnngraph.errors import DataError, SpecError
from cnngraph.tools.summary import analyse
from cnngraph.tools.torch_reference import reference, run_outputs

from helpers import SPECS, TOLERANCE, check_cuda_against_cpu, check_net, make_quadrants

HEADS = """\
    version: 1
    name: heads
    input: [1, 8, 8]
    layers:
      - conv: {out: 4, kernel: 3, padding: 1}
      - batchnorm
      - relu
      - layers_of_aux: {}
        output: aux1
      - conv: {out: 6, kernel: 3, stride: 2}
      - relu
      - conv: {out: 3, kernel: 1}
        output: aux2
      - global_avgpool
      - flatten
      - dense: {out: 4}
    blocks:
      layers_of_aux:
        layers: [global_avgpool, flatten, dropout: {rate: 0.0}, dense: {out: 4}]
    train:
      epochs: 3
      batch_size: 16
      val_split: 0.25
      lr: 0.05
      momentum: 0.9
      loss: LOSS
      losses:
        aux1: {loss: mse, weight: 0.3}
        aux2: {loss: bce_with_logits, weight: 0.5}
    """


def heads(write_spec, main_loss="cross_entropy"):
    return cnngraph.load(write_spec(HEADS.replace("LOSS", main_loss)))


@pytest.mark.parametrize("main_loss", ["cross_entropy", "mse", "l1", "bce_with_logits"])
def test_weighted_losses_match_pytorch_and_finite_differences(write_spec, main_loss):
    net = heads(write_spec, main_loss)
    assert [(o.name, o.loss, o.weight) for o in net.outputs] == [
        ("main", main_loss, 1.0), ("aux1", "mse", 0.3), ("aux2", "bce_with_logits", 0.5)]
    # aux2 is a (3, 3, 3) map: its loss sees it flat, against one-hot targets of 27 classes
    check_net(net, batch=3)


def test_the_cuda_backend_agrees_with_the_cpu(write_spec):
    check_cuda_against_cpu(heads(write_spec), batch=2)


def test_targets_by_output_name(write_spec):
    net = heads(write_spec)
    model = cnngraph.compile(net, dtype="float64")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 1, 8, 8))
    targets = {"main": rng.integers(0, 4, 3), "aux1": rng.standard_normal((3, 4)),
               "aux2": (rng.random((3, 3, 3, 3)) > 0.5).astype(np.float64)}   # multi-label
    ref = reference(model, x, targets)
    assert model.loss_and_grad(x, targets) == pytest.approx(ref["loss"], rel=1e-9)
    for name, grad in ref["grads"].items():
        np.testing.assert_allclose(model.host_grads()[name], grad, **TOLERANCE["float64"])
    with pytest.raises(DataError, match="no targets for the output `aux2`"):
        model.loss_and_grad(x, {"main": targets["main"], "aux1": targets["aux1"]})
    with pytest.raises(DataError, match="trained with cross-entropy: its targets are class"):
        model.loss_and_grad(x, {**targets, "main": targets["aux1"]})
    with pytest.raises(DataError, match=r"expected targets of shape \(N, 4\)"):
        model.loss_and_grad(x, {**targets, "aux1": targets["aux1"][:, :3]})


def test_inference_of_each_output(write_spec):
    import torch
    net = heads(write_spec)
    model = cnngraph.compile(net, dtype="float64")
    x = np.random.default_rng(2).standard_normal((2, 1, 8, 8))
    params = {k: torch.tensor(v) for k, v in model.host_params().items()}
    buffers = {k: torch.tensor(v) for k, v in model.host_buffers().items()}
    expected = run_outputs(net, params, buffers, torch.tensor(x), training=False)
    for name in ("main", "aux1", "aux2"):
        np.testing.assert_allclose(model.forward(x, output=name), expected[name].numpy(),
                                   **TOLERANCE["float64"], err_msg=name)
    # inference compiles the main output's part alone (folded and fused)
    compiled = {n.name for n in model.program(False).net.nodes}
    assert compiled <= {n.name for n in net.for_output("main").nodes}
    assert "conv3" not in compiled and "dense1" in compiled
    assert not any(name.startswith("layers_of_aux1.") for name in compiled)


def test_summary_counts_inference_and_lists_each_head(write_spec, cli):
    net = heads(write_spec)
    data = analyse(net)
    main = net.for_output("main")
    assert data["totals"]["params"] == sum(int(np.prod(s)) for s in main.param_shapes().values())
    assert data["totals"]["training_params"] == \
        sum(int(np.prod(s)) for s in net.param_shapes().values())
    outputs = {o["name"]: o for o in data["outputs"]}
    assert outputs["aux1"]["params"] == 4 * 4 + 4 and outputs["aux2"]["params"] == 6 * 3 + 3
    assert outputs["aux2"]["output_shape"] == [3, 3, 3]
    text = cli("summary", write_spec(HEADS.replace("LOSS", "mse"), "b.yaml")).output
    assert "aux2       conv3 3x3x3, bce_with_logits x 0.5; head adds 21 params" in text


def test_googlenet_counts_without_its_auxiliary_heads():
    with_heads = cnngraph.load(SPECS / "googlenet.yaml")
    without = cnngraph.load(SPECS / "googlenet.yaml", params={"aux": False})
    assert [o.name for o in with_heads.outputs] == ["main", "aux1", "aux2"]
    assert [o.weight for o in with_heads.outputs] == [1.0, 0.3, 0.3]
    assert [o.name for o in without.outputs] == ["main"]
    a, b = analyse(with_heads)["totals"], analyse(without)["totals"]
    assert a["params"] == b["params"] == 6_998_552 and a["macs"] == b["macs"]
    # each head: 128*(512 or 528) + 128 conv, 2048*1024 + 1024 and 1024*1000 + 1000 dense
    assert a["training_params"] - b["params"] == sum(
        128 * c + 128 + 2048 * 1024 + 1024 + 1024 * 1000 + 1000 for c in (512, 528))


def test_training_with_heads_and_eval_of_a_head(write_spec, cli, tmp_path):
    path = write_spec(HEADS.replace("LOSS", "cross_entropy"))
    data = make_quadrants(tmp_path / "data", n=64)
    out = tmp_path / "run"
    result = cli("train", path, "--data", data, "--out", out)
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    aux = json.loads(cli("eval", path, "--weights", out / "last.npz", "--data", data,
                         "--output", "aux1", "--json").output)
    main = json.loads(cli("eval", path, "--weights", out / "last.npz", "--data", data,
                          "--json").output)
    assert aux["count"] == main["count"] == 32 and aux["loss"] != main["loss"]
    probs = json.loads(cli("predict", path, "--weights", out / "last.npz", "--output", "aux2",
                           "--top", "27", "--json", f"{data}/test.npz").output)
    # a bce_with_logits head gives a sigmoid per class: they need not sum to one
    assert all(0 < p["prob"] < 1 for p in probs[0]) and len(probs[0]) == 27
    wrong = cli("eval", path, "--weights", out / "last.npz", "--data", data, "--output", "aux")
    assert wrong.exit_code == 2 and "its outputs: main, aux1, aux2" in wrong.output
    refused = cli("train", path, "--data", data, "--out", tmp_path / "r2", "--set",
                  "train.losses.aux1.weight=1")
    assert refused.exit_code == 1 and "cannot be overridden" in refused.output


@pytest.mark.parametrize("edit, line, message, hint", [
    (("        aux2: {loss: bce_with_logits, weight: 0.5}\n", ""), 13,
     "the output `aux2` has no loss", "aux2: {loss: cross_entropy, weight: 0.3}"),
    (("aux2: {loss", "aux3: {loss"), 29, "`train.losses` names `aux3`, which is no output",
     "did you mean `aux2`?"),
    (("output: aux2", "output: aux1"), 13, "the output `aux1` is declared twice",
     "output names are global"),
    (("output: aux2", "output: main"), 13, "invalid output name 'main'", "`main` is the name"),
    (("      - global_avgpool\n", "      - global_avgpool:\n        from: conv3\n"), 14,
     "the output `aux2` also feeds `global_avgpool1`", "take `from:` the layer before it"),
    (("loss: LOSS", "loss: hinge"), 26, "invalid value for `loss`", "cross_entropy"),
])
def test_spec_errors_around_heads(write_spec, edit, line, message, hint):
    path = write_spec(HEADS.replace("LOSS", "hinge" if "hinge" in edit[1] else "cross_entropy")
                      .replace(*edit))
    with pytest.raises(SpecError) as error:
        cnngraph.load(path)
    problem = next(p for p in error.value.problems if message in p.message)
    assert problem.loc.line == line and hint in (problem.hint or "") + problem.message, problem


def test_inception_v3_aux_head_is_a_switch():
    net = cnngraph.load(SPECS / "inception_v3.yaml", params={"aux": True})
    totals = analyse(net)["totals"]
    assert totals["params"] == 23_834_568 and totals["macs"] == 5_713_216_096
    assert totals["training_params"] == 23_834_568 + 3_326_696
    assert [(o.name, o.weight) for o in net.outputs] == [("main", 1.0), ("aux", 0.4)]
    assert [o.name for o in cnngraph.load(SPECS / "inception_v3.yaml").outputs] == ["main"]


def test_googlenet_trains_with_its_auxiliary_heads():
    # 80 pixels: inception (4a) and (4d) are 5x5, the heads' 5x5 pooling's smallest input
    net = cnngraph.load(SPECS / "googlenet.yaml", input_shape=(3, 80, 80))
    model = cnngraph.compile(net)
    rng = np.random.default_rng(0)
    loss = model.loss_and_grad(rng.standard_normal((2, 3, 80, 80)), rng.integers(0, 1000, 2))
    assert np.isfinite(loss)     # (the weighting is checked against PyTorch above)
    grads = model.host_grads()
    for head in ("googlenet_aux1", "googlenet_aux2"):
        assert np.abs(grads[f"{head}.dense2.weight"]).sum() > 0


def test_a_head_on_an_activation_fused_into_its_producer(write_spec):
    """An output on a layer of the main path (as `cnngraph report` reads each stage): relu1
    fuses into the batch norm before it in the compiled step, so the output named on relu1
    reads the batch norm's buffer, which then holds relu1's output."""
    from dataclasses import replace

    import torch

    from cnngraph.ir import Output
    net = cnngraph.load(write_spec(
        "version: 1\ninput: [1, 6, 6]\nlayers:\n  - conv: {out: 3, kernel: 3}\n"
        "  - batchnorm\n  - relu\n  - flatten\n  - dense: {out: 2}\n"))
    net = replace(net, heads=(*net.outputs, Output("features", "relu1", "mse")))
    model = cnngraph.compile(net, dtype="float64")
    compiled = model.program(True).net
    assert "relu1" not in {n.name for n in compiled.nodes}       # fused
    assert compiled.output_named("features").node == "batchnorm1"
    x = np.random.default_rng(0).standard_normal((2, 1, 6, 6))
    params = {k: torch.tensor(v) for k, v in model.host_params().items()}
    buffers = {k: torch.tensor(v) for k, v in model.host_buffers().items()}
    expected = run_outputs(net, params, buffers, torch.tensor(x), training=False)["features"]
    np.testing.assert_allclose(model.forward(x, output="features"), expected.numpy(),
                               **TOLERANCE["float64"])
