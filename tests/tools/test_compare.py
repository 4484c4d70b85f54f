"""`cnngraph bench --compare`: cnngraph, PyTorch and onnxruntime time the same network on the
same weights and batch (their first logits agree), and the table has a row per mode with each
framework's ratio and its range. No test here reads a clock's value."""
import re

import numpy as np

import cnngraph
from cnngraph.tools import compare

from helpers import ROOT

SPEC = ROOT / "specs" / "lenet.yaml"


def test_each_framework_times_the_same_network(monkeypatch):
    monkeypatch.setattr(compare, "median_seconds", lambda step, repeat: 1.0)  # no clock
    net = cnngraph.load(SPEC)
    reports = {f: compare.measure(f, net, 3, 1) for f in ("cnngraph", "torch", "onnxruntime")}
    assert set(reports["cnngraph"]) == set(reports["torch"]) == {"infer", "train", "logits"}
    assert set(reports["onnxruntime"]) == {"infer", "logits"}      # it only infers
    for framework in ("torch", "onnxruntime"):
        np.testing.assert_allclose(reports[framework]["logits"], reports["cnngraph"]["logits"],
                                   rtol=1e-4, atol=1e-5, err_msg=framework)


def test_bench_compare_prints_a_row_per_mode_with_ratios_and_their_range(cli):
    result = cli("bench", SPEC, "--batch", "2", "--compare", "torch,onnxruntime", "--rounds",
                 "2", "--repeat", "1")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "| workload | cnngraph | torch | x torch | onnxruntime | x onnxruntime |" in lines
    inference = next(line for line in lines if line.startswith("| inference, batch 2 |"))
    training = next(line for line in lines if line.startswith("| training step, batch 2 |"))
    ratio = r"(\d+\.\d\d)x \((\d+\.\d\d)-(\d+\.\d\d)\)"
    assert len(re.findall(ratio, inference)) == 2          # against both frameworks
    assert len(re.findall(ratio, training)) == 1 and training.endswith("|  |  |")
    for median, low, high in re.findall(ratio, inference + training):
        assert float(low) <= float(median) <= float(high)
    gap = re.search(r"agree within (\S+);", result.output)
    assert gap and float(gap.group(1)) < 1e-4


def test_bench_compare_names_the_frameworks_it_knows(cli):
    result = cli("bench", SPEC, "--compare", "tensorflow")
    assert result.exit_code == 2
    assert "expected some of torch, onnxruntime" in result.output
