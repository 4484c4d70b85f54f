"""The benchmark scripts compute what they claim to time; no test here reads a clock.

The GPU benchmark runs end to end (in the CUDA simulator, on a tiny network). The CPU
benchmark's children build the same network in each framework. The convolution benchmark's
two sides compute the same layer. The accuracy benchmark's PyTorch twin trains to cnngraph's
weights. The timings themselves are for people to read on a quiet machine: a test of them
would pass or fail with the load of the machine running it.
"""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from cnngraph.passes.autodiff import Backward, backward_schedule
from cnngraph.train import finetune

from helpers import ROOT

sys.path.insert(0, str(ROOT / "bench"))   # the scripts under test, imported as modules


def test_gpu_benchmark_runs_in_the_simulator(write_spec):
    spec = write_spec("version: 1\ninput: [2, 5, 5]\nlayers:\n  - conv: {out: 3, kernel: 3}\n"
                      "  - relu\n  - flatten\n  - dense: {out: 2}\n")
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--repeat", "1",
                          "--workload", f"{spec}:2"], capture_output=True, text=True,
                         env={**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "batch 2: cnngraph" in out.stdout and "img/s" in out.stdout
    assert "conv+relu" in out.stdout and "dense1" in out.stdout


def test_cpu_benchmark_runs_the_same_network_in_each_framework_in_its_own_process():
    """`make bench` runs each measurement in a child process. One LeNet repeat in each
    framework: both children start from the same weights (the same logits and first loss on
    the same batch), so the step times they report are of the same computation."""
    reports = {}
    for framework in ("cnngraph", "torch"):
        out = subprocess.run([sys.executable, str(ROOT / "bench" / "targets.py"), "--child",
                              "speed", framework, "lenet", "1"], capture_output=True,
                             text=True, cwd=ROOT)
        assert out.returncode == 0, out.stderr[-3000:]
        reports[framework] = report = json.loads(out.stdout.strip().splitlines()[-1])
        roofline = {"train_macs", "infer_macs", "peak"} if framework == "cnngraph" else set()
        assert set(report) == {"train", "infer", "logits", "first_loss", *roofline}
        assert all(isinstance(report[k], float) and math.isfinite(report[k])
                   for k in ("train", "infer"))
        assert np.shape(report["logits"]) == (4, 10)
    ours, theirs = reports["cnngraph"], reports["torch"]
    # the roofline's multiply-adds an image: LeNet's 416,520, and for training those thrice
    # but for the first conv's input gradient (117,600), which nothing needs
    assert (ours["infer_macs"], ours["train_macs"]) == (416_520, 3 * 416_520 - 117_600)
    assert ours["peak"] > 1
    np.testing.assert_allclose(ours["logits"], theirs["logits"], rtol=1e-4, atol=1e-5)
    assert ours["first_loss"] == pytest.approx(theirs["first_loss"], rel=1e-5)
    assert len({tuple(row) for row in ours["logits"]}) == 4     # rows of different images


@pytest.mark.parametrize("batch", [1, 3])
def test_inference_benchmark_runs_the_same_weights_in_cnngraph_and_onnxruntime(batch):
    """`bench/targets.py --parts infer`'s children: cnngraph (at batch 1 its small-batch
    program) and onnxruntime on cnngraph's ONNX export give the same logits for the same
    batch, so the times they report are of the same computation."""
    reports = {}
    for framework in ("cnngraph", "onnxruntime"):
        out = subprocess.run([sys.executable, str(ROOT / "bench" / "targets.py"), "--child",
                              "infer", framework, "lenet", str(batch), "1"],
                             capture_output=True, text=True, cwd=ROOT,
                             env={**os.environ, "NUMBA_NUM_THREADS": "2"})
        assert out.returncode == 0, out.stderr[-3000:]
        reports[framework] = report = json.loads(out.stdout.strip().splitlines()[-1])
        assert math.isfinite(report["infer"]) and report["infer"] > 0
        assert np.shape(report["logits"]) == (min(batch, 2), 10)
    np.testing.assert_allclose(reports["cnngraph"]["logits"], reports["onnxruntime"]["logits"],
                               rtol=1e-4, atol=1e-5)


def test_loader_benchmark_runs_the_trainers_loader_with_its_augmentation(monkeypatch):
    """`bench/targets.py --parts loader`'s child reads every image of its set once an epoch,
    through `loader.batches` with the augmentation named for the dataset."""
    import targets

    from cnngraph.train import loader
    seen = []
    real = loader.batches

    def counting(x, y, batch_size, normalizer, rng, augment):
        assert augment.crop_padding and augment.hflip
        for images, labels in real(x, y, batch_size, normalizer, rng, augment):
            assert images.dtype == np.float32 and images.shape[1:] == (3, 32, 32)
            seen.append(len(labels))
            yield images, labels

    monkeypatch.setattr(loader, "batches", counting)
    monkeypatch.setattr(targets, "median_seconds", lambda step, repeat: (step(), 2.0)[1])
    report = targets.child_loader("cifar-10")
    assert report == {"images_per_s": 10240 / 2.0} and sum(seen) == 10240


def test_benchmark_writes_the_parts_it_measured_into_the_readme(tmp_path):
    """`bench/targets.py --readme` replaces the tables of the parts it measured, each under its
    own stamp, and leaves the others as they were; a part without its block is an error."""
    import targets
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- targets:speed -->\nold speed\n<!-- /targets:speed -->\n"
                      "between\n<!-- targets:infer -->\nold infer\n<!-- /targets:infer -->\n"
                      "outro\n")
    targets.write_readme({"infer": ["| a | 1 | 2 | 2.00x (1.90-2.10) | >= 1.3x | yes |"]},
                         "Measured today.", readme)
    assert readme.read_text() == (
        "intro\n<!-- targets:speed -->\nold speed\n<!-- /targets:speed -->\nbetween\n"
        "<!-- targets:infer -->\nMeasured today.\n\n" + targets.HEADER + "\n"
        "| a | 1 | 2 | 2.00x (1.90-2.10) | >= 1.3x | yes |\n<!-- /targets:infer -->\noutro\n")
    with pytest.raises(SystemExit, match="no <!-- targets:rss -->"):
        targets.write_readme({"rss": []}, "Measured today.", readme)
    # the project's README has a block for every part
    text = (ROOT / "README.md").read_text()
    assert all(f"<!-- targets:{part} -->" in text and f"<!-- /targets:{part} -->" in text
               for part in targets.PARTS)


@pytest.mark.parametrize("out, size, stride, path, groups", [
    (8, 16, 1, "flat columns", 1), (16, 16, 1, "winograd", 1), (64, 2, 1, "im2col", 1),
    (16, 24, 1, "depthwise 3x3", 16), (16, 24, 2, "depthwise 3x3 s2", 16),
    (16, 4, 1, "depthwise rows", 16)])
def test_conv_layer_benchmark_times_the_same_layer_in_both_frameworks(out, size, stride, path,
                                                                      groups):
    """bench/conv_layers.py's two sides of a layer small enough for a test: cnngraph's kernels
    on the path its lowering takes, and PyTorch's conv2d with autograd, give the same output
    and gradients for the same inputs."""
    from conv_layers import measure, measure_torch, ours, theirs
    layer = ("small", 8, 16, out, size, 3, stride, 1)
    mine = ours(*layer, 2, np.random.default_rng(0), groups)
    assert mine.path == path          # the path the lowering takes for this layer
    mine.forward()
    mine.backward()
    reference = theirs(*layer, 2, np.random.default_rng(0), groups)
    np.testing.assert_array_equal(mine.x, reference.x.detach().numpy())   # the same inputs
    y = reference.forward_graph()
    np.testing.assert_allclose(reference.forward().numpy(), y.detach().numpy(), rtol=1e-6)
    dx, dw, db = reference.backward(y)
    for name, got, want in (("y", mine.y, y), ("dx", mine.dx, dx), ("dw", mine.dw, dw),
                            ("db", mine.db, db)):
        want = want.detach().numpy()
        scale = float(np.abs(want).max())
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * scale, err_msg=name)
    # the script's own calls run (their figures are for people, on a quiet machine)
    figures = measure(*layer, 2, np.random.default_rng(0), repeat=1, groups=groups)
    assert set(figures) == {"layer", "path", "fwd", "bwd"} and figures["path"] == path
    assert set(measure_torch(*layer, 2, np.random.default_rng(0), repeat=1, groups=groups)) == \
        {"layer", "fwd", "bwd"}


def test_depthwise_bound_counts_the_tensors_each_pass_must_move():
    """The depthwise row's bound: forward reads x and writes y, backward reads x and dy and
    writes dx (weights: 10 values per channel each way); stride 2 quarters y and dy. The
    forward's bytes move at STREAM scale's bandwidth, the backward's at its triad's."""
    from conv_layers import bound, traffic
    x = 4 * 2 * 3 * 8 * 8
    assert traffic(2, 3, 8, 1) == (2 * x + 120, 3 * x + 240)
    assert traffic(2, 3, 8, 2) == (x + x // 4 + 120, 2 * x + x // 4 + 240)
    assert bound(("layer", 2, 3, 8, 1), {"scale": 2.0, "triad": 4.0}) == \
        pytest.approx((2 * x + 120) / 2 + (3 * x + 240) / 4)


STRIPES_SPEC = """version: 1
name: stripes
input: [1, 8, 8]
layers:
  - conv: {out: 4, kernel: 3, padding: 1}
  - batchnorm
  - relu
  - maxpool: {kernel: 2}
  - flatten
  - dense: {out: 4}
train:
  epochs: 4
  batch_size: 16
  optimizer: sgd
  lr: 0.1
  momentum: 0.9
  weight_decay: 0.01
  decay_bn_bias: false
  schedule: cosine
  warmup_epochs: 1
  augment: {crop_padding: 1, hflip: true}
  val_split: 0.25
  label_smoothing: 0.05
  clip_grad_norm: 5.0
"""


def stripes(folder, n=96, seed=0):
    """Four classes: a bright band across rows 2k and 2k+1 for class k, on noise. A network this
    small learns it in an epoch or two (chance is 25 %), and the spec's augmentation keeps the
    class (a horizontal flip keeps a band; a crop moves it by a row at most)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", n), ("test", n // 2)):
        y = rng.integers(0, 4, count)
        x = rng.integers(0, 60, (count, 1, 8, 8)).astype(np.uint8)
        for i, label in enumerate(y):
            x[i, 0, 2 * label:2 * label + 2] += 150
        np.savez(folder / f"{split}.npz", x=x, y=y, classes=np.array(["a", "b", "c", "d"]))
    return folder


def test_accuracy_benchmark_trains_the_pytorch_twin_to_cnngraph_s_weights(tmp_path,
                                                                          write_spec):
    """bench/accuracy.py's PyTorch side (same network, initial values, batches, augmentation,
    learning rate per step, weight-decay groups, label smoothing and clipping as cnngraph's
    runner): after an epoch it holds the weights and batch-norm statistics the runner saved;
    and after the spec's four epochs it classifies the test set far above chance."""
    from accuracy import torch_fit, torch_training

    import cnngraph
    from cnngraph.train import checkpoint
    from cnngraph.train import config as train_config
    from cnngraph.train.loader import Normalizer
    from cnngraph.train.readers import load_dataset
    from cnngraph.train.runner import split, train
    spec = write_spec(STRIPES_SPEC)
    net = cnngraph.load(spec)
    data_dir = stripes(tmp_path / "data")
    one_epoch = train_config.resolve(net.train, epochs=1)
    train(net, spec.read_text(), one_epoch, tmp_path / "run", str(data_dir), quiet=True)
    params, buffers, _, _ = checkpoint.load(tmp_path / "run" / "last.npz")

    data = load_dataset(str(data_dir), "train")      # as the benchmark's main() prepares it
    train_set, _ = split(data, one_epoch.val_split, one_epoch.seed)
    normalizer = Normalizer.fit(train_set.x)
    twin_params, twin_buffers, seconds = torch_fit(net, one_epoch, train_set, normalizer, 1)
    assert len(seconds) == 1 and set(twin_params) == set(params)
    initial = cnngraph.compile(net, seed=one_epoch.seed).params
    assert all(not np.allclose(initial[name], value)    # (an epoch of training moved them)
               for name, value in params.items() if name.endswith("weight"))
    for theirs, mine in ((twin_params, params), (twin_buffers, buffers)):
        for name, value in mine.items():
            np.testing.assert_allclose(theirs[name].detach().numpy(), value, rtol=1e-4,
                                       atol=1e-5, err_msg=name)

    test_set = load_dataset(str(data_dir), "test")
    config = train_config.resolve(net.train)
    accuracy, seconds = torch_training(net, config, train_set, test_set, normalizer,
                                       config.epochs)
    assert accuracy >= 0.9 and len(seconds) == 4


def test_freezing_benchmark_freezes_what_its_scenarios_say():
    """bench/freezing.py times a step with parts of ResNet-18 frozen: each scenario's patterns
    match (no warning) and freeze what its name says; the PyTorch side freezes the same
    tensors (`Network.frozen`)."""
    import freezing

    def backward_steps(net):
        return {s.node for s in backward_schedule(net) if isinstance(s, Backward)}

    nets = {name: freezing.frozen_net(patterns) for name, patterns in freezing.SCENARIOS.items()}
    for name, patterns in freezing.SCENARIOS.items():
        assert not finetune.frozen_tensors(nets[name], patterns)[1], name
    layers = {n.name for n in nets["nothing"].nodes if n.params}
    frozen = {name: {n.name for n in net.nodes if n.params and not n.trains}
              for name, net in nets.items()}
    assert frozen["nothing"] == set() and nets["nothing"].frozen() == []
    assert frozen["all but the head"] == layers - {"dense1"}
    assert backward_steps(nets["all but the head"]) == {"dense1"}      # a linear probe
    assert not backward_steps(nets["stem, layer1, layer2"]) & frozen["stem, layer1, layer2"]
    assert {n.split(".")[0] for n in frozen["layer2, layer3"]} == {"layer2", "layer3"}
    # the middle frozen: the backward passes through layer2 and layer3 down to the stem
    assert frozen["layer2, layer3"] < backward_steps(nets["layer2, layer3"])
    assert "conv1" in backward_steps(nets["layer2, layer3"])


def test_the_benchmarks_cifar_sized_nets_keep_the_papers_blocks():
    """bench/specs/'s DenseNet-121 and GoogLeNet at CIFAR size change only the stem and the
    classifier: DenseNet-121 counts the 6,956,298 parameters of the common CIFAR DenseNet-121
    (a 3x3 stem to 64 channels, 10 classes); GoogLeNet counts specs/googlenet.yaml's main
    classifier's 6,998,552 less its stem (7x7 conv to 64, 1x1 to 64, 3x3 to 192: 124,416) and
    1000-way classifier (1,025,000), plus a 3x3 conv to 192 with batch norm (5,568) and a
    10-way classifier (10,250)."""
    import cnngraph
    from cnngraph.tools.summary import analyse
    params = {name: analyse(cnngraph.load(ROOT / "bench" / "specs" / f"{name}.yaml"))
              ["totals"]["params"] for name in ("densenet121_cifar", "googlenet_cifar")}
    assert params["densenet121_cifar"] == 6_956_298
    assert params["googlenet_cifar"] == 6_998_552 - 124_416 - 1_025_000 + 5_568 + 10_250
    net = cnngraph.load(ROOT / "bench" / "specs" / "googlenet_cifar.yaml")
    assert [net.node(f"inception_{m}.concat1").shape for m in ("3b", "4e", "5b")] == \
        [(480, 32, 32), (832, 16, 16), (1024, 8, 8)]


def test_direct_kernel_benchmark_times_both_sides_of_the_same_products():
    """bench/direct_kernels.py on a layer small enough for a test: the direct kernels and
    im2col + OpenBLAS give the same outputs and weight gradient."""
    from direct_kernels import measure
    figures = measure(3, 6, 7, 3, 1, np.random.default_rng(0))
    assert figures["gap"] < 1e-5
    assert figures["flops"] == 2 * 7 * 27 * (5 * 8 + 6)
    assert all(figures[key] > 0 for key in ("outputs", "outputs_blas", "weight_gradient",
                                            "weight_gradient_blas"))
