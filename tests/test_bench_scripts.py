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
