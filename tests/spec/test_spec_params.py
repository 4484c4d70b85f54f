"""A spec's own parameters: its top-level `params:`, set from Python, the command line and the
checkpoint a run wrote."""
import json

import pytest

import cnngraph
from cnngraph.errors import SpecError
from cnngraph.train import checkpoint

from helpers import make_quadrants

SPEC = """\
    version: 1
    name: widths
    params: {width: 1.0, base: "int(16 * $width)"}
    input: [1, 8, 8]
    layers:
      - conv: {out: $base, kernel: 3}
      - relu
      - global_avgpool
      - flatten
      - dense: {out: 4}
    train: {epochs: 1, batch_size: 16, val_split: 0.25}
    """


def test_defaults_and_overrides_reach_the_layers(write_spec):
    path = write_spec(SPEC)
    net = cnngraph.load(path)
    assert net.node("conv1").shape[0] == 16 and net.params == {"width": 1.0, "base": 16}
    half = cnngraph.load(path, params={"width": 0.5})
    # `base` is a default over `width`: it follows the override.
    assert half.node("conv1").shape[0] == 8 and half.params == {"width": 0.5, "base": 8}
    assert cnngraph.load(path, params={"base": 3}).node("conv1").shape[0] == 3


def test_block_arguments_see_the_spec_parameters(write_spec):
    path = write_spec("""\
        version: 1
        params: {width: 2}
        input: [1, 8, 8]
        blocks:
          cbr:
            params: {out: ~}
            layers: [conv: {out: $out, kernel: 3}, relu]
        layers:
          - cbr: {out: 4 * $width}
        """)
    assert cnngraph.load(path).node("cbr1.conv1").shape[0] == 8
    assert cnngraph.load(path, params={"width": 3}).node("cbr1.conv1").shape[0] == 12


@pytest.mark.parametrize("text, params, line, message, hint", [
    (SPEC, {"widht": 2}, 3, "the spec has no parameter `widht` to set", "did you mean `width`?"),
    (SPEC.replace("width: 1.0", "width: ~"), {}, 3, "the spec's parameter `width` needs a "
                                                    "value", "--param width=VALUE"),
    (SPEC.replace("int(16 * $width)", "int(16 * $depth)"), {}, 3, "unknown parameter `$depth`",
     "the parameters declared before it"),
    (SPEC.replace("out: $base", "out: $wide"), {}, 6, "unknown parameter `$wide`",
     "top-level `params:`"),
])
def test_errors_say_where_and_what_to_do(write_spec, text, params, line, message, hint):
    path = write_spec(text)
    with pytest.raises(SpecError) as error:
        cnngraph.load(path, params=params)
    problem = error.value.problems[0]
    assert problem.loc.line == line and message in problem.message and hint in problem.hint


def test_command_line_sets_them(cli, write_spec):
    path = write_spec(SPEC)
    # 8 channels: conv 8*9 + 8, dense 8*4 + 4
    assert "116 params" in cli("check", path, "--param", "width=0.5").output
    summary = json.loads(cli("summary", path, "--json", "--param", "base=3").output)
    assert summary["totals"]["params"] == 3 * 9 + 3 + 3 * 4 + 4
    bad = cli("check", path, "--param", "width")
    assert bad.exit_code == 2 and "expected NAME=VALUE" in bad.output


def test_a_run_records_them_and_eval_uses_them(cli, write_spec, tmp_path):
    path = write_spec(SPEC)
    data = make_quadrants(tmp_path / "data", n=32)
    out = tmp_path / "run"
    trained = cli("train", path, "--data", data, "--out", out, "--param", "width=0.5")
    assert trained.exit_code == 0, trained.output
    assert checkpoint.spec_params_of(out / "last.npz") == {"width": 0.5, "base": 8}
    # eval without --param rebuilds the network the checkpoint holds (8 channels, not 16)
    evaluation = cli("eval", path, "--weights", out / "last.npz", "--data", data)
    assert evaluation.exit_code == 0, evaluation.output
    other = cli("eval", path, "--weights", out / "last.npz", "--data", data,
                "--param", "width=1.0")
    assert other.exit_code == 1 and "conv1.weight has shape" in other.output
    resumed = cli("train", path, "--data", data, "--out", out, "--resume", "--epochs", "2")
    assert resumed.exit_code == 1 and "spec parameters" in resumed.output
