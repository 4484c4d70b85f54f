import pytest

import cnngraph
from cnngraph.errors import SpecError

HEAD = "version: 1\ninput: [3, 16, 16]\n"


def load(write_spec, body: str, **files):
    for name, text in files.items():
        write_spec(text, name)
    return cnngraph.load(write_spec(HEAD + body))


def test_auto_names_count_per_op_and_scope(write_spec):
    net = load(write_spec, """
blocks:
  cbr:
    params: {out: ~}
    layers: [conv: {out: $out, kernel: 3, padding: 1}, relu]
layers:
  - cbr: {out: 4}
  - cbr: {out: 4}
  - conv: {out: 2, kernel: 1}
  - relu
""")
    assert [n.name for n in net.nodes] == [
        "cbr1.conv1", "cbr1.relu1", "cbr2.conv1", "cbr2.relu1", "conv1", "relu1"]
    assert net.groups == {"cbr1": "cbr", "cbr2": "cbr"}


def test_id_names_a_block_instance_and_repeat_continues_counters(write_spec):
    net = load(write_spec, """
blocks:
  unit:
    layers: [conv: {out: 3, kernel: 1}]
layers:
  - repeat: 2
    layers: [unit, relu]
  - unit
    id: last
""".replace("  - unit\n    id", "  - unit:\n    id"))
    assert [n.name for n in net.nodes] == ["unit1.conv1", "relu1", "unit2.conv1", "relu2",
                                           "last.conv1"]


def test_parallel_branches_and_merge(write_spec):
    net = load(write_spec, """
layers:
  - parallel:
      - [conv: {out: 4, kernel: 1}]
      - [conv: {out: 2, kernel: 3, padding: 1}, relu]
      - []
    merge: concat
""")
    merge = net.node("concat1")
    assert merge.inputs == ("branch1.conv1", "branch2.relu1", "input")
    assert merge.shape == (9, 16, 16)
    assert net.groups == {"branch1": "branch", "branch2": "branch"}


def test_from_wires_a_dag_and_ids_scope_lexically(write_spec):
    net = load(write_spec, """
layers:
  - conv: {out: 3, kernel: 3, padding: 1}
    id: a
  - relu:
  - parallel:
      - [conv: {out: 3, kernel: 1}]
      - - add:
          from: [a, input]
        """.rstrip() + "\n    merge: add\n")
    assert net.node("branch2.add1").inputs == ("a", "input")
    assert net.node("add1").inputs == ("branch1.conv1", "branch2.add1")


def test_block_sees_only_its_own_ids_and_input(write_spec):
    with pytest.raises(SpecError, match="`from` names `outer`"):
        load(write_spec, """
blocks:
  b:
    layers:
      - add:
        from: [input, outer]
layers:
  - conv: {out: 3, kernel: 1}
    id: outer
  - b:
""")
    net = load(write_spec, """
blocks:
  b:
    layers:
      - conv: {out: 3, kernel: 1}
      - add:
        from: [input, conv1]
layers:
  - b:
""".replace("from: [input, conv1]", "from: [input, c]").replace(
        "- conv: {out: 3, kernel: 1}\n", "- conv: {out: 3, kernel: 1}\n        id: c\n"))
    assert net.node("b1.add1").inputs == ("input", "b1.c")


def test_when_and_param_defaults_that_use_other_params(write_spec):
    net = load(write_spec, """
blocks:
  maybe:
    params: {out: ~, mid: $out * 2, proj: false}
    layers:
      - conv: {out: $mid, kernel: 1}
      - when: $proj
        layers: [conv: {out: $out, kernel: 1}]
layers:
  - maybe: {out: 2}
  - maybe: {out: 3, proj: true}
""")
    assert [(n.name, n.shape[0]) for n in net.nodes] == [
        ("maybe1.conv1", 4), ("maybe2.conv1", 6), ("maybe2.conv2", 3)]


def test_repeat_zero_and_expression_counts(write_spec):
    net = load(write_spec, """
blocks:
  stage:
    params: {n: ~}
    layers:
      - conv: {out: 2, kernel: 1}
      - repeat: $n - 1
        layers: [relu]
layers:
  - stage: {n: 1}
  - stage: {n: 3}
""")
    assert [n.op for n in net.nodes] == ["conv", "conv", "relu", "relu"]


def test_include_is_relative_to_the_including_file(write_spec):
    net = load(write_spec, """
include: lib/blocks.yaml
layers: [two]
""", **{"lib/blocks.yaml":
        "version: 1\ninclude: [more.yaml]\nblocks:\n  two:\n    layers: [one, one]\n",
        "lib/more.yaml": "version: 1\nblocks:\n  one:\n    layers: [relu]\n"})
    assert [n.name for n in net.nodes] == ["two1.one1.relu1", "two1.one2.relu1"]


def test_errors_inside_blocks_name_the_call_site(write_spec):
    with pytest.raises(SpecError) as info:
        load(write_spec, """
blocks:
  inner:
    layers: [conv: {out: 2, kernel: 99}]
  outer:
    layers: [inner]
layers: [outer]
""")
    text = info.value.render()
    assert "window does not fit" in text
    assert "in block `inner` used at" in text and "in block `outer` used at" in text
    # innermost first, like a traceback read from the error outwards
    assert text.index("`inner` used") < text.index("`outer` used")


def test_all_errors_are_reported_and_downstream_ones_suppressed(write_spec):
    with pytest.raises(SpecError) as info:
        load(write_spec, """
layers:
  - conv: {out: 2, kernel: 3, strid: 2}
  - conv: {out: 2, kernel: 99}
  - dense: {out: 10}
  - relu: {slope: 1}
""")
    messages = [p.message for p in info.value.problems]
    assert len(messages) == 2  # the dense after the broken convs is not reported again
    assert "unknown key `strid`" in messages[0]
    assert "unknown key `slope`" in messages[1]


def test_expansion_size_is_bounded(write_spec):
    with pytest.raises(SpecError, match="more than 20,000 layers"):
        load(write_spec, """
blocks:
  many:
    layers:
      - repeat: 1000
        layers: [relu]
layers:
  - repeat: 1000
    layers: [many]
""")


def test_block_named_like_an_op_is_refused(write_spec):
    with pytest.raises(SpecError, match="block `relu` has the name of an op"):
        load(write_spec, "blocks:\n  relu:\n    layers: [identity]\nlayers: [identity]\n")


def test_merge_needs_two_inputs_and_single_input_ops_one(write_spec):
    with pytest.raises(SpecError, match="merges two or more inputs"):
        load(write_spec, "layers: [add]\n")
    with pytest.raises(SpecError, match="takes one input, received 2"):
        load(write_spec, "layers:\n  - relu:\n    id: r\n  - relu:\n    from: [r, input]\n")
