"""`cnngraph bench --workers` (cnngraph/tools/scaling.py): the ring allreduce's cost model, the
estimate built on it, and a measured run of two workers under mpirun."""
import importlib.util
import os
import subprocess
import sys

import pytest

from cnngraph.tools import scaling
from cnngraph.train import parallel

from helpers import ROOT, TRAINING_SPEC


def test_the_ring_allreduce_costs_latency_per_hop_and_twice_the_data():
    alpha, beta, size = 1e-5, 1e9, 4e6
    assert scaling.ring_allreduce_s(1, size, alpha, beta) == 0
    assert scaling.ring_allreduce_s(2, size, alpha, beta) == pytest.approx(2 * alpha + size / beta)
    many = scaling.ring_allreduce_s(1000, size, alpha, beta)
    assert many == pytest.approx(2 * 999 * alpha + 2 * 0.999 * size / beta)


def test_the_estimate_is_bounded_by_perfect_scaling():
    for link in scaling.LINKS:
        small = scaling.estimate(0.1, 1e5, 8, link)        # a small model: nearly linear
        big = scaling.estimate(0.1, 4e8, 8, link)          # 400 MB of gradients
        assert small["speedup"] <= small["overlapped_speedup"] <= 8
        assert small["speedup"] > 7.5 and big["speedup"] < small["speedup"]
        assert big["step_s"] == pytest.approx(0.1 + big["comm_s"])
    slow, fast = (scaling.estimate(0.1, 4e8, 32, link)["speedup"]
                  for link in ("10 GbE", "100 Gb InfiniBand"))
    assert slow < fast


@pytest.mark.skipif(parallel.mpirun_path() is None or importlib.util.find_spec("mpi4py") is None,
                    reason="needs the `mpi` extra (mpi4py, and Open MPI's mpirun)")
@pytest.mark.parametrize("reduction", ["fast", "exact"])
def test_bench_times_one_and_two_workers(tmp_path, reduction):
    spec = tmp_path / "spec.yaml"
    spec.write_text(TRAINING_SPEC)
    done = subprocess.run([sys.executable, "-m", "cnngraph", "bench", str(spec), "--batch", "32",
                           "--repeat", "2", "--workers", "2", "--reduction", reduction],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"({reduction} reduction)" in done.stdout
    rows = [line.split() for line in done.stdout.splitlines()
            if line.split()[:2] in (["1", "32"], ["2", "32"])]
    assert [row[:3] for row in rows] == [["1", "32", "32"], ["2", "32", "16"]]
    # waited ms: none alone, unless the exact reduction sums the shards
    assert (float(rows[0][4]) == 0) == (reduction == "fast") and float(rows[1][4]) > 0
    assert all(link in done.stdout for link in scaling.LINKS)
