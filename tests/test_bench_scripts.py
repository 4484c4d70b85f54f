"""The GPU benchmark script runs end to end (in the CUDA simulator, on a tiny network), so it
runs unchanged where a GPU exists. The CPU benchmark's children (one per framework) run too."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT


def test_gpu_benchmark_runs_in_the_simulator(write_spec):
    spec = write_spec("version: 1\ninput: [2, 5, 5]\nlayers:\n  - conv: {out: 3, kernel: 3}\n"
                      "  - relu\n  - flatten\n  - dense: {out: 2}\n")
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), "--repeat", "1",
                          "--workload", f"{spec}:2"], capture_output=True, text=True,
                         env={**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "batch 2: cnngraph" in out.stdout and "img/s" in out.stdout
    assert "conv+relu" in out.stdout and "dense1" in out.stdout


def test_cpu_benchmark_times_each_framework_in_its_own_process():
    """`make bench` runs each measurement in a child process; one LeNet repeat in each
    framework shows both children build the same network and report their step times."""
    for framework in ("cnngraph", "torch"):
        out = subprocess.run([sys.executable, str(ROOT / "bench" / "targets.py"), "--child",
                              "speed", framework, "lenet", "1"], capture_output=True,
                             text=True, cwd=ROOT)
        assert out.returncode == 0, out.stderr[-3000:]
        times = json.loads(out.stdout.strip().splitlines()[-1])
        assert 0 < times["train"] < 10 and 0 < times["infer"] < 10


@pytest.mark.parametrize("out, size, path", [(8, 16, "flat columns"), (16, 16, "winograd"),
                                             (64, 2, "im2col")])
def test_conv_layer_benchmark_measures_both_frameworks(out, size, path):
    """bench/conv_layers.py's measurements, on layers small enough for a test."""
    sys.path.insert(0, str(ROOT / "bench"))
    import numpy as np
    from conv_layers import measure, measure_torch
    layer = ("small", 8, 16, out, size, 3, 1, 1)
    ours = measure(*layer, 2, np.random.default_rng(0))
    assert ours["path"] == path          # the path the lowering takes for this layer
    for figures in (ours, measure_torch(*layer, 2, np.random.default_rng(0))):
        assert figures["layer"] == "small" and figures["fwd"] > 0 and figures["bwd"] > 0


def test_accuracy_benchmark_trains_the_pytorch_twin(write_spec):
    """bench/accuracy.py's PyTorch side (same network, initial values, recipe and weight-decay
    groups as cnngraph's runner), one epoch on a few random images."""
    sys.path.insert(0, str(ROOT / "bench"))
    import numpy as np
    from accuracy import torch_training

    import cnngraph
    from cnngraph.train import config as train_config
    from cnngraph.train.loader import Normalizer
    from cnngraph.train.readers import Dataset
    net = cnngraph.load(write_spec(
        "version: 1\ninput: [1, 6, 6]\nlayers: [conv: {out: 3, kernel: 3}, batchnorm, relu, "
        "flatten, dense: {out: 2}]\ntrain: {epochs: 1, batch_size: 4, weight_decay: 0.01, "
        "decay_bn_bias: false}\n"))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 1, 6, 6)).astype(np.uint8)
    data = Dataset(images, rng.integers(0, 2, 10), "random")
    accuracy, seconds = torch_training(net, train_config.resolve(net.train), data, data,
                                       Normalizer.fit(images), 1)
    assert 0 <= accuracy <= 1 and len(seconds) == 1
