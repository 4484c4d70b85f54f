"""Every CUDA kernel compiles to real PTX for sm_80 and sm_90 (no GPU needed), and float32
kernels hold no float64 instruction.

The signatures are the ones real launches use: `ptx_signatures.py` runs float32 and float64
training steps of every op's test cases (and LeNet) with launches recorded instead of run,
in a process without the simulator. Skipped only where no CUDA toolkit (NVVM) is found.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    if shutil.which("nvcc") is None and not os.environ.get("CUDA_HOME"):
        pytest.skip("no CUDA toolkit (nvcc / CUDA_HOME) to compile PTX with")
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0",
           "CNNGRAPH_CACHE": str(tmp_path_factory.mktemp("cache"))}
    out = subprocess.run([sys.executable, str(HERE / "ptx_signatures.py")], env=env,
                         capture_output=True, text=True, cwd=HERE.parents[1])
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def test_every_kernel_is_launched_by_the_recorded_steps(report):
    kernels = {tuple(k) for k in report["kernels"]}
    recorded = {tuple(k) for k in report["recorded"]}
    assert len(kernels) > 40
    assert kernels - recorded == set()


def test_every_launch_compiles_for_sm80_and_sm90(report):
    results = report["results"]
    assert {tuple(r["cc"]) for r in results} == {(8, 0), (9, 0)}
    assert all(r["entry"] for r in results)


def test_float32_kernels_use_no_float64(report):
    float32 = [r for r in report["results"] if r["float32"]]
    assert len(float32) > 40
    assert [r["kernel"] for r in float32 if r["f64"]] == []
