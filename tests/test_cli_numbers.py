"""The numbers the command line prints agree with each other and with the README."""
import json
import re

import pytest

from cnngraph.tools import gradcheck

from helpers import KINKED_SPEC, ROOT, SPECS


def _planned(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.lstrip().startswith("planned ")]


@pytest.mark.parametrize("spec,optimizer", [("lenet.yaml", None), ("lenet-bn.yaml", "adam")])
def test_compile_and_summary_print_the_same_planned_memory(cli, spec, optimizer):
    extra = ("--optimizer", optimizer) if optimizer else ()
    compiled = cli("compile", SPECS / spec, "--batch", 32, *extra)
    summary = cli("summary", SPECS / spec, "--batch", 32, *extra)
    assert compiled.exit_code == summary.exit_code == 0, compiled.output + summary.output
    lines = _planned(compiled.output)
    assert [line.split()[:2] for line in lines] == [["planned", "training"],
                                                   ["planned", "inference"]]
    assert lines == _planned(summary.output)
    for part in ("params", "grads", f"{optimizer or 'sgd'} state", "buffers",
                 "activations, their gradients and workspaces"):
        assert part in lines[0]


def test_lenet_training_memory_counts_sgds_velocity(cli):
    """LeNet b32 training: the figure `compile` and `summary` both print, from its parts."""
    line = _planned(cli("summary", SPECS / "lenet.yaml", "--batch", 32).output)[0]
    total, parts = re.match(r"\s*planned training\s+(.*?) = (.*)", line).groups()
    assert "sgd state 241.04 KiB" in parts           # SGD keeps a velocity even at momentum 0
    kib = {"KiB": 1, "MiB": 1024, "B": 1 / 1024}
    values = [float(v) * kib[u] for v, u in re.findall(r"([\d.]+) (KiB|MiB|B)\b", parts)]
    value, unit = total.split()
    assert sum(values) == pytest.approx(float(value) * kib[unit], abs=10)   # 2-digit MiB


def _readme() -> str:
    return (ROOT / "README.md").read_text()


def _keys(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_every_json_field_the_readme_names_exists(cli):
    block = _readme().split("### `--json` format (`cnngraph-summary/1`)")[1].split("```json")[1]
    block = block.split("```")[0]
    named = set(re.findall(r'"(\w+)":', block))
    assert {"receptive_field", "global_context", "optimizer_state", "arena"} <= named
    result = cli("summary", SPECS / "resnet18.yaml", "--json")
    data = json.loads(result.output)
    assert named <= _keys(data), named - _keys(data)
    head, rest = block.split('"totals":')
    for key, value in re.findall(r'"(\w+)": ("[^"]*"|false)', head):
        if key != "file":                                 # the top-level values as printed
            assert json.dumps(data[key]) == value, key
    totals, first = rest.split('"memory":')[0], rest.split('"layers": [')[1]
    for key, value in re.findall(r'"(\w+)": (\d+)', totals):
        assert data["totals"][key] == int(value), key
    for key, value in re.findall(r'"(\w+)": (\d+)', first):
        assert data["layers"][0][key] == int(value), key


def test_the_readme_summary_example_matches_the_output(cli):
    block = _readme().split("$ cnngraph summary specs/resnet18.yaml --depth 1\n")[1]
    block = block.split("```")[0]
    output = cli("summary", SPECS / "resnet18.yaml", "--depth", 1).output.splitlines()
    shown = [line for line in block.splitlines() if line != "..."]
    assert len(shown) >= 5
    for line in shown:
        if line.endswith(", ..."):
            assert any(o.startswith(line[:-len(", ...")]) for o in output), line
        else:
            assert line in output, line


def test_the_readme_receptive_field_example_for_fmnist_vgg(cli):
    text = _readme()
    assert "the gate's `mul` keeps the trunk's `36*+` and jump 8" in " ".join(text.split())
    output = cli("summary", SPECS / "fmnist-vgg.yaml", "--columns",
                 "layer,op,output,rf,jump").output.splitlines()
    mul = next(line for line in output if line.strip().startswith("mul1"))
    pool = [line for line in output if line.startswith("global_avgpool1")][0]
    assert mul.split()[-2:] == ["36*+", "8"] and pool.split()[-2:] == ["52*", "24"]




def test_check_grad_passes_the_kinked_case_and_reports_what_it_left_out(cli, write_spec,
                                                                         monkeypatch):
    result = cli("check", "--grad", write_spec(KINKED_SPEC))
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output and "at kink" in result.output
    assert "not judged" not in result.output
    # the tie kept (zero biases): probes left out, tensors unjudged
    checker = gradcheck.gradient_check
    monkeypatch.setattr(gradcheck, "gradient_check",
                        lambda net, **kw: checker(net, offset_constants=False, **kw))
    result = cli("check", "--grad", write_spec(KINKED_SPEC))
    assert result.exit_code == 0, result.output
    left_out = re.search(r"(\d+) probe\(s\) left out", result.output)
    assert left_out and int(left_out.group(1)) > 0
    assert "not judged (every probe sat on a kink" in result.output
    assert "conv1.bias" in result.output and "partly unchecked" in result.output


@pytest.mark.parametrize("spec", ["lenet.yaml", "lenet-bn.yaml", "fmnist-vgg.yaml"])
def test_check_grad_passes_every_small_shipped_spec(cli, spec):
    result = cli("check", "--grad", SPECS / spec)
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output
