"""`cnngraph draw`: the diagram holds every layer, shape, block and skip edge."""
import builtins
import re

import pytest

import cnngraph
from cnngraph.ops.base import numel
from cnngraph.tools.draw import DrawError, details, dot_source, render, shape_text

from helpers import SPECS

BLOCK = """version: 1
input: [8, 6, 6]
include: [{classic}]
layers:
  - basic: {{out: 8}}
  - basic: {{out: 16, stride: 2, project: true}}
  - global_avgpool
  - flatten
  - dense: {{out: 3}}
"""


def edges(source: str) -> set[tuple[str, str]]:
    return set(re.findall(r'^\s*"([^"]+)" -> "([^"]+)"', source, re.M))


def test_googlenet_svg_has_every_layer_and_every_shape(tmp_path):
    net = cnngraph.load(SPECS / "googlenet.yaml")
    path = tmp_path / "googlenet.svg"
    render(dot_source(net), path)
    svg = path.read_text()
    assert svg.startswith("<?xml") and "<svg" in svg
    for node in net.nodes:
        assert f">{node.name}</text>" in svg, node.name
        assert f"> {shape_text(node.shape)}</text>" in svg or node.name in \
            {o.node for o in net.outputs}, node.name       # on the edges out of it
    for output in net.outputs:                       # the heads too
        assert f">{output.name} {shape_text(net.shape_of(output.node))}</text>" in svg


def test_a_residual_block_has_its_skip_edge_and_clusters(write_spec):
    net = cnngraph.load(write_spec(BLOCK.format(classic=SPECS / "blocks" / "classic.yaml")))
    source = dot_source(net)
    adds = [n for n in net.nodes if n.op == "add"]
    assert len(adds) == 2
    # the first block's add reads the block's input itself: the identity shortcut
    assert ("input", adds[0].name) in edges(source)
    assert 'subgraph "cluster_basic1"' in source and 'label="basic1 (basic)"' in source
    # the second's shortcut is a projection branch, drawn as a cluster of its own
    branches = [g for g, b in net.groups.items() if b == "branch" and g.startswith("basic2")]
    assert branches and all(f'"cluster_{g}"' in source for g in branches)


def test_depth_collapses_blocks_into_boxes():
    net = cnngraph.load(SPECS / "resnet18.yaml")
    stages = dot_source(net, depth=0)
    assert '"layer1" [label="layer1\\nbasic_stage (' in stages and "layer1.basic1" not in stages
    assert ("maxpool1", "layer1") in edges(stages) and ("layer4", "global_avgpool1") in \
        edges(stages)
    blocks = dot_source(net, depth=1)
    assert '"layer1.basic1" [label=' in blocks and "layer1.basic1.conv1" not in blocks
    assert 'subgraph "cluster_layer1"' in blocks
    assert ("layer1.basic1", "layer1.basic2") in edges(blocks)
    everything = dot_source(net)
    first = next(n.name for n in net.nodes if n.name.startswith("layer1.basic1."))
    assert f'"{first}" [label=' in everything
    params = sum(numel(shape) for n in net.nodes if n.name.startswith("layer1.")
                 for shape in n.params.values())
    assert f"{params:,} params" in stages


def test_layer_details_say_what_a_layer_does():
    net = cnngraph.load(SPECS / "googlenet.yaml")
    assert details(net.node("conv1")) == "7×7 /2 pad 3, 64"
    assert details(net.node("maxpool1")) == "3×3 /2"
    assert details(net.node("dense1")) == "1000"
    assert "size 5" in details(net.node("lrn1"))


def test_every_shipped_spec_draws():
    for spec in sorted(SPECS.glob("*.yaml")):
        source = dot_source(cnngraph.load(spec), depth=1)
        assert source.startswith("digraph") and source.rstrip().endswith("}"), spec


def test_formats_and_a_missing_graphviz(tmp_path, monkeypatch, cli, write_spec):
    spec = write_spec("version: 1\ninput: [1, 4, 4]\nlayers: [flatten, dense: {out: 2}]\n")
    result = cli("draw", spec, "-o", tmp_path / "net.dot")
    assert result.exit_code == 0 and (tmp_path / "net.dot").read_text().startswith("digraph")
    result = cli("draw", spec, "-o", tmp_path / "net.gif")
    assert result.exit_code == 1 and "unknown diagram format `.gif`" in result.output
    real_import = builtins.__import__

    def no_graphviz(name, *args, **kwargs):
        if name == "graphviz":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_graphviz)
    with pytest.raises(DrawError, match=r"pip install 'cnngraph\[draw\]'"):
        render("digraph {}", tmp_path / "net.svg")
    render("digraph {}", tmp_path / "still.dot")      # DOT needs nothing
