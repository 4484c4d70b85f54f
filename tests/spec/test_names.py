"""`from` and the names the README promises: generated names are usable, ids inside `repeat`
are refused once, and every example of the README's spec-language section loads."""
import re
import shutil
from pathlib import Path

import pytest

import cnngraph
from cnngraph.errors import SpecError

from helpers import ROOT, SPECS

HEAD = "version: 1\ninput: [3, 16, 16]\n"


def load(write_spec, body: str):
    return cnngraph.load(write_spec(HEAD + body))


def test_from_takes_generated_layer_names(write_spec):
    net = load(write_spec, """
layers:
  - conv: {out: 3, kernel: 3, padding: 1}
  - conv: {out: 3, kernel: 3, padding: 1}
  - add:
    from: [conv1, conv2]
""")
    assert net.node("add1").inputs == ("conv1", "conv2")


def test_from_takes_a_name_inside_a_branch_and_a_block_instance(write_spec):
    net = load(write_spec, """
blocks:
  cbr:
    layers: [conv: {out: 3, kernel: 1}, relu]
layers:
  - parallel:
      - [conv: {out: 3, kernel: 3, padding: 1}]
      - []
    merge: add
  - cbr
  - add:
    from: [branch1.conv1, cbr1, input]
""")
    assert net.node("add2").inputs == ("branch1.conv1", "cbr1.relu1", "input")


def test_from_inside_a_block_resolves_the_blocks_own_generated_names(write_spec):
    net = load(write_spec, """
blocks:
  res:
    layers:
      - conv: {out: 3, kernel: 1}
      - relu
      - add:
        from: [relu1, input]
layers: [res, res]
""")
    assert net.node("res2.add1").inputs == ("res2.relu1", "res1.add1")


def test_a_later_layer_is_not_visible(write_spec):
    with pytest.raises(SpecError, match="no earlier layer has that id or name"):
        load(write_spec, "layers:\n  - add:\n    from: [input, relu1]\n  - relu\n")


def test_id_inside_repeat_is_one_error_with_the_block_hint(write_spec):
    with pytest.raises(SpecError) as info:
        load(write_spec, """
layers:
  - repeat: 3
    layers:
      - relu:
        id: a
""")
    assert len(info.value.problems) == 1
    assert "every iteration of `repeat`" in info.value.problems[0].message
    assert "repeat the block" in info.value.problems[0].hint


def test_an_error_in_a_repeated_or_reused_body_is_printed_once(write_spec):
    with pytest.raises(SpecError) as info:
        load(write_spec, """
blocks:
  b:
    layers: [conv: {out: 3, kernel: 1, strides: 2}]
layers:
  - repeat: 4
    layers: [conv: {out: 3, kernel: 1, strides: 2}]
  - b
  - b
""")
    assert len(info.value.problems) == 2
    assert len(set(p.render().splitlines()[0] for p in info.value.problems)) == 2


def test_mul_takes_exactly_two_inputs_like_its_kernels(write_spec):
    with pytest.raises(SpecError, match="`mul` takes exactly two inputs, received 1"):
        load(write_spec, "layers: [mul]\n")
    net = load(write_spec, """
layers:
  - sigmoid:
    id: a
  - mul:
    from: [a, input]
    id: ab
  - mul:
    from: [ab, a]
""")
    assert [n.op for n in net.nodes] == ["sigmoid", "mul", "mul"]


def _readme_examples():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## The spec language"):text.index("## Counting convention")]
    return re.findall(r"```yaml\n(.*?)```", section, re.S)


@pytest.mark.parametrize("example", _readme_examples())
def test_every_readme_spec_example_loads(example, tmp_path):
    shutil.copytree(SPECS / "blocks", tmp_path / "blocks")
    if example.startswith("version:"):
        text = example
    elif example.startswith("blocks:"):
        text = "version: 1\ninput: [64, 56, 56]\n" + example
    else:  # a list of layers, run inside a block so that `$` parameters mean something
        body = "\n".join("    " + line for line in example.splitlines())
        text = ("version: 1\ninput: [64, 16, 16]\nblocks:\n  example:\n    params: "
                "{project: true}\n    layers:\n" + body + "\nlayers: [example]\n")
    path = Path(tmp_path / "example.yaml")
    path.write_text(text)
    assert cnngraph.load(path).nodes


def test_readme_has_spec_examples():
    assert len(_readme_examples()) >= 6
